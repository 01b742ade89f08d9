"""Where the Celery job queue may run: the checks a user meets at start-up."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from app.container import Container
from app.settings import Settings
from app.settings_readme import HEADER, regenerate
from ingestion.errors import JobQueueError
from retrieval.errors import RetrievalError

pytest.importorskip("celery", reason="needs the celery extra")


def container(tmp_path: Path, **settings: object) -> Container:
    return Container(
        Settings(data_dir=tmp_path, embedding={"kind": "fake"}, **settings)  # type: ignore[arg-type]
    )


def test_an_api_process_beside_celery_workers_reads_the_index_files_as_a_replica(
    tmp_path: Path,
) -> None:
    c = container(tmp_path, jobs={"kind": "celery"})
    c.ingestion.check_serving()  # what `lantern serve` asks before it listens: fine
    c.migrate()
    try:
        assert c.ingestion.start(serving=True) is False  # the workers run the jobs
        assert c.ingestion.remote
        assert c.ingestion.replica
        for index in (c.vectors, c.lexical):
            with pytest.raises(RetrievalError, match="read-only replica"):
                index.delete_documents(["d1"])
    finally:
        c.close()


def test_an_api_process_refuses_celery_over_milvus_lite(tmp_path: Path) -> None:
    c = container(tmp_path, jobs={"kind": "celery"}, vector_store={"kind": "milvus"})
    with pytest.raises(JobQueueError, match=r"milvus-lite.*only one process"):
        c.ingestion.check_serving()
    c.migrate()
    try:
        with pytest.raises(JobQueueError, match=r"milvus-lite.*Milvus server"):
            c.ingestion.start(serving=True)
        # A command that only queues (`lantern ingest`) may: the workers write.
        assert c.ingestion.start() is False
        assert c.ingestion.remote
    finally:
        c.close()


def test_lantern_worker_needs_the_celery_kind(tmp_path: Path) -> None:
    c = container(tmp_path)
    try:
        with pytest.raises(JobQueueError, match="needs LANTERN_JOBS__KIND=celery"):
            c.ingestion.work(None, threading.Event())
    finally:
        c.close()


def test_only_a_milvus_server_holding_both_indexes_has_several_writers() -> None:
    assert Settings().single_writer_indexes  # faiss + bm25 files
    assert Settings(vector_store={"kind": "milvus"}).single_writer_indexes  # milvus-lite
    server = {"uri": "http://milvus:19530"}
    assert not Settings(vector_store={"kind": "milvus"}, milvus=server).single_writer_indexes
    mixed = Settings(vector_store={"kind": "milvus"}, lexical={"kind": "bm25"}, milvus=server)
    assert mixed.single_writer_indexes
    # Files other processes can follow: faiss and bm25, not milvus-lite's database.
    assert Settings().replicable_indexes
    assert mixed.replicable_indexes
    assert not Settings(vector_store={"kind": "milvus"}).replicable_indexes


def test_the_configuration_table_is_regenerated_in_place() -> None:
    text = f"intro\n\n{HEADER}\n|---|---|---|\n| `OLD` | | gone |\n\nafter\n"
    out = regenerate(text)
    assert out.startswith("intro\n\n| variable | default | meaning |\n")
    assert "`OLD`" not in out
    assert "`LANTERN_JOBS__CELERY__BROKER_URL`" in out
    assert out.endswith("|\n\nafter\n")


def test_lantern_ingest_says_so_when_no_worker_takes_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    from app.cli import ingest
    from app.cli.common import console
    from app.db.models import IngestionJob
    from app.services.actor import Actor
    from tests.contract.brokers import redis_broker

    brokers = redis_broker()
    broker = next(brokers)
    out = io.StringIO()
    monkeypatch.setattr(console, "_file", out)  # not .file: its getter falls back to sys.stdout
    monkeypatch.setattr(ingest, "IDLE_HINT_S", 0.3)
    celery = {"kind": "celery", "celery": {"broker_url": broker.url, "queue": broker.queue}}
    c = container(tmp_path, jobs=celery)
    c.migrate()
    try:
        c.ingestion.start()  # as `lantern ingest` does: it queues, a worker would run
        path = tmp_path / "a.md"
        path.write_text("# A\n\nNobody runs this job.")
        col = c.library.create_collection(Actor.cli(), "Docs")
        (outcome,) = ingest.queue_files(c, col.id, [(path, path.name)])
        waiting = threading.Thread(
            target=ingest.wait_for_jobs, args=(c, [outcome.result.job_id]), daemon=True
        )
        waiting.start()
        deadline = time.monotonic() + 30
        while "no worker has taken a job" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "start one with the same settings" in out.getvalue()
        with c.sessions.begin() as s:  # let the wait end
            s.execute(update(IngestionJob).values(status="cancelled"))
        waiting.join(30)
        assert not waiting.is_alive()
    finally:
        c.close()
        next(brokers, None)
