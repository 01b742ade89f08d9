"""A deterministic stand-in job queue for tests: no threads, jobs run in the caller."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class FakeJobQueue:
    """``start()`` and ``wake()`` run every claimable job to completion in the calling
    thread, in claim order, then call ``on_idle`` once if any ran; after ``stop()`` they do
    nothing. ``ran`` lists the job ids it ran."""

    remote = False

    def __init__(
        self,
        claim: Callable[[], str | None],
        run: Callable[[str], None],
        *,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._claim = claim
        self._run = run
        self._on_idle = on_idle
        self._started = False
        self._stopped = False
        self._busy = 0
        self.ran: list[str] = []

    def start(self) -> None:
        self._started = True
        self._drain()

    def wake(self) -> None:
        self._drain()

    @property
    def busy(self) -> int:
        return self._busy

    def stop(self, timeout: float | None = None) -> None:
        self._stopped = True

    def _drain(self) -> None:
        if not self._started or self._stopped or self._busy:
            return  # a job that submits another is not re-entered; the loop claims it
        ran_any = False
        while not self._stopped and (job_id := self._claim_or_none()) is not None:
            self._busy += 1
            try:
                self._run(job_id)
            except Exception:
                log.exception("job %s escaped its runner", job_id)
            finally:
                self._busy -= 1
            self.ran.append(job_id)
            ran_any = True
        if ran_any and self._on_idle is not None:
            try:
                self._on_idle()
            except Exception:
                log.exception("the idle hook failed")

    def _claim_or_none(self) -> str | None:
        """A failing claim ends this drain, like an empty queue; the next wake retries."""
        try:
            return self._claim()
        except Exception:
            log.exception("claiming a job failed")
            return None
