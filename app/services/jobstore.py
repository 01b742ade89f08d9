"""SQLAlchemy implementation of ``ingestion.jobs.JobStore`` plus claiming and recovery."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import (
    Chunk,
    Document,
    DocumentStatus,
    IngestionJob,
    JobStatus,
    Page,
    utcnow,
)
from app.db.repositories import generations
from app.services.attachments import StoredAttachment, queue_attachments
from app.services.documents import descendants
from ingestion.blobstore import BlobStore
from ingestion.chunking import ChunkDraft
from ingestion.jobs import JobCancelled, JobSpec
from ingestion.parsers.base import Attachment, ParsedDocument

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{threading.get_native_id()}"


class SqlJobStore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        *,
        max_attempts: int = 3,
        lease_seconds: int = 120,
        on_finished: Callable[[dict[str, float], bool, int], None] | None = None,
        max_file_bytes: int | None = None,
    ) -> None:
        """``on_finished`` is called after a job finished for good, with its stage
        timings, whether it succeeded and its document's page count (for metrics).
        ``max_file_bytes``: the upload limit, which a mail's attachments obey too."""
        self.max_file_bytes = max_file_bytes
        self.sessions = sessions
        self.blobs = blobs
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.on_finished = on_finished

    # -- JobStore -------------------------------------------------------------------

    def load(self, job_id: str) -> JobSpec:
        with self.sessions() as s:
            job = s.get(IngestionJob, job_id)
            if job is None:
                raise JobCancelled(job_id)
            doc = job.document
            return JobSpec(
                job_id=job.id,
                document_id=doc.id,
                collection_id=doc.collection_id,
                filename=doc.name,
                sha256=doc.sha256,
                attempt=job.attempts,
                max_attempts=self.max_attempts,
            )

    def set_stage(self, job_id: str, stage: str, progress: float) -> None:
        with self.sessions.begin() as s:
            res = s.execute(
                update(IngestionJob)
                .where(IngestionJob.id == job_id, IngestionJob.status == JobStatus.RUNNING)
                .values(stage=stage, progress=round(progress, 4), heartbeat_at=utcnow())
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                raise JobCancelled(job_id)

    def heartbeat(self, spec: JobSpec) -> None:
        with self.sessions.begin() as s:
            _renew(s, spec)

    def save_pages(self, spec: JobSpec, *, mime: str, parsed: ParsedDocument) -> None:
        with self.sessions.begin() as s:
            self._hold(s, spec, whole_file=False)
            doc = s.get(Document, spec.document_id)
            if doc is None:  # unreachable while the job row exists (it cascades with it)
                raise JobCancelled(spec.job_id)
            _drop_content(s, spec.document_id)
            doc.mime = mime
            doc.title = (parsed.title or "")[:512] or None
            doc.paginated = parsed.paginated
            doc.page_count = len(parsed.pages)
            for i in range(0, len(parsed.pages), 1000):
                s.execute(
                    insert(Page),
                    [
                        {"document_id": doc.id, "number": p.number, "text": p.text, "ocr": p.ocr}
                        for p in parsed.pages[i : i + 1000]
                    ],
                )

    def add_chunks(self, spec: JobSpec, *, chunks: list[ChunkDraft], chunk_ids: list[str]) -> None:
        with self.sessions.begin() as s:
            self._hold(s, spec, whole_file=False)
            rows: list[dict[str, Any]] = [
                {
                    "id": cid,
                    "document_id": spec.document_id,
                    "ordinal": c.ordinal,
                    "text": c.text,
                    "page": c.page,
                    "section_path": list(c.section_path),
                    "char_start": c.char_start,
                    "char_end": c.char_end,
                    "token_count": c.token_count,
                    "content_hash": c.content_hash,
                    "ocr": c.ocr,
                }
                for c, cid in zip(chunks, chunk_ids, strict=True)
            ]
            for i in range(0, len(rows), 1000):
                s.execute(insert(Chunk), rows[i : i + 1000])

    def mark_ready(
        self,
        spec: JobSpec,
        *,
        timings: dict[str, float],
        attachments: Sequence[Attachment] = (),
    ) -> list[str]:
        pages = 0
        stored = self._store_attachments(attachments)
        with self.sessions.begin() as s:
            # What the collection can answer changes at this commit. The collection row
            # is locked first, as a document or collection delete takes it, so writers
            # queue in one order: collection, documents, job.
            generations.bump(s, [spec.collection_id])
            self._hold(s, spec, whole_file=True)
            versions = s.scalars(_versions_of(spec)).all()
            doc = next((d for d in versions if d.id == spec.document_id), None)
            if doc is None:  # unreachable while the job row exists (it cascades with it)
                raise JobCancelled(spec.job_id)
            obsolete = any(
                o.version > doc.version and o.status == DocumentStatus.READY for o in versions
            )
            if obsolete:
                # A newer version finished first: this one goes (its job, chunks and
                # pages with it, by cascade).
                _delete_documents(s, [doc.id])
                shas = {doc.sha256} | {a.sha for a in stored if a.sha}
                gone = []
            else:
                replaced = [o.id for o in versions if o.version < doc.version]
                # The replaced versions' attachments go with them (by cascade).
                family = [(o.id, o.sha256) for o in versions if o.id in replaced]
                family += descendants(s, replaced)
                shas = {sha for _, sha in family}
                gone = [i for i, _ in family]
                pages = doc.page_count
                self._publish(s, doc, spec, timings)
                _delete_documents(s, replaced)
                if stored:
                    limit = self.max_file_bytes or max(a.size for a in stored)
                    queue_attachments(s, doc, stored, max_bytes=limit)
        self._gc_blobs(shas)
        if obsolete:
            raise JobCancelled(spec.job_id)
        if self.on_finished is not None:
            self.on_finished(dict(timings), True, pages)
        return gone

    def _store_attachments(self, attachments: Sequence[Attachment]) -> list[StoredAttachment]:
        """Write the attachments' blobs before the transaction that adds their rows, as
        an upload does (a crash between leaves unreferenced blobs for ``gc_blobs``)."""
        out = []
        for a in attachments:
            too_large = self.max_file_bytes is not None and len(a.data) > self.max_file_bytes
            sha = None if too_large else self.blobs.put(a.data)
            out.append(StoredAttachment(a.name, len(a.data), sha))
        return out

    def mark_failed(self, spec: JobSpec, *, error: str, retry: bool) -> bool:
        with self.sessions.begin() as s:
            try:
                self._hold(s, spec, whole_file=False)
            except JobCancelled:
                return False  # deleted or replaced meanwhile: nothing left to record
            _drop_content(s, spec.document_id)
            doc_values: dict[str, Any]
            if retry:
                s.execute(
                    update(IngestionJob)
                    .where(IngestionJob.id == spec.job_id)
                    .values(status=JobStatus.QUEUED, stage="queued", error=error)
                )
                doc_values = {"status": DocumentStatus.QUEUED}
            else:
                s.execute(
                    update(IngestionJob)
                    .where(IngestionJob.id == spec.job_id)
                    .values(status=JobStatus.FAILED, error=error, finished_at=utcnow())
                )
                doc_values = {"status": DocumentStatus.FAILED, "error": error, "chunk_count": 0}
            s.execute(update(Document).where(Document.id == spec.document_id).values(**doc_values))
        if not retry and self.on_finished is not None:
            self.on_finished({}, False, 0)
        return True

    def _hold(self, s: Session, spec: JobSpec, *, whole_file: bool) -> None:
        """Lock what this job's last writes touch, or raise ``JobCancelled`` when it no
        longer runs (document deleted or replaced, job requeued elsewhere).

        PostgreSQL: the document rows first (every version of the file, oldest first,
        when ``whole_file``), then the job: the order in which a delete (document, then
        its jobs by cascade) and another version's publish take them, so concurrent
        writers queue instead of deadlocking. SQLite: the job update is the
        transaction's first write and takes the database lock, so what is read after
        it cannot change before the commit."""
        docs = select(Document.id).order_by(Document.version).with_for_update()
        if whole_file:
            docs = docs.where(
                Document.collection_id == spec.collection_id, Document.name == spec.filename
            )
        else:
            docs = docs.where(Document.id == spec.document_id)
        s.execute(docs).all()
        if not _renew(s, spec):
            raise JobCancelled(spec.job_id)

    def _publish(self, s: Session, doc: Document, spec: JobSpec, timings: dict[str, float]) -> None:
        rounded = {k: round(v, 4) for k, v in timings.items()}
        doc.status = DocumentStatus.READY
        doc.error = None
        doc.chunk_count = (
            s.scalar(select(func.count()).select_from(Chunk).where(Chunk.document_id == doc.id))
            or 0
        )
        doc.timings = rounded
        doc.indexed_at = utcnow()
        s.execute(
            update(IngestionJob)
            .where(IngestionJob.id == spec.job_id)
            .values(
                status=JobStatus.SUCCEEDED,
                stage="done",
                progress=1.0,
                error=None,
                timings=rounded,
                finished_at=utcnow(),
            )
        )

    # -- claiming and recovery ----------------------------------------------------------

    def claim_next(self) -> str | None:
        """Atomically take the oldest queued job (safe across threads and processes)."""
        with self.sessions.begin() as s:
            q = (
                select(IngestionJob.id, IngestionJob.document_id)
                .join(Document, Document.id == IngestionJob.document_id)
                .where(IngestionJob.status == JobStatus.QUEUED)
                .order_by(IngestionJob.created_at, IngestionJob.id)
                .limit(1)
            )
            if s.bind is not None and s.bind.dialect.name == "postgresql":
                # Job and document row both, never waiting: a document being deleted
                # (it locks the document, then its jobs) is skipped, not deadlocked on.
                q = q.with_for_update(skip_locked=True)
            row = s.execute(q).first()
            if row is None:
                return None
            job_id, document_id = row
            now = utcnow()
            res = s.execute(
                update(IngestionJob)
                .where(IngestionJob.id == job_id, IngestionJob.status == JobStatus.QUEUED)
                .values(
                    status=JobStatus.RUNNING,
                    stage="starting",
                    attempts=IngestionJob.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                    worker=worker_name(),
                )
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                return None
            s.execute(
                update(Document)
                .where(Document.id == document_id)
                .values(status=DocumentStatus.PROCESSING)
            )
            return str(job_id)

    def recover(self, *, exclusive: bool) -> int:
        """Requeue jobs whose worker died. With ``exclusive`` (this process holds the
        data-dir worker lock) every running job is dead; otherwise only stale leases."""
        cutoff = utcnow() - timedelta(seconds=self.lease_seconds)
        with self.sessions.begin() as s:
            q = select(IngestionJob).where(IngestionJob.status == JobStatus.RUNNING)
            if not exclusive:
                q = q.where(IngestionJob.heartbeat_at < cutoff)
            jobs = s.scalars(q).all()
            for job in jobs:
                doc = job.document
                _drop_content(s, doc.id)
                if job.attempts >= self.max_attempts:
                    reason = (
                        f"the worker stopped {job.attempts} times while processing this file; "
                        "giving up (it may be too large or malformed)"
                    )
                    job.status, job.error, job.finished_at = JobStatus.FAILED, reason, utcnow()
                    doc.status, doc.error = DocumentStatus.FAILED, reason
                else:
                    job.status, job.stage = JobStatus.QUEUED, "queued"
                    doc.status = DocumentStatus.QUEUED
            if jobs:
                log.warning("recovered %d interrupted ingestion job(s)", len(jobs))
            return len(jobs)

    def live_document_ids(self, *, include_processing: bool) -> set[str]:
        statuses = [DocumentStatus.READY]
        if include_processing:
            statuses.append(DocumentStatus.PROCESSING)
        with self.sessions() as s:
            return set(s.scalars(select(Document.id).where(Document.status.in_(statuses))))

    def existing_document_ids(self) -> set[str]:
        """Every document the database holds, whatever its status."""
        with self.sessions() as s:
            return set(s.scalars(select(Document.id)))

    def gc_blobs(self, *, min_age_seconds: float = 3600) -> int:
        """Delete blobs no document references (left by a crash between write and commit).
        Recent blobs are kept: an upload may be between its write and its commit."""
        with self.sessions() as s:
            referenced = set(s.scalars(select(Document.sha256)))
        removed = 0
        now = time.time()
        for sha in list(self.blobs):
            if sha not in referenced and now - self.blobs.mtime(sha) >= min_age_seconds:
                self.blobs.delete(sha)
                removed += 1
        self.blobs.remove_temp_files()
        return removed

    def _gc_blobs(self, shas: set[str]) -> None:
        if not shas:
            return
        with self.sessions() as s:
            still = set(s.scalars(select(Document.sha256).where(Document.sha256.in_(shas))))
        for sha in shas - still:
            self.blobs.delete(sha)


def _versions_of(spec: JobSpec) -> Select[Document]:
    return (
        select(Document)
        .where(Document.collection_id == spec.collection_id, Document.name == spec.filename)
        .order_by(Document.version)
    )


def _renew(s: Session, spec: JobSpec) -> bool:
    """Renew the lease of ``spec``'s attempt; False when that attempt no longer runs."""
    res = s.execute(
        update(IngestionJob)
        .where(
            IngestionJob.id == spec.job_id,
            IngestionJob.status == JobStatus.RUNNING,
            IngestionJob.attempts == spec.attempt,
        )
        .values(heartbeat_at=utcnow())
    )
    return bool(res.rowcount == 1)  # type: ignore[attr-defined]


def _delete_documents(s: Session, ids: list[str]) -> None:
    """Delete rows by statement (jobs, chunks and pages cascade in the database)."""
    if ids:
        s.execute(delete(Document).where(Document.id.in_(ids)))


def _drop_content(s: Session, document_id: str) -> None:
    s.execute(delete(Chunk).where(Chunk.document_id == document_id))
    s.execute(delete(Page).where(Page.document_id == document_id))
