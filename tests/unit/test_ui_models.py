"""The admin console's "Model versions" section, its handlers called as Gradio would:
versions registered from training run folders, served on the llamacpp backend (a
version serves from its GGUF export), promoted, shared, rolled back and retired by an
admin signed in to the browser; a member is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from app.services.actor import Actor
from app.services.audit import AuditQuery
from llm.finetune.gate import decide
from tests.model_runs import make_run
from tests.unit.test_ui_handlers import request_for
from ui.mount import handlers
from ui.web import ModelsUI, build_ui
from ui.web.models import gate_metrics, gate_summary

CLI = Actor.cli()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Any:
    """The llamacpp backend: versions deploy when their GGUF file exists; nothing is
    loaded until a question is asked."""
    from app.settings import Settings

    return Settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        llm={"kind": "llamacpp", "llamacpp": {"model_path": str(tmp_path / "base.gguf")}},
    )


@pytest.fixture
def models(container: Any) -> ModelsUI:
    _, admin = handlers(lambda: container)
    return admin.models


@pytest.fixture
def admin(container: Any) -> gr.Request:
    return request_for(container, "root@example.com", role="admin")


@pytest.fixture
def versions(container: Any, tmp_path: Path) -> dict[str, str]:
    """hr-v1 (gate passed, GGUF exported) and hr-v2 (gate failed, GGUF exported), both
    trained on the HR collection; returns the collection ids by name."""
    hr = container.library.create_collection(CLI, "HR")
    ok = make_run(tmp_path, "v1", gguf=("Q8_0",), collections=(hr.id,))
    bad = make_run(
        tmp_path,
        "v2",
        passed=False,
        reasons=("answer recall 0.52 < base 0.61 - 0.02",),
        gguf=("Q4_K_M",),
        collections=(hr.id, "col-deleted"),
        seed=1,
        finished_at="2026-12-02T10:30:00+00:00",
    )
    container.model_registry.register(CLI, ok, "hr-v1")
    container.model_registry.register(CLI, bad, "hr-v2")
    return {"HR": hr.id}


def rows_by_name(models: ModelsUI, request: gr.Request) -> dict[str, list[Any]]:
    return {r[0]: r for r in models.table(request)}


def events(container: Any, action: str) -> list[Any]:
    return list(reversed(container.audit.query(AuditQuery(action=action))))


def test_the_table_lists_versions_with_their_gate_metrics_and_collections(
    models: ModelsUI, admin: gr.Request, versions: dict[str, str]
) -> None:
    table, picker, other = models.fill(admin)
    assert [r[0] for r in table] == ["hr-v2", "hr-v1"]  # candidates, newest first
    v2, v1 = table
    assert v1[1:5] == ["candidate", "Qwen/Qwen2.5-7B-Instruct", "HR", "0%"]
    assert v1[5] == "passed: beats the base on the validation split"
    assert v1[6] == "citation format 0.40 → 0.83, answer recall 0.61 → 0.66"
    # A deleted collection is still named, by its id.
    assert v2[3] == "HR, col-deleted"
    assert v2[5] == "failed: answer recall 0.52 < base 0.61 - 0.02"
    assert picker["choices"] == [("hr-v2 (candidate)", "hr-v2"), ("hr-v1 (candidate)", "hr-v1")]
    assert other["choices"][0] == ("base model", "base")
    # Clicking a row picks its version.
    row = gr.SelectData(None, {"index": [1, 2], "value": "HR", "row_value": v1})
    assert models.pick(row)["value"] == "hr-v1"


def test_the_gate_column_reads_the_real_gate_report() -> None:
    """eval.json as `lantern finetune eval` writes it: metrics by evaluation set, and a
    failed gate whose first reason is a passing one."""
    base = {
        "validation": {"answer_recall": 0.5, "citation_format": 0.2},
        "gold-en": {"answer_recall": 0.8, "citation_format": 0.5},
    }
    cand = {
        "validation": {"answer_recall": 0.6, "citation_format": 0.9},
        "gold-en": {"answer_recall": 0.6, "citation_format": 0.9},
    }
    report = decide(base, cand, tolerance=0.02).to_json()
    assert report["reasons"][0].startswith("validation: better than the base")
    assert gate_summary(report) == (
        "failed: gold-en: answer_recall fell from 0.800 to 0.600, more than the tolerance 0.020"
    )
    assert gate_metrics(report) == (
        "validation: citation format 0.20 → 0.90, answer recall 0.50 → 0.60"
    )
    assert gate_summary(None) == "not evaluated"
    assert gate_metrics(None) == ""


def test_promote_share_rollback_retire_change_the_registry_and_are_audited(
    models: ModelsUI, container: Any, admin: gr.Request, versions: dict[str, str]
) -> None:
    message, table, picker, _, force = models.promote("hr-v1", False, admin)
    assert message.startswith("**hr-v1** is active (was: the base model)")
    assert force["value"] is False
    assert picker["value"] == "hr-v1"
    assert {r[0]: r[1] for r in table} == {"hr-v1": "active", "hr-v2": "candidate"}
    assert [v.name for v in container.model_registry.serving()] == ["hr-v1"]

    # The failed gate refuses, as the service words it, until forced.
    with pytest.raises(gr.Error, match="failed its evaluation gate"):
        models.promote("hr-v2", False, admin)
    message, *_ = models.set_share("hr-v2", 0.25, admin)
    assert message == "**hr-v2** answers 25% of eligible users (sticky per user)."
    assert rows_by_name(models, admin)["hr-v2"][4] == "25%"
    assert models.share_of("hr-v2", admin)["value"] == 0.25
    with pytest.raises(gr.Error, match="from 0 to 1"):
        models.set_share("hr-v2", 2.0, admin)
    with pytest.raises(gr.Error, match="only a candidate"):
        models.set_share("hr-v1", 0.5, admin)
    message, *_ = models.promote("hr-v2", True, admin)
    assert "(was: hr-v1)" in message
    assert "Forced past its evaluation gate (audited)." in message
    assert {n: r[1] for n, r in rows_by_name(models, admin).items()} == {
        "hr-v2": "active",
        "hr-v1": "retired",
    }

    message, table, *_ = models.rollback(None, admin)
    assert message == "Retired **hr-v2**; hr-v1 answers now."
    assert {r[0]: r[1] for r in table} == {"hr-v1": "active", "hr-v2": "retired"}
    message, table, *_ = models.retire("hr-v1", admin)
    assert message == "Retired **hr-v1**: it answers nobody now."
    assert container.model_registry.serving() == []
    with pytest.raises(gr.Error, match="no version is active"):
        models.rollback(None, admin)
    with pytest.raises(gr.Error, match="Pick a version"):
        models.retire(None, admin)

    root = container.auth.user_by_email("root@example.com").id
    promoted = events(container, "model.promote")
    assert [(e.outcome, e.details.get("force")) for e in promoted] == [
        ("ok", False),
        ("denied", False),
        ("ok", True),
    ]
    assert promoted[-1].details["forced_past_gate"] is True
    for action in ("model.promote", "model.share", "model.rollback", "model.retire"):
        done = [e for e in events(container, action) if e.outcome == "ok"]
        assert done, action
        assert {e.actor_id for e in done} == {root}, action


def test_a_member_is_refused_and_nothing_changes(
    models: ModelsUI, container: Any, versions: dict[str, str]
) -> None:
    member = request_for(container, "mia@example.com")
    assert all(u == gr.update() for u in models.fill(member))
    with pytest.raises(gr.Error, match="needs an admin"):
        models.table(member)
    with pytest.raises(gr.Error, match="needs an admin"):
        models.promote("hr-v1", True, member)
    with pytest.raises(gr.Error, match="needs an admin"):
        models.set_share("hr-v1", 0.5, member)
    with pytest.raises(gr.Error, match="needs an admin"):
        models.rollback(None, member)
    with pytest.raises(gr.Error, match="needs an admin"):
        models.compare("hr-v1", "base", member)
    assert {v.status for v in container.model_registry.list(CLI)} == {"candidate"}
    mia = container.auth.user_by_email("mia@example.com").id
    refused = events(container, "model.promote")
    assert [(e.outcome, e.actor_id) for e in refused] == [("denied", mia)]


def test_compare_shows_two_versions_side_by_side(
    models: ModelsUI, admin: gr.Request, versions: dict[str, str]
) -> None:
    shown = models.compare("hr-v1", "base", admin)
    assert "| | hr-v1 | base |" in shown
    assert "| answers | 0 | 0 |" in shown
    assert "not significant: a version has no ratings" in shown
    with pytest.raises(gr.Error, match="Pick a version, and one to compare"):
        models.compare("hr-v1", None, admin)


def test_the_admin_console_has_the_model_versions_section(container: Any) -> None:
    blocks = build_ui(*handlers(lambda: container))
    ids = {c.get("props", {}).get("elem_id") for c in blocks.config["components"]}
    assert {"model-table", "model-picker", "model-promote", "model-force"} <= ids
    assert {"model-rollback", "model-retire", "model-share", "model-set-share"} <= ids
