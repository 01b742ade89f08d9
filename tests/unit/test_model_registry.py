"""The model registry service over a real database: register a run folder, the gate on
promotion, rollback along the chain and to the base model, retire, A/B shares, and who
may do any of it. Deploys go to a recording deployer (vLLM's side is in
test_vllm_adapters.py; the llamacpp and extractive deployers are real here)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.errors import Conflict, DeployFailed, InvalidInput, NotFound, PermissionDenied
from app.services.actor import Actor
from app.services.audit import AuditQuery
from app.services.auth import Principal
from app.services.model_deploy import GGUFDeployer, NoModelDeployer, deployer_for
from app.services.model_registry import ModelRegistryService, ServedVersion
from app.settings import Settings
from llm.errors import LLMUnavailable
from tests.model_runs import RecordingDeployer, make_run, write_eval, write_export

CLI = Actor.cli()


@pytest.fixture
def deployer() -> RecordingDeployer:
    return RecordingDeployer()


@pytest.fixture
def registry(container: Any, deployer: RecordingDeployer) -> ModelRegistryService:
    return ModelRegistryService(container.sessions, container.audit, lambda: deployer)


def events(container: Any, action: str) -> list[Any]:
    return list(reversed(container.audit.query(AuditQuery(action=action))))


def statuses(registry: ModelRegistryService) -> dict[str, str]:
    return {v.name: v.status for v in registry.list(CLI)}


def test_register_records_the_run_as_a_candidate(
    registry: ModelRegistryService, tmp_path: Path
) -> None:
    run = make_run(tmp_path, collections=("col-hr", "col-legal"), gguf=("f16", "Q8_0"))
    v = registry.register(CLI, run)
    assert v.name == "qwen2.5-7b-instruct-20261201-0915"
    assert v.status == "candidate"
    assert v.traffic_share == 0
    assert v.base_model == "Qwen/Qwen2.5-7B-Instruct"
    assert v.collection_ids == ["col-hr", "col-legal"]
    assert v.adapter_path == str(run / "adapter")
    assert len(v.adapter_sha256) == 64
    assert v.gguf_path == str(run / "gguf" / "model-Q8_0.gguf")  # Q8_0 over f16
    assert v.metrics["gate"]["passed"] is True
    assert v.metrics["run"]["tokens_per_s"] == 1920.0
    assert registry.serving() == []  # a candidate without a share serves nobody
    # Same default name for another run finishing in the same minute: numbered.
    assert registry.register(CLI, make_run(tmp_path, "again", seed=1)).name.endswith("-0915-2")


def test_register_refuses_what_is_not_a_finished_run(
    registry: ModelRegistryService, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match=r"no run\.json"):
        registry.register(CLI, tmp_path / "empty")
    with pytest.raises(InvalidInput, match="no adapter"):
        registry.register(CLI, make_run(tmp_path, "unfinished", adapter=False))
    with pytest.raises(InvalidInput, match="not a folder"):
        registry.register(CLI, tmp_path / "nowhere")
    run = make_run(tmp_path, "ok")
    (run / "eval.json").write_text("{not json")
    with pytest.raises(InvalidInput, match=r"eval\.json"):
        registry.register(CLI, run)
    write_eval(run, True)
    with pytest.raises(InvalidInput, match="reserved"):
        registry.register(CLI, run, "base")
    registry.register(CLI, run, "hr-v1")
    with pytest.raises(Conflict, match="already registered as hr-v1"):
        registry.register(CLI, run, "hr-v1-again")
    with pytest.raises(Conflict, match="named hr-v1 exists"):
        registry.register(CLI, make_run(tmp_path, "other", seed=2), "hr-v1")
    assert list(statuses(registry)) == ["hr-v1"]


def test_promote_refuses_a_candidate_that_failed_its_gate_unless_forced(
    container: Any, registry: ModelRegistryService, deployer: RecordingDeployer, tmp_path: Path
) -> None:
    run = make_run(tmp_path, passed=False, reasons=("answer recall 0.52 < base 0.61 - 0.02",))
    registry.register(CLI, run, "hr-v1")
    with pytest.raises(Conflict, match=r"failed its evaluation gate \(answer recall 0.52"):
        registry.promote(CLI, "hr-v1")
    assert statuses(registry) == {"hr-v1": "candidate"}
    assert deployer.calls == []

    v = registry.promote(CLI, "hr-v1", force=True)
    assert v.status == "active"
    assert registry.serving()[0].name == "hr-v1"
    refused, forced = events(container, "model.promote")
    assert refused.outcome == "denied"
    assert forced.outcome == "ok"
    assert forced.details["force"] is True
    assert forced.details["forced_past_gate"] is True
    assert forced.details["gate_reasons"] == ["answer recall 0.52 < base 0.61 - 0.02"]


def test_promote_reads_an_evaluation_and_export_written_after_registration(
    registry: ModelRegistryService, tmp_path: Path
) -> None:
    run = make_run(tmp_path, passed=None)
    registry.register(CLI, run, "hr-v1")
    with pytest.raises(Conflict, match="has not been evaluated: run `lantern finetune eval"):
        registry.promote(CLI, "hr-v1")
    write_eval(run, True)
    write_export(run, ("Q4_K_M",))
    v = registry.promote(CLI, "hr-v1")
    assert v.status == "active"
    assert v.metrics["gate"]["passed"] is True
    assert v.gguf_path == str(run / "gguf" / "model-Q4_K_M.gguf")


def test_promote_retires_the_active_one_and_rollback_walks_back_to_the_base(
    container: Any, registry: ModelRegistryService, deployer: RecordingDeployer, tmp_path: Path
) -> None:
    for i, name in enumerate(("v1", "v2")):
        registry.register(CLI, make_run(tmp_path, name, seed=i), name)
    registry.promote(CLI, "v1")
    v2 = registry.promote(CLI, "v2")
    assert v2.previous_active == "v1"
    assert statuses(registry) == {"v2": "active", "v1": "retired"}
    assert deployer.calls == [("deploy", "v1"), ("deploy", "v2"), ("undeploy", "v1")]

    done = registry.rollback(CLI)
    assert (done.retired.name, done.active and done.active.name) == ("v2", "v1")
    assert statuses(registry) == {"v1": "active", "v2": "retired"}
    assert deployer.calls[-2:] == [("deploy", "v1"), ("undeploy", "v2")]

    done = registry.rollback(CLI)  # v1 was promoted over the base model
    assert done.retired.name == "v1"
    assert done.active is None
    assert registry.serving() == []
    with pytest.raises(Conflict, match="base model already answers"):
        registry.rollback(CLI)
    assert [e.details.get("to") for e in events(container, "model.rollback")] == [
        "v1",
        None,
        None,
    ]


def test_a_failed_deploy_changes_nothing(
    registry: ModelRegistryService, deployer: RecordingDeployer, tmp_path: Path
) -> None:
    registry.register(CLI, make_run(tmp_path, "a"), "v1")
    registry.register(CLI, make_run(tmp_path, "b", seed=1), "v2")
    registry.promote(CLI, "v1")
    deployer.fail = LLMUnavailable("cannot reach the vLLM server at http://gpu:8000/v1")
    with pytest.raises(DeployFailed, match="could not deploy v2: cannot reach"):
        registry.promote(CLI, "v2")
    with pytest.raises(DeployFailed):
        registry.set_share(CLI, "v2", 0.2)
    assert statuses(registry) == {"v1": "active", "v2": "candidate"}
    assert [v.name for v in registry.serving()] == ["v1"]


def test_retire_takes_a_version_out_of_serving(
    registry: ModelRegistryService, deployer: RecordingDeployer, tmp_path: Path
) -> None:
    registry.register(CLI, make_run(tmp_path), "v1")
    registry.promote(CLI, "v1")
    assert registry.retire(CLI, "v1").status == "retired"
    assert deployer.calls[-1] == ("undeploy", "v1")
    assert registry.serving() == []
    with pytest.raises(Conflict, match="already retired"):
        registry.retire(CLI, "v1")
    with pytest.raises(NotFound, match="no model version 'v9'"):
        registry.retire(CLI, "v9")
    # A retired version can be promoted again.
    assert registry.promote(CLI, "v1").status == "active"


def test_ab_shares_are_fractions_of_users_for_candidates_only(
    registry: ModelRegistryService, deployer: RecordingDeployer, tmp_path: Path
) -> None:
    for i, name in enumerate(("v1", "c1", "c2")):
        registry.register(CLI, make_run(tmp_path, name, seed=i), name)
    registry.promote(CLI, "v1")
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(InvalidInput, match="from 0 to 1"):
            registry.set_share(CLI, "c1", bad)
    with pytest.raises(Conflict, match="only a candidate"):
        registry.set_share(CLI, "v1", 0.5)

    registry.set_share(CLI, "c1", 0.7)
    assert ("deploy", "c1") in deployer.calls
    with pytest.raises(Conflict, match=r"add up to 1\.1"):
        registry.set_share(CLI, "c2", 0.4)
    registry.set_share(CLI, "c2", 0.3)
    assert registry.serving() == [
        ServedVersion.of(registry.get(CLI, "v1")),
        ServedVersion(
            "c1",
            "candidate",
            ("col-hr",),
            0.7,
            str(tmp_path / "c1" / "adapter"),
            None,
            "Qwen/Qwen2.5-7B-Instruct",
        ),
        ServedVersion.of(registry.get(CLI, "c2")),
    ]
    registry.set_share(CLI, "c1", 0)
    assert deployer.calls[-1] == ("undeploy", "c1")
    assert [v.name for v in registry.serving()] == ["v1", "c2"]


def test_the_automatic_rollback_of_a_candidate_is_audited_as_the_system(
    container: Any, registry: ModelRegistryService, tmp_path: Path
) -> None:
    registry.register(CLI, make_run(tmp_path), "c1")
    registry.set_share(CLI, "c1", 0.5)
    assert registry.rollback_candidate("c1", "error rate 0.31 over 0.2 after 40 answers")
    assert registry.get(CLI, "c1").status == "retired"
    assert registry.serving() == []
    assert not registry.rollback_candidate("c1", "again")
    done, skipped = events(container, "model.auto_rollback")
    assert (done.via, done.outcome, done.details["reason"]) == (
        "system",
        "ok",
        "error rate 0.31 over 0.2 after 40 answers",
    )
    assert skipped.outcome == "skipped"


def test_a_member_is_refused_everything_and_that_is_audited(
    container: Any, registry: ModelRegistryService, tmp_path: Path
) -> None:
    user = container.auth.create_user("mia@example.com", password="member-password-1", name="Mia")
    member = Actor.of(Principal(user.id, user.email, user.name, "member", "session"))
    registry.register(CLI, make_run(tmp_path), "v1")
    for call in (
        lambda: registry.list(member),
        lambda: registry.register(member, make_run(tmp_path, "m", seed=3)),
        lambda: registry.promote(member, "v1", force=True),
        lambda: registry.set_share(member, "v1", 0.5),
        lambda: registry.retire(member, "v1"),
        lambda: registry.rollback(member),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert statuses(registry) == {"v1": "candidate"}
    denied = container.audit.query(AuditQuery(actor_id=user.id, outcome="denied"))
    assert {e.action for e in denied} == {
        "model.list",
        "model.register",
        "model.promote",
        "model.share",
        "model.retire",
        "model.rollback",
    }


def test_each_chat_backend_gets_its_deployer(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    plain = ServedVersion("v1", "candidate", (), 0.0, str(run / "adapter"), None, "q")
    with pytest.raises(Conflict, match="no language model"):
        NoModelDeployer("extractive").deploy(plain)
    with pytest.raises(Conflict, match=r"lantern finetune export RUN --gguf"):
        GGUFDeployer().deploy(plain)
    write_export(run, ("Q8_0",))
    GGUFDeployer().deploy(replace(plain, gguf_path=str(run / "gguf" / "model-Q8_0.gguf")))

    def kind(**llm: Any) -> str:
        made = deployer_for(Settings(data_dir=tmp_path, llm=llm))
        getattr(made, "close", lambda: None)()
        return type(made).__name__

    assert kind() == "NoModelDeployer"
    assert kind(llamacpp={"model_path": str(tmp_path / "m.gguf")}) == "GGUFDeployer"
    assert kind(openai={"base_url": "http://gpu:8000/v1"}) == "VLLMDeployer"
