"""The answer cache: a whole answer served again to whoever asks the same question of
the same sources with the same model.

The key is a hash of everything the answer depends on:

- the question, normalised (Unicode NFKC, case-folded, runs of spaces made one, trailing
  punctuation dropped): "What is the leave policy?" and "what is  the leave policy" meet;
- the conversation before it, exactly (a follow-up is rewritten with it, and a generative
  model sees it in its prompt): only the same conversation shares an entry;
- the collections retrieval searches for this caller (what they asked for and may read,
  as the caller hands them to retrieval) with each one's index generation, which the
  database bumps in the transaction that changes what retrieval can return from it (a
  document ready, replaced or deleted; a reindex): a change makes every entry over that
  collection unreachable, in every process at once. A user whose searchable set differs
  by one collection never shares an entry with one who can read it. Where this process
  reads index files another process writes (a replica, which catches up a moment after
  the database says a document is ready), the key also holds the index generation it
  has loaded, so an answer made before it caught up is never served after;
- the model that answers this caller (the router's A/B choice: version and model name),
  the prompt templates (their versions and text) and the settings that shape an answer.

Only answers that ended normally are stored ("stop": not cut at the token limit, not an
error or a timeout); a store that fails (Redis down) is a miss with a warning, never an
error for the user.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from app.answer_cache.base import CacheStore, CacheUnavailable
from app.db.repositories import generations
from app.services.model_router import ModelChoice
from llm.base import ChatMessage, Source
from llm.citations import Citation
from llm.prompts import CONDENSE_VERSION, PROMPT_VERSION, TEMPLATES

if TYPE_CHECKING:
    from app.services.answer import Answer

log = logging.getLogger(__name__)

#: Bumped when what an entry holds changes shape: older entries are then never read.
ENTRY_VERSION = 1
#: Results counted in ``lantern_answer_cache_total``.
HIT, MISS, SKIP = "hit", "miss", "skip"
#: Stripped from the end of a question: "policy?" and "policy" are one question.
_TRAILING = frozenset("?!.,;:…。？！，；：、 \t\n")
#: A failing store is reported at most this often.
WARN_EVERY_S = 60.0


def normalise(question: str) -> str:
    """The question as the key sees it: NFKC, case-folded, spaces collapsed, without
    trailing punctuation."""
    text = " ".join(unicodedata.normalize("NFKC", question).casefold().split())
    end = len(text)
    while end and text[end - 1] in _TRAILING:
        end -= 1
    return text[:end]


def prompt_version() -> str:
    """The prompt templates' versions and a hash of their text: an edited template
    changes it even if its version name was forgotten."""
    templates = (TEMPLATES[PROMPT_VERSION], TEMPLATES[CONDENSE_VERSION])
    digest = hashlib.sha256(repr(templates).encode()).hexdigest()[:12]
    return f"{PROMPT_VERSION}+{CONDENSE_VERSION}:{digest}"


class AnswerCache:
    def __init__(
        self,
        store: CacheStore,
        sessions: sessionmaker[Session],
        *,
        ttl_s: int,
        config: str = "",
        on_result: Callable[[str], None] | None = None,
        loaded: Callable[[Collection[str] | None], Mapping[str, int]] | None = None,
    ) -> None:
        """``config``: a fingerprint of the settings that shape an answer (retrieval,
        model, answer options), so that a changed setting starts afresh; ``on_result``
        is called with ``hit``, ``miss`` or ``skip`` (metrics); ``loaded``: the index
        generations this process has loaded per collection, where its index files may
        lag the database (replicas)."""
        self.loaded = loaded
        self.store = store
        self.sessions = sessions
        self.ttl_s = ttl_s
        self.config = config
        self.on_result = on_result
        self._prompt = prompt_version()
        self._warned_at = -WARN_EVERY_S
        self._lock = threading.Lock()

    def key(
        self,
        question: str,
        *,
        history: Sequence[ChatMessage],
        collection_ids: Collection[str] | None,
        model: ModelChoice,
    ) -> str:
        """The key of this question asked by this caller now. ``collection_ids`` is what
        retrieval will search (None: every collection)."""
        gens = generations.current(self.sessions, collection_ids)
        files = self.loaded(collection_ids) if self.loaded is not None else {}
        scope = sorted(gens) if collection_ids is None else sorted(set(collection_ids))
        parts = {
            "entry": ENTRY_VERSION,
            "question": normalise(question),
            "history": [[m.role, m.content] for m in history],
            "collections": [[c, gens.get(c), files.get(c)] for c in scope],
            "model": [model.version, getattr(model.model, "name", type(model.model).__name__)],
            "prompt": self._prompt,
            "config": self.config,
        }
        blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return "v1:" + hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry under ``key`` (counted as a hit), or None (a miss, also when the
        store fails or the entry cannot be read)."""
        try:
            raw = self.store.get(key)
        except CacheUnavailable as e:
            self._warn(e)
            raw = None
        entry = _load(raw)
        self._count(HIT if entry is not None else MISS)
        return entry

    def put(self, key: str, answer: Answer) -> bool:
        """Store ``answer`` if it is whole (counted as ``skip`` if not); whether it was."""
        if answer.finish_reason != "stop":
            self._count(SKIP)
            return False
        try:
            self.store.set(key, json.dumps(entry_of(answer)), ttl_s=self.ttl_s)
        except CacheUnavailable as e:
            self._warn(e)
            return False
        return True

    def close(self) -> None:
        self.store.close()

    def _count(self, result: str) -> None:
        if self.on_result is not None:
            self.on_result(result)

    def _warn(self, error: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            due = now - self._warned_at >= WARN_EVERY_S
            if due:
                self._warned_at = now
        if due:
            log.warning("answer cache unavailable, answering without it: %s", error)


def entry_of(answer: Answer) -> dict[str, Any]:
    """What is stored of an answer: everything but the question as asked and timings."""
    return {
        "entry": ENTRY_VERSION,
        "standalone_question": answer.standalone_question,
        "text": answer.text,
        "citations": [asdict(c) for c in answer.citations],
        "sources": [asdict(s) for s in answer.sources],
        "abstained": answer.abstained,
        "dropped_markers": answer.dropped_markers,
        "unsupported": list(answer.unsupported),
        "finish_reason": answer.finish_reason,
        "provenance": dict(answer.provenance),
        "caution": answer.caution,
        "cached_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def answer_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Answer`` fields an entry restores (the question and timings are the new
    asker's); its provenance says it came from the cache, and when it was made."""
    return {
        "text": entry["text"],
        "citations": tuple(Citation(**c) for c in entry["citations"]),
        "sources": tuple(Source(**s) for s in entry["sources"]),
        "abstained": bool(entry["abstained"]),
        "dropped_markers": int(entry["dropped_markers"]),
        "unsupported": tuple(entry["unsupported"]),
        "finish_reason": entry["finish_reason"],
        "provenance": {**entry["provenance"], "cache": HIT, "cached_at": entry["cached_at"]},
        "caution": entry["caution"],
    }


def _load(raw: str | None) -> dict[str, Any] | None:
    """A stored entry, or None for nothing or an entry this version cannot read."""
    if raw is None:
        return None
    try:
        entry = json.loads(raw)
        if not isinstance(entry, dict) or entry.get("entry") != ENTRY_VERSION:
            return None
        answer_fields(entry)  # everything there and of the right shape
    except (ValueError, KeyError, TypeError) as e:
        log.warning("unreadable answer cache entry ignored: %s", type(e).__name__)
        return None
    return entry
