"""Training examples in the answer service's own prompt, and the dataset folder they live in.

An example is the exact prompt Lantern sends (system rules, prior turns, the
numbered sources, the question) and the reply it should learn: sentences quoted
from the sources with their ``[n]`` markers, or the not-found sentence when the
sources lack the answer. Where the examples come from (rated answers, questions
generated from the documents, refusals) is the caller's business; this module
writes them down reproducibly:

- split by document: the documents an example draws on are all in train or all in
  validation, so validation measures answers about unseen documents;
- de-duplicated on (question, reply);
- a manifest with the counts per source, the collections drawn from (a model
  trained on it may only serve users who can read all of them), the prompt
  version and a hash of the examples, which names the dataset's version: a new
  prompt wording changes every example and so the hash.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from llm.base import ChatMessage, Source
from llm.finetune.errors import FinetuneError
from llm.language import Language
from llm.sentences import sentence_spans

FORMAT = 1
SPLITS = ("train", "validation")
ExampleSource = Literal["feedback", "correction", "grounded", "refusal"]
SOURCES: tuple[ExampleSource, ...] = ("feedback", "correction", "grounded", "refusal")
MANIFEST = "manifest.json"


class DatasetError(FinetuneError):
    """A dataset folder that is missing, incomplete or not in Lantern's format."""


@dataclass(frozen=True)
class Example:
    """One prompt and the reply to learn, with what it was drawn from."""

    id: str
    source: ExampleSource
    messages: tuple[ChatMessage, ...]
    target: str
    question: str
    language: Language
    #: The documents the answer is about (the ones it cites, or the question's): the
    #: split keeps each on one side. Its sources may also come from other documents.
    document_ids: tuple[str, ...]
    #: Every collection the prompt's sources came from: who may be served a model
    #: trained on it.
    collection_ids: tuple[str, ...]
    #: Chunks that hold the answer (empty for refusals).
    answer_chunk_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["messages"] = [{"role": m.role, "content": m.content} for m in self.messages]
        for key in ("document_ids", "collection_ids", "answer_chunk_ids"):
            d[key] = list(d[key])
        return d


def example_id(messages: Sequence[ChatMessage], target: str) -> str:
    """A stable id from the prompt and the reply: the same example always gets it."""
    h = hashlib.sha256()
    for m in messages:
        h.update(f"{m.role}\x00{m.content}\x01".encode())
    h.update(target.encode())
    return h.hexdigest()[:16]


# -- replies ---------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)


def answer_sentences(text: str, *, max_sentences: int = 2, min_words: int = 5) -> list[str]:
    """The sentences of a chunk worth asking about: long enough to say something,
    not headings or list labels; the most informative (most words) first, at most
    ``max_sentences``, in their order in the text."""
    spans = sentence_spans(text)
    picked = []
    for a, b in spans:
        sentence = _SPACES.sub(" ", text[a:b]).strip()
        words = len(_WORD.findall(sentence))
        cjk = sum(1 for ch in sentence if "\u4e00" <= ch <= "\u9fff")
        if (words >= min_words or cjk >= 8) and not sentence.endswith(":"):
            picked.append((a, sentence, words + cjk))
    best = sorted(picked, key=lambda p: -p[2])[:max_sentences]
    return [s for _, s, _ in sorted(best)]


def cited_reply(sentences: Sequence[str], n: int) -> str:
    """The reply Lantern verifies: each sentence quoted from source ``n``, then ``[n]``."""
    return " ".join(f"{s.rstrip()} [{n}]" for s in sentences)


def source_holding(sources: Sequence[Source], document_id: str, text: str) -> Source | None:
    """The numbered source of ``document_id`` whose text contains ``text`` (whitespace
    aside): where the answer is, once the sources are packed and merged."""
    needle = _SPACES.sub(" ", text).strip()
    for s in sources:
        if s.document_id == document_id and needle in _SPACES.sub(" ", s.text):
            return s
    return None


# -- template questions ----------------------------------------------------------------

_STOP = frozenset(
    "a an the and or of to in on for with by at from is are was were be been this that these "
    "those it its as not no can may must should will shall do does all any each our your their "
    "we you they he she i if when than then there which who whom what how".split()
)


def template_question(sentence: str, *, title: str, section: str = "", lang: Language) -> str:
    """A question the sentence answers, made without a model: its topic (the section
    heading, else the sentence's first content words) asked about within the document."""
    topic = section.strip()
    if not topic:
        if lang == "zh":
            topic = sentence.strip()[:12]
        else:
            words = [w for w in _WORD.findall(sentence) if w.lower() not in _STOP]
            topic = " ".join(words[:5])
    title = title.strip() or ("文档" if lang == "zh" else "the document")
    if lang == "zh":
        return f"根据《{title}》，关于“{topic}”有什么规定？"
    return f"What does {title} say about {topic}?"


# -- split, de-duplicate, write --------------------------------------------------------


def _norm(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def dedupe(examples: Iterable[Example]) -> list[Example]:
    """The first example of each (question, reply) pair, whitespace and case aside."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in examples:
        key = (_norm(e.question), _norm(e.target))
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def split_by_document(
    examples: Sequence[Example], *, validation_share: float = 0.2, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Train and validation with no document in both.

    Examples that share a document are joined into one group (a feedback answer
    may cite two documents, tying them together); whole groups go to validation,
    in a seeded random order, until it holds about ``validation_share`` of the
    examples. With a single group everything is training data.
    """
    parent: dict[str, str] = {}

    def find(d: str) -> str:
        while parent.setdefault(d, d) != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    for e in examples:
        docs = e.document_ids or (f"example:{e.id}",)
        for d in docs[1:]:
            parent[find(d)] = find(docs[0])
    groups: dict[str, list[Example]] = {}
    for e in examples:
        groups.setdefault(find((e.document_ids or (f"example:{e.id}",))[0]), []).append(e)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    want = max(1, round(len(examples) * validation_share)) if len(groups) > 1 else 0
    if validation_share <= 0:
        want = 0
    validation: list[Example] = []
    train: list[Example] = []
    for g in order:
        (validation if len(validation) < want else train).extend(groups[g])
    if not train:  # never leave nothing to train on
        train, validation = validation, []
    return train, validation


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset folder holds, as its manifest says."""

    path: Path
    manifest: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return str(self.manifest["hash"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def write_dataset(
    out: Path,
    *,
    train: Sequence[Example],
    validation: Sequence[Example],
    prompt_version: str,
    collections: Sequence[Mapping[str, str]],
    extra: Mapping[str, Any] | None = None,
) -> DatasetInfo:
    """Write ``train.jsonl``, ``validation.jsonl`` and the manifest to ``out``.

    ``collections`` are the ``{"id", "name"}`` of every collection the examples draw
    on; ``extra`` goes into the manifest as it is (what was excluded, and why).
    """
    out.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256(f"{FORMAT}:{prompt_version}\n".encode())
    counts: dict[str, dict[str, int]] = {s: dict.fromkeys(SPLITS, 0) for s in SOURCES}
    documents = {}
    for split, rows in zip(SPLITS, (train, validation), strict=True):
        lines = [json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True) for e in rows]
        for line in lines:
            h.update(line.encode())
            h.update(b"\n")
        h.update(f"--{split}--".encode())
        (out / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines), "utf-8")
        for e in rows:
            counts[e.source][split] += 1
        documents[split] = len({d for e in rows for d in e.document_ids})
    digest = h.hexdigest()
    manifest = {
        "format": FORMAT,
        "hash": digest,
        "version": f"{prompt_version}-{digest[:12]}",
        "prompt_version": prompt_version,
        "collections": [dict(c) for c in collections],
        "counts": counts,
        "examples": {"train": len(train), "validation": len(validation)},
        "documents": documents,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return DatasetInfo(out, manifest)


def load_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the dataset folder ``path``; ``DatasetError`` if it is not one."""
    file = Path(path) / MANIFEST
    try:
        manifest = json.loads(file.read_text("utf-8"))
    except FileNotFoundError as e:
        raise DatasetError(
            f"{path} is not a dataset folder (no {MANIFEST}); "
            "make one with `lantern finetune dataset --out DIR`"
        ) from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{file} is not valid JSON: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{file}: unknown dataset format {manifest.get('format')!r}")
    return manifest


def load_examples(path: Path, split: str) -> list[dict[str, Any]]:
    """The examples of ``split`` (``train`` or ``validation``) as JSON objects."""
    if split not in SPLITS:
        raise DatasetError(f"no split {split!r}; choose from {', '.join(SPLITS)}")
    load_manifest(path)
    file = Path(path) / f"{split}.jsonl"
    try:
        lines = file.read_text("utf-8").splitlines()
    except FileNotFoundError as e:
        raise DatasetError(f"{path} has no {file.name}") from e
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{file}:{i} is not valid JSON: {e}") from e
    return rows


def source_counts(examples: Iterable[Example]) -> Counter[str]:
    """How many examples came from each source."""
    return Counter(e.source for e in examples)
