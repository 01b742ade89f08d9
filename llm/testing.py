"""Deterministic stand-ins for chat models, for tests (after simonw/llm's ``MockModel``).

``FakeChatModel`` answers with what a test queued::

    model = FakeChatModel()
    model.enqueue("Twenty days [1].")          # streamed word by word
    model.enqueue(["Twen", "ty days", " [1]."])  # streamed in exactly these deltas
    model.enqueue_error(LLMUnavailable("down"))
    model.complete(request).text == "Twenty days [1]."
    model.requests[-1].question                  # what it was asked

An empty queue gives ``default`` (if set) or an ``LLMBackendError`` saying so.
Wrap it with ``llm.guards.guard`` to test behaviour behind the guards.

``FakeOpenAIServer`` is an OpenAI-compatible chat server for ``httpx.MockTransport``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import httpx

from llm.base import ChatRequest, Completion, StreamEvent
from llm.errors import LLMBackendError
from llm.guards import approx_tokens

_WORDS = re.compile(r"\s*\S+\s*|\s+")


class FakeChatModel:
    """Answers with queued texts, in order; records every request in ``requests``."""

    counts_tokens: ClassVar[bool] = False

    def __init__(
        self, *, default: str | None = None, delay_s: float = 0.0, name: str = "fake"
    ) -> None:
        self.name = name
        self.default = default
        #: Seconds to wait before each delta (for timeout tests).
        self.delay_s = delay_s
        self.requests: list[ChatRequest] = []
        self._queue: deque[Sequence[str] | BaseException] = deque()
        self._lock = threading.Lock()

    def enqueue(self, response: str | Sequence[str]) -> None:
        """Queue one answer: a text (streamed word by word) or the exact deltas."""
        deltas = _WORDS.findall(response) if isinstance(response, str) else list(response)
        with self._lock:
            self._queue.append(deltas)

    def enqueue_error(self, error: BaseException) -> None:
        """Queue a failure: the next request raises ``error`` before any delta."""
        with self._lock:
            self._queue.append(error)

    def _next(self, request: ChatRequest) -> Sequence[str]:
        with self._lock:
            self.requests.append(request)
            item = self._queue.popleft() if self._queue else None
        if isinstance(item, BaseException):
            raise item
        if item is not None:
            return item
        if self.default is not None:
            return _WORDS.findall(self.default)
        raise LLMBackendError("FakeChatModel: no answer queued (call enqueue() first)")

    def complete(self, request: ChatRequest) -> Completion:
        return _completion(self.name, "".join(self._next(request)))

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        deltas = self._next(request)
        for delta in deltas:
            if self.delay_s:
                time.sleep(self.delay_s)
            yield StreamEvent(delta=delta)
        yield StreamEvent(done=True, completion=_completion(self.name, "".join(deltas)))


def _completion(model: str, text: str) -> Completion:
    return Completion(
        text=text, finish_reason="stop", model=model, completion_tokens=approx_tokens(text)
    )


class FakeOpenAIServer:
    """``POST /v1/chat/completions`` (streamed or not) and ``GET /v1/models``, in-process.

    The answer is ``answer`` (default: echoes the last user message's first words),
    cut at ``max_tokens`` whitespace-separated words with ``finish_reason="length"``;
    streams as vLLM does (role chunk, one word a chunk, finish chunk, usage chunk
    when asked, ``[DONE]``). ``requests`` holds every JSON body received.
    Use with ``httpx.MockTransport(server)``.
    """

    def __init__(self, *, answer: str | None = None, models: Sequence[str] = ("fake-model",)):
        self.answer = answer
        self.models = list(models)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": self._model_list()})
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return httpx.Response(404, json={"error": {"message": "not found"}})
        body = json.loads(request.content)
        self.requests.append(body)
        words = _WORDS.findall(self._answer(body))
        limit = int(body.get("max_tokens") or 1 << 30)
        finish = "length" if len(words) > limit else "stop"
        words = words[:limit]
        if not body.get("stream"):
            return httpx.Response(200, json=self._response(body, words, finish))
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_SSE(list(self._chunks(body, words, finish))),
        )

    def _model_list(self) -> list[dict[str, Any]]:
        return [{"id": m, "object": "model"} for m in self.models]

    def _answer(self, body: dict[str, Any]) -> str:
        if self.answer is not None:
            return self.answer
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        return " ".join((users[-1] if users else "").split()[:12])

    @staticmethod
    def _usage(body: dict[str, Any], words: Sequence[str]) -> dict[str, int]:
        prompt = sum(len(m["content"].split()) for m in body["messages"])
        return {
            "prompt_tokens": prompt,
            "completion_tokens": len(words),
            "total_tokens": prompt + len(words),
        }

    def _response(self, body: dict[str, Any], words: Sequence[str], finish: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(words)},
                    "finish_reason": finish,
                }
            ],
            "usage": self._usage(body, words),
        }

    def _chunks(self, body: dict[str, Any], words: Sequence[str], finish: str) -> Iterator[bytes]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        for word in words:
            yield chunk({"content": word})
        yield chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"model": body["model"], "choices": [], "usage": self._usage(body, words)}
            yield f"data: {json.dumps(usage)}\n\n".encode()
        yield b"data: [DONE]\n\n"


class _SSE(httpx.SyncByteStream):
    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
