"""The in-process llama.cpp backend never runs two generations on one model at once, and
never frees the model under a generation: against a fake ``llama_cpp`` that records it.

The real library turns both mistakes into a segfault (or silent garbage); the fake turns
them into ``violations``. Its generations block on ``gate`` before every token after the
first (setting ``in_decode``), so a test can hold one inside llama.cpp's decode.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from llm.backends.llamacpp import LlamaCppChatModel
from llm.base import Completion, StreamEvent
from llm.errors import LLMUnavailable
from llm.guards import guard
from tests.contract.chat_model_contract import make_request

TOKENS = ("Twenty", " five", " days", " a", " year", " [1].")
WAIT_S = 5.0


class FakeLibrary:
    """A stand-in ``llama_cpp`` module whose ``Llama`` reports concurrent and freed use."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.in_decode = threading.Event()
        self.loads = 0
        self.active = 0
        self.max_active = 0
        self.violations: list[str] = []
        self.log: list[str] = []
        self._lock = threading.Lock()
        self.module = types.ModuleType("llama_cpp")
        self.module.Llama = lambda model_path, **kwargs: FakeLlama(self)  # type: ignore[attr-defined]

    @contextmanager
    def generating(self, llama: FakeLlama) -> Iterator[None]:
        with self._lock:
            if llama.freed:
                self.violations.append("generation on a freed model")
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            if self.active > 1:
                self.violations.append("two generations on one model at once")
        try:
            yield
        finally:
            with self._lock:
                self.active -= 1
                self.log.append("generation ended")

    def decode(self, llama: FakeLlama, i: int) -> str:
        if i > 0:
            self.in_decode.set()
            assert self.gate.wait(WAIT_S), "the test never opened the gate"
        if llama.freed:
            self.violations.append("decode on a freed model")
        return TOKENS[i]


class FakeLlama:
    def __init__(self, lib: FakeLibrary) -> None:
        time.sleep(0.05)  # loading takes a while: concurrent first requests overlap here
        lib.loads += 1
        self.lib = lib
        self.freed = False

    def create_chat_completion(self, *, stream: bool, max_tokens: int, **_: Any) -> Any:
        if stream:
            return self._chunks(max_tokens)
        with self.lib.generating(self):
            text = "".join(self.lib.decode(self, i) for i in range(min(max_tokens, len(TOKENS))))
        return {
            "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(TOKENS)},
        }

    def _chunks(self, max_tokens: int) -> Iterator[dict[str, Any]]:
        with self.lib.generating(self):
            for i in range(min(max_tokens, len(TOKENS))):
                yield {"choices": [{"delta": {"content": self.lib.decode(self, i)}}]}
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}

    def close(self) -> None:
        if self.lib.active:
            self.lib.violations.append("model freed during a generation")
        self.lib.log.append("model freed")
        self.freed = True


@pytest.fixture
def lib(monkeypatch: pytest.MonkeyPatch) -> FakeLibrary:
    lib = FakeLibrary()
    monkeypatch.setitem(sys.modules, "llama_cpp", lib.module)
    return lib


@pytest.fixture
def model(lib: FakeLibrary, tmp_path: Path) -> LlamaCppChatModel:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    return LlamaCppChatModel(gguf)


def in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a thread; its result or exception lands in the returned dict."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as e:
            out["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def joined(thread: threading.Thread) -> bool:
    thread.join(WAIT_S)
    return not thread.is_alive()


def final(events: list[StreamEvent]) -> Completion:
    assert events[-1].done
    assert events[-1].completion is not None
    return events[-1].completion


def test_concurrent_requests_run_one_at_a_time(lib: FakeLibrary, model: LlamaCppChatModel) -> None:
    lib.gate.clear()
    guarded = guard(model)
    threads = [
        in_thread(lambda: list(model.stream(make_request()))),
        in_thread(lambda: list(guarded.stream(make_request()))),
        in_thread(lambda: model.complete(make_request())),
    ]
    assert lib.in_decode.wait(WAIT_S)
    time.sleep(0.2)
    assert lib.active == 1, "the others wait for the model, not decode beside it"
    lib.gate.set()
    assert all(joined(t) for t, _ in threads)
    assert [out.get("error") for _, out in threads] == [None, None, None]
    assert final(threads[0][1]["result"]).text == "".join(TOKENS)
    assert final(threads[1][1]["result"]).text == "".join(TOKENS)
    assert threads[2][1]["result"].text == "".join(TOKENS)
    assert lib.max_active == 1
    assert lib.violations == []


def test_concurrent_first_requests_load_the_model_once(
    lib: FakeLibrary, model: LlamaCppChatModel
) -> None:
    threads = [in_thread(lambda: model.complete(make_request())) for _ in range(4)]
    assert all(joined(t) for t, _ in threads)
    assert lib.loads == 1
    assert lib.violations == []


def test_close_during_a_stream_stops_it_and_frees_the_model_after_it(
    lib: FakeLibrary, model: LlamaCppChatModel
) -> None:
    lib.gate.clear()
    events: list[StreamEvent] = []
    streaming, out = in_thread(lambda: events.extend(model.stream(make_request())))
    assert lib.in_decode.wait(WAIT_S)
    closing, _ = in_thread(model.close)
    time.sleep(0.2)
    assert closing.is_alive(), "close waits for the generation in flight"
    assert "model freed" not in lib.log
    lib.gate.set()
    assert joined(closing)
    assert joined(streaming)
    assert isinstance(out["error"], LLMUnavailable)
    assert "closed during the answer" in str(out["error"])
    assert 0 < len(events) < len(TOKENS), "the stream stopped early"
    assert lib.log == ["generation ended", "model freed"]
    assert lib.violations == []


def test_close_during_a_guarded_stream_ends_it_with_what_it_had(
    lib: FakeLibrary, model: LlamaCppChatModel
) -> None:
    lib.gate.clear()
    streaming, out = in_thread(lambda: list(guard(model).stream(make_request())))
    assert lib.in_decode.wait(WAIT_S)
    closing, _ = in_thread(model.close)
    time.sleep(0.2)
    assert closing.is_alive()
    lib.gate.set()
    assert joined(closing)
    assert joined(streaming)
    completion = final(out["result"])
    assert completion.finish_reason == "error"
    assert completion.text.startswith(TOKENS[0])
    assert completion.text != "".join(TOKENS)
    assert lib.log == ["generation ended", "model freed"]
    assert lib.violations == []


def test_a_timed_out_stream_is_finished_before_close_frees_the_model(
    lib: FakeLibrary, model: LlamaCppChatModel
) -> None:
    lib.gate.clear()
    guarded = guard(model)
    events = list(guarded.stream(make_request(timeout_s=0.3)))
    assert final(events).finish_reason == "timeout"
    assert final(events).text == TOKENS[0]
    # The guard has returned, but its worker thread is still inside llama.cpp's decode.
    assert lib.in_decode.is_set()
    assert lib.active == 1
    closing, _ = in_thread(guarded.close)
    time.sleep(0.2)
    assert closing.is_alive(), "close waits for the abandoned generation"
    assert "model freed" not in lib.log
    lib.gate.set()
    assert joined(closing)
    assert lib.active == 0
    assert lib.log == ["generation ended", "model freed"]
    assert lib.violations == []


def test_requests_after_close_are_refused_without_touching_the_model(
    lib: FakeLibrary, model: LlamaCppChatModel
) -> None:
    assert model.complete(make_request()).text == "".join(TOKENS)
    model.close()
    model.close()  # idempotent
    with pytest.raises(LLMUnavailable, match="is closed"):
        model.complete(make_request())
    with pytest.raises(LLMUnavailable, match="is closed"):
        list(model.stream(make_request()))
    with pytest.raises(LLMUnavailable, match="is closed"):
        guard(model).complete(make_request())
    assert lib.loads == 1
    assert lib.log == ["generation ended", "model freed"]
    assert lib.violations == []


def test_closed_before_the_first_request_never_loads(
    lib: FakeLibrary, model: LlamaCppChatModel
) -> None:
    model.close()
    with pytest.raises(LLMUnavailable, match="is closed"):
        guard(model).complete(make_request())
    assert lib.loads == 0


def test_close_leaves_the_model_allocated_if_a_generation_never_ends(
    lib: FakeLibrary, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    model = LlamaCppChatModel(gguf, close_wait_s=0.2)
    stream = model.stream(make_request())
    assert next(stream).delta == TOKENS[0]  # held open by a caller that never resumes it
    with caplog.at_level(logging.WARNING, logger="llm.backends.llamacpp"):
        model.close()
    assert "not freeing the model" in caplog.text
    assert "model freed" not in lib.log
    with pytest.raises(LLMUnavailable, match="closed during the answer"):
        list(stream)
    assert lib.violations == []
