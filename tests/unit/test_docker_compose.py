"""The compose file (no Docker engine here: checked as the YAML compose reads)."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).parents[2] / "docker" / "compose.yaml"


def test_vllm_serves_qwen_with_runtime_lora_loading_behind_the_gpu_profile() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    vllm = services["vllm"]
    args = vllm["command"]
    assert "--model=Qwen/Qwen2.5-7B-Instruct" in args
    assert "--enable-lora" in args
    assert any(a.startswith("--max-loras=") for a in args)
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    # Without a GPU, `docker compose up` must not start it.
    assert vllm["profiles"] == ["gpu"]
    # vLLM reads the adapters where Lantern wrote them: the same volume, the same path.
    lantern_data = next(v for v in services["lantern"]["volumes"] if v.startswith("lantern-data:"))
    assert any(v.startswith(lantern_data) for v in vllm["volumes"])
