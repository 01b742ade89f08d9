"""Every job queue kind passes the job queue contract (Celery joins when it exists)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ingestion.errors import JobQueueError
from ingestion.queues.base import JobQueue
from ingestion.queues.registry import available_kinds, create_job_queue
from tests.contract.job_queue_contract import JobQueueContract, QueueFactory


class TestInline(JobQueueContract):
    @pytest.fixture
    def queue_factory(self) -> QueueFactory:
        def make(
            claim: Callable[[], str | None],
            run: Callable[[str], None],
            on_idle: Callable[[], None] | None,
        ) -> JobQueue:
            return create_job_queue(
                "inline", claim, run, on_idle=on_idle, workers=3, poll_seconds=0.05
            )

        return make


class TestFake(JobQueueContract):
    @pytest.fixture
    def queue_factory(self) -> QueueFactory:
        def make(
            claim: Callable[[], str | None],
            run: Callable[[str], None],
            on_idle: Callable[[], None] | None,
        ) -> JobQueue:
            return create_job_queue("fake", claim, run, on_idle=on_idle)

        return make


def test_the_registry_lists_every_kind_and_explains_missing_ones() -> None:
    assert available_kinds() == ["celery", "fake", "inline"]
    with pytest.raises(JobQueueError, match=r"'celery' job queue is not available.*'inline'"):
        create_job_queue("celery", lambda: None, lambda _: None)
    with pytest.raises(JobQueueError, match="unknown job queue kind 'rq'"):
        create_job_queue("rq", lambda: None, lambda _: None)
