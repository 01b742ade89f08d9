"""The job queue protocol: workers that claim queued ingestion jobs and run them.

Every implementation is built with ``claim`` (returns the id of a job it has atomically
taken, or None), ``run`` (executes one job and must not raise) and ``on_idle`` (called once
each time the queue drains after jobs ran, e.g. to warm search indexes).
"""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    """Errors: ``JobQueueError`` when the queue cannot be set up."""

    @property
    def remote(self) -> bool:
        """Whether jobs run in worker processes of their own (``lantern worker``): then
        ``start`` runs jobs only where the queue was built with ``consume=True``, and
        elsewhere (the API) the queue only wakes those workers."""

    def start(self) -> None:
        """Begin claiming and running jobs."""

    def wake(self) -> None:
        """Tell idle workers that new jobs are queued."""

    @property
    def busy(self) -> int:
        """How many jobs are running now."""

    def stop(self, timeout: float | None = None) -> None:
        """Finish the running jobs, then stop; no job starts after it returns."""
