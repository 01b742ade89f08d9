"""``lantern models`` as an operator runs it, on the llamacpp backend (versions serve
from their GGUF export) over a real database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli.common import console, err_console
from app.cli.main import app
from tests.model_runs import make_run, write_export


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LANTERN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LANTERN_DATABASE__URL", settings.database_url)
    # The llamacpp backend: nothing is loaded until a question is asked.
    monkeypatch.setenv("LANTERN_LLM__KIND", "llamacpp")
    monkeypatch.setenv("LANTERN_LLM__LLAMACPP__MODEL_PATH", str(tmp_path / "base.gguf"))
    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(err_console, "width", 200)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, ["models", *args], catch_exceptions=False)

    return run


def listed(cli: Any) -> dict[str, dict[str, Any]]:
    r = cli("list", "--json")
    assert r.exit_code == 0, r.output
    return {v["name"]: v for v in json.loads(r.output)}


def test_register_promote_ab_rollback_retire(cli: Any, tmp_path: Path) -> None:
    r = cli("list")
    assert "no model versions yet" in r.output

    v1 = make_run(tmp_path, "v1", gguf=("Q8_0",))
    r = cli("register", str(v1), "--name", "hr-v1")
    assert r.exit_code == 0, r.output
    assert "registered hr-v1 (candidate, gate passed)" in r.output
    r = cli("promote", "hr-v1")
    assert r.exit_code == 0, r.output
    assert "hr-v1 is active (was: the base model" in r.output

    # Trained but neither evaluated nor exported: the gate, then the GGUF, are asked for.
    v2 = make_run(tmp_path, "v2", passed=False, reasons=("citation precision fell",), seed=1)
    assert cli("register", str(v2), "--name", "hr-v2").exit_code == 0
    r = cli("promote", "hr-v2")
    assert r.exit_code == 2
    assert "failed its evaluation gate (citation precision fell)" in r.output
    assert "--force" in r.output
    r = cli("promote", "hr-v2", "--force")
    assert r.exit_code == 2
    assert "lantern finetune export RUN --gguf" in r.output
    write_export(v2, ("Q4_K_M",))

    r = cli("ab", "hr-v2", "--share", "0.25")
    assert r.exit_code == 0, r.output
    assert "hr-v2 answers 25% of eligible users" in r.output
    r = cli("ab", "hr-v2", "--share", "2")
    assert r.exit_code == 2
    assert "from 0 to 1" in r.output
    rows = listed(cli)
    assert (rows["hr-v1"]["status"], rows["hr-v2"]["status"]) == ("active", "candidate")
    assert rows["hr-v2"]["traffic_share"] == 0.25
    assert rows["hr-v2"]["gate"] == "failed"
    assert rows["hr-v2"]["gguf_path"] == str(v2 / "gguf" / "model-Q4_K_M.gguf")

    r = cli("promote", "hr-v2", "--force")
    assert r.exit_code == 0, r.output
    r = cli("list")
    assert "hr-v2" in r.output
    assert "active" in r.output

    r = cli("rollback")
    assert r.exit_code == 0, r.output
    assert "retired hr-v2; hr-v1 answers now" in r.output
    r = cli("retire", "hr-v1")
    assert r.exit_code == 0
    assert {v["status"] for v in listed(cli).values()} == {"retired"}
    r = cli("rollback")
    assert r.exit_code == 2
    assert "no version is active" in r.output
    r = cli("retire", "hr-v9")
    assert r.exit_code == 2
    assert "no model version 'hr-v9'" in r.output


def test_register_names_what_is_wrong_with_a_folder(cli: Any, tmp_path: Path) -> None:
    r = cli("register", str(tmp_path / "missing"))
    assert r.exit_code == 2
    assert "is not a folder" in r.output
    run = make_run(tmp_path, gguf=("f16",))
    r = cli("register", str(run), "--quant", "Q4_K_M")
    assert r.exit_code == 2
    assert "no Q4_K_M GGUF (exported: f16)" in r.output
