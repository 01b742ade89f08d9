"""Behaviour every chat model shows, as the app gets it from ``llm.registry`` (behind the guards).

Use it by subclassing and providing one fixture::

    class TestMyBackend(ChatModelContract):
        @pytest.fixture
        def chat_model(self) -> ChatModel:
            return create_chat_model("mykind", ...)

Requests are deterministic (temperature 0, fixed seed) and small, so real models
(SmolLM2 through llama.cpp) get through the suite in seconds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar, get_args

import pytest

from llm.base import (
    ChatMessage,
    ChatModel,
    ChatRequest,
    Completion,
    FinishReason,
    GenerationParams,
    Source,
    StreamEvent,
)
from llm.guards import BACKSTOP_FACTOR, approx_tokens

QUESTION = "How many vacation days do full-time employees get per year?"
SOURCES = (
    Source(
        n=1,
        chunk_id="c1",
        document_id="d1",
        title="Employee handbook",
        page=3,
        text="Vacation. Full-time employees receive 25 vacation days per year. "
        "Part-time employees receive a pro-rated share.",
    ),
    Source(
        n=2,
        chunk_id="c2",
        document_id="d2",
        title="IT policy",
        page=None,
        text="Passwords must be at least 12 characters long. Never share your password.",
    ),
)


def make_request(
    question: str = QUESTION,
    sources: tuple[Source, ...] = SOURCES,
    **params: object,
) -> ChatRequest:
    """A small grounded request, as ``llm.prompts`` would build it."""
    context = "\n\n".join(f"[{s.n}] {s.title}\n{s.text}" for s in sources) or "(no sources)"
    return ChatRequest(
        messages=[
            ChatMessage("system", "Answer from the sources only. Cite them as [n]. Be brief."),
            ChatMessage("user", f"Sources:\n{context}\n\nQuestion: {question}"),
        ],
        question=question,
        sources=sources,
        params=replace(GenerationParams(max_tokens=24, temperature=0.0, seed=0), **params),  # type: ignore[arg-type]
    )


def split(events: list[StreamEvent]) -> tuple[str, list[StreamEvent]]:
    """The joined deltas and the done events."""
    return "".join(e.delta for e in events if not e.done), [e for e in events if e.done]


def warm_up(model: ChatModel, request: ChatRequest) -> None:
    """Run ``request`` once, unchecked, before comparing two answers to it.

    llama.cpp reuses the KV cache of the previous prompt's common prefix and
    evaluates the rest in another batch shape; the float sums then differ slightly
    and greedy decoding can flip a near-tie ("year." / "year,"). Once the prompt is
    cached, repeats of it start from the same state and agree.
    """
    model.complete(request)


class ChatModelContract:
    #: Whether the backend reports real token counts (``completion_tokens``).
    counts_tokens: ClassVar[bool] = False

    @pytest.fixture
    def chat_model(self) -> ChatModel:
        raise NotImplementedError("a ChatModelContract subclass must provide chat_model")

    def test_has_a_name(self, chat_model: ChatModel) -> None:
        assert isinstance(chat_model.name, str)
        assert chat_model.name

    def test_complete_answers(self, chat_model: ChatModel) -> None:
        completion = chat_model.complete(make_request())
        assert isinstance(completion, Completion)
        assert completion.text.strip()
        assert completion.finish_reason in get_args(FinishReason)
        assert completion.model
        assert completion.total_s is not None
        assert completion.total_s >= 0

    def test_stream_ends_with_exactly_one_done_event(self, chat_model: ChatModel) -> None:
        events = list(chat_model.stream(make_request()))
        text, done = split(events)
        assert len(done) == 1
        assert events[-1].done
        assert events[-1].completion is not None
        assert all(e.delta and e.completion is None for e in events[:-1])
        assert events[-1].delta == ""
        assert text.strip()

    def test_stream_deltas_join_to_the_final_text(self, chat_model: ChatModel) -> None:
        events = list(chat_model.stream(make_request()))
        text, done = split(events)
        assert done[0].completion is not None
        assert done[0].completion.text == text
        assert done[0].completion.ttft_s is not None
        assert 0 <= done[0].completion.ttft_s <= (done[0].completion.total_s or 0)

    def test_complete_and_stream_agree(self, chat_model: ChatModel) -> None:
        request = make_request()
        warm_up(chat_model, request)
        completion = chat_model.complete(request)
        streamed = next(e for e in chat_model.stream(request) if e.done).completion
        assert streamed is not None
        assert streamed.text == completion.text
        assert streamed.finish_reason == completion.finish_reason

    def test_deterministic_requests_repeat(self, chat_model: ChatModel) -> None:
        request = make_request()
        warm_up(chat_model, request)
        assert chat_model.complete(request).text == chat_model.complete(request).text

    @pytest.mark.parametrize("max_tokens", [1, 4])
    def test_max_tokens_respected(self, chat_model: ChatModel, max_tokens: int) -> None:
        request = make_request(
            question="Describe the vacation policy and the password policy in full detail.",
            max_tokens=max_tokens,
        )
        # Backends that count real tokens are held to them; the approximation is looser.
        bound = max_tokens * (BACKSTOP_FACTOR if self.counts_tokens else 1)
        completion = chat_model.complete(request)
        streamed = next(e for e in chat_model.stream(request) if e.done).completion
        assert streamed is not None
        for c in (completion, streamed):
            assert c.finish_reason == "length"
            assert approx_tokens(c.text) <= bound
            if c.completion_tokens is not None:
                assert c.completion_tokens <= max_tokens

    def test_empty_sources_are_handled(self, chat_model: ChatModel) -> None:
        completion = chat_model.complete(make_request(sources=()))
        assert isinstance(completion.text, str)
        assert completion.finish_reason in get_args(FinishReason)

    def test_abandoned_stream_does_not_block_the_next_request(self, chat_model: ChatModel) -> None:
        stream = iter(chat_model.stream(make_request(max_tokens=64)))
        first = next(stream)
        assert first.delta or first.done
        stream.close()  # type: ignore[attr-defined]
        assert chat_model.complete(make_request()).text.strip()

    def test_reports_token_counts_when_it_counts(self, chat_model: ChatModel) -> None:
        if not self.counts_tokens:
            pytest.skip("this backend does not count tokens")
        completion = chat_model.complete(make_request())
        assert completion.completion_tokens is not None
        assert completion.completion_tokens > 0
