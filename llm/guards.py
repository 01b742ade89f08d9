"""Guards every chat model runs behind: token limit, total time budget, runaway repetition.

``guard(model)`` (the registry applies it to every backend) streams the backend's
output through a worker thread and stops it when

- the answer reaches ``params.max_tokens``: ``finish_reason="length"``. Backends
  that count real tokens (``counts_tokens = True``: the server or llama.cpp
  enforces the limit exactly) are only held to a loose backstop, twice the limit
  in approximate tokens, in case a server ignores ``max_tokens``;
- ``params.timeout_s`` runs out, even while the backend is blocked waiting for a
  server: ``finish_reason="timeout"`` with the text so far, or ``LLMTimeout`` if
  there is none;
- the output loops (the same text, from one character to ``MAX_PERIOD``
  characters long, repeated back to back at least ``MIN_REPEATS`` times over at
  least ``MIN_LOOP_CHARS``): ``finish_reason="repetition"``. Text that has begun
  to repeat is held back until it either stops repeating (then it is sent) or
  trips the detector (then only its first occurrence is kept), so the streamed
  deltas always join to exactly the final ``Completion.text``.

Errors: before the first delta, the backend's exception propagates; after it, the
stream still ends with one ``done`` event, ``finish_reason="timeout"`` for
``LLMTimeout`` and ``"error"`` for any other ``LLMBackendError`` (logged), so a
caller that has shown half an answer always gets its end.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace

from llm.base import (
    ChatModel,
    ChatRequest,
    Completion,
    FinishReason,
    GenerationParams,
    StreamEvent,
    is_generative,
)
from llm.errors import LLMBackendError, LLMTimeout
from llm.language import HAN_CHARS

logger = logging.getLogger(__name__)

MAX_PERIOD = 300
MIN_REPEATS = 3
MIN_LOOP_CHARS = 120
#: Backstop for backends that count tokens themselves, in approximate tokens per real one.
BACKSTOP_FACTOR = 2

# One approximate token: a Han character, or up to 10 characters of a run without spaces
# (long runs are URLs, numbers, code: several real tokens). Usually at or under a real
# tokenizer's count for English; Chinese may count high for Qwen (~1.4 characters a token).
_PIECE = re.compile(f"[{HAN_CHARS}]|[^\\s{HAN_CHARS}]{{1,10}}")
_LAST_BOUNDARY = re.compile(f"[\\s{HAN_CHARS}](?=[^\\s{HAN_CHARS}]*\\Z)")


def approx_tokens(text: str) -> int:
    """Approximate token count, for backends that do not count (extractive, fakes)."""
    return sum(1 for _ in _PIECE.finditer(text))


def truncate_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` with at most ``max_tokens`` approximate tokens."""
    if max_tokens <= 0:
        return ""
    for i, m in enumerate(_PIECE.finditer(text), start=1):
        if i == max_tokens:
            return text[: m.end()]
    return text


def deterministic(params: GenerationParams, seed: int = 0) -> GenerationParams:
    """The same request, decoded greedily with a fixed seed: the same answer every time."""
    return replace(params, temperature=0.0, top_p=1.0, seed=seed)


class _TokenCounter:
    """``approx_tokens`` of a growing text, recounting only what follows the last boundary."""

    def __init__(self) -> None:
        self._mark = 0  # no piece crosses it: it follows a space or a Han character
        self._before = 0  # tokens before the mark

    def count(self, text: str) -> int:
        total = self._before + approx_tokens(text[self._mark :])
        if m := _LAST_BOUNDARY.search(text, self._mark):
            self._before += approx_tokens(text[self._mark : m.end()])
            self._mark = m.end()
        return total


class _LoopDetector:
    """Tracks, for every period p, how many trailing characters equal the one p before.

    Only periods at which the newest character occurred before can be non-zero, so each
    character costs one step per earlier occurrence of it in the last ``max_period``.
    """

    def __init__(self, max_period: int, min_repeats: int, min_chars: int) -> None:
        self._max_period = max_period
        self._min_repeats = min_repeats
        self._min_chars = min_chars
        self._runs: dict[int, int] = {}  # period -> trailing run; absent means 0
        self._seen: dict[str, deque[int]] = defaultdict(deque)  # char -> recent positions

    def feed(self, text: str, added: int) -> tuple[int, int, int]:
        """Update with the last ``added`` characters of ``text``.

        Returns ``(hold, cut, period)``: how many trailing characters repeat earlier
        text and so may be the start of a loop (send them once the text moves on),
        and, if a loop is confirmed, how many trailing characters continue it (else
        0) and its period. Holding every repeat, not just long ones, keeps a cut
        loop's second copy unsent.
        """
        runs = self._runs
        for i in range(len(text) - added, len(text)):
            seen = self._seen[text[i]]
            while seen and seen[0] < i - self._max_period:
                seen.popleft()
            runs = {i - j: runs.get(i - j, 0) + 1 for j in seen}
            seen.append(i)
        self._runs = runs
        cut = period = 0
        for p, run in runs.items():
            loop = run + p
            if loop >= p * self._min_repeats and loop >= self._min_chars and run > cut:
                cut, period = run, p
        return max(runs.values(), default=0), cut, period


_SENTENCE_END = re.compile(r"[.!?。！？]+[\"')\]”’」』）]*[ \t]*|\n")
_ENDS_SENTENCE = re.compile(r"(?:[.!?。！？][\"')\]”’」』）]*|\n)\s*\Z")


def _loop_end(text: str, run: int, period: int) -> int:
    """Where to end a text whose last ``run`` characters continue a loop of ``period``:
    after the loop's first occurrence, completing the sentence it was in, if any."""
    end = len(text) - run
    if _ENDS_SENTENCE.search(text, max(end - 4, 0), end):
        return end
    m = _SENTENCE_END.search(text, end, min(end + period, len(text)))
    return m.end() if m else end


class _State:
    """The answer so far: ``text[:sent]`` has been streamed, the rest is held back."""

    def __init__(self, *, limit: int, loops: _LoopDetector) -> None:
        self.text = ""
        self.sent = 0
        self.finish: FinishReason | None = None
        self._limit = limit
        self._loops = loops
        self._tokens = _TokenCounter()

    def add(self, delta: str) -> str:
        """Take a delta; return the text now safe to send (possibly empty)."""
        self.text += delta
        hold, cut, period = self._loops.feed(self.text, len(delta))
        if cut:
            self.text = self.text[: max(_loop_end(self.text, cut, period), self.sent)]
            self.finish = "repetition"
            hold = 0
        tokens = approx_tokens(self.text) if cut else self._tokens.count(self.text)
        if tokens > self._limit:
            self.text = truncate_tokens(self.text, self._limit)
            self.finish = "length"
            hold = 0
        end = max(self.sent, len(self.text) - hold)
        send, self.sent = self.text[self.sent : end], end
        return send

    def flush(self) -> str:
        """At the end: the held-back text (it never became a loop)."""
        send, self.sent = self.text[self.sent :], len(self.text)
        return send


class GuardedChatModel:
    """A chat model behind the guards; see the module docstring. ``inner`` is the backend."""

    def __init__(
        self,
        inner: ChatModel,
        *,
        deterministic_seed: int | None = None,
        max_period: int = MAX_PERIOD,
        min_repeats: int = MIN_REPEATS,
        min_loop_chars: int = MIN_LOOP_CHARS,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._seed = deterministic_seed
        self._loop_args = (max_period, min_repeats, min_loop_chars)
        self._counts_tokens = bool(getattr(inner, "counts_tokens", False))
        self.generative = is_generative(inner)

    def complete(self, request: ChatRequest) -> Completion:
        """The streamed answer, collected: the same guards apply."""
        for event in self.stream(request):
            if event.done and event.completion is not None:
                return event.completion
        raise LLMBackendError(f"{self.name}: the stream ended without a final event")

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        if self._seed is not None:
            request = replace(request, params=deterministic(request.params, self._seed))
        params = request.params
        start = time.monotonic()
        limit = params.max_tokens * (BACKSTOP_FACTOR if self._counts_tokens else 1)
        state = _State(limit=limit, loops=_LoopDetector(*self._loop_args))
        inner_done: Completion | None = None
        ttft: float | None = None
        pump = _pump(lambda: self.inner.stream(request), start + params.timeout_s)
        try:
            for kind, item in pump:
                if kind == "timeout":
                    state.finish = "timeout"
                elif kind == "error":
                    assert isinstance(item, BaseException)
                    state.finish = _mid_stream_finish(item, state, self.name)
                elif isinstance(item, StreamEvent) and item.done:
                    inner_done = item.completion
                elif (
                    isinstance(item, StreamEvent) and item.delta and (send := state.add(item.delta))
                ):
                    ttft = ttft if ttft is not None else time.monotonic() - start
                    yield StreamEvent(delta=send)
                if state.finish is not None or inner_done is not None:
                    break
        finally:
            pump.close()
        # What was held back as a possible loop was not one: send it.
        if rest := state.flush():
            ttft = ttft if ttft is not None else time.monotonic() - start
            yield StreamEvent(delta=rest)
        total = time.monotonic() - start
        yield StreamEvent(done=True, completion=_final(state, inner_done, self.name, ttft, total))

    def close(self) -> None:
        """Close the backend (its HTTP client), where it has anything to close."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def guard(model: ChatModel, *, deterministic_seed: int | None = None) -> GuardedChatModel:
    """``model`` behind the guards; with ``deterministic_seed``, every request is greedy."""
    if isinstance(model, GuardedChatModel):
        return model
    return GuardedChatModel(model, deterministic_seed=deterministic_seed)


def _mid_stream_finish(error: BaseException, state: _State, name: str) -> FinishReason:
    if not state.text or not isinstance(error, LLMBackendError):
        raise error
    if isinstance(error, LLMTimeout):
        return "timeout"
    logger.warning("%s: the stream broke after %d characters: %s", name, len(state.text), error)
    return "error"


def _final(
    state: _State, inner: Completion | None, name: str, ttft: float | None, total: float
) -> Completion:
    if state.finish == "timeout" and not state.text:
        raise LLMTimeout(f"{name}: no answer within the time budget")
    if state.finish is None and inner is not None:
        return replace(inner, text=state.text, ttft_s=ttft, total_s=total)
    return Completion(
        text=state.text,
        # No final event and no guard tripped: the backend just ended; take what it sent.
        finish_reason=state.finish or "stop",
        model=inner.model if inner is not None else name,
        prompt_tokens=inner.prompt_tokens if inner is not None else None,
        ttft_s=ttft,
        total_s=total,
    )


_Item = tuple[str, StreamEvent | BaseException | None]


def _pump(
    make: Callable[[], Iterator[StreamEvent]], deadline: float
) -> Generator[_Item, None, None]:
    """The backend's events, read in a worker thread so the deadline holds while it blocks.

    Yields ("event", ev), ("error", exc) or ("timeout", None); stops the worker (and
    closes the backend's stream, releasing its connection or lock) when abandoned.
    """
    items: queue.Queue[_Item] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            events = make()
            try:
                for i, event in enumerate(events):
                    items.put(("event", event))
                    if i == 0:  # let the consumer take the first token now, not in 5 ms
                        time.sleep(0)  # (the GIL switch interval) if this thread keeps busy
                    if stop.is_set():
                        break
            finally:
                close = getattr(events, "close", None)
                if callable(close):
                    close()
        except BaseException as e:  # handed to the consumer, which re-raises it
            items.put(("error", e))
        else:
            items.put(("end", None))

    threading.Thread(target=work, name="lantern-llm-stream", daemon=True).start()
    try:
        while True:
            try:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise queue.Empty
                kind, item = items.get(timeout=left)
            except queue.Empty:
                yield ("timeout", None)
                return
            if kind == "end":
                return
            yield (kind, item)
            if kind == "error":
                return
    finally:
        stop.set()
