"""The ``inline`` job queue: threads in this process that claim queued jobs and run them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ingestion.queues._runs import Runs

log = logging.getLogger(__name__)


class InlineJobQueue:
    """A ``JobQueue`` of ``workers`` daemon threads that poll ``claim`` every
    ``poll_seconds`` (or sooner when woken). ``on_idle`` warms what the first question
    after an ingest would otherwise pay for."""

    remote = False

    def __init__(
        self,
        claim: Callable[[], str | None],
        run: Callable[[str], None],
        *,
        workers: int = 2,
        poll_seconds: float = 1.0,
        name: str = "lantern-ingest",
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._claim = claim
        self._runs = Runs(run, on_idle)
        self._n = workers
        self._poll = poll_seconds
        self._name = name
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self._n):
            t = threading.Thread(target=self._loop, name=f"{self._name}-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        """Tell idle workers that new jobs are queued."""
        self._wake.set()

    @property
    def busy(self) -> int:
        return self._runs.busy

    def stop(self, timeout: float | None = None) -> None:
        """Finish the running jobs, then stop."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._claim()
            except Exception:
                log.exception("claiming a job failed; retrying")
                job_id = None
            if job_id is None:
                self._runs.idle()
                self._wake.wait(self._poll)
                self._wake.clear()
                continue
            self._runs.run(job_id)
