"""Collections and their documents, as callers see them: every method takes the
``Actor``, checks its access, acts, writes the audit record with the real outcome
and wakes the ingestion workers when it queued work.

``CollectionService``, ``DocumentService`` and ``AccessService`` below it keep the
records; this is the only layer entry points (REST, UI, CLI) call for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.db.models import Collection, Document, IngestionJob, JobStatus
from app.errors import InvalidInput, NotFound
from app.services.access import AccessService, Grant
from app.services.actor import Actor
from app.services.audit import AuditLog
from app.services.collections import CollectionService
from app.services.documents import AddResult, DocumentService, kept_name
from app.services.search import SearchResult, SearchService
from retrieval.lexical.base import LexicalIndex
from retrieval.vectorstores.base import VectorStore


@dataclass(frozen=True)
class Upload:
    """A file as an entry point received it, under the name it is to be kept as (a
    browser's without its folders, the CLI's relative to the folder ingested); ``data``
    is None when it was over the size limit and not kept (``size`` is what was sent)."""

    name: str
    data: bytes | None
    size: int

    @classmethod
    def from_path(cls, path: Path, *, name: str | None = None, max_bytes: int) -> Upload:
        """A file on disk; one over ``max_bytes`` is not read."""
        size = path.stat().st_size
        return cls(name or path.name, path.read_bytes() if size <= max_bytes else None, size)


@dataclass(frozen=True)
class CollectionView:
    collection: Collection
    #: ``write`` when the caller may change it, else ``read``.
    access: str
    documents: int


@dataclass(frozen=True)
class DocumentView:
    document: Document
    #: Its newest ingestion job (stage, progress), if any.
    job: IngestionJob | None

    @property
    def eta_s(self) -> float | None:
        """Seconds left for a running job, from its progress so far."""
        job = self.job
        if job is None or job.status != JobStatus.RUNNING or not job.started_at:
            return None
        if job.progress <= 0.02:
            return None
        started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=UTC)
        elapsed = (datetime.now(UTC) - started).total_seconds()
        return round(max(0.0, elapsed * (1 - job.progress) / job.progress), 1)


class LibraryService:
    def __init__(
        self,
        *,
        collections: CollectionService,
        documents: DocumentService,
        access: AccessService,
        audit: AuditLog,
        search: SearchService,
        indexes: Callable[[], tuple[VectorStore, LexicalIndex]],
        wake_workers: Callable[[], None],
        max_files_per_upload: int,
    ) -> None:
        self._collections = collections
        self._documents = documents
        self._access = access
        self._audit = audit
        self._search = search
        self._indexes = indexes
        self._wake = wake_workers
        self.max_files_per_upload = max_files_per_upload

    @property
    def max_file_bytes(self) -> int:
        return self._documents.max_bytes

    # -- collections -------------------------------------------------------------------

    def list_collections(self, actor: Actor) -> list[CollectionView]:
        """The collections the caller may read (the CLI: all of them)."""
        if actor.principal is None:
            actor.require_admin()
            cols = self._collections.list_collections()
            writable = {c.id for c in cols}
        else:
            cols = self._collections.list_collections(self._access.readable(actor.principal))
            writable = self._access.writable(actor.principal)
        counts = self._collections.document_counts()
        return [self._view(c, writable, counts) for c in cols]

    def get_collection(self, actor: Actor, collection_id: str) -> CollectionView:
        self._check_read(actor, collection_id)
        col = self._collections.get(collection_id)
        return self._view(col, self._writable(actor), self._collections.document_counts())

    def collection_by_name(self, actor: Actor, name: str) -> Collection:
        """A readable collection by its name (``NotFound`` for one the caller may not read)."""
        col = self._collections.get_by_name(name)
        self._check_read(actor, col.id)
        return col

    def create_collection(
        self, actor: Actor, name: str, *, description: str = "", exist_ok: bool = False
    ) -> Collection:
        """Create a collection (admins). Nobody else sees it until a group may read it.
        With ``exist_ok`` an existing one of that name is returned unchanged."""
        if exist_ok:
            with self._audit.event(
                "collection.create", actor, target_type="collection", only_refusals=True
            ):
                actor.require_admin()
                existing = self._collections.find_by_name(name)
            if existing is not None:
                return existing
        with self._audit.event("collection.create", actor, target_type="collection") as ev:
            actor.require_admin()
            col = self._collections.create(name, description=description)
            ev.target_id, ev.details["name"] = col.id, col.name
            return col

    def update_collection(
        self,
        actor: Actor,
        collection_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> CollectionView:
        """Rename or describe a collection (needs write access)."""
        with self._audit.event(
            "collection.update", actor, target_type="collection", target_id=collection_id
        ) as ev:
            self._check_write(actor, collection_id)
            col = self._collections.update(collection_id, name=name, description=description)
            ev.details["name"] = col.name
            return self._view(col, {col.id}, self._collections.document_counts())

    def delete_collection(self, actor: Actor, collection_id: str) -> int:
        """Delete a collection with all its documents (admins); how many documents went."""
        with self._audit.event(
            "collection.delete", actor, target_type="collection", target_id=collection_id
        ) as ev:
            actor.require_admin()
            vectors, lexical = self._indexes()
            n = self._collections.delete(
                collection_id, documents=self._documents, vectors=vectors, lexical=lexical
            )
            ev.details["documents"] = n
            return n

    def grants(self, actor: Actor, collection_id: str) -> list[Grant]:
        """Which groups may read or write the collection (admins)."""
        actor.require_admin()
        self._collections.get(collection_id)
        return self._access.grants(collection_id)

    def set_grants(self, actor: Actor, collection_id: str, grants: dict[str, str]) -> list[Grant]:
        """Replace the groups' access to the collection (admins); documents inherit it."""
        with self._audit.event(
            "collection.access",
            actor,
            target_type="collection",
            target_id=collection_id,
            details={"grants": dict(grants)},
        ):
            actor.require_admin()
            return self._access.set_grants(collection_id, dict(grants))

    def search(
        self, actor: Actor, query: str, *, k: int = 8, collection_ids: Iterable[str] | None = None
    ) -> list[SearchResult]:
        """Ranked chunks for ``query`` in the readable collections asked for (default: all
        readable), filtered by permission inside the search."""
        if actor.principal is None:
            actor.require_admin()
            scope = None if collection_ids is None else list(collection_ids)
        else:
            scope = self._access.scope(actor.principal, collection_ids)
        return self._search.search(query, k=k, collection_ids=scope)

    # -- documents ---------------------------------------------------------------------

    def list_documents(
        self, actor: Actor, collection_id: str | None = None, *, status: str | None = None
    ) -> list[DocumentView]:
        """Documents of a readable collection with their newest job; without a
        collection, every document (admins)."""
        if collection_id is None:
            actor.require_admin()
        else:
            self._check_read(actor, collection_id)
        docs = self._documents.list_documents(collection_id=collection_id, status=status)
        return self._views(docs)

    def get_document(self, actor: Actor, document_id: str) -> DocumentView:
        """One readable document with its newest job."""
        return self._views([self._readable_document(actor, document_id)])[0]

    def find_documents(
        self, actor: Actor, ref: str, *, collection_id: str | None = None
    ) -> list[Document]:
        """Readable documents whose id, id prefix (8+ chars) or name is ``ref``."""
        if collection_id is not None:
            self._check_read(actor, collection_id)
        found = self._documents.find(ref, collection_id=collection_id)
        if actor.principal is None:
            actor.require_admin()
            return found
        readable = self._access.readable(actor.principal)
        return [d for d in found if d.collection_id in readable]

    def document_file(self, actor: Actor, document_id: str) -> tuple[Document, bytes]:
        """The stored file of a readable document, as uploaded."""
        doc = self._readable_document(actor, document_id)
        return doc, self._documents.file_of(doc)

    def upload(
        self, actor: Actor, collection_id: str, files: Sequence[Upload]
    ) -> list[tuple[str, AddResult]]:
        """Queue files for ingestion (needs write access), each under its kept name.
        A file too large or empty is recorded as failed with the reason; a file name
        that cannot be stored refuses the whole upload before any file is queued."""
        with self._audit.event(
            "document.upload",
            actor,
            target_type="collection",
            target_id=collection_id,
            details={"files": len(files)},
            only_refusals=True,  # each file queued is its own event
        ):
            self._check_write(actor, collection_id)
            if not files:
                raise InvalidInput("no files to upload")
            if len(files) > self.max_files_per_upload:
                raise InvalidInput(f"at most {self.max_files_per_upload} files per upload")
            names = [kept_name(f.name) for f in files]
            uploader = actor.principal.email if actor.principal else None
            out: list[tuple[str, AddResult]] = []
            try:
                for f, name in zip(files, names, strict=True):
                    out.append((name, self._add(actor, collection_id, f, name, uploader)))
            finally:
                if out:
                    self._wake()
            return out

    def _add(
        self, actor: Actor, collection_id: str, f: Upload, name: str, uploader: str | None
    ) -> AddResult:
        with self._audit.event(
            "document.upload",
            actor,
            target_type="document",
            details={"collection_id": collection_id, "name": name},
        ) as ev:
            if f.data is None:
                result = self._documents.reject_too_large(
                    collection_id=collection_id, name=name, size=f.size, uploader=uploader
                )
            else:
                result = self._documents.add(
                    collection_id=collection_id, name=name, data=f.data, uploader=uploader
                )
            ev.target_id, ev.details["outcome"] = result.document_id, result.outcome
            if result.outcome == "rejected":
                ev.outcome = "rejected"
            return result

    def delete_document(self, actor: Actor, document_id: str) -> Document:
        """Delete a document: its text, chunks, vectors and stored file (needs write access)."""
        with self._audit.event(
            "document.delete", actor, target_type="document", target_id=document_id
        ) as ev:
            doc = self._readable_document(actor, document_id)
            ev.details.update(collection_id=doc.collection_id, name=doc.name)
            self._check_write(actor, doc.collection_id)
            vectors, lexical = self._indexes()
            self._documents.delete(document_id, vectors=vectors, lexical=lexical)
            return doc

    def reindex_document(self, actor: Actor, document_id: str) -> tuple[Document, AddResult]:
        """Ingest the stored file again as a new version; the current one stays
        searchable until it is ready (needs write access)."""
        with self._audit.event(
            "document.reindex", actor, target_type="document", target_id=document_id
        ) as ev:
            doc = self._readable_document(actor, document_id)
            self._check_write(actor, doc.collection_id)
            uploader = actor.principal.email if actor.principal else None
            result = self._documents.reprocess(document_id, uploader=uploader)
            self._wake()
            ev.details["new_document_id"] = result.document_id
            return doc, result

    def recent_jobs(
        self, actor: Actor, *, status: str | None = None, limit: int = 50
    ) -> list[IngestionJob]:
        """The newest ingestion jobs of every collection (admins)."""
        actor.require_admin()
        return self._documents.recent_jobs(status=status, limit=limit)

    # -- rules -------------------------------------------------------------------------

    def _readable_document(self, actor: Actor, document_id: str) -> Document:
        try:
            doc = self._documents.get(document_id)
            self._check_read(actor, doc.collection_id)
        except NotFound:
            # The same answer whether it does not exist or may not be read.
            raise NotFound(f"no document {document_id}") from None
        return doc

    def _check_read(self, actor: Actor, collection_id: str) -> None:
        if actor.principal is None:
            actor.require_admin()
            self._collections.get(collection_id)
        else:
            self._access.check_read(actor.principal, collection_id)

    def _check_write(self, actor: Actor, collection_id: str) -> None:
        if actor.principal is None:
            actor.require_admin()
            self._collections.get(collection_id)
        else:
            self._access.check_write(actor.principal, collection_id)

    def _writable(self, actor: Actor) -> set[str]:
        if actor.principal is None:
            return {c.id for c in self._collections.list_collections()}
        return self._access.writable(actor.principal)

    def _views(self, docs: Iterable[Document]) -> list[DocumentView]:
        docs = list(docs)
        jobs = self._documents.latest_jobs([d.id for d in docs])
        return [DocumentView(d, jobs.get(d.id)) for d in docs]

    @staticmethod
    def _view(col: Collection, writable: set[str], counts: dict[str, int]) -> CollectionView:
        return CollectionView(col, "write" if col.id in writable else "read", counts.get(col.id, 0))
