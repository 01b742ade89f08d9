"""The OpenAI-compatible backend against fake servers (``httpx.MockTransport``) and a dead port."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
import pytest

from llm.backends.openai_compat import OpenAICompatChatModel, normalise_base_url
from llm.errors import LLMBackendError, LLMTimeout, LLMUnavailable
from llm.guards import guard
from llm.registry import create_chat_model
from llm.testing import FakeOpenAIServer
from tests.contract.chat_model_contract import make_request, split

URL = "http://vllm.test:8000/v1"
ANSWER = "Full-time employees receive 25 vacation days [1]."

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a list of handlers, then from the last one."""

    def __init__(self, *handlers: Handler) -> None:
        self.handlers = list(handlers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.handlers.pop(0) if len(self.handlers) > 1 else self.handlers[0]
        return handler(request)


def backend(handler: Handler, **kwargs: object) -> tuple[OpenAICompatChatModel, list[float]]:
    slept: list[float] = []
    model = OpenAICompatChatModel(
        base_url=URL,
        model="qwen2.5-7b-instruct",
        transport=httpx.MockTransport(handler),
        sleep=slept.append,
        **kwargs,  # type: ignore[arg-type]
    )
    return model, slept


def status(code: int, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(
        code, headers=headers, json={"error": {"message": f"status {code} from the fake"}}
    )


def sse(*lines: str, error: Exception | None = None) -> Handler:
    """A streamed response of these ``data:`` payloads, optionally breaking after them."""

    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for line in lines:
                yield f"data: {line}\n\n".encode()
            if error is not None:
                raise error

    return lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=Body()
    )


def chunk(content: str | None = None, finish: str | None = None, role: bool = False) -> str:
    delta: dict[str, str] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    return json.dumps(
        {"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    )


# ---------------------------------------------------------------- retries


def test_retries_503_then_succeeds_streaming_and_not() -> None:
    server = FakeOpenAIServer(answer=ANSWER)
    for stream in (True, False):
        recorder = Recorder(status(503), status(503), server)
        model, slept = backend(recorder)
        if stream:
            text, _done = split(list(model.stream(make_request())))
        else:
            text = model.complete(make_request()).text
        assert text == ANSWER
        assert len(recorder.requests) == 3
        assert slept == [0.5, 1.0]  # exponential backoff


def test_retry_after_is_honoured_on_429() -> None:
    recorder = Recorder(status(429, {"Retry-After": "3"}), FakeOpenAIServer(answer=ANSWER))
    model, slept = backend(recorder)
    assert model.complete(make_request()).text == ANSWER
    assert slept == [3.0]


def test_gives_up_after_max_retries_with_a_clear_error() -> None:
    recorder = Recorder(status(503))
    model, slept = backend(recorder, max_retries=2)
    with pytest.raises(LLMUnavailable, match=rf"{URL} answered 503: status 503 from the fake"):
        list(model.stream(make_request()))
    assert len(recorder.requests) == 3
    assert len(slept) == 2


def test_client_errors_are_not_retried_and_carry_the_server_message() -> None:
    def unknown_model(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"object": "error", "message": "The model `nope` does not exist."}
        )

    recorder = Recorder(unknown_model)
    model, slept = backend(recorder)
    with pytest.raises(LLMBackendError, match="404: The model `nope` does not exist") as e:
        model.complete(make_request())
    assert not isinstance(e.value, LLMUnavailable)
    assert (len(recorder.requests), slept) == (1, [])
    model, _ = backend(Recorder(status(401)))
    with pytest.raises(LLMBackendError, match="refused the API key"):
        model.complete(make_request())


def test_retries_stop_at_the_time_budget() -> None:
    recorder = Recorder(status(503, {"Retry-After": "5"}))
    model, slept = backend(recorder, max_retries=5)
    with pytest.raises(LLMUnavailable):
        model.complete(make_request(timeout_s=2.0))
    assert (len(recorder.requests), slept) == (1, [])


def test_no_retry_once_the_stream_has_started() -> None:
    broken = sse(
        chunk(role=True, content=""),
        chunk("Twenty"),
        chunk(" days"),
        error=httpx.ReadError("connection reset by peer"),
    )
    recorder = Recorder(broken, FakeOpenAIServer(answer="should never be asked"))
    model, slept = backend(recorder)
    stream = model.stream(make_request())
    assert [next(stream).delta, next(stream).delta] == ["Twenty", " days"]
    with pytest.raises(LLMBackendError, match="broke"):
        next(stream)
    assert (len(recorder.requests), slept) == (1, [])

    # Behind the guards the answer ends cleanly, marked as broken.
    recorder = Recorder(broken, FakeOpenAIServer(answer="should never be asked"))
    model, _ = backend(recorder)
    text, done = split(list(guard(model).stream(make_request())))
    assert done[0].completion is not None
    assert (text, done[0].completion.finish_reason) == ("Twenty days", "error")
    assert len(recorder.requests) == 1


# ---------------------------------------------------------------- server down, timeouts


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_down_is_llm_unavailable_naming_the_url() -> None:
    url = f"http://127.0.0.1:{dead_port()}/v1"
    slept: list[float] = []
    model = OpenAICompatChatModel(base_url=url, model="m", sleep=slept.append)
    for call in (model.complete, lambda r: list(model.stream(r))):
        with pytest.raises(LLMUnavailable, match=f"cannot reach the model server at {url}"):
            call(make_request())
    assert slept == [0.5, 1.0] * 2  # connection errors are retried first
    guarded = create_chat_model("openai", base_url=url, model="m", max_retries=0)
    with pytest.raises(LLMUnavailable, match=url):
        guarded.complete(make_request())


def test_no_model_configured_and_server_down_names_the_url() -> None:
    url = f"http://127.0.0.1:{dead_port()}/v1"
    model = create_chat_model("openai", base_url=url)
    with pytest.raises(LLMUnavailable, match=url):
        model.complete(make_request())


def test_read_timeout_before_the_first_token_is_llm_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    class SlowBody(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            raise httpx.ReadTimeout("timed out")
            yield b""

    for handler in (slow, lambda r: httpx.Response(200, stream=SlowBody())):
        recorder = Recorder(handler)
        model, slept = backend(recorder)
        with pytest.raises(LLMTimeout, match=URL):
            model.complete(make_request())
        with pytest.raises(LLMTimeout, match=URL):
            list(model.stream(make_request()))
        assert (len(recorder.requests), slept) == (2, [])


def test_a_stalled_stream_ends_with_finish_reason_timeout() -> None:
    class Slow(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield f"data: {chunk('Twenty')}\n\n".encode()
            time.sleep(3)
            yield f"data: {chunk(' days', 'stop')}\n\n".encode()

    model, _ = backend(lambda r: httpx.Response(200, stream=Slow()))
    start = time.monotonic()
    text, done = split(list(guard(model).stream(make_request(timeout_s=0.3))))
    assert done[0].completion is not None
    assert (text, done[0].completion.finish_reason) == ("Twenty", "timeout")
    assert time.monotonic() - start < 2


# ---------------------------------------------------------------- the wire format


def test_request_body_carries_params_seed_and_the_adapter_name() -> None:
    server = FakeOpenAIServer(answer=ANSWER)
    recorder = Recorder(server)
    model, _ = backend(recorder, api_key="sk-test")
    request = make_request(temperature=0.2, seed=42, max_tokens=50, stop=("\n\n",))
    list(model.stream(replace(request, model="hr-lora")))
    body = server.requests[-1]
    assert body["model"] == "hr-lora"  # vLLM serves LoRA adapters under their own names
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.2, 42, 50)
    assert body["stop"] == ["\n\n"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert recorder.requests[-1].headers["authorization"] == "Bearer sk-test"
    assert str(recorder.requests[-1].url) == f"{URL}/chat/completions"

    model.complete(make_request())
    assert server.requests[-1]["model"] == "qwen2.5-7b-instruct"
    assert server.requests[-1]["stream"] is False
    no_key, _ = backend(recorder)
    no_key.complete(make_request())
    assert "authorization" not in recorder.requests[-1].headers


def test_streams_the_llama_cpp_way_without_usage() -> None:
    model, _ = backend(
        sse(chunk(role=True), chunk("Twenty"), chunk(" days"), chunk(finish="length"), "[DONE]")
    )
    events = list(model.stream(make_request()))
    assert [e.delta for e in events if not e.done] == ["Twenty", " days"]
    final = events[-1].completion
    assert final is not None
    assert (final.text, final.finish_reason, final.completion_tokens) == (
        "Twenty days",
        "length",
        2,  # counted as chunks: this server sends no usage
    )
    assert final.ttft_s is not None


def test_usage_and_model_from_the_stream() -> None:
    server = FakeOpenAIServer(answer="one two three")
    model, _ = backend(Recorder(server))
    final = list(model.stream(make_request()))[-1].completion
    assert final is not None
    assert (final.model, final.completion_tokens) == ("qwen2.5-7b-instruct", 3)
    assert final.prompt_tokens


def test_a_stream_that_stops_early_or_reports_an_error_is_an_error() -> None:
    model, _ = backend(sse(chunk(role=True), chunk("Twenty")))
    with pytest.raises(LLMBackendError, match="ended the stream early"):
        list(model.stream(make_request()))
    model, _ = backend(sse(json.dumps({"error": {"message": "CUDA out of memory"}})))
    with pytest.raises(LLMBackendError, match="CUDA out of memory"):
        list(model.stream(make_request()))


def test_model_name_is_asked_of_the_server_once_when_not_configured() -> None:
    server = FakeOpenAIServer(answer=ANSWER, models=["Qwen/Qwen2.5-7B-Instruct", "hr-lora"])
    recorder = Recorder(server)
    model = create_chat_model(
        "openai", base_url="http://vllm.test:8000", transport=httpx.MockTransport(recorder)
    )
    model.complete(make_request())
    model.complete(make_request())
    assert [r.url.path for r in recorder.requests] == [
        "/v1/models",
        "/v1/chat/completions",
        "/v1/chat/completions",
    ]
    assert server.requests[-1]["model"] == "Qwen/Qwen2.5-7B-Instruct"


def test_base_url_gets_v1_only_when_it_has_no_path() -> None:
    assert normalise_base_url("http://vllm:8000") == "http://vllm:8000/v1"
    assert normalise_base_url("http://vllm:8000/") == "http://vllm:8000/v1"
    assert normalise_base_url("https://gw.example/openai/v1/") == "https://gw.example/openai/v1"
    with pytest.raises(ValueError, match="http"):
        normalise_base_url("vllm:8000")
