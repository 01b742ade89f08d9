"""Where the Celery job queue may run: the checks a user meets at start-up."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.container import Container
from app.settings import Settings
from app.settings_readme import HEADER, regenerate
from ingestion.errors import JobQueueError

pytest.importorskip("celery", reason="needs the celery extra")


def container(tmp_path: Path, **settings: object) -> Container:
    return Container(
        Settings(data_dir=tmp_path, embedding={"kind": "fake"}, **settings)  # type: ignore[arg-type]
    )


def test_an_api_process_refuses_celery_over_index_files(tmp_path: Path) -> None:
    c = container(tmp_path, jobs={"kind": "celery"})
    with pytest.raises(JobQueueError, match=r"one process writes.*Milvus server"):
        c.ingestion.check_serving()  # what `lantern serve` asks before it listens
    c.migrate()
    try:
        with pytest.raises(JobQueueError, match=r"one process writes.*Milvus server"):
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


def test_the_configuration_table_is_regenerated_in_place() -> None:
    text = f"intro\n\n{HEADER}\n|---|---|---|\n| `OLD` | | gone |\n\nafter\n"
    out = regenerate(text)
    assert out.startswith("intro\n\n| variable | default | meaning |\n")
    assert "`OLD`" not in out
    assert "`LANTERN_JOBS__CELERY__BROKER_URL`" in out
    assert out.endswith("|\n\nafter\n")
