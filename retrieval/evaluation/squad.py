"""Read a SQuAD-format file (SQuAD 1.1/2.0, CMRC 2018): paragraphs and their questions.

The shape is ``{"data": [{"title"?, "paragraphs": [{"id"?, "context", "qas": [{"id",
"question", "answers": [{"text", ...}], "is_impossible"?}]}]}]}``. Each paragraph is one
document of the evaluation corpus; a question belongs to the paragraph it was asked on,
and ``is_impossible`` (SQuAD 2.0) marks one whose answer that paragraph does not hold.
``squad_as_beir`` turns the answerable questions into a retrieval benchmark: the
relevant document of a question is its paragraph.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.evaluation.beir import BeirDataset, BeirDoc, DatasetError


@dataclass(frozen=True)
class SquadParagraph:
    id: str
    title: str
    context: str


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    #: The distinct gold answer texts, in file order (empty for an impossible question).
    answers: tuple[str, ...]
    paragraph_id: str
    impossible: bool


@dataclass(frozen=True)
class SquadSet:
    name: str
    paragraphs: dict[str, SquadParagraph]
    questions: list[SquadQuestion]
    #: sha256 of the file: keys cached embeddings.
    sha256: str
    #: Questions left out, each as "where: why" (an empty question, an answerable one
    #: without an answer text: public sets have a few).
    skipped: tuple[str, ...] = ()


def load_squad(path: str | Path) -> SquadSet:
    """Load a SQuAD-format JSON file; ``DatasetError`` says what is wrong and where."""
    file = Path(path)
    if not file.is_file():
        raise DatasetError(f"{file} not found (expected a SQuAD-format JSON file)")
    raw = file.read_bytes()
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise DatasetError(f"{file}: not JSON ({e})") from e
    articles = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(articles, list):
        raise DatasetError(f"{file}: no 'data' list: not a SQuAD-format file")
    paragraphs: dict[str, SquadParagraph] = {}
    questions: list[SquadQuestion] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for a, article in enumerate(articles):
        where = f"{file}: data[{a}]"
        title = str(_field(article, "title", where, default=""))
        for p, para in enumerate(_list(article, "paragraphs", where)):
            pwhere = f"{where}.paragraphs[{p}]"
            context = _field(para, "context", pwhere)
            if not isinstance(context, str) or not context.strip():
                raise DatasetError(f"{pwhere}: 'context' must be non-empty text")
            pid = str(_field(para, "id", pwhere, default="") or f"p{a}-{p}")
            if pid in paragraphs:
                raise DatasetError(f"{pwhere}: paragraph id {pid!r} is repeated")
            paragraphs[pid] = SquadParagraph(pid, title, context)
            for q, qa in enumerate(_list(para, "qas", pwhere)):
                try:
                    questions.append(_question(qa, pid, f"{pwhere}.qas[{q}]", seen))
                except _Unusable as e:
                    skipped.append(str(e))
    if not questions:
        raise DatasetError(f"{file}: no questions")
    sha = hashlib.sha256(raw).hexdigest()
    return SquadSet(file.stem, paragraphs, questions, sha, tuple(skipped))


def squad_as_beir(data: SquadSet) -> BeirDataset:
    """The answerable questions as a BEIR dataset over the paragraphs (title + context)."""
    corpus = {p.id: BeirDoc(p.title, p.context) for p in data.paragraphs.values()}
    answerable = [q for q in data.questions if not q.impossible]
    return BeirDataset(
        data.name,
        corpus,
        {q.id: q.question for q in answerable},
        {q.id: {q.paragraph_id: 1} for q in answerable},
        data.sha256,
    )


def _question(qa: Any, paragraph_id: str, where: str, seen: set[str]) -> SquadQuestion:
    qid = str(_field(qa, "id", where))
    if qid in seen:
        raise DatasetError(f"{where}: question id {qid!r} is repeated")
    seen.add(qid)
    text = _field(qa, "question", where)
    if not isinstance(text, str) or not text.strip():
        raise _Unusable(f"{where}: empty question")
    impossible = bool(_field(qa, "is_impossible", where, default=False))
    answers: list[str] = []
    for n, answer in enumerate(_list(qa, "answers", where, default=[])):
        value = _field(answer, "text", f"{where}.answers[{n}]")
        if isinstance(value, str) and value.strip() and value.strip() not in answers:
            answers.append(value.strip())
    if not impossible and not answers:
        raise _Unusable(f"{where}: an answerable question without an answer text")
    return SquadQuestion(qid, text.strip(), tuple(answers), paragraph_id, impossible)


class _Unusable(Exception):
    """A well-formed question that cannot be scored: skipped, with this reason."""


_MISSING = object()


def _field(obj: Any, name: str, where: str, *, default: Any = _MISSING) -> Any:
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a JSON object")
    if name in obj:
        return obj[name]
    if default is _MISSING:
        raise DatasetError(f"{where}: missing field {name!r}")
    return default


def _list(obj: Any, name: str, where: str, *, default: Any = _MISSING) -> list[Any]:
    value = _field(obj, name, where, default=default)
    if not isinstance(value, list):
        raise DatasetError(f"{where}: {name!r} must be a list")
    return value
