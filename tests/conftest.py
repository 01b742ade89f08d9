"""Shared fixtures.

Every test that takes ``database_url`` (directly or through ``settings`` /
``container``) runs twice: on a SQLite file and on a fresh database on the local
PostgreSQL server, created for the test and dropped afterwards. Where PostgreSQL
is not running the second variant is skipped with a reason, unless
``LANTERN_TEST_REQUIRE_POSTGRES=1`` (set by CI) turns that into a failure.
``LANTERN_TEST_DATABASE=sqlite`` (or ``postgresql``) runs one variant only.

``settings`` reads the environment like the product does, so
``LANTERN_VECTOR_STORE__KIND=milvus`` runs every test that builds a container on the
Milvus vector store and lexical index, in a milvus-lite database in the test's data
dir. The API suite (``tests/api/conftest.py``) runs on both stores by itself.

The embedder is the bundled all-MiniLM-L6-v2, loaded once per session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

PG_ADMIN_URL = os.environ.get(
    "LANTERN_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _backends() -> list[str]:
    only = os.environ.get("LANTERN_TEST_DATABASE")
    return [only] if only else ["sqlite", "postgresql"]


def _pg_unavailable(reason: str) -> NoReturn:
    if os.environ.get("LANTERN_TEST_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here but {reason}")
    pytest.skip(f"PostgreSQL not available ({reason}); start it to run the PostgreSQL variant")


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL for one test."""
    yield from fresh_database(request.param, tmp_path)


def fresh_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a new empty database of ``kind`` (``sqlite``, ``postgresql``),
    dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'lantern.db'}"
        return
    try:
        import psycopg
    except ImportError:
        _pg_unavailable("psycopg is not installed (pip install -e '.[dev]')")
    name = f"lantern_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        _pg_unavailable(f"{PG_ADMIN_URL} is unreachable: {str(e).strip()[:200]}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def embedder() -> Any:
    from retrieval.embedders.registry import create_embedder

    return create_embedder(model="BAAI/bge-small-en-v1.5", allow_download=False)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Any:
    from app.settings import Settings

    return Settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        ingestion={"max_file_mb": 5, "max_unzipped_mb": 20},
        jobs={"inline": {"workers": 2}},
    )


@pytest.fixture
def container(settings: Any, embedder: Any) -> Iterator[Any]:
    from app.container import Container

    # Share the session's model: loading it takes seconds.
    c = Container(settings, overrides={"embedder": embedder})
    c.migrate()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def rebuilt(container: Any) -> Iterator[Callable[..., Any]]:
    """``rebuilt(server={"rate_limit_per_minute": 3})``: a second container over the same
    database and indexes with some settings changed (or, with ``overrides``, some parts
    replaced), as another process started so would be; closed at teardown."""
    from app.container import Container

    made: list[Any] = []

    def make(overrides: dict[str, Any] | None = None, **sections: dict[str, Any]) -> Any:
        s = container.settings
        update = {name: getattr(s, name).model_copy(update=v) for name, v in sections.items()}
        shared = {n: getattr(container, n) for n in ("embedder", "vectors", "lexical")}
        parts = {**shared, **(overrides or {})}
        made.append(Container(s.model_copy(update=update), overrides=parts))
        return made[-1]

    yield make
    for c in made:
        c.close()
