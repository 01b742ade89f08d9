"""The Alembic history and the SQLAlchemy models describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from app.db.engine import make_engine
from app.db.migrate import current_revision, downgrade, upgrade
from app.db.schema import metadata


def test_migrations_match_models(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    engine.dispose()
    assert diff == [], f"models and migrations disagree; write a revision: {diff}"


def test_upgrade_is_idempotent_and_downgrade_removes_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    head = current_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == head
    assert {"documents", "chunks", "ingestion_jobs", "collections", "pages"} <= set(
        inspect(engine).get_table_names()
    )
    downgrade(engine, "base")
    assert "documents" not in inspect(engine).get_table_names()
    engine.dispose()
