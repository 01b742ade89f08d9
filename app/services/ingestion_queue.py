"""The ingestion workers' life: start them once per data dir, recover what a crash
left, wake them when work is queued, warm the indexes when the queue drains, stop.

One process on a data dir runs the workers (a file lock decides which); the others
only queue jobs, which the worker process picks up from the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from filelock import FileLock, Timeout

from app.services.jobstore import SqlJobStore
from ingestion.queues.base import JobQueue

log = logging.getLogger(__name__)


class _Index(Protocol):
    def document_ids(self) -> set[str]: ...
    def delete_documents(self, document_ids: Sequence[str] | set[str]) -> int: ...
    def flush(self) -> None: ...
    def count(self) -> int: ...


class IngestionQueue:
    def __init__(
        self,
        *,
        jobs: SqlJobStore,
        make_queue: Callable[[Callable[[], None], int | None], JobQueue],
        indexes: Callable[[], Sequence[_Index]],
        lock_path: Path,
    ) -> None:
        """``make_queue(on_idle, workers)`` builds the configured job queue (``workers``:
        None for the configured number)."""
        self._jobs = jobs
        self._make_queue = make_queue
        self._indexes = indexes
        self._lock_path = lock_path
        self._lock: FileLock | None = None
        self._pool: JobQueue | None = None

    @property
    def running(self) -> bool:
        """Whether this process runs the workers."""
        return self._pool is not None

    @property
    def busy(self) -> int:
        """Jobs running in this process now."""
        return self._pool.busy if self._pool is not None else 0

    def start(self, threads: int | None = None) -> bool:
        """Start the worker pool, unless another process on this data dir already runs
        one (then it does the work). Returns whether workers started here.

        Holding the data-dir lock means no other worker is alive, so every job left
        ``running`` was interrupted: it is requeued and its partial vectors removed.
        Idempotent: a second call while the pool runs does nothing.
        """
        if self._pool is not None:
            return True
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("another Lantern process is running the workers for this data dir")
            return False
        self._lock = lock
        self.recover()
        self._pool = self._make_queue(self.warm_indexes, threads)
        self._pool.start()
        return True

    def recover(self) -> None:
        """Requeue interrupted jobs, then drop index entries and blobs no live document owns."""
        exclusive = self._lock is not None
        self._jobs.recover(exclusive=exclusive)
        live = self._jobs.live_document_ids(include_processing=not exclusive)
        for index in self._indexes():
            orphans = index.document_ids() - live
            if orphans:
                n = index.delete_documents(orphans)
                index.flush()
                log.warning(
                    "removed %d orphan %s entries of %d documents",
                    n,
                    type(index).__name__,
                    len(orphans),
                )
        if exclusive:
            self._jobs.gc_blobs()

    def wake(self) -> None:
        """Tell idle workers that new jobs are queued (nothing if they run elsewhere)."""
        if self._pool is not None:
            self._pool.wake()

    def warm_indexes(self) -> None:
        """Build what the next search would build lazily (the BM25 models after writes)."""
        for index in self._indexes():
            warm = getattr(index, "warm", None)
            if callable(warm):
                started = time.perf_counter()
                warm()
                log.info("%s warmed in %.2f s", type(index).__name__, time.perf_counter() - started)

    def index_sizes(self) -> dict[str, int]:
        """Entries in each index, by kind (for status pages)."""
        names = ("vectors", "lexical")
        return {n: index.count() for n, index in zip(names, self._indexes(), strict=False)}

    def stop(self) -> None:
        """Finish the running jobs, stop the workers and give up the data-dir lock."""
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
