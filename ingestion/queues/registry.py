"""Job queue registry: the settings' ``kind`` picks how jobs run, imported only when used."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ingestion.errors import JobQueueError
from ingestion.queues.base import JobQueue
from retrieval.backends import Backend, Registry

REGISTRY: Registry[JobQueue] = Registry(
    "job queue",
    {
        "inline": Backend("ingestion.queues.inline", "InlineJobQueue", None),
        "fake": Backend("ingestion.queues.testing", "FakeJobQueue", None),
        # Reserved: picked up as soon as ingestion/queues/celery_queue.py exists.
        "celery": Backend("ingestion.queues.celery_queue", "CeleryJobQueue", "celery"),
    },
    error=JobQueueError,
    fallback_hint="; use 'inline'",
)


def available_kinds() -> list[str]:
    """Every kind the registry knows (whether or not its dependencies are installed)."""
    return REGISTRY.kinds()


def create_job_queue(
    kind: str,
    claim: Callable[[], str | None],
    run: Callable[[str], None],
    *,
    on_idle: Callable[[], None] | None = None,
    context: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> JobQueue:
    """Build the job queue for ``kind`` over ``claim``/``run``/``on_idle`` (see
    ``ingestion.queues.base``), passing ``kwargs`` (its settings) to its constructor."""
    return REGISTRY.create(kind, context, claim=claim, run=run, on_idle=on_idle, **kwargs)
