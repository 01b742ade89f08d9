"""Training run folders as ``lantern finetune train`` / ``export`` / ``eval`` leave them
(the file formats of the model-lifecycle brief), written by hand, and a recording
deployer: the registry tests' fixtures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from app.services.model_registry import ServedVersion


def make_run(
    root: Path,
    name: str = "run",
    *,
    passed: bool | None = True,
    reasons: tuple[str, ...] = (),
    gguf: tuple[str, ...] = (),
    collections: tuple[str, ...] = ("col-hr",),
    base: str = "Qwen/Qwen2.5-7B-Instruct",
    adapter: bool = True,
    finished_at: str = "2026-12-01T09:15:00+00:00",
    seed: int = 0,
) -> Path:
    """A finished run folder: run.json and adapter/, eval.json when ``passed`` is not
    None, and an export.json with a (tiny, fake) GGUF file per quantisation in ``gguf``."""
    run = root / name
    (run / "adapter").mkdir(parents=True)
    weights = f"weights of {name} {seed}".encode()
    if adapter:
        (run / "adapter" / "adapter_config.json").write_text(
            json.dumps({"peft_type": "LORA", "r": 16, "lora_alpha": 32})
        )
        (run / "adapter" / "adapter_model.safetensors").write_bytes(weights)
    record: dict[str, Any] = {
        "format": 1,
        "base_model": {"id": base, "gguf_file": None, "name": base.rsplit("/", 1)[-1]},
        "method": "lora",
        "device": "cpu",
        "hyperparameters": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05},
        "dataset": {
            "path": str(root / "dataset"),
            "hash": hashlib.sha256(name.encode()).hexdigest(),
            "collections": list(collections),
            "prompt_version": "answer-v3",
        },
        "code_version": "0.1.0+abc1234",
        "seed": seed,
        "steps": 30,
        "wall_s": 12.5,
        "peak_memory_mb": 812.0,
        "train_tokens": 24000,
        "tokens_per_s": 1920.0,
        "loss": {"first": 2.9, "last": 1.1},
        "adapter_sha256": hashlib.sha256(weights).hexdigest(),
        "finished_at": finished_at,
    }
    (run / "run.json").write_text(json.dumps(record))
    if passed is not None:
        write_eval(run, passed, reasons)
    if gguf:
        write_export(run, gguf)
    return run


def write_eval(run: Path, passed: bool, reasons: tuple[str, ...] = ()) -> None:
    report = {
        "passed": passed,
        "reasons": list(reasons) or ["beats the base on the validation split"],
        "base": {"answer_recall": 0.61, "citation_format": 0.40},
        "candidate": {"answer_recall": 0.66, "citation_format": 0.83},
    }
    (run / "eval.json").write_text(json.dumps(report))


def write_export(run: Path, quants: tuple[str, ...]) -> None:
    files = {}
    (run / "gguf").mkdir(exist_ok=True)
    for q in quants:
        data = f"GGUF {q}".encode()
        path = run / "gguf" / f"model-{q}.gguf"
        path.write_bytes(data)
        # Relative to the run folder, as a moved run folder keeps working.
        files[q] = {
            "path": f"gguf/{path.name}",
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    (run / "export.json").write_text(json.dumps({"files": files}))


class RecordingDeployer:
    """A deployer that records what it was asked (and fails with ``fail`` when set)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail: Exception | None = None

    def deploy(self, version: ServedVersion) -> None:
        if self.fail is not None:
            raise self.fail
        self.calls.append(("deploy", version.name))

    def undeploy(self, version: ServedVersion) -> None:
        self.calls.append(("undeploy", version.name))
