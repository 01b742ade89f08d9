"""Loading and unloading LoRA adapters on vLLM, against ``tests.vllm_double.FakeVLLM``:
an HTTP double (``httpx.MockTransport``) that follows vLLM's documented runtime LoRA API
("Dynamically serving LoRA Adapters", docs.vllm.ai; serving_models.py of v0.11),
including its real error answers. The connection failure is a real dead port."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from app.errors import Conflict
from app.services.model_deploy import VLLMDeployer
from app.services.model_registry import ServedVersion
from llm.backends.vllm_adapters import (
    AdapterAlreadyLoaded,
    AdapterError,
    AdapterNotFound,
    AdapterNotLoaded,
    RuntimeLoRADisabled,
    VLLMAdapters,
)
from llm.errors import LLMUnavailable
from tests.vllm_double import FakeVLLM

URL = "http://vllm.test:8000/v1"


def adapter_dir(root: Path, name: str = "run", rank: int = 16) -> str:
    d = root / name / "adapter"
    d.mkdir(parents=True)
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
    return str(d)


def client(server: FakeVLLM, api_key: str | None = None) -> VLLMAdapters:
    return VLLMAdapters(URL, api_key, transport=server.transport())


def version(
    path: str, name: str = "hr-v1", base: str = "Qwen/Qwen2.5-7B-Instruct"
) -> ServedVersion:
    return ServedVersion(name, "candidate", ("col-hr",), 0.0, path, None, base)


def test_a_loaded_adapter_is_listed_under_its_name_then_unloaded(tmp_path: Path) -> None:
    server = FakeVLLM()
    vllm = client(server)
    path = adapter_dir(tmp_path)

    vllm.load("hr-v1", path)
    [adapter] = vllm.adapters().values()
    assert (adapter.id, adapter.root, adapter.parent) == ("hr-v1", path, server.base)
    assert [m.id for m in vllm.models()] == [server.base, "hr-v1"]

    vllm.unload("hr-v1")
    assert vllm.adapters() == {}
    assert server.calls()[0] == (
        "POST",
        "/v1/load_lora_adapter",
        {"lora_name": "hr-v1", "lora_path": path},
    )
    assert ("POST", "/v1/unload_lora_adapter", {"lora_name": "hr-v1"}) in server.calls()


@pytest.mark.parametrize("flat", [False, True], ids=["v0.10+ errors", "v0.6-0.9 errors"])
def test_loading_twice_and_unloading_what_is_not_there_are_told_apart(
    tmp_path: Path, flat: bool
) -> None:
    vllm = client(FakeVLLM(flat_errors=flat))
    path = adapter_dir(tmp_path)
    vllm.load("hr-v1", path)
    with pytest.raises(AdapterAlreadyLoaded, match="already been loaded"):
        vllm.load("hr-v1", path)
    assert vllm.ensure_loaded("hr-v1", path) is False  # idempotent deploys

    vllm.unload("hr-v1")
    with pytest.raises(AdapterNotLoaded, match="cannot be found"):
        vllm.unload("hr-v1")
    assert vllm.ensure_unloaded("hr-v1") is False


def test_a_path_the_server_cannot_see_says_to_mount_the_runs(tmp_path: Path) -> None:
    vllm = client(FakeVLLM())
    missing = str(tmp_path / "elsewhere" / "adapter")
    with pytest.raises(AdapterNotFound) as e:
        vllm.load("hr-v1", missing)
    assert missing in str(e.value)
    assert "mount" in str(e.value)


@pytest.mark.parametrize("old", [False, True], ids=["vllm handler", "fastapi default"])
def test_a_server_without_runtime_updates_says_which_variable_to_set(
    tmp_path: Path, old: bool
) -> None:
    vllm = client(FakeVLLM(runtime_lora_updating=False, old_errors=old))
    with pytest.raises(RuntimeLoRADisabled, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"):
        vllm.load("hr-v1", adapter_dir(tmp_path))
    with pytest.raises(RuntimeLoRADisabled):
        vllm.unload("hr-v1")


def test_the_engine_refusing_an_adapter_passes_its_reason_on(tmp_path: Path) -> None:
    vllm = client(FakeVLLM(max_lora_rank=16))
    with pytest.raises(AdapterError) as e:
        vllm.load("hr-v1", adapter_dir(tmp_path, rank=64))
    assert "LoRA rank 64 is greater than max_lora_rank 16" in str(e.value)
    assert "--max-lora-rank" in str(e.value)


def test_the_api_key_is_sent_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    server = FakeVLLM(api_key="sk-vllm")
    client(server, "sk-vllm").load("hr-v1", adapter_dir(tmp_path))
    assert server.loaded == {"hr-v1": str(tmp_path / "run" / "adapter")}
    with pytest.raises(AdapterError, match="API key"):
        client(server, "wrong").adapters()


def test_a_server_that_is_down_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    vllm = VLLMAdapters(f"http://127.0.0.1:{port}", connect_timeout_s=1)
    with pytest.raises(LLMUnavailable, match="cannot reach"):
        vllm.load("hr-v1", "/runs/x/adapter")


def test_the_deployer_loads_once_and_unloads_idempotently(tmp_path: Path) -> None:
    server = FakeVLLM(base="Qwen/Qwen2.5-7B")
    deployer = VLLMDeployer(client(server))
    v = version(adapter_dir(tmp_path))
    deployer.deploy(v)
    deployer.deploy(v)  # promote after an A/B share: already there
    loads = [c for c in server.calls() if c[1] == "/v1/load_lora_adapter"]
    assert len(loads) == 1
    assert server.loaded == {"hr-v1": v.adapter_path}
    deployer.undeploy(v)
    deployer.undeploy(v)
    assert server.loaded == {}


def test_the_deployer_refuses_an_adapter_of_another_base_model(tmp_path: Path) -> None:
    server = FakeVLLM(base="Qwen/Qwen2.5-7B", root="/models/Qwen2.5-7B")
    deployer = VLLMDeployer(client(server))
    path = adapter_dir(tmp_path)
    with pytest.raises(Conflict, match=r"trained on meta-llama/Llama-3\.1-8B-Instruct"):
        deployer.deploy(version(path, base="meta-llama/Llama-3.1-8B-Instruct"))
    assert server.loaded == {}
    # The same model by its folder on the training machine is the served one.
    deployer.deploy(version(path, base="/data/hub/Qwen2.5-7B"))
    assert "hr-v1" in server.loaded
