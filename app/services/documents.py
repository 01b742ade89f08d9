"""Documents: add (blob + row + job in one transaction), list, delete.

A mail's attachments are documents of their own (``parent_id`` = the mail), in
its collection, added through the same rules as an upload (``add_in``); they go
when the mail goes (deleted, or replaced by a new version).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from app import storable
from app.db.models import (
    Chunk,
    Document,
    DocumentStatus,
    IngestionJob,
    JobStatus,
    utcnow,
)
from app.db.repositories import generations
from app.errors import Conflict, NotFound
from ingestion.blobstore import BlobStore, sha256_of
from ingestion.errors import file_too_large
from retrieval.lexical.base import LexicalIndex
from retrieval.vectorstores.base import VectorStore

log = logging.getLogger(__name__)

Outcome = Literal["queued", "new_version", "duplicate", "requeued", "rejected"]


@dataclass(frozen=True)
class AddResult:
    document_id: str
    job_id: str | None
    outcome: Outcome
    reason: str | None = None


def client_file_name(filename: str | None) -> str:
    """A browser's or tool's file name without the client's folders (``C:\\x\\a.pdf``)."""
    return (filename or "").replace("\\", "/").rsplit("/", 1)[-1]


def kept_name(name: str) -> str:
    """The name a file is kept under: at most 500 characters (``upload`` when empty);
    ``UnstorableText`` if it is not storable text."""
    name = name[:500] or "upload"
    storable.check(**{"file name": name})
    return name


class DocumentService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        *,
        max_bytes: int,
    ) -> None:
        self.sessions = sessions
        self.blobs = blobs
        self.max_bytes = max_bytes

    def add(
        self, *, collection_id: str, name: str, data: bytes, uploader: str | None = None
    ) -> AddResult:
        """Queue ``data`` for ingestion as ``name``. Identical content already in the
        collection is not processed again; a changed file becomes a new version
        that replaces the old one once it is ready."""
        storable.check(name=name)  # before the blob is written
        if len(data) > self.max_bytes:
            return self.reject_too_large(
                collection_id=collection_id, name=name, size=len(data), uploader=uploader
            )
        sha = self.blobs.put(data)
        for attempt in range(3):
            try:
                return self._add(collection_id, name, len(data), sha, uploader)
            except IntegrityError:  # a concurrent upload took the same version number
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _add(
        self, collection_id: str, name: str, size: int, sha: str, uploader: str | None
    ) -> AddResult:
        with self.sessions.begin() as s:
            return add_in(
                s, collection_id=collection_id, name=name, size=size, sha=sha, uploader=uploader
            )

    def add_file(
        self, *, collection_id: str, name: str, path: Path, uploader: str | None = None
    ) -> AddResult:
        """``add`` for a file on disk; one over the size limit is not even read."""
        size = path.stat().st_size
        if size > self.max_bytes:
            return self.reject_too_large(
                collection_id=collection_id, name=name, size=size, uploader=uploader
            )
        return self.add(
            collection_id=collection_id, name=name, data=path.read_bytes(), uploader=uploader
        )

    def reject_too_large(
        self, *, collection_id: str, name: str, size: int, uploader: str | None = None
    ) -> AddResult:
        return self.reject(
            collection_id=collection_id,
            name=name,
            size=size,
            reason=too_large_reason(size, self.max_bytes),
            uploader=uploader,
        )

    def reprocess(self, document_id: str, *, uploader: str | None = None) -> AddResult:
        """Ingest a document again from its stored file (after a parser or model
        upgrade). It becomes a new version: the current one stays searchable until
        the new one is ready, then is replaced."""
        with self.sessions.begin() as s:
            doc = s.get(Document, document_id)
            if doc is None:
                raise NotFound(f"no document {document_id}")
            if not self.blobs.exists(doc.sha256):
                raise Conflict(f"the file of {doc.name!r} is no longer stored; upload it again")
            latest = s.scalar(
                select(func.max(Document.version)).where(
                    Document.collection_id == doc.collection_id, Document.name == doc.name
                )
            )
            new = Document(
                collection_id=doc.collection_id,
                name=doc.name,
                size=doc.size,
                sha256=doc.sha256,
                version=(latest or doc.version) + 1,
                replaces_id=doc.id,
                uploader=uploader or doc.uploader,
                parent_id=doc.parent_id,
            )
            return _queue(s, new, "new_version")

    def latest_jobs(self, document_ids: list[str]) -> dict[str, IngestionJob]:
        """The newest ingestion job of each document."""
        out: dict[str, IngestionJob] = {}
        with self.sessions() as s:
            for i in range(0, len(document_ids), 500):
                rows = s.scalars(
                    select(IngestionJob)
                    .where(IngestionJob.document_id.in_(document_ids[i : i + 500]))
                    .order_by(IngestionJob.created_at)
                )
                for job in rows:
                    out[job.document_id] = job
        return out

    def reject(
        self,
        *,
        collection_id: str,
        name: str,
        size: int,
        reason: str,
        uploader: str | None = None,
        sha256: str | None = None,
    ) -> AddResult:
        """Record a file refused before processing (e.g. too large) as a failed job,
        so the admin sees it with its reason. Its bytes are not stored."""
        with self.sessions.begin() as s:
            return reject_in(
                s,
                collection_id=collection_id,
                name=name,
                size=size,
                reason=reason,
                uploader=uploader,
                sha256=sha256,
            )

    def get(self, document_id: str) -> Document:
        with self.sessions() as s:
            doc = s.get(Document, document_id)
        if doc is None:
            raise NotFound(f"no document {document_id}")
        return doc

    def file_of(self, doc: Document) -> bytes:
        """The stored file of ``doc``; ``NotFound`` once its blob is gone."""
        if not self.blobs.exists(doc.sha256):
            raise NotFound(f"the file of {doc.name!r} is no longer stored")
        return self.blobs.get(doc.sha256)

    def list_documents(
        self, *, collection_id: str | None = None, status: str | None = None
    ) -> list[Document]:
        with self.sessions() as s:
            q = select(Document).order_by(Document.created_at, Document.name)
            if collection_id:
                q = q.where(Document.collection_id == collection_id)
            if status:
                q = q.where(Document.status == status)
            return list(s.scalars(q))

    def find(self, ref: str, *, collection_id: str | None = None) -> list[Document]:
        """Documents whose id, id prefix (8+ chars) or name is ``ref``."""
        with self.sessions() as s:
            q = select(Document)
            if collection_id:
                q = q.where(Document.collection_id == collection_id)
            by_name = list(s.scalars(q.where(Document.name == ref)))
            if by_name:
                return by_name
            if len(ref) >= 8:
                return list(s.scalars(q.where(Document.id.startswith(ref))))
            return []

    def delete(
        self, document_id: str, *, vectors: VectorStore, lexical: LexicalIndex | None = None
    ) -> None:
        """Remove the rows (chunks, pages, jobs cascade), the vectors (in the process that
        writes them) and, when no other document shares it, the blob; a mail's
        attachments with it. A job still running notices and stops."""
        with self.sessions.begin() as s:
            doc = s.get(Document, document_id)
            if doc is None:
                raise NotFound(f"no document {document_id}")
            family = [(doc.id, doc.sha256), *descendants(s, [doc.id])]
            generations.bump(s, [doc.collection_id])  # cached answers may cite it
            # By statement, with a row count: a concurrent delete (or a newer version
            # published meanwhile) may have taken the row since it was read.
            res = s.execute(delete(Document).where(Document.id == document_id))
            if res.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFound(f"no document {document_id}")
        for index in (vectors, lexical):
            # A replica's writer sweeps the entries away (``IngestionQueue.sweep``).
            if index is None or getattr(index, "read_only", False):
                continue
            if index.delete_documents([i for i, _ in family]):
                index.flush()
        shas = {sha for _, sha in family}
        with self.sessions() as s:
            shared = set(s.scalars(select(Document.sha256).where(Document.sha256.in_(shas))))
        for sha in shas - shared:
            self.blobs.delete(sha)

    def chunk_count(self, *, collection_id: str | None = None) -> int:
        with self.sessions() as s:
            q = select(func.count()).select_from(Chunk).join(Document)
            q = q.where(Document.status == DocumentStatus.READY)
            if collection_id:
                q = q.where(Document.collection_id == collection_id)
            return s.scalar(q) or 0

    def job_counts(self, job_ids: list[str] | None = None) -> dict[str, int]:
        with self.sessions() as s:
            q = select(IngestionJob.status, func.count()).group_by(IngestionJob.status)
            if job_ids is not None:
                q = q.where(IngestionJob.id.in_(job_ids))
            return {row[0]: row[1] for row in s.execute(q)}

    def jobs(self, job_ids: list[str]) -> list[IngestionJob]:
        with self.sessions() as s:
            out: list[IngestionJob] = []
            for i in range(0, len(job_ids), 500):
                out.extend(
                    s.scalars(
                        select(IngestionJob)
                        .options(joinedload(IngestionJob.document))
                        .where(IngestionJob.id.in_(job_ids[i : i + 500]))
                    )
                )
            return out

    def recent_jobs(self, *, status: str | None = None, limit: int = 50) -> list[IngestionJob]:
        with self.sessions() as s:
            q = (
                select(IngestionJob)
                .options(joinedload(IngestionJob.document))
                .order_by(IngestionJob.created_at.desc())
                .limit(limit)
            )
            if status:
                q = q.where(IngestionJob.status == status)
            return list(s.scalars(q))

    def unfinished_job_ids(self) -> list[str]:
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(IngestionJob.id).where(IngestionJob.status.in_(JobStatus.UNFINISHED))
                )
            )


def add_in(
    s: Session,
    *,
    collection_id: str,
    name: str,
    size: int,
    sha: str,
    uploader: str | None,
    parent_id: str | None = None,
) -> AddResult:
    """``DocumentService.add`` inside the transaction ``s``, the blob already stored:
    a duplicate of a live document is not processed again, the same bytes that
    failed before are retried, a changed file becomes a new version.

    Duplicates are looked for among the documents of the same owner: uploads
    among uploads, a mail's attachments among that mail's. A file that is also
    attached to some mail is thus still ingested when uploaded, and does not
    vanish when that mail is deleted (search suppresses the near-duplicate hit)."""
    owner = Document.parent_id.is_(None) if parent_id is None else Document.parent_id == parent_id
    same = s.scalars(
        select(Document)
        .where(Document.collection_id == collection_id, Document.sha256 == sha, owner)
        .order_by(Document.version.desc())
    ).all()
    for doc in same:
        if doc.status != DocumentStatus.FAILED:
            return AddResult(doc.id, None, "duplicate")
    latest = s.scalar(
        select(Document)
        .where(Document.collection_id == collection_id, Document.name == name)
        .order_by(Document.version.desc())
        .limit(1)
    )
    if latest is not None and latest.sha256 == sha:
        # The same bytes failed before: try again (Lantern may have been fixed).
        latest.status, latest.error = DocumentStatus.QUEUED, None
        job = IngestionJob(document_id=latest.id)
        s.add(job)
        s.flush()
        return AddResult(latest.id, job.id, "requeued")
    doc = Document(
        collection_id=collection_id,
        name=name,
        size=size,
        sha256=sha,
        version=(latest.version + 1) if latest else 1,
        replaces_id=latest.id if latest else None,
        uploader=uploader,
        parent_id=parent_id,
    )
    return _queue(s, doc, "new_version" if latest else "queued")


def reject_in(
    s: Session,
    *,
    collection_id: str,
    name: str,
    size: int,
    reason: str,
    uploader: str | None = None,
    sha256: str | None = None,
    parent_id: str | None = None,
) -> AddResult:
    """``DocumentService.reject`` inside the transaction ``s``."""
    latest = s.scalar(
        select(func.max(Document.version)).where(
            Document.collection_id == collection_id, Document.name == name
        )
    )
    now = utcnow()
    doc = Document(
        collection_id=collection_id,
        name=name,
        size=size,
        sha256=sha256 or sha256_of(b""),
        version=(latest or 0) + 1,
        status=DocumentStatus.FAILED,
        error=reason,
        uploader=uploader,
        timings={},
        parent_id=parent_id,
    )
    s.add(doc)
    s.flush()
    job = IngestionJob(
        document_id=doc.id,
        status=JobStatus.FAILED,
        stage="upload",
        error=reason,
        finished_at=now,
        timings={},
    )
    s.add(job)
    s.flush()
    return AddResult(doc.id, job.id, "rejected", reason)


def descendants(s: Session, ids: Sequence[str]) -> list[tuple[str, str]]:
    """(id, sha256) of every document attached below ``ids``, at any depth."""
    out: list[tuple[str, str]] = []
    level = list(ids)
    while level:
        rows = s.execute(
            select(Document.id, Document.sha256).where(Document.parent_id.in_(level))
        ).all()
        out.extend((r[0], r[1]) for r in rows)
        level = [r[0] for r in rows]
    return out


def _queue(s: Session, doc: Document, outcome: Outcome) -> AddResult:
    """Add ``doc`` as queued, with its ingestion job."""
    doc.status = DocumentStatus.QUEUED
    doc.timings = {}
    s.add(doc)
    s.flush()
    job = IngestionJob(document_id=doc.id, timings={})
    s.add(job)
    s.flush()
    return AddResult(doc.id, job.id, outcome)


def too_large_reason(size: int, limit: int) -> str:
    return str(file_too_large(size, limit))
