"""A worker process for the job queue contract: ``python -m tests.contract.queue_worker
KIND``, with faults a test asks for by file name:

- ``LANTERN_TEST_SLOW_PREFIX``: files named so sleep ``LANTERN_TEST_SLOW_S`` before each
  embedded batch (so a test can kill the worker mid-job);
- ``LANTERN_TEST_CRASH_PREFIX``: files named so crash every attempt with an internal error;
- ``LANTERN_TEST_BATCH_CHUNKS``: chunks per embedded batch (more batches, more pauses).

``celery`` runs ``lantern worker --concurrency 1``. ``inline`` runs the in-process
threads, retrying the data-dir lock until it holds it (as a supervisor restarting
``lantern serve`` would), and stops on SIGTERM. Both print "ready" once they run jobs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from ingestion.chunking import Chunker
from ingestion.jobs import JobRunner, JobSpec
from ingestion.pipeline import IngestionPipeline

_current = threading.local()


def install_faults() -> None:
    slow = os.environ.get("LANTERN_TEST_SLOW_PREFIX")
    crash = os.environ.get("LANTERN_TEST_CRASH_PREFIX")
    pause = float(os.environ.get("LANTERN_TEST_SLOW_S", "0.5"))
    run, batches = JobRunner._run, IngestionPipeline.batches

    def faulty_run(self: JobRunner, spec: JobSpec) -> None:
        if crash and spec.filename.startswith(crash):
            raise RuntimeError("injected crash")
        _current.slow = bool(slow and spec.filename.startswith(slow))
        run(self, spec)

    def slow_batches(self: IngestionPipeline, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for batch in batches(self, *args, **kwargs):
            if getattr(_current, "slow", False):
                time.sleep(pause)
            yield batch

    size = int(os.environ.get("LANTERN_TEST_BATCH_CHUNKS", "0"))
    if size:
        chunk = Chunker.batches
        Chunker.batches = lambda self, doc, size=size: chunk(self, doc, size=size)  # type: ignore[method-assign]
    JobRunner._run = faulty_run  # type: ignore[method-assign]
    IngestionPipeline.batches = slow_batches  # type: ignore[method-assign]


def inline() -> None:
    from app.cli.common import open_container

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open_container() as c:
        while not c.ingestion.start():
            if stop.wait(0.2):
                return
        print("ready", flush=True)
        stop.wait()


def main() -> None:
    install_faults()
    if sys.argv[1] == "inline":
        inline()
        return
    from app.cli.main import main as lantern

    sys.argv = ["lantern", "worker", "--concurrency", "1"]
    lantern()


if __name__ == "__main__":
    main()
