"""A crash in a chat model's native code fails the test that met it, not the whole run.

The models here run in a child process (``tests.child_model``) and crash on request,
reading address 0 the way a llama.cpp built for another CPU does in its first decode.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm.base import ChatRequest, Completion, StreamEvent
from llm.errors import LLMUnavailable
from llm.testing import FakeChatModel
from tests.child_model import ChildProcessChatModel, ChildProcessDied, child_env, describe_exit
from tests.contract.chat_model_contract import make_request

FACTORY = "tests.unit.test_child_model:crashing_model"


class CrashingModel:
    """Answers with its pid, word by word; the question says how to misbehave instead."""

    name = "crashing"

    def complete(self, request: ChatRequest) -> Completion:
        return FakeChatModel(default=self._answer(request)).complete(request)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        deltas = [word + " " for word in self._answer(request).split()]
        for delta in deltas:
            yield StreamEvent(delta=delta)
            if request.question == "crash mid-stream":
                segfault()
        yield StreamEvent(done=True, completion=Completion("".join(deltas), "stop", self.name))

    @staticmethod
    def _answer(request: ChatRequest) -> str:
        if request.question == "crash":
            segfault()
        if request.question == "hang":
            time.sleep(60)
        if request.question == "unavailable":
            raise LLMUnavailable("the model server is down")
        return f"answered by pid {os.getpid()} " + "and more " * 20


def segfault() -> None:
    ctypes.string_at(0)  # an invalid read: SIGSEGV, as from a bad native build


def crashing_model() -> CrashingModel:
    return CrashingModel()


@pytest.fixture
def model() -> Iterator[ChildProcessChatModel]:
    model = ChildProcessChatModel(FACTORY)
    yield model
    model.close()


def test_a_segfault_fails_the_call_with_the_signal_and_the_childs_stderr(
    model: ChildProcessChatModel,
) -> None:
    with pytest.raises(ChildProcessDied) as died:
        model.complete(make_request(question="crash"))
    message = str(died.value)
    assert "died from SIGSEGV (signal 11)" in message
    assert "Fatal Python error: Segmentation fault" in message  # faulthandler, in the child
    assert "segfault" in message  # ... with the child's stack


def test_a_segfault_mid_stream_ends_the_stream_with_the_signal(
    model: ChildProcessChatModel,
) -> None:
    deltas: list[str] = []
    with pytest.raises(ChildProcessDied, match="SIGSEGV"):
        deltas.extend(e.delta for e in model.stream(make_request(question="crash mid-stream")))
    assert deltas == ["answered "]


def test_the_request_after_a_crash_gets_a_fresh_child(model: ChildProcessChatModel) -> None:
    first = model.complete(make_request()).text
    with pytest.raises(ChildProcessDied):
        model.complete(make_request(question="crash"))
    second = model.complete(make_request()).text
    assert first.split()[3] != second.split()[3], "a new process answers"


def test_a_child_that_stops_answering_is_killed_and_fails_the_call() -> None:
    model = ChildProcessChatModel(FACTORY, answer_s=2)
    model.complete(make_request())  # started and answering
    with pytest.raises(ChildProcessDied, match="did not answer within 2s and was killed"):
        model.complete(make_request(question="hang"))
    model.close()


def test_model_errors_come_back_as_the_same_llm_error(model: ChildProcessChatModel) -> None:
    with pytest.raises(LLMUnavailable, match="the model server is down"):
        model.complete(make_request(question="unavailable"))
    assert model.complete(make_request()).text.startswith("answered by pid")


def test_streams_relay_the_childs_events_and_can_be_abandoned(
    model: ChildProcessChatModel,
) -> None:
    events = list(model.stream(make_request(max_tokens=2000)))
    assert events[-1].done
    assert events[-1].completion is not None
    assert "".join(e.delta for e in events) == events[-1].completion.text
    stream = iter(model.stream(make_request(max_tokens=2000)))
    assert next(stream).delta == "answered "
    stream.close()  # type: ignore[attr-defined]
    assert model.complete(make_request()).text.startswith("answered by pid")


def test_describe_exit_names_the_signal_or_the_status() -> None:
    assert describe_exit(-11) == "died from SIGSEGV (signal 11)"
    assert describe_exit(-6) == "died from SIGABRT (signal 6)"
    assert describe_exit(3) == "exited with status 3"


def test_a_crash_is_one_failing_test_and_the_run_goes_on(tmp_path: Path) -> None:
    tests = tmp_path / "test_crash_run.py"
    tests.write_text(
        textwrap.dedent(
            f"""
            from tests.child_model import ChildProcessChatModel
            from tests.contract.chat_model_contract import make_request

            def test_crashes():
                ChildProcessChatModel({FACTORY!r}).complete(make_request(question="crash"))

            def test_after_the_crash():
                assert True
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr  # tests failed; pytest did not die
    assert "1 failed, 1 passed" in run.stdout
    assert "died from SIGSEGV" in run.stdout
