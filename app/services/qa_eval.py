"""Answer-quality evaluation on a gold QA file (``lantern eval qa``).

Each JSONL line: ``question``; ``answers`` (any one, found case-insensitively with
whitespace normalised in the answer or in a cited quote, counts as recalled);
``document`` and optional ``page`` (where a correct citation points);
``unanswerable: true`` for questions the documents cannot answer.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.services.answer import Answer, AnswerService


@dataclass(frozen=True)
class QAItem:
    question: str
    answers: tuple[str, ...] = ()
    document: str | None = None
    page: int | None = None
    unanswerable: bool = False


@dataclass(frozen=True)
class QAResult:
    item: QAItem
    answer: str
    abstained: bool
    recalled: bool
    citations: int
    correct_citations: int
    seconds: float


@dataclass(frozen=True)
class QAReport:
    n: int
    answer_recall: float
    citation_precision: float
    abstention_accuracy: float
    p50_s: float
    p95_s: float
    results: list[QAResult] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        return {
            "questions": self.n,
            "answer recall": round(self.answer_recall, 3),
            "citation precision": round(self.citation_precision, 3),
            "abstention accuracy": round(self.abstention_accuracy, 3),
            "p50 s": round(self.p50_s, 2),
            "p95 s": round(self.p95_s, 2),
        }


def load_items(path: Path) -> list[QAItem]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(
                QAItem(
                    question=raw["question"],
                    answers=tuple(raw.get("answers", ())),
                    document=raw.get("document"),
                    page=raw.get("page"),
                    unanswerable=bool(raw.get("unanswerable", False)),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not a QA item ({e})") from e
    return items


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def score(item: QAItem, answer: Answer, seconds: float, doc_names: dict[str, str]) -> QAResult:
    haystack = _norm(" ".join([answer.text, *(c.quote for c in answer.citations)]))
    recalled = not item.unanswerable and any(_norm(a) in haystack for a in item.answers)
    correct = 0
    for c in answer.citations:
        name = doc_names.get(c.document_id, "")
        if item.document and name.endswith(item.document):
            correct += int(item.page is None or c.page == item.page)
    return QAResult(
        item, answer.text, answer.abstained, recalled, len(answer.citations), correct, seconds
    )


def evaluate_qa(
    items: list[QAItem],
    answers: AnswerService,
    doc_names: dict[str, str],
    *,
    collection_ids: Collection[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> QAReport:
    results = []
    for i, item in enumerate(items, 1):
        t = time.perf_counter()
        answer = answers.ask(item.question, collection_ids=collection_ids)
        results.append(score(item, answer, time.perf_counter() - t, doc_names))
        if progress:
            progress(i, len(items))
    answerable = [r for r in results if not r.item.unanswerable]
    cited = sum(r.citations for r in answerable)
    times = sorted(r.seconds for r in results)
    return QAReport(
        n=len(results),
        answer_recall=sum(r.recalled for r in answerable) / max(1, len(answerable)),
        citation_precision=sum(r.correct_citations for r in answerable) / max(1, cited),
        abstention_accuracy=sum(r.abstained == r.item.unanswerable for r in results)
        / max(1, len(results)),
        p50_s=statistics.median(times) if times else 0.0,
        p95_s=times[min(len(times) - 1, int(0.95 * len(times)))] if times else 0.0,
        results=results,
    )
