"""A job on a stage that reports no progress for longer than the lease (one huge page, a
slow OCR model) keeps its lease while its worker lives: workers side by side do not
take it over and run it twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.cli.ingest import queue_files
from app.container import Container
from app.db.models import IngestionJob
from app.services.actor import Actor
from app.settings import Settings
from ingestion.pipeline import IngestionPipeline

LEASE_S = 1


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    c = Container(Settings(data_dir=tmp_path, embedding={"kind": "fake"}))  # type: ignore[arg-type]
    c.migrate()
    c.job_store.lease_seconds = LEASE_S
    try:
        yield c
    finally:
        c.close()


def run_stuck_job(c: Container, tmp_path: Path, beat_s: float) -> tuple[int, IngestionJob]:
    """Run one job whose parse stage hangs past the lease, while another worker looks for
    dead jobs; return what that worker requeued and the job as it ended."""
    release, parsing = threading.Event(), threading.Event()
    parse = IngestionPipeline.parse

    def stuck(self: IngestionPipeline, *args: Any, **kwargs: Any) -> Any:
        parsing.set()
        release.wait(30)
        return parse(self, *args, **kwargs)

    c.runner.heartbeat_seconds = beat_s
    path = tmp_path / "scan.md"
    path.write_text("# Scan\n\nThe archive keeps scanned contracts for ten years.")
    col = c.library.create_collection(Actor.cli(), "Archive")
    (outcome,) = queue_files(c, col.id, [(path, path.name)])
    job_id = c.job_store.claim_next()
    assert job_id == outcome.result.job_id
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IngestionPipeline, "parse", stuck)
        worker = threading.Thread(target=c.runner.run, args=(job_id,))
        worker.start()
        assert parsing.wait(30)
        threading.Event().wait(LEASE_S * 2.5)  # past the lease, no progress reported
        requeued = c.job_store.recover(exclusive=False)  # another worker's periodic check
        release.set()
        worker.join(60)
    with c.sessions() as s:
        job = s.scalars(select(IngestionJob).where(IngestionJob.id == job_id)).one()
    return requeued, job


def test_a_live_worker_keeps_its_lease_through_a_long_silent_stage(
    c: Container, tmp_path: Path
) -> None:
    requeued, job = run_stuck_job(c, tmp_path, beat_s=LEASE_S / 4)
    assert requeued == 0
    assert job.status == "succeeded"
    assert job.attempts == 1


def test_without_heartbeats_the_silent_job_would_be_taken_over(
    c: Container, tmp_path: Path
) -> None:
    """What the heartbeat prevents: the same run with none requeues the live job."""
    requeued, _ = run_stuck_job(c, tmp_path, beat_s=0)
    assert requeued == 1
