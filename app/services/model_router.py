"""Which model answers whom: the base model, the active version, or a candidate on trial.

A fine-tuned version has memorised its training collections, so the router's one
invariant is permission: a version is chosen for a user only if they may read every
collection it was trained on (the command line reads everything); anyone else gets
the next eligible version, or the base model. Among the eligible, a candidate with
``traffic_share`` s takes the users whose sticky bucket (a hash of the version name
and the user id, uniform in [0, 1)) falls under s; everyone else gets the active
version. Buckets are per version, so a user keeps their model across questions and
restarts, and a new candidate draws a fresh sample.

The router also watches candidates: after each of their answers, one whose error
rate over at least ``rollback_min_answers`` answers passes ``rollback_error_rate``
is handed to ``rollback_candidate`` (the registry retires it) and is not chosen
again. Counts are this process's, since it started.

Each version's chat model is built once (``make_model``), cached, and closed when the
version leaves serving or the router closes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.services.auth import Principal
from app.services.model_registry import ServedVersion
from llm.base import ChatModel
from llm.errors import LLMError

log = logging.getLogger(__name__)

ACTIVE = "active"
CANDIDATE = "candidate"
#: The version label of answers by the base model (metrics, ``lantern models compare``).
BASE = "base"
#: The bucket key of an actor without a user (the command line, Lantern itself).
NO_USER = "cli"


@dataclass(frozen=True)
class ModelChoice:
    """The model that answers one question, and its version name (None: the base model)."""

    version: str | None
    model: ChatModel


def bucket(name: str, user_id: str) -> float:
    """The user's sticky place in [0, 1) for version ``name``: the same on every call."""
    digest = hashlib.sha256(f"{name}:{user_id}".encode()).hexdigest()
    return int(digest[:8], 16) / 2**32


def version_label(version: str | None) -> str:
    """The name metrics and reports give a version: its own, or ``base``."""
    return version or BASE


@dataclass
class _Tally:
    answers: int = 0
    errors: int = 0


class ModelRouter:
    def __init__(
        self,
        versions: Callable[[], Sequence[ServedVersion]],
        base_model: Callable[[], ChatModel],
        make_model: Callable[[ServedVersion], ChatModel],
        *,
        rollback_candidate: Callable[[str, str], object] | None = None,
        rollback_error_rate: float = 0.2,
        rollback_min_answers: int = 20,
    ) -> None:
        """``versions`` lists what is served now (asked on every question, so a promotion
        or rollback takes effect at once); ``base_model`` is the configured model;
        ``make_model`` builds a version's model (raising ``LLMError`` when it cannot)."""
        self._versions = versions
        self._base = base_model
        self._make = make_model
        self._rollback = rollback_candidate
        self._max_error_rate = rollback_error_rate
        self._min_answers = rollback_min_answers
        self._lock = threading.Lock()
        self._models: dict[tuple[str, ...], ChatModel] = {}
        self._tallies: dict[str, _Tally] = {}
        self._candidates: set[str] = set()
        self._rolled_back: set[str] = set()

    # -- choosing --------------------------------------------------------------------

    def choose(self, principal: Principal | None, readable: Iterable[str]) -> ModelChoice:
        """The model for this user: a candidate whose sample they are in, else the active
        version, else the base; never a version trained on a collection they cannot read.
        ``principal`` None is the command line, which reads everything."""
        served = list(self._versions())
        self._forget_unserved(served)
        allowed = set(readable)
        user = principal.user_id if principal is not None else NO_USER
        for version in self.ranked(served, user):
            if principal is not None and not set(version.collection_ids) <= allowed:
                continue
            model = self._model(version)
            if model is not None:
                return ModelChoice(version.name, model)
        return ModelChoice(None, self._base())

    def ranked(self, served: Sequence[ServedVersion], user: str) -> list[ServedVersion]:
        """The versions that would answer ``user``, best first, before permissions: the
        candidates whose sample holds them, then the active versions."""
        with self._lock:
            rolled_back = set(self._rolled_back)
        trial = [
            v
            for v in served
            if v.status == CANDIDATE
            and v.name not in rolled_back
            and bucket(v.name, user) < v.traffic_share
        ]
        return trial + [v for v in served if v.status == ACTIVE]

    def _model(self, version: ServedVersion) -> ChatModel | None:
        """The version's model, built on first use; None (logged, counted as an error)
        when it cannot be built, so the user gets the next one instead of a failure."""
        key = _key(version)
        with self._lock:
            model = self._models.get(key)
            if model is None:
                try:
                    model = self._make(version)
                except LLMError as e:
                    log.error("model version %s cannot be served: %s", version.name, e)
                    model = None
                else:
                    self._models[key] = model
        if model is None:
            self.record(version.name, failed=True)
        return model

    def _forget_unserved(self, served: Sequence[ServedVersion]) -> None:
        """Close the models of versions no longer served and forget their counts (one
        served again starts afresh); remember which are candidates."""
        keys = {_key(v) for v in served}
        names = {v.name for v in served}
        with self._lock:
            self._candidates = {v.name for v in served if v.status == CANDIDATE}
            gone = [self._models.pop(k) for k in list(self._models) if k not in keys]
            for name in set(self._tallies) - names:
                del self._tallies[name]
            self._rolled_back &= names
        for model in gone:
            _close_later(model)

    # -- watching candidates -----------------------------------------------------------

    def record(self, version: str | None, *, failed: bool) -> None:
        """Count one answer (``failed``: it ended on an error or a timeout, or never came)
        and roll the version back if it is a candidate whose error rate passes the limit."""
        if version is None:
            return
        with self._lock:
            tally = self._tallies.setdefault(version, _Tally())
            tally.answers += 1
            tally.errors += int(failed)
            due = (
                version in self._candidates
                and version not in self._rolled_back
                and tally.answers >= self._min_answers
                and tally.errors / tally.answers > self._max_error_rate
            )
            if due:
                self._rolled_back.add(version)
            answers, errors = tally.answers, tally.errors
        if due:
            reason = (
                f"error rate {errors / answers:.0%} ({errors} of {answers} answers) passed "
                f"the limit of {self._max_error_rate:.0%}"
            )
            log.warning("rolling back candidate %s: %s", version, reason)
            if self._rollback is not None:
                try:
                    self._rollback(version, reason)
                except Exception:  # the answer that tripped it must still reach its user
                    log.exception("rolling back candidate %s failed", version)

    def tally(self, version: str) -> tuple[int, int]:
        """(answers, errors) this process has counted for ``version``."""
        with self._lock:
            t = self._tallies.get(version, _Tally())
            return t.answers, t.errors

    def close(self) -> None:
        """Close every version model built (not the base model: the container owns it)."""
        with self._lock:
            models, self._models = list(self._models.values()), {}
        for model in models:
            _close(model)


def _key(version: ServedVersion) -> tuple[str, ...]:
    """What a built model depends on: a promotion or a new share does not rebuild it."""
    return (version.name, version.adapter_path, version.gguf_path or "", version.base_model)


def _close(model: Any) -> None:
    close = getattr(model, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.exception("closing the model %s failed", getattr(model, "name", model))


def _close_later(model: ChatModel) -> None:
    """Close in the background: a llama.cpp model waits for its answer in flight first,
    and the question that noticed the version leave must not wait for that."""
    threading.Thread(target=_close, args=(model,), name="lantern-model-close", daemon=True).start()
