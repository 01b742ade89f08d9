"""Documents on their way into the indexes and out: progress, deletes that reach
the indexes, and waking the workers when new work is queued."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from app.db.models import Document, IngestionJob, JobStatus
from app.services.documents import DocumentService
from retrieval.lexical.base import LexicalIndex
from retrieval.vectorstores.base import VectorStore


@dataclass(frozen=True)
class DocumentProgress:
    document: Document
    job: IngestionJob | None
    #: Seconds until the running job should finish; None when not running or too early.
    eta_s: float | None


def eta_seconds(job: IngestionJob | None) -> float | None:
    """Time left for a running job, extrapolated from its progress so far."""
    if job is None or job.status != JobStatus.RUNNING or not job.started_at:
        return None
    if job.progress <= 0.02:  # too little done to extrapolate from
        return None
    started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=UTC)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    return round(max(0.0, elapsed * (1 - job.progress) / job.progress), 1)


class IndexingService:
    """The documents service together with the indexes and workers it does not hold."""

    def __init__(
        self,
        documents: DocumentService,
        *,
        vectors: Callable[[], VectorStore],
        lexical: Callable[[], LexicalIndex],
        wake_workers: Callable[[], None],
    ) -> None:
        self.documents = documents
        self._vectors = vectors
        self._lexical = lexical
        self._wake = wake_workers

    def progress(self, collection_id: str) -> list[DocumentProgress]:
        """Every document of the collection with its latest job and an ETA."""
        listed = self.documents.list_documents(collection_id=collection_id)
        jobs = self.documents.latest_jobs([d.id for d in listed])
        return [DocumentProgress(d, jobs.get(d.id), eta_seconds(jobs.get(d.id))) for d in listed]

    def delete(self, document_id: str) -> None:
        """Remove the document's rows, vectors, BM25 entries and (unshared) blob."""
        self.documents.delete(document_id, vectors=self._vectors(), lexical=self._lexical())

    def wake_workers(self) -> None:
        """Start on newly queued jobs now rather than at the workers' next poll."""
        self._wake()
