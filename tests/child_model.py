"""A chat model run in a child Python process, so a crash in native code fails one test.

llama.cpp (or any native model runtime) that segfaults in-process takes the whole pytest
run with it. ``ChildProcessChatModel`` builds the model in a fresh interpreter
(``python -X faulthandler -m tests.child_model FACTORY KWARGS``; spawned, not forked,
so no lock or thread state of the test process is inherited) and speaks JSON lines to
it. The child runs the real code path, guards included; the parent only relays::

    model = ChildProcessChatModel("llm.registry:create_chat_model",
                                  kind="llamacpp", model_path=str(gguf))
    model.complete(request)          # as the model in the child answered
    for event in model.stream(request): ...
    model.close()

If the child dies (a signal, an exit) or stops answering, the call raises
``ChildProcessDied`` naming the signal, with the tail of the child's stderr (the
faulthandler traceback of the crash); the next call starts a fresh child. Errors the
model raises in the child come back as the same ``llm.errors`` class.

Protocol (one JSON object a line). To the child: ``{"id", "op": "complete"|"stream",
"request"}`` and ``{"id", "op": "cancel"}`` (stop that stream, as a caller closing it
would). From the child: ``{"id", "event"}`` per stream event, ``{"id", "result"}`` for
a completion, then ``{"id", "end": true}`` or ``{"id", "error"}``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from llm import errors
from llm.base import ChatMessage, ChatRequest, Completion, GenerationParams, Source, StreamEvent

ROOT = Path(__file__).resolve().parents[1]
#: Seconds the child may take for one message: the first one includes loading the model.
ANSWER_S = 120.0


class ChildProcessDied(Exception):
    """The model's process died or stopped answering. Deliberately not an ``LLMError``:
    the guards must not turn a crash into a polite ``finish_reason``."""


class ChildModelError(Exception):
    """The model in the child raised something other than an ``llm.errors`` exception."""


# ---------------------------------------------------------------- wire format


def request_to_json(request: ChatRequest) -> dict[str, Any]:
    return dataclasses.asdict(request)


def request_from_json(data: dict[str, Any]) -> ChatRequest:
    params = dict(data["params"], stop=tuple(data["params"]["stop"]))
    return ChatRequest(
        messages=[ChatMessage(**m) for m in data["messages"]],
        question=data["question"],
        sources=tuple(Source(**s) for s in data["sources"]),
        params=GenerationParams(**params),
        model=data["model"],
    )


def event_from_json(data: dict[str, Any]) -> StreamEvent:
    completion = data["completion"]
    return StreamEvent(
        delta=data["delta"],
        done=data["done"],
        completion=Completion(**completion) if completion is not None else None,
    )


def error_from_json(data: dict[str, Any]) -> Exception:
    cls = getattr(errors, data["type"], None)
    if isinstance(cls, type) and issubclass(cls, errors.LLMError):
        return cls(data["message"])
    return ChildModelError(f"{data['type']}: {data['message']}\n{data['traceback']}")


# ---------------------------------------------------------------- the parent side


def describe_exit(returncode: int) -> str:
    """``"died from SIGSEGV (signal 11)"`` or ``"exited with status 3"``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        return f"died from {name} (signal {-returncode})"
    return f"exited with status {returncode}"


def child_env() -> dict[str, str]:
    """This environment, with the repository importable (``tests.*`` included)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


class _Child:
    """One child process: its pipes, a thread reading its answers, its stderr file."""

    def __init__(self, factory: str, kwargs: dict[str, Any]) -> None:
        # A file, not a pipe: nobody has to drain it, and it outlives the process.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the child)
        command = ["-X", "faulthandler", "-m", "tests.child_model", factory, json.dumps(kwargs)]
        self.proc = subprocess.Popen(
            [sys.executable, *command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=ROOT,
            env=child_env(),
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, name="child-model-reader", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)  # EOF: the child is gone

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died; the next receive says how

    def receive(self, timeout_s: float) -> dict[str, Any]:
        try:
            message = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            self.kill()
            raise ChildProcessDied(
                f"the model process (pid {self.proc.pid}) did not answer within "
                f"{timeout_s:.0f}s and was killed; its stderr:\n{self.stderr_tail()}"
            ) from None
        if message is None:
            returncode = self.proc.wait()
            raise ChildProcessDied(
                f"the model process (pid {self.proc.pid}) {describe_exit(returncode)}; "
                f"its stderr:\n{self.stderr_tail()}"
            )
        return message

    def stderr_tail(self, chars: int = 4000) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-chars:] or "(empty)"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # EOF: the child closes its model and exits
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.stderr.close()


class ChildProcessChatModel:
    """The model ``factory(**kwargs)`` (``"module:function"``) would build, run in a child."""

    def __init__(self, factory: str, *, answer_s: float = ANSWER_S, **kwargs: Any) -> None:
        self.name = f"child:{factory}"
        self._factory = factory
        self._kwargs = kwargs
        self._answer_s = answer_s
        self._child: _Child | None = None
        self._ids = 0
        self._lock = threading.Lock()  # one request at a time, as one child serves them

    def _start(self) -> _Child:
        if self._child is None:
            self._child = _Child(self._factory, self._kwargs)
            hello = self._receive(self._child)
            self.name = hello["name"]
        return self._child

    def _receive(self, child: _Child) -> dict[str, Any]:
        try:
            return child.receive(self._answer_s)
        except ChildProcessDied:
            child.stderr.close()
            self._child = None  # the next request starts a fresh child
            raise

    def _request(self, op: str, request: ChatRequest) -> tuple[_Child, int]:
        child = self._start()
        self._ids += 1
        child.send({"id": self._ids, "op": op, "request": request_to_json(request)})
        return child, self._ids

    def complete(self, request: ChatRequest) -> Completion:
        with self._lock:
            child, _ = self._request("complete", request)
            message = self._receive(child)
        if "error" in message:
            raise error_from_json(message["error"])
        return Completion(**message["result"])

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        with self._lock:
            child, rid = self._request("stream", request)
            finished = False
            try:
                while True:
                    message = self._receive(child)
                    if "event" in message:
                        yield event_from_json(message["event"])
                    elif "error" in message:
                        finished = True
                        raise error_from_json(message["error"])
                    else:
                        finished = True
                        return
            finally:
                if not finished and self._child is child:
                    # Abandoned: the child closes its stream too, then we skip to its end.
                    child.send({"id": rid, "op": "cancel"})
                    while not {"end", "error"} & set(self._receive(child)):
                        pass

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.close()
                self._child = None


# ---------------------------------------------------------------- the child side


def _load(factory: str) -> Any:
    module, _, attr = factory.partition(":")
    return getattr(importlib.import_module(module), attr)


def _error(e: BaseException) -> dict[str, Any]:
    return {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()}


def serve(factory: str, kwargs: dict[str, Any], inp: IO[bytes], out: IO[bytes]) -> None:
    """Answer requests from ``inp`` on ``out`` until ``inp`` ends (see the module docs)."""

    def write(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    model = _load(factory)(**kwargs)
    write({"name": model.name})
    work: queue.Queue[dict[str, Any] | None] = queue.Queue()
    cancelled: set[int] = set()

    def read() -> None:
        for line in inp:
            message = json.loads(line)
            if message["op"] == "cancel":
                cancelled.add(message["id"])
            else:
                work.put(message)
        work.put(None)

    threading.Thread(target=read, name="child-model-commands", daemon=True).start()
    while (message := work.get()) is not None:
        rid = message["id"]
        try:
            request = request_from_json(message["request"])
            if message["op"] == "complete":
                write({"id": rid, "result": dataclasses.asdict(model.complete(request))})
                continue
            events = model.stream(request)
            try:
                for event in events:
                    if rid in cancelled:
                        break
                    write({"id": rid, "event": dataclasses.asdict(event)})
            finally:
                events.close()
            write({"id": rid, "end": True})
        except Exception as e:
            write({"id": rid, "error": _error(e)})
    close = getattr(model, "close", None)
    if callable(close):
        close()


def main() -> None:
    # The protocol gets the real stdout; anything native code prints goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.argv[1], json.loads(sys.argv[2]), sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
