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
    #: Cosine of the question's closest chunk (None without dense retrieval).
    evidence: float | None = None
    #: The backend's support for its answer (the extractive backend's best sentence).
    support: float | None = None
    #: An answer (not a not-found) with citations, every one of whose markers verified.
    well_cited: bool = False
    #: Why the answerability check refused the sources (None: it did not).
    refused_because: str | None = None


@dataclass(frozen=True)
class QAReport:
    n: int
    answer_recall: float
    citation_precision: float
    abstention_accuracy: float
    p50_s: float
    p95_s: float
    results: list[QAResult] = field(default_factory=list)
    #: Share of the answers given (not-found replies aside) whose markers all verify.
    citation_format: float = 0.0
    #: Share of the unanswerable questions abstained on (None: the set has none), and
    #: of the answerable ones (false abstention).
    abstained_unanswerable: float | None = None
    abstained_answerable: float | None = None

    def metrics(self) -> dict[str, float]:
        """The scores by name (``llm.finetune.gate.QUALITY`` and the latencies)."""
        return {
            "questions": self.n,
            "answer_recall": round(self.answer_recall, 4),
            "citation_precision": round(self.citation_precision, 4),
            "citation_format": round(self.citation_format, 4),
            "abstention_accuracy": round(self.abstention_accuracy, 4),
            **_shares(self),
            "p50_s": round(self.p50_s, 3),
            "p95_s": round(self.p95_s, 3),
        }

    def as_row(self) -> dict[str, Any]:
        return {
            "questions": self.n,
            "answer recall": round(self.answer_recall, 3),
            "citation precision": round(self.citation_precision, 3),
            "abstention accuracy": round(self.abstention_accuracy, 3),
            **{k.replace("_", " "): round(v, 3) for k, v in _shares(self).items()},
            "citation format": round(self.citation_format, 3),
            "p50 s": round(self.p50_s, 2),
            "p95 s": round(self.p95_s, 2),
        }


def _shares(report: QAReport) -> dict[str, float]:
    out = {}
    if report.abstained_unanswerable is not None:
        out["abstained_unanswerable"] = round(report.abstained_unanswerable, 4)
    if report.abstained_answerable is not None:
        out["false_abstention"] = round(report.abstained_answerable, 4)
    return out


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
        item,
        answer.text,
        answer.abstained,
        recalled,
        len(answer.citations),
        correct,
        seconds,
        evidence=answer.provenance.get("evidence"),
        support=answer.provenance.get("support"),
        refused_because=_refusal(answer),
        well_cited=bool(answer.citations)
        and not answer.abstained
        and answer.dropped_markers == 0
        and not answer.unsupported,
    )


def _refusal(answer: Answer) -> str | None:
    check = answer.provenance.get("answerability")
    return None if not check or check["answerable"] else str(check["reason"])


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
        answer = answers.ask(item.question, collection_ids=collection_ids, cache=False)
        results.append(score(item, answer, time.perf_counter() - t, doc_names))
        if progress:
            progress(i, len(items))
    return report_of(results)


def report_of(results: list[QAResult]) -> QAReport:
    """The scores over these results (from one run or several)."""
    answerable = [r for r in results if not r.item.unanswerable]
    unanswerable = [r for r in results if r.item.unanswerable]
    cited = sum(r.citations for r in answerable)
    times = sorted(r.seconds for r in results)
    given = [r for r in results if not r.abstained]
    return QAReport(
        n=len(results),
        answer_recall=sum(r.recalled for r in answerable) / max(1, len(answerable)),
        citation_precision=sum(r.correct_citations for r in answerable) / max(1, cited),
        abstention_accuracy=sum(r.abstained == r.item.unanswerable for r in results)
        / max(1, len(results)),
        p50_s=statistics.median(times) if times else 0.0,
        p95_s=times[min(len(times) - 1, int(0.95 * len(times)))] if times else 0.0,
        results=results,
        citation_format=sum(r.well_cited for r in given) / max(1, len(given)),
        abstained_unanswerable=_share_abstained(unanswerable),
        abstained_answerable=_share_abstained(answerable),
    )


def _share_abstained(results: list[QAResult]) -> float | None:
    return sum(r.abstained for r in results) / len(results) if results else None


# -- calibration -------------------------------------------------------------------


@dataclass(frozen=True)
class Operating:
    """What the QA set scores with the abstention gates at these thresholds."""

    abstain_below: float | None  # None: the dense gate is off
    min_support: float | None  # None: the backend reports no support
    abstention_accuracy: float
    answer_recall: float
    #: Share of unanswerable questions abstained on, and of answerable ones.
    abstained_unanswerable: float
    abstained_answerable: float


def operating_point(
    results: list[QAResult], abstain_below: float | None, min_support: float | None
) -> Operating:
    """Scores of a run made with both gates off, as if they had been at these values.

    A question is abstained on when the model said not found, its evidence is below
    ``abstain_below`` or its support below ``min_support``. Recall counts answers
    recalled in the run and not abstained on. (Raising the support floor can also
    drop a second quoted sentence; that is not modelled.)
    """

    def abstains(r: QAResult) -> bool:
        return (
            r.abstained
            or (abstain_below is not None and r.evidence is not None and r.evidence < abstain_below)
            or (min_support is not None and r.support is not None and r.support < min_support)
        )

    answerable = [r for r in results if not r.item.unanswerable]
    unanswerable = [r for r in results if r.item.unanswerable]
    return Operating(
        abstain_below=abstain_below,
        min_support=min_support,
        abstention_accuracy=sum(abstains(r) == r.item.unanswerable for r in results)
        / max(1, len(results)),
        answer_recall=sum(r.recalled and not abstains(r) for r in answerable)
        / max(1, len(answerable)),
        abstained_unanswerable=sum(abstains(r) for r in unanswerable) / max(1, len(unanswerable)),
        abstained_answerable=sum(abstains(r) for r in answerable) / max(1, len(answerable)),
    )


def calibrate(results: list[QAResult]) -> tuple[Operating, list[Operating], list[Operating]]:
    """The thresholds with the best abstention accuracy (ties: higher recall, then the
    lower thresholds), and the curves through it: support floor varied at the best
    dense threshold, and dense threshold varied at the best support floor.

    ``results`` must come from a run with both gates off (``--calibrate`` does that).
    """
    has_support = any(r.support is not None for r in results)
    has_evidence = any(r.evidence is not None for r in results)
    dense: list[float | None] = [None]
    if has_evidence:
        dense += [round(0.05 * i, 2) for i in range(15)]
    support: list[float | None] = [round(0.02 * i, 2) for i in range(41)] if has_support else [None]

    def key(o: Operating) -> tuple[float, float, float, float]:
        return (
            round(o.abstention_accuracy, 9),
            round(o.answer_recall, 9),
            -(o.abstain_below if o.abstain_below is not None else -1.0),
            -(o.min_support or 0.0),
        )

    grid = [operating_point(results, d, t) for d in dense for t in support]
    best = max(grid, key=key)
    by_support = [o for o in grid if o.abstain_below == best.abstain_below]
    by_dense = [o for o in grid if o.min_support == best.min_support]
    return best, by_support, by_dense
