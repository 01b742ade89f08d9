"""What every job queue kind does for a user, with its workers in processes of their
own: a document ends ready; a job that keeps crashing is retried up to
LANTERN_INGESTION__MAX_ATTEMPTS, then failed with its reason; a worker killed with
SIGKILL mid-job leaves the job to another worker, and the document ends ready with the
chunks of a clean run, each once in the vector index and once in the BM25 index.

The worker processes are the only writers of the index files: this process queues jobs
and reads the database, and opens the indexes only once every worker has stopped.
Celery runs on the local Redis (``redis_broker``); the faults come from
``tests.contract.queue_worker``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.cli.ingest import queue_files
from app.container import Container
from app.db.models import Document, IngestionJob
from app.services.actor import Actor
from app.settings import get_settings
from tests.contract.brokers import redis_broker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL"),
]

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120.0
SETTINGS = {
    "LANTERN_EMBEDDING__KIND": "fake",
    "LANTERN_CHUNKING__MAX_TOKENS": "64",
    "LANTERN_CHUNKING__OVERLAP_TOKENS": "8",
    "LANTERN_INGESTION__MAX_ATTEMPTS": "2",
    "LANTERN_JOBS__INLINE__POLL_SECONDS": "0.1",
    "LANTERN_JOBS__CELERY__CHECK_SECONDS": "1",
    "LANTERN_TEST_SLOW_PREFIX": "slow",
    "LANTERN_TEST_CRASH_PREFIX": "crash",
    "LANTERN_TEST_BATCH_CHUNKS": "8",
    "LANTERN_TEST_SLOW_S": "0.4",
}


def text(paragraphs: int = 60) -> str:
    words = "policy travel expense leave laptop badge security budget invoice safety".split()
    return "\n\n".join(
        f"Paragraph {p}: " + " ".join(words[(p + i) % len(words)] for i in range(50))
        for p in range(paragraphs)
    )


def eventually(check: Callable[[], bool], what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; worker output:\n{logs()}")
        time.sleep(0.1)


class Deployment:
    """A data dir, its workers (processes), and a container here that queues and reads."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self.workers: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.c = Container(get_settings())
        self.c.migrate()
        if kind != "inline":  # inline workers poll the database; remote ones are woken
            self.c.ingestion.start()
            assert not self.c.ingestion.running

    def start_worker(self, *, wait_ready: bool = True) -> subprocess.Popen[bytes]:
        log = self.root / f"worker-{len(self.workers)}.log"
        with log.open("wb") as out:
            p = subprocess.Popen(
                [sys.executable, "-m", "tests.contract.queue_worker", self.kind],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.workers.append((p, log))
        if wait_ready:
            eventually(lambda: "ready" in log.read_text(), "a worker to start", self.logs)
        return p

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in self.workers)

    def upload(self, name: str, body: str, *, collection: str = "docs") -> None:
        path = self.root / name
        path.write_text(body)
        col = self.c.library.create_collection(Actor.cli(), collection, exist_ok=True)
        (outcome,) = queue_files(self.c, col.id, [(path, name)])
        assert outcome.result.job_id
        self.c.ingestion.wake()

    def document(self, name: str) -> Document | None:
        with self.c.sessions() as s:
            return s.scalars(select(Document).where(Document.name == name)).first()

    def job(self, name: str) -> IngestionJob | None:
        with self.c.sessions() as s:
            return s.scalars(
                select(IngestionJob).join(Document).where(Document.name == name)
            ).first()

    def finished(self, name: str) -> Document:
        def done() -> bool:
            doc = self.document(name)
            return doc is not None and doc.status in ("ready", "failed")

        eventually(done, f"{name} to finish", self.logs)
        doc = self.document(name)
        assert doc is not None
        return doc

    def stop_workers(self) -> None:
        for p, _ in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in self.workers:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(params=["inline", "celery"])
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployment]:
    env = dict(SETTINGS, LANTERN_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    brokers = redis_broker() if request.param == "celery" else iter([None])
    broker = next(brokers)
    if broker is not None:
        env.update(broker.env())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LANTERN_DATABASE__URL", raising=False)
    d = Deployment(request.param, tmp_path)
    try:
        yield d
    finally:
        d.stop_workers()
        d.c.close()
        next(brokers, None)  # removes the broker's keys


def test_an_uploaded_document_ends_ready(deployment: Deployment) -> None:
    deployment.start_worker()
    deployment.upload("handbook.md", text(10))
    doc = deployment.finished("handbook.md")
    assert doc.status == "ready", doc.error
    assert doc.chunk_count > 0


def test_a_crashing_job_is_retried_then_failed_with_its_reason(deployment: Deployment) -> None:
    deployment.start_worker()
    deployment.upload("crash-report.md", text(5))
    doc = deployment.finished("crash-report.md")
    job = deployment.job("crash-report.md")
    assert doc.status == "failed"
    assert job is not None
    assert job.status == "failed"
    assert job.attempts == 2  # LANTERN_INGESTION__MAX_ATTEMPTS
    assert "RuntimeError: injected crash" in (doc.error or "")
    assert doc.error == job.error
    # The next document still runs.
    deployment.upload("after.md", text(5))
    assert deployment.finished("after.md").status == "ready"


def test_a_worker_killed_mid_job_leaves_it_to_another(deployment: Deployment) -> None:
    first = deployment.start_worker()
    deployment.start_worker(wait_ready=False)  # a standby: the first writes the indexes
    deployment.upload("slow-handbook.md", text())

    def embedding() -> bool:  # what every API process shows: stage and progress
        job = deployment.job("slow-handbook.md")
        return job is not None and job.stage == "embed" and job.progress > 0.3

    eventually(embedding, "the job to be half embedded", deployment.logs)
    first.send_signal(signal.SIGKILL)
    first.wait()

    killed = deployment.finished("slow-handbook.md")
    assert killed.status == "ready", killed.error
    job = deployment.job("slow-handbook.md")
    assert job is not None
    assert job.attempts == 2  # the interrupted attempt counts
    deployment.upload("clean-handbook.md", text(), collection="clean")  # not a duplicate
    clean = deployment.finished("clean-handbook.md")
    assert clean.status == "ready", clean.error
    assert killed.chunk_count == clean.chunk_count > 8  # several batches

    deployment.stop_workers()  # now this process may open the index files
    c = deployment.c
    for index in (c.vectors, c.lexical):
        assert index.document_ids() == {killed.id, clean.id}
        assert index.count() == killed.chunk_count + clean.chunk_count  # nothing twice
    with c.sessions() as s:
        from app.db.models import Chunk

        ids = s.scalars(select(Chunk.id).where(Chunk.document_id == killed.id)).all()
    assert len(ids) == len(set(ids)) == killed.chunk_count
