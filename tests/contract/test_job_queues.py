"""Every job queue kind passes the job queue contract (Celery on the local Redis)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ingestion.errors import JobQueueError
from ingestion.queues.base import JobQueue
from ingestion.queues.registry import available_kinds, create_job_queue
from tests.contract.brokers import Broker, rabbitmq_broker, redis_broker
from tests.contract.job_queue_contract import JobQueueContract, QueueFactory


def factory(kind: str, context: dict[str, object] | None = None, **options: object) -> QueueFactory:
    """Build ``kind``'s queue over the contract's jobs, with ``options`` (its settings)."""

    def make(
        claim: Callable[[], str | None],
        run: Callable[[str], None],
        on_idle: Callable[[], None] | None,
    ) -> JobQueue:
        return create_job_queue(kind, claim, run, on_idle=on_idle, context=context, **options)

    return make


class TestInline(JobQueueContract):
    @pytest.fixture
    def queue_factory(self) -> QueueFactory:
        return factory("inline", workers=3, poll_seconds=0.05)


class TestFake(JobQueueContract):
    @pytest.fixture
    def queue_factory(self) -> QueueFactory:
        return factory("fake")


class TestCelery(JobQueueContract):
    """A worker consuming in this process (``consume``), as ``lantern worker`` runs one."""

    @pytest.fixture(params=["redis", "rabbitmq"])
    def broker(self, request: pytest.FixtureRequest) -> Iterator[Broker]:
        yield from (redis_broker() if request.param == "redis" else rabbitmq_broker())

    @pytest.fixture
    def queue_factory(self, broker: Broker) -> QueueFactory:
        return factory(
            "celery",
            {"consume": True},
            broker_url=broker.url,
            key_prefix=broker.key_prefix,
            queue=broker.queue,
            concurrency=3,
        )


def test_the_registry_lists_every_kind() -> None:
    assert available_kinds() == ["celery", "fake", "inline"]
    with pytest.raises(JobQueueError, match="unknown job queue kind 'rq'"):
        create_job_queue("rq", lambda: None, lambda _: None)
