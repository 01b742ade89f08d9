"""The guards every chat model runs behind: length, time budget, runaway repetition."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from llm.base import ChatRequest, Completion, StreamEvent
from llm.errors import LLMBackendError, LLMTimeout, LLMUnavailable
from llm.guards import approx_tokens, guard, truncate_tokens
from llm.testing import FakeChatModel
from tests.contract.chat_model_contract import make_request, split


def run(
    model: FakeChatModel | object, request: ChatRequest | None = None
) -> tuple[str, Completion]:
    events = list(guard(model).stream(request or make_request(max_tokens=2000)))  # type: ignore[arg-type]
    text, done = split(events)
    assert len(done) == 1
    assert done[0].completion is not None
    assert done[0].completion.text == text, "the deltas join to exactly the final text"
    return text, done[0].completion


def fake(*answers: str | list[str], **kwargs: float) -> FakeChatModel:
    model = FakeChatModel(**kwargs)  # type: ignore[arg-type]
    for answer in answers:
        model.enqueue(answer)
    return model


# ---------------------------------------------------------------- approximate tokens


def test_approx_tokens_counts_words_han_characters_and_long_runs() -> None:
    assert approx_tokens("Full-time employees get 25 days.") == 5
    assert approx_tokens("员工每年") == 4
    assert approx_tokens("x" * 25) == 3  # a hash or a URL: several real tokens
    assert truncate_tokens("one two  three four", 3) == "one two  three"
    assert truncate_tokens("员工每年享有", 2) == "员工"
    assert truncate_tokens("short", 10) == "short"


# ---------------------------------------------------------------- max tokens


def test_max_tokens_cuts_a_backend_that_does_not_count() -> None:
    text, c = run(fake("one two three four five six"), make_request(max_tokens=3))
    assert text == "one two three"
    assert c.finish_reason == "length"


def test_backends_that_count_tokens_get_a_loose_backstop_only() -> None:
    class Counting(FakeChatModel):
        counts_tokens: ClassVar[bool] = True

    model = Counting()
    model.enqueue(" ".join(f"w{i}" for i in range(20)))
    text, c = run(model, make_request(max_tokens=3))
    assert approx_tokens(text) == 6  # the server was meant to stop at 3; it ignored that
    assert c.finish_reason == "length"


# ---------------------------------------------------------------- time budget


def test_timeout_ends_the_answer_with_finish_reason_timeout() -> None:
    model = fake(" ".join(["word"] * 100), delay_s=0.05)
    start = time.monotonic()
    text, c = run(model, make_request(max_tokens=2000, timeout_s=0.3))
    assert c.finish_reason == "timeout"
    assert text.startswith("word word")
    assert len(text.split()) < 100
    assert time.monotonic() - start < 1.5


class Stalled:
    """A backend blocked on a server that never answers (until released)."""

    name = "stalled"

    def __init__(self, first: str = "") -> None:
        self.release = threading.Event()
        self.first = first

    def complete(self, request: ChatRequest) -> Completion:
        raise NotImplementedError

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        if self.first:
            yield StreamEvent(delta=self.first)
        self.release.wait(10)
        yield StreamEvent(delta="late")


def test_timeout_holds_while_the_backend_is_blocked() -> None:
    model = Stalled(first="Partial answer")
    start = time.monotonic()
    text, c = run(model, make_request(timeout_s=0.2))
    model.release.set()
    assert (text, c.finish_reason) == ("Partial answer", "timeout")
    assert time.monotonic() - start < 1.0


def test_timeout_before_any_text_raises_llm_timeout() -> None:
    model = Stalled()
    start = time.monotonic()
    with pytest.raises(LLMTimeout, match="time budget"):
        guard(model).complete(make_request(timeout_s=0.2))  # type: ignore[arg-type]
    model.release.set()
    assert time.monotonic() - start < 1.0


# ---------------------------------------------------------------- repetition


def test_runaway_repetition_is_cut_to_its_first_occurrence() -> None:
    loop = "The answer is in the handbook. "
    text, c = run(fake("Intro text here. " + loop * 40))
    assert c.finish_reason == "repetition"
    assert text == "Intro text here. " + loop


def test_runaway_repetition_with_model_like_deltas() -> None:
    deltas = ["Vac", "ation", " days", " are", " 25", " [", "1", "]."] * 30
    text, c = run(fake(deltas))
    assert c.finish_reason == "repetition"
    assert text == "Vacation days are 25 [1]."


def test_runaway_single_character_and_chinese_loops_are_cut() -> None:
    text, c = run(fake(["Yes"] + ["!"] * 500))
    assert (text, c.finish_reason) == ("Yes!", "repetition")
    text, c = run(fake(["根据规定，", *list("员工每年享有十五天年假。" * 30)]))
    assert (text, c.finish_reason) == ("根据规定，员工每年享有十五天年假。", "repetition")


@pytest.mark.parametrize(
    "answer",
    [
        "| Plan | Premium |\n| --- | --- |\n| Basic | $0 |\n| Plus | $5 |\n",
        "| a | b | c | d | e | f | g | h |\n|---|---|---|---|---|---|---|---|\n| 1 | 2 | 3 | 4 "
        "| 5 | 6 | 7 | 8 |\n",
        "1. Open the portal.\n2. Open the form.\n3. Open the request.\n4. Submit it.\n",
        "Steps: check, check, and check again. " + "-" * 60 + "\nDone.",
        "Ha ha ha, very funny. The policy is 25 days [1]. The policy is clear [2].",
    ],
)
def test_legitimate_repetitive_text_is_not_cut(answer: str) -> None:
    text, c = run(fake(answer))
    assert (text, c.finish_reason) == (answer, "stop")


def test_long_outputs_stream_without_loops_unchanged() -> None:
    words = [f"word{i % 97}x{i // 97}" for i in range(600)]
    text, c = run(fake(" ".join(words)))
    assert c.finish_reason == "stop"
    assert text == " ".join(words)


# ---------------------------------------------------------------- errors and lifecycle


class Broken:
    """Streams some text, then the connection breaks."""

    name = "broken"

    def __init__(self, deltas: list[str], error: Exception) -> None:
        self.deltas, self.error = deltas, error
        self.closed = threading.Event()

    def complete(self, request: ChatRequest) -> Completion:
        raise NotImplementedError

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        try:
            for d in self.deltas:
                yield StreamEvent(delta=d)
            raise self.error
        finally:
            self.closed.set()


def test_a_break_mid_stream_ends_the_answer_with_finish_reason_error() -> None:
    text, c = run(Broken(["Twenty", " days"], LLMBackendError("connection reset")))
    assert (text, c.finish_reason) == ("Twenty days", "error")


def test_a_read_timeout_mid_stream_reads_as_timeout() -> None:
    text, c = run(Broken(["Twenty"], LLMTimeout("stalled mid-answer")))
    assert (text, c.finish_reason) == ("Twenty", "timeout")


def test_errors_before_the_first_delta_propagate() -> None:
    with pytest.raises(LLMUnavailable, match="down"):
        run(Broken([], LLMUnavailable("server down")))
    model = FakeChatModel()
    model.enqueue_error(LLMUnavailable("cannot reach the model server at http://x"))
    with pytest.raises(LLMUnavailable, match="http://x"):
        guard(model).complete(make_request())


def test_abandoning_a_stream_closes_the_backend_stream() -> None:
    model = Broken([f"w{i} " for i in range(1000)], LLMBackendError("unreachable"))
    stream = guard(model).stream(make_request(max_tokens=5000))  # type: ignore[arg-type]
    assert next(stream).delta
    stream.close()  # type: ignore[attr-defined]
    assert model.closed.wait(2), "the backend's generator was closed (lock/connection freed)"


def test_deterministic_mode_forces_greedy_decoding_and_the_seed() -> None:
    model = fake("a", "b")
    guard(model, deterministic_seed=7).complete(make_request(temperature=0.9, seed=None))
    params = model.requests[-1].params
    assert (params.temperature, params.top_p, params.seed) == (0.0, 1.0, 7)
    guard(FakeChatModel()).inner  # noqa: B018  (guards compose without wrapping twice)
    assert guard(guard(model)).inner is model


def test_completion_reports_timings_and_keeps_backend_metadata() -> None:
    _text, c = run(fake("Twenty days [1]."))
    assert c.model == "fake"
    assert c.ttft_s is not None
    assert c.total_s is not None
    assert 0 <= c.ttft_s <= c.total_s
    assert c.completion_tokens == 3
