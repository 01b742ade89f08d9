"""`lantern finetune eval`: base and candidate through the answer pipeline, then the gate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.errors import PermissionDenied
from app.services.actor import Actor
from app.services.audit import AuditQuery
from app.services.finetune_data import DatasetOptions
from llm.base import ChatRequest, Completion, StreamEvent
from llm.finetune.gate import decide
from llm.sentences import sentence_spans
from tests.unit.ingest_helpers import ingest

CLI = Actor.cli()
HANDBOOK = """# Time off

New employees receive twenty-five vacation days per year, taken in agreement with their team.

Up to five unused vacation days may be carried over until the end of March of the next year.

# Expenses

Expense claims must be submitted within thirty days of the purchase, with the receipt attached.
"""
POLICY = """# Passwords

Passwords must be at least sixteen characters long and are never shared with colleagues.

# Devices

Lost or stolen devices are reported to the security team within one hour of noticing.
"""
GOLD = [
    {
        "question": "How many vacation days do new employees get?",
        "answers": ["twenty-five"],
        "document": "handbook.md",
    },
    {
        "question": "How long must passwords be?",
        "answers": ["sixteen characters"],
        "document": "policy.md",
    },
]


class Quoting:
    """A well-behaved model: quotes the first sentence of source 1 and cites it."""

    name = "quoting"

    def complete(self, request: ChatRequest) -> Completion:
        source = request.sources[0].text
        a, b = sentence_spans(source)[-1]
        return Completion(f"{source[a:b].strip()} [1]", "stop", self.name)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        done = self.complete(request)
        yield StreamEvent(delta=done.text)
        yield StreamEvent(done=True, completion=done)


class Vague(Quoting):
    """A model that answers without citing anything."""

    name = "vague"

    def complete(self, request: ChatRequest) -> Completion:
        return Completion("It depends on the situation.", "stop", self.name)


def metrics(**kw: float) -> dict[str, float]:
    base = {
        "answer_recall": 0.5,
        "citation_precision": 0.5,
        "citation_format": 0.5,
        "abstention_accuracy": 0.5,
    }
    return base | kw


def test_a_candidate_better_on_validation_and_no_worse_on_gold_passes() -> None:
    report = decide(
        {"validation": metrics(), "gold": metrics()},
        {"validation": metrics(citation_format=0.9), "gold": metrics(answer_recall=0.49)},
        tolerance=0.02,
    )
    assert report.passed
    assert report.reasons[0].startswith("validation: better than the base")


def test_a_drop_beyond_the_tolerance_on_any_gold_metric_fails_and_says_which() -> None:
    report = decide(
        {"validation": metrics(), "gold": metrics()},
        {"validation": metrics(citation_format=0.9), "gold": metrics(abstention_accuracy=0.4)},
        tolerance=0.02,
    )
    assert not report.passed
    assert report.failures == (
        "gold: abstention_accuracy fell from 0.500 to 0.400, more than the tolerance 0.020",
    )
    assert report.failures[0] in report.reasons


def test_no_better_on_validation_fails() -> None:
    report = decide({"validation": metrics()}, {"validation": metrics()}, tolerance=0.02)
    assert not report.passed
    assert "not better than the base" in report.reasons[0]
    missing = decide({"gold": metrics()}, {"gold": metrics()}, tolerance=0.02)
    assert not missing.passed


@pytest.fixture
def evaluated(container: Any, tmp_path: Path) -> dict[str, Any]:
    ingest(container, {"handbook.md": HANDBOOK.encode(), "policy.md": POLICY.encode()}, "hr")
    dataset = tmp_path / "ds"
    container.training_data.build(
        CLI, dataset, options=DatasetOptions(questions="template", validation_share=0.5)
    )
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(g) + "\n" for g in GOLD))
    run = tmp_path / "run"
    run.mkdir()
    report = container.model_eval.gate(
        CLI,
        run,
        base=Vague(),
        candidate=Quoting(),
        gold={"gold": gold},
        dataset=dataset,
        tolerance=0.02,
    )
    return {"report": report, "run": run, "gold": gold, "dataset": dataset}


def test_the_gate_runs_both_models_through_the_answer_pipeline(
    container: Any, evaluated: dict[str, Any]
) -> None:
    report = evaluated["report"]
    assert report.passed, report.reasons
    # The quoting model's citations verify, the vague model's answers have none.
    assert report.candidate["gold"]["citation_format"] == 1.0
    assert report.base["gold"]["citation_format"] == 0.0
    assert report.candidate["gold"]["answer_recall"] > report.base["gold"]["answer_recall"]
    assert report.candidate["validation"]["questions"] > 0
    written = json.loads((evaluated["run"] / "eval.json").read_text())
    assert written["passed"] is True
    assert (written["base_model"], written["candidate_model"]) == ("vague", "quoting")
    (event,) = container.audit.query(AuditQuery(action="finetune.eval"))
    assert event.outcome == "ok"


def test_swapped_the_gate_fails_and_members_may_not_run_it(
    container: Any, evaluated: dict[str, Any]
) -> None:
    report = container.model_eval.gate(
        CLI,
        evaluated["run"],
        base=Quoting(),
        candidate=Vague(),
        gold={"gold": evaluated["gold"]},
        dataset=evaluated["dataset"],
        tolerance=0.02,
    )
    assert not report.passed
    assert json.loads((evaluated["run"] / "eval.json").read_text())["passed"] is False
    user = container.auth.create_user("mia@example.com", password="long enough password")
    with pytest.raises(PermissionDenied):
        container.model_eval.gate(
            Actor.of(container.auth.principal_for(user)),
            evaluated["run"],
            base=Quoting(),
            candidate=Vague(),
            gold={},
            dataset=None,
            tolerance=0.02,
        )
