"""Helpers for tests that ingest documents through the real pipeline."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.db.models import Chunk, Document, IngestionJob, Page


def add_files(
    container: Any, files: dict[str, bytes], collection: str = "default"
) -> dict[str, Any]:
    col = container.collections.ensure(collection)
    return {
        name: container.documents.add(collection_id=col.id, name=name, data=data)
        for name, data in files.items()
    }


def run_jobs(container: Any) -> int:
    """Run queued jobs in this thread until none is left (deterministic, no pool)."""
    n = 0
    while (job_id := container.job_store.claim_next()) is not None:
        container.runner.run(job_id)
        n += 1
    return n


def ingest(container: Any, files: dict[str, bytes], collection: str = "default") -> dict[str, Any]:
    results = add_files(container, files, collection)
    run_jobs(container)
    return results


def job_of(container: Any, document_id: str) -> IngestionJob:
    with container.sessions() as s:
        return s.scalars(
            select(IngestionJob)
            .where(IngestionJob.document_id == document_id)
            .order_by(IngestionJob.created_at.desc())
        ).first()


def doc(container: Any, document_id: str) -> Document | None:
    with container.sessions() as s:
        return s.get(Document, document_id)


def chunk_rows(container: Any, document_id: str) -> int:
    with container.sessions() as s:
        chunks = s.scalar(select(func.count()).where(Chunk.document_id == document_id))
        pages = s.scalar(select(func.count()).where(Page.document_id == document_id))
        return (chunks or 0) + (pages or 0)


def vector_docs(container: Any) -> set[str]:
    return container.vectors.document_ids()
