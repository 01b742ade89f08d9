"""Regression gate: the bundled gold QA set over the bundled sample documents.

The floors sit just under what the extractive backend scored when this gate was
set (recall 0.571, citation precision 0.765, abstention accuracy 0.824); raise
them as answers improve, never lower them to make a change pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.container import Container
from app.samples import HERE, sample_files
from app.services.qa_eval import evaluate_qa, load_items
from app.settings import Settings
from tests.unit.ingest_helpers import ingest


def test_gold_qa_set_meets_the_floors(tmp_path: Path, embedder: Any) -> None:
    c = Container(Settings(data_dir=tmp_path / "data", llm={"kind": "extractive"}))
    c.__dict__["embedder"] = embedder
    c.migrate()
    try:
        results = ingest(c, {p.name: p.read_bytes() for p in sample_files()}, "samples")
        assert len(results) == 3
        names = {d.id: d.name for d in c.documents.list_documents()}
        assert all(d.status == "ready" for d in c.documents.list_documents())
        report = evaluate_qa(load_items(HERE / "gold_qa.jsonl"), c.answers, names)
    finally:
        c.close()
    misses = [r.item.question for r in report.results if not r.recalled and not r.item.unanswerable]
    assert report.n == 17
    assert report.answer_recall >= 0.55, misses
    assert report.citation_precision >= 0.75
    assert report.abstention_accuracy >= 0.8
    # Unanswerable questions must abstain: guessing is the failure users notice most.
    assert all(r.abstained for r in report.results if r.item.unanswerable)
