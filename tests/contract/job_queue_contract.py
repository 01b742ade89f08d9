"""Behaviour every ``JobQueue`` backend must show: submit, claim, run, wake, stop.

Use it by subclassing and providing one fixture, ``queue_factory``: ``(claim, run,
on_idle) -> JobQueue``. Jobs come from ``Jobs``, an in-memory queue whose ``claim`` hands
each id out once, as ``SqlJobStore.claim_next`` does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import pytest

from ingestion.queues.base import JobQueue

WAIT_S = 10.0


class QueueFactory(Protocol):
    def __call__(
        self,
        claim: Callable[[], str | None],
        run: Callable[[str], None],
        on_idle: Callable[[], None] | None,
    ) -> JobQueue: ...


class Jobs:
    """Queued job ids; ``claim`` takes one atomically; ``run`` records it."""

    def __init__(self, *ids: str) -> None:
        self._queued = list(ids)
        self.ran: list[str] = []
        self.idle_calls = 0
        self._lock = threading.Lock()

    def submit(self, *ids: str) -> None:
        with self._lock:
            self._queued.extend(ids)

    def claim(self) -> str | None:
        with self._lock:
            return self._queued.pop(0) if self._queued else None

    def run(self, job_id: str) -> None:
        with self._lock:
            self.ran.append(job_id)

    def on_idle(self) -> None:
        with self._lock:
            self.idle_calls += 1


def eventually(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


class JobQueueContract:
    @pytest.fixture
    def make_queue(self, queue_factory: QueueFactory) -> Iterator[Callable[..., JobQueue]]:
        started: list[JobQueue] = []

        def make(
            jobs: Jobs,
            run: Callable[[str], None] | None = None,
            claim: Callable[[], str | None] | None = None,
        ) -> JobQueue:
            queue = queue_factory(claim or jobs.claim, run or jobs.run, jobs.on_idle)
            started.append(queue)
            return queue

        yield make
        for queue in started:
            queue.stop(timeout=WAIT_S)

    def test_start_runs_every_queued_job_exactly_once(
        self, make_queue: Callable[..., JobQueue]
    ) -> None:
        ids = [f"job-{i}" for i in range(20)]
        jobs = Jobs(*ids)
        make_queue(jobs).start()
        assert eventually(lambda: len(jobs.ran) == len(ids))
        time.sleep(0.05)
        assert sorted(jobs.ran) == sorted(ids)

    def test_a_job_submitted_later_runs_after_wake(
        self, make_queue: Callable[..., JobQueue]
    ) -> None:
        jobs = Jobs()
        queue = make_queue(jobs)
        queue.start()
        jobs.submit("late")
        queue.wake()
        assert eventually(lambda: jobs.ran == ["late"])

    def test_the_idle_hook_runs_once_each_time_the_queue_drains(
        self, make_queue: Callable[..., JobQueue]
    ) -> None:
        jobs = Jobs("a", "b")
        queue = make_queue(jobs)
        queue.start()
        assert eventually(lambda: jobs.idle_calls == 1)
        jobs.submit("c")
        queue.wake()
        assert eventually(lambda: jobs.idle_calls == 2)
        queue.wake()  # nothing ran since: no new call
        time.sleep(0.2)
        assert jobs.idle_calls == 2
        assert sorted(jobs.ran) == ["a", "b", "c"]

    def test_nothing_runs_before_start(self, make_queue: Callable[..., JobQueue]) -> None:
        jobs = Jobs("a")
        queue = make_queue(jobs)
        queue.wake()
        time.sleep(0.1)
        assert jobs.ran == []

    def test_a_job_that_raises_does_not_stop_the_others(
        self, make_queue: Callable[..., JobQueue]
    ) -> None:
        jobs = Jobs("bad", "good")

        def run(job_id: str) -> None:
            if job_id == "bad":
                raise RuntimeError("escaped its runner")
            jobs.run(job_id)

        make_queue(jobs, run=run).start()
        assert eventually(lambda: jobs.ran == ["good"])

    def test_a_failing_claim_is_retried(self, make_queue: Callable[..., JobQueue]) -> None:
        jobs = Jobs("a")
        failures = [RuntimeError("database is locked")]

        def claim() -> str | None:
            if failures:
                raise failures.pop()
            return jobs.claim()

        queue = make_queue(jobs, claim=claim)
        queue.start()
        queue.wake()
        assert eventually(lambda: jobs.ran == ["a"])

    def test_stop_waits_for_the_running_job_and_starts_no_other(
        self, make_queue: Callable[..., JobQueue]
    ) -> None:
        jobs = Jobs("slow")

        def run(job_id: str) -> None:
            time.sleep(0.2)
            jobs.run(job_id)

        queue = make_queue(jobs, run=run)
        queue.start()
        assert eventually(lambda: queue.busy == 1 or jobs.ran == ["slow"])
        queue.stop(timeout=WAIT_S)
        assert jobs.ran == ["slow"]
        assert queue.busy == 0
        jobs.submit("after")
        queue.wake()
        time.sleep(0.2)
        assert jobs.ran == ["slow"]
