"""Any OpenAI-compatible chat server: vLLM (Qwen and its LoRA adapters), llama.cpp, others.

``POST {base_url}/chat/completions``, streamed as server-sent events (a role chunk,
content deltas, a chunk with ``finish_reason``, maybe a usage chunk, ``[DONE]``).
``request.model`` overrides the configured model: vLLM serves each LoRA adapter
under its own model name. With no model configured, the first one the server lists
at ``/models`` is used (vLLM needs the exact name; llama.cpp accepts any).

Connection errors and 429/5xx answers are retried with exponential backoff (and
``Retry-After``) within the request's time budget, but only before the response
starts: a stream that breaks after its first token is never retried.
``stream_options.include_usage`` is asked for but not needed (llama.cpp ignores it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from typing import Any, ClassVar

import httpx

from llm.base import ChatRequest, Completion, FinishReason, StreamEvent
from llm.errors import LLMBackendError, LLMTimeout, LLMUnavailable

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_UNAVAILABLE_STATUS = frozenset({429, 502, 503, 504})
_MAX_BACKOFF_S = 8.0
_FINISH: Mapping[str, FinishReason] = {"stop": "stop", "eos": "stop", "length": "length"}


def normalise_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given."""
    url = url.strip().rstrip("/")
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"base_url must be an http(s) URL such as http://host:8000/v1: {url!r}")
    return url if parsed.path not in ("", "/") else f"{url}/v1"


class OpenAICompatChatModel:
    """Chat over an OpenAI-compatible HTTP API. Thread-safe (one pooled ``httpx.Client``)."""

    counts_tokens: ClassVar[bool] = True

    def __init__(
        self,
        *,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self.name = f"openai:{model}" if model else "openai"
        self._model = model or None
        self._connect_s = connect_timeout_s
        self._read_s = read_timeout_s
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._lock = threading.Lock()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers, transport=transport, timeout=self._timeout(read_timeout_s)
        )

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------ the protocol

    def complete(self, request: ChatRequest) -> Completion:
        """One non-streamed request (the guards in ``llm.guards`` stream instead)."""
        start = time.monotonic()
        body = self._body(request, stream=False)
        with closing(self._open(body, request.params.timeout_s, start)) as response:
            try:
                raw = response.read()
            except httpx.TransportError as e:
                raise _transport_error(e, self.base_url) from e
        data = _json(raw, self.base_url)
        choice = _first_choice(data, self.base_url)
        message = choice.get("message") or {}
        usage = data.get("usage") or {}
        total = time.monotonic() - start
        return Completion(
            text=str(message.get("content") or ""),
            finish_reason=_finish(choice.get("finish_reason")),
            model=str(data.get("model") or body["model"]),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            total_s=total,
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        start = time.monotonic()
        body = self._body(request, stream=True)
        parts: list[str] = []
        finish: FinishReason | None = None
        model = str(body["model"])
        usage: Mapping[str, Any] = {}
        ttft: float | None = None
        with closing(self._open(body, request.params.timeout_s, start)) as response:
            for data in self._events(response, got_text=lambda: bool(parts)):
                model = str(data.get("model") or model)
                usage = data.get("usage") or usage
                for choice in data.get("choices") or ():
                    delta = (choice.get("delta") or {}).get("content") or ""
                    if delta:
                        ttft = ttft if ttft is not None else time.monotonic() - start
                        parts.append(delta)
                        yield StreamEvent(delta=delta)
                    if choice.get("finish_reason"):
                        finish = _finish(choice["finish_reason"])
        if finish is None:
            raise LLMBackendError(f"the model server at {self.base_url} ended the stream early")
        yield StreamEvent(
            done=True,
            completion=Completion(
                text="".join(parts),
                finish_reason=finish,
                model=model,
                prompt_tokens=usage.get("prompt_tokens"),
                # Without usage (llama.cpp ignores include_usage): one chunk is one token.
                completion_tokens=usage.get("completion_tokens", len(parts)),
                ttft_s=ttft,
                total_s=time.monotonic() - start,
            ),
        )

    # ------------------------------------------------------------ HTTP

    def _timeout(self, budget_s: float) -> httpx.Timeout:
        read = min(self._read_s, budget_s)
        return httpx.Timeout(connect=self._connect_s, read=read, write=read, pool=self._connect_s)

    def model_name(self, timeout_s: float = 10.0) -> str:
        """The configured model, or the first the server lists (asked once)."""
        with self._lock:
            if self._model is None:
                url = f"{self.base_url}/models"
                try:
                    response = self._client.get(url, timeout=self._timeout(timeout_s))
                except httpx.TransportError as e:
                    raise _transport_error(e, self.base_url) from e
                _raise_for_status(response, self.base_url)
                models = _json(response.content, self.base_url).get("data") or []
                if not models:
                    raise LLMBackendError(f"the model server at {self.base_url} lists no models")
                self._model = str(models[0]["id"])
                logger.info("model server at %s: using model %s", self.base_url, self._model)
            return self._model

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {
            "model": request.model or self.model_name(p.timeout_s),
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "stream": stream,
        }
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop:
            body["stop"] = list(p.stop)
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _open(self, body: Mapping[str, Any], budget_s: float, start: float) -> httpx.Response:
        """Send the request, retrying connection failures and 429/5xx; an open 2xx response."""
        url = f"{self.base_url}/chat/completions"
        attempt = 0
        while True:
            left = budget_s - (time.monotonic() - start)
            request = self._client.build_request(
                "POST", url, json=body, timeout=self._timeout(max(left, 0.001))
            )
            retry_after: float | None = None
            try:
                response = self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as e:
                error: LLMBackendError = _transport_error(e, self.base_url)
            except httpx.TransportError as e:
                raise _transport_error(e, self.base_url) from e
            else:
                if response.status_code < 400:
                    return response
                response.read()
                response.close()
                if response.status_code not in RETRY_STATUS:
                    _raise_for_status(response, self.base_url)
                error = _status_error(response, self.base_url)
                retry_after = _retry_after(response)
            delay = min(retry_after or self._backoff_s * 2**attempt, _MAX_BACKOFF_S)
            if attempt >= self._max_retries or time.monotonic() - start + delay >= budget_s:
                raise error
            attempt += 1
            logger.warning(
                "model server at %s: %s; retry %d/%d in %.1fs",
                self.base_url,
                error,
                attempt,
                self._max_retries,
                delay,
            )
            self._sleep(delay)

    def _events(
        self, response: httpx.Response, *, got_text: Callable[[], bool]
    ) -> Iterator[Mapping[str, Any]]:
        """The JSON payloads of the ``data:`` lines, up to ``[DONE]``."""
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, ": keep-alive" comments, "event:" lines
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                data = _json(payload.encode(), self.base_url)
                if "error" in data or data.get("object") == "error":
                    raise LLMBackendError(
                        f"the model server at {self.base_url} failed: {_detail(data)}"
                    )
                yield data
        except httpx.ReadTimeout as e:
            when = "mid-answer" if got_text() else "before the first token"
            raise LLMTimeout(f"the model server at {self.base_url} stalled {when}") from e
        except httpx.TransportError as e:
            raise LLMBackendError(
                f"the connection to the model server at {self.base_url} broke: {e!r}"
            ) from e


# ------------------------------------------------------------ errors and parsing


def _transport_error(e: httpx.TransportError, url: str) -> LLMBackendError:
    if isinstance(e, httpx.ConnectError | httpx.ConnectTimeout | httpx.RemoteProtocolError):
        return LLMUnavailable(f"cannot reach the model server at {url}: {e or type(e).__name__}")
    if isinstance(e, httpx.TimeoutException):
        return LLMTimeout(f"the model server at {url} did not answer in time ({type(e).__name__})")
    return LLMBackendError(f"request to the model server at {url} failed: {e!r}")


def _status_error(response: httpx.Response, url: str) -> LLMBackendError:
    code = response.status_code
    detail = _detail(_json_or_none(response.content)) or response.text[:200]
    if code in (401, 403):
        return LLMBackendError(f"the model server at {url} refused the API key ({code}): {detail}")
    cls = LLMUnavailable if code in _UNAVAILABLE_STATUS else LLMBackendError
    return cls(f"the model server at {url} answered {code}: {detail}")


def _raise_for_status(response: httpx.Response, url: str) -> None:
    if response.status_code >= 400:
        raise _status_error(response, url)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(float(response.headers.get("retry-after", "")), 0.0)
    except ValueError:
        return None


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _json(raw: bytes, url: str) -> dict[str, Any]:
    data = _json_or_none(raw)
    if not isinstance(data, dict):
        raise LLMBackendError(f"the model server at {url} sent something that is not JSON")
    return data


def _detail(data: Any) -> str:
    """The message of an OpenAI-style ``{"error": {"message": ...}}`` (or vLLM's variants)."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error", data)
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or "")[:500]
    return str(error)[:500]


def _first_choice(data: Mapping[str, Any], url: str) -> Mapping[str, Any]:
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        raise LLMBackendError(f"the model server at {url} answered without choices")
    return choices[0]


def _finish(reason: object) -> FinishReason:
    if reason is None:
        return "stop"
    finish = _FINISH.get(str(reason))
    if finish is None:
        logger.info("unknown finish_reason %r read as 'stop'", reason)
    return finish or "stop"
