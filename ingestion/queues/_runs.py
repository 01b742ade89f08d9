"""What the threaded queues share: running a claimed job under a busy count, and the
idle hook, called once each time the queue drains after jobs ran."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Runs:
    def __init__(self, run: Callable[[str], None], on_idle: Callable[[], None] | None) -> None:
        self._run = run
        self._on_idle = on_idle
        self._busy = 0
        self._ran_since_idle = False
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        """How many jobs are running now."""
        with self._lock:
            return self._busy

    def run(self, job_id: str) -> None:
        """Run one job; what escapes its runner is logged, never raised."""
        with self._lock:
            self._busy += 1
            self._ran_since_idle = True
        try:
            self._run(job_id)
        except Exception:
            log.exception("job %s escaped its runner", job_id)
        finally:
            with self._lock:
                self._busy -= 1

    def idle(self) -> None:
        """Run ``on_idle`` in the first worker to find the queue empty with none busy."""
        with self._lock:
            if self._busy or not self._ran_since_idle or self._on_idle is None:
                return
            self._ran_since_idle = False
        try:
            self._on_idle()
        except Exception:
            log.exception("the idle hook failed")
