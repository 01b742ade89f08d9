"""The ingestion workers' life: start them once per data dir, recover what a crash
left, wake them when work is queued, warm the indexes when the queue drains, stop.

One process on a data dir runs the workers (a file lock decides which); the others
only queue jobs, which the worker process picks up from the database. With a remote
queue (Celery) jobs run in ``lantern worker`` processes instead (``work``) and every API
process only wakes them. Where the indexes are files one process writes (FAISS, BM25),
the workers take the same lock, so one of them writes and the others wait as
standbys; every other process opens the files as a replica (``replica``) that follows
the writer's commits. A replica never writes, so a document deleted through it leaves
its index entries to the writer, which sweeps entries no live document owns every
``SWEEP_SECONDS`` (searches drop them at once: they keep only chunks of ready documents).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from app.services.jobstore import SqlJobStore
from ingestion.errors import JobQueueError
from ingestion.queues.base import JobQueue

log = logging.getLogger(__name__)

#: Why an API process refuses a remote queue over milvus-lite (``start(serving=True)``).
SINGLE_WRITER = (
    "LANTERN_JOBS__KIND={kind} runs ingestion in `lantern worker` processes, which write the "
    "indexes; but milvus-lite keeps them in a database file that only one process can open, "
    "so this API process could not search beside a worker. Use a Milvus server "
    "(LANTERN_MILVUS__URI=http://host:19530), the faiss vector store (its files are shared: "
    "API processes follow the worker's writes), or LANTERN_JOBS__KIND=inline."
)
#: How often the writer of index files removes entries of documents deleted elsewhere.
SWEEP_SECONDS = 10.0


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
        make_queue: Callable[[Callable[[], None], int | None, Mapping[str, Any]], JobQueue],
        indexes: Callable[[], Sequence[_Index]],
        lock_path: Path,
        single_writer: bool = True,
        replicable: bool = False,
        kind: str = "",
    ) -> None:
        """``make_queue(on_idle, workers, context)`` builds the configured job queue
        (``workers``: None for the configured number; ``context``: what a remote queue
        takes, see ``work``). ``single_writer``: the indexes are files one process
        writes; ``replicable``: other processes can follow them (FAISS, BM25; not
        milvus-lite). ``kind`` names the queue in messages."""
        self._jobs = jobs
        self._make_queue = make_queue
        self._indexes = indexes
        self._lock_path = lock_path
        self._single_writer = single_writer
        self._replicable = replicable
        self._kind = kind
        #: This process opens the index files read-only and follows their writer.
        self.replica = False
        self._sweeper: threading.Thread | None = None
        self._swept = threading.Event()
        self._lock: FileLock | None = None
        self._pool: JobQueue | None = None
        self._runs_jobs = False

    @property
    def running(self) -> bool:
        """Whether this process runs the workers."""
        return self._runs_jobs

    @property
    def remote(self) -> bool:
        """Whether jobs run in ``lantern worker`` processes (known once started)."""
        return self._pool is not None and self._pool.remote

    @property
    def busy(self) -> int:
        """Jobs running in this process now."""
        return self._pool.busy if self._pool is not None else 0

    def start(self, threads: int | None = None, *, serving: bool = False) -> bool:
        """Start the worker pool, unless another process on this data dir already runs
        one (then it does the work), or jobs run in ``lantern worker`` processes (then
        this process only wakes them). Returns whether workers started here.

        Holding the data-dir lock means no other worker is alive, so every job left
        ``running`` was interrupted: it is requeued and its partial vectors removed.
        Idempotent: a second call while the pool runs does nothing. ``serving`` (an API
        process) refuses a remote queue over index files (``SINGLE_WRITER``).
        """
        if self._pool is not None:
            return self._runs_jobs
        pool = self._make_queue(self.warm_indexes, threads, {})
        if pool.remote:
            if serving and self._single_writer and not self._replicable:
                raise JobQueueError(SINGLE_WRITER.format(kind=self._kind))
            self.replica = self._single_writer
            pool.start()  # only sends wake-ups from here
            self._pool = pool
            return False
        if not self._take_lock(wait=None):
            log.info("another Lantern process is running the workers for this data dir")
            self.replica = self._single_writer and self._replicable
            return False
        self.recover()
        self._pool = pool
        self._runs_jobs = True
        pool.start()
        self._start_sweeping()
        return True

    def check_serving(self) -> None:
        """Raise ``JobQueueError`` where an API process may not run beside the configured
        workers (``SINGLE_WRITER``); ``lantern serve`` asks before it listens."""
        unshareable = self._single_writer and not self._replicable
        if unshareable and self._make_queue(self.warm_indexes, None, {}).remote:
            raise JobQueueError(SINGLE_WRITER.format(kind=self._kind))

    def work(
        self,
        concurrency: int | None,
        stop: threading.Event,
        *,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """Run this process as an ingestion worker (``lantern worker``) until ``stop`` is
        set, calling ``on_ready`` once it runs jobs. Over index files it first waits for
        the data-dir lock, as a standby while another worker holds it; once held, the
        jobs left running were interrupted."""
        context: dict[str, Any] = {"consume": True}
        if not self._single_writer:
            # Workers side by side: each requeues the jobs of dead ones (stale leases).
            # The lock holder needs not: every job running is its own.
            context["recover"] = lambda: self._jobs.recover(exclusive=False)
        pool = self._make_queue(self.warm_indexes, concurrency, context)
        if not pool.remote:
            raise JobQueueError(
                f"LANTERN_JOBS__KIND={self._kind} runs ingestion inside `lantern serve`; "
                "`lantern worker` needs LANTERN_JOBS__KIND=celery"
            )
        if self._single_writer and not self._take_lock(wait=stop):
            return
        self.recover()
        self._pool = pool
        self._runs_jobs = True
        pool.start()
        self._start_sweeping()
        if on_ready is not None:
            on_ready()
        stop.wait()
        self.stop()

    def _take_lock(self, *, wait: threading.Event | None) -> bool:
        """Take the data-dir worker lock: at once, or (``wait``) until it is set."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._lock_path))
        told = False
        while True:
            try:
                lock.acquire(timeout=0 if wait is None else 0.5)
            except Timeout:
                if wait is None or wait.is_set():
                    return False
                if not told:
                    log.warning(
                        "another worker writes the indexes of this data dir; waiting as a standby"
                    )
                    told = True
                continue
            self._lock = lock
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

    def sweep(self) -> int:
        """The writer: remove index entries of documents no longer in the database
        (deleted through a replica); whatever their status, those it holds are left to
        their jobs. Returns the entries removed."""
        live = self._jobs.existing_document_ids()
        removed = 0
        for index in self._indexes():
            gone = index.document_ids() - live
            if gone:
                removed += index.delete_documents(gone)
                index.flush()
        return removed

    def _start_sweeping(self) -> None:
        if not (self._single_writer and self._replicable) or self._sweeper is not None:
            return
        self._swept.clear()

        def loop() -> None:
            while not self._swept.wait(SWEEP_SECONDS):
                try:
                    if n := self.sweep():
                        log.info("removed %d index entries of deleted documents", n)
                except Exception:  # retried at the next sweep
                    log.exception("could not sweep the indexes")

        self._sweeper = threading.Thread(target=loop, name="index-sweep", daemon=True)
        self._sweeper.start()

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
        if self._sweeper is not None:
            self._swept.set()
            self._sweeper.join()
            self._sweeper = None
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
            self._runs_jobs = False
        if self._lock is not None:
            self._lock.release()
            self._lock = None
