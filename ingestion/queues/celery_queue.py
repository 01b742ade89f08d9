"""The ``celery`` job queue: `lantern worker` processes woken through a Celery broker.

The database stays the queue of record: a message carries no job, only "look for
work". The task claims jobs with the same atomic ``claim`` as the inline threads and
runs them until none is left, so attempts, leases and the failed state with its
reason are the job store's, whichever worker ran the job. A lost message loses
nothing: every worker also wakes itself periodically (see ``IngestionQueue.work``).

The API process builds this queue with ``consume=False``: ``wake()`` sends a message and
``start()`` runs nothing. ``lantern worker`` builds it with ``consume=True``: ``start()``
runs a Celery worker in a thread of this process, its tasks in a pool of threads that
share the process's models and indexes (one writer process per index directory).
Messages are acknowledged late, after the task, one prefetched at a time; the message
of a worker that dies goes back to the queue (RabbitMQ: when its connection drops;
Redis: after the transport's visibility timeout). Nothing waits on that: the job it
woke for is requeued from the database (the lock a standby takes over, or the lease).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.worker import WorkController
from celery.worker import state as worker_state
from kombu.utils.url import maybe_sanitize_url

from ingestion.errors import JobQueueError
from ingestion.queues._runs import Runs

log = logging.getLogger(__name__)

#: The one task: claim and run queued jobs until none is left.
TASK = "lantern.ingest.wake"
CLAIM_RETRIES = 3
CLAIM_RETRY_S = 0.2


def celery_app(broker_url: str, *, queue: str, key_prefix: str = "") -> Celery:
    """A Celery app for ``broker_url`` (Redis or RabbitMQ) with late acknowledgement."""
    options: dict[str, Any] = {}
    if key_prefix and broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
        options["global_keyprefix"] = key_prefix
    app = Celery("lantern", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queue,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
    )
    return app


class CeleryJobQueue:
    """A ``JobQueue`` whose jobs run in worker processes (``remote``); see the module."""

    remote = True

    def __init__(
        self,
        claim: Callable[[], str | None],
        run: Callable[[str], None],
        *,
        on_idle: Callable[[], None] | None = None,
        broker_url: str,
        queue: str = "lantern-ingest",
        key_prefix: str = "",
        concurrency: int = 2,
        check_seconds: float = 10.0,
        consume: bool = False,
        recover: Callable[[], object] | None = None,
    ) -> None:
        """``consume``: run jobs in this process (``lantern worker``); ``recover`` (requeue
        jobs of dead workers) is then called every ``check_seconds``, each followed by a
        wake-up, so no job waits on a lost message or a dead worker for longer."""
        self._claim = claim
        self._runs = Runs(run, on_idle)
        self._queue = queue
        self._concurrency = concurrency
        self._check_seconds = check_seconds
        self._recover = recover
        self.consume = consume
        self._app = celery_app(broker_url, queue=queue, key_prefix=key_prefix)
        self._app.task(name=TASK, acks_late=True, shared=False)(self._drain)
        self._stopping = threading.Event()
        self._send_lock = threading.Lock()
        self._wanted = threading.Event()
        self._sender: threading.Thread | None = None
        self._closed = False
        self._worker: WorkController | None = None
        self._thread: threading.Thread | None = None
        self._checker: threading.Thread | None = None

    def start(self) -> None:
        """Run a worker in this process when built with ``consume``; else nothing."""
        if not self.consume or self._thread is not None or self._stopping.is_set():
            return
        try:
            with self._app.connection() as conn:
                conn.ensure_connection(max_retries=1, timeout=5)
        except Exception as e:
            url = maybe_sanitize_url(self._app.conf.broker_url)  # no password
            raise JobQueueError(f"the Celery broker at {url} does not answer: {e}") from e
        # The pool's threads look tasks up in the default app: make it this one (one
        # consuming queue per process).
        self._app.set_default()
        self._worker = self._app.WorkController(
            hostname=f"lantern@{socket.gethostname()}.{os.getpid()}",
            pool_cls="threads",
            concurrency=self._concurrency,
            queues=[self._queue],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel=logging.WARNING,
        )
        self._thread = threading.Thread(target=self._serve, name="lantern-celery", daemon=True)
        self._thread.start()
        self._checker = threading.Thread(target=self._check, name="lantern-check", daemon=True)
        self._checker.start()
        self.wake()  # what was queued while no worker ran

    def wake(self) -> None:
        """Have a wake-up sent, by a thread of its own: an upload never waits on the
        broker, and a burst of wakes is a message or two."""
        with self._send_lock:
            if self._closed:
                return
            self._wanted.set()
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_wanted, name="lantern-wake", daemon=True
                )
                self._sender.start()

    def _send_wanted(self) -> None:
        while True:
            self._wanted.wait()
            if self._closed:
                return
            self._wanted.clear()
            self._send()

    def _send(self) -> None:
        try:
            self._app.send_task(TASK, queue=self._queue, retry=False)
        except Exception as e:  # the broker is down: a worker's periodic check finds them
            log.warning("could not wake the Celery workers (%s); jobs stay queued", e)

    @property
    def busy(self) -> int:
        return self._runs.busy

    def stop(self, timeout: float | None = None) -> None:
        """Finish the running jobs (no new one starts), stop the worker, close connections."""
        self._stopping.set()
        worker, thread = self._worker, self._thread
        if worker is not None and thread is not None:
            # The worker stops itself (a warm shutdown, in its own thread: the broker
            # connection is not thread-safe) at its loop's next turn, which a message
            # brings about at once (the next worker runs it).
            worker_state.should_stop = 0
            self._send()
            thread.join(timeout)
            worker_state.should_stop = None
        if self._checker is not None:
            self._checker.join(timeout)
        with self._send_lock:
            self._closed = True
            self._wanted.set()
            sender, self._sender = self._sender, None
        if sender is not None:
            sender.join(timeout)  # a wake-up being sent; those wanted after are dropped
        self._worker = self._thread = self._checker = None
        self._app.close()

    def _serve(self) -> None:
        try:
            assert self._worker is not None
            self._worker.start()
        except Exception:
            log.exception("the Celery worker stopped")

    def _check(self) -> None:
        while not self._stopping.wait(self._check_seconds):
            if self._recover is not None:
                try:
                    self._recover()
                except Exception:
                    log.exception("requeueing the jobs of dead workers failed")
            self.wake()

    def _drain(self) -> None:
        """The task: claim and run jobs until none is queued or this worker stops."""
        while not self._stopping.is_set():
            job_id = self._claim_with_retries()
            if job_id is None:
                self._runs.idle()
                return
            self._runs.run(job_id)

    def _claim_with_retries(self) -> str | None:
        for attempt in range(CLAIM_RETRIES):
            try:
                return self._claim()
            except Exception:
                log.exception("claiming a job failed (attempt %d)", attempt + 1)
                time.sleep(CLAIM_RETRY_S)
        return None
