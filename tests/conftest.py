"""Shared fixtures.

The database is SQLite by default; ``LANTERN_TEST_DATABASE=postgresql`` runs the same
tests against a fresh database on the local PostgreSQL server (created per test and
dropped afterwards). The embedder is the bundled all-MiniLM-L6-v2, loaded once.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

PG_ADMIN_URL = os.environ.get(
    "LANTERN_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _test_backend() -> str:
    return os.environ.get("LANTERN_TEST_DATABASE", "sqlite")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if _test_backend() != "postgresql":
        yield f"sqlite:///{tmp_path / 'lantern.db'}"
        return
    psycopg = pytest.importorskip("psycopg")
    name = f"lantern_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL requested but not reachable at {PG_ADMIN_URL}: {e}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from retrieval.embedders.registry import create_embedder

    return create_embedder(model="BAAI/bge-small-en-v1.5", allow_download=False)


@pytest.fixture
def settings(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    from app.settings import Settings

    return Settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        ingestion={"workers": 2, "max_file_mb": 5, "max_unzipped_mb": 20},
    )


@pytest.fixture
def container(settings, embedder):  # type: ignore[no-untyped-def]
    from app.container import Container

    c = Container(settings)
    c.__dict__["embedder"] = embedder  # share the session's model; loading takes seconds
    c.migrate()
    try:
        yield c
    finally:
        c.close()
