"""``lantern finetune eval``: base and candidate through the real answer pipeline, then the gate.

Both models answer the same questions through the same retrieval, packing,
prompt and citation checks the users' questions go through (an
``AnswerService`` built around each model): the gold QA sets, and the dataset's
validation split (questions about documents the candidate was not trained on;
refusal examples count as unanswerable). ``llm.finetune.gate.decide`` turns the
two sets of scores into the verdict, which is written to ``RUN/eval.json`` for
the registry to read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Document
from app.services.actor import Actor
from app.services.answer import AnswerService
from app.services.audit import AuditLog
from app.services.qa_eval import QAItem, QAReport, QAResult, evaluate_qa, load_items, report_of
from llm.base import ChatModel
from llm.citations import strip_markers
from llm.finetune.dataset import load_examples
from llm.finetune.gate import GateReport, decide

EVAL_FILE = "eval.json"
_MARKER_SPLIT = re.compile(r"\s*\[\d+\]\s*")

Progress = Callable[[str, int, int], None]


def validation_items(
    examples: Sequence[Mapping[str, Any]], doc_names: Mapping[str, str]
) -> list[tuple[QAItem, list[str]]]:
    """The validation examples as gold QA items, each with the collections it may search.

    A cited example is recalled when the answer holds one of its quoted sentences;
    its citations are correct when they point at its document. A refusal is an
    unanswerable question.
    """
    items = []
    for e in examples:
        refusal = e.get("source") == "refusal"
        sentences = [s.strip() for s in _MARKER_SPLIT.split(e["target"]) if s.strip()]
        docs = e.get("document_ids") or []
        items.append(
            (
                QAItem(
                    question=e["question"],
                    answers=() if refusal else tuple(strip_markers(s) for s in sentences),
                    document=None if refusal or not docs else doc_names.get(docs[0]),
                    unanswerable=refusal,
                ),
                list(e.get("collection_ids") or []),
            )
        )
    return items


class ModelEvaluator:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        make_answers: Callable[[ChatModel], AnswerService],
        *,
        audit: AuditLog,
    ) -> None:
        """``make_answers(model)``: the answer service as configured, around ``model``."""
        self.sessions = sessions
        self.make_answers = make_answers
        self.audit = audit

    def scores(
        self,
        model: ChatModel,
        *,
        gold: Mapping[str, Path],
        validation: Sequence[Mapping[str, Any]] = (),
        progress: Progress | None = None,
    ) -> dict[str, QAReport]:
        """The model's report on every gold set (by name) and on ``validation``."""
        answers = self.make_answers(model)
        names = self._doc_names()
        reports = {}
        for name, path in gold.items():
            items = load_items(path)
            reports[name] = evaluate_qa(
                items, answers, names, progress=_stage(progress, f"{model.name}: {name}")
            )
        if validation:
            reports["validation"] = self._validation(model, answers, validation, names, progress)
        return reports

    def _validation(
        self,
        model: ChatModel,
        answers: AnswerService,
        examples: Sequence[Mapping[str, Any]],
        names: dict[str, str],
        progress: Progress | None,
    ) -> QAReport:
        by_scope: dict[tuple[str, ...], list[QAItem]] = {}
        for item, scope in validation_items(examples, names):
            by_scope.setdefault(tuple(sorted(scope)), []).append(item)
        results: list[QAResult] = []
        done = 0
        for key, items in by_scope.items():
            report = evaluate_qa(items, answers, names, collection_ids=list(key))
            results.extend(report.results)
            done += len(items)
            if progress is not None:
                progress(f"{model.name}: validation", done, len(examples))
        return report_of(results)

    def gate(
        self,
        actor: Actor,
        run_dir: Path,
        *,
        base: ChatModel,
        candidate: ChatModel,
        gold: Mapping[str, Path],
        dataset: Path | None,
        tolerance: float,
        progress: Progress | None = None,
    ) -> GateReport:
        """Score base and candidate, decide, and write ``run_dir/eval.json``."""
        with self.audit.event(
            "finetune.eval", actor, target_type="run", target_id=str(run_dir)[-64:]
        ) as ev:
            actor.require_admin()
            validation = load_examples(dataset, "validation") if dataset is not None else []
            b = self.scores(base, gold=gold, validation=validation, progress=progress)
            c = self.scores(candidate, gold=gold, validation=validation, progress=progress)
            report = decide(
                {k: r.metrics() for k, r in b.items()},
                {k: r.metrics() for k, r in c.items()},
                tolerance=tolerance,
            )
            out = report.to_json() | {"base_model": base.name, "candidate_model": candidate.name}
            (run_dir / EVAL_FILE).write_text(json.dumps(out, indent=2) + "\n", "utf-8")
            ev.details.update(passed=report.passed)
            return report

    def _doc_names(self) -> dict[str, str]:
        with self.sessions() as s:
            return dict(s.execute(select(Document.id, Document.name)).all())


def _stage(progress: Progress | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)
