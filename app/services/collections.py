"""Collections: named sets of documents, and the unit of permission (see access.py)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Collection, Document
from app.errors import Conflict, InvalidInput, NotFound
from app.services.documents import DocumentService
from retrieval.lexical.base import LexicalIndex
from retrieval.vectorstores.base import VectorStore


class CollectionService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def ensure(self, name: str, *, description: str = "") -> Collection:
        """The collection called ``name``, created if missing."""
        return self.find_by_name(name) or self.create(name, description=description)

    def find_by_name(self, name: str) -> Collection | None:
        """The collection called ``name`` (spaces normalised as on create), if any."""
        with self.sessions() as s:
            return s.scalar(select(Collection).where(Collection.name == _name(name)))

    def create(self, name: str, *, description: str = "") -> Collection:
        name = _name(name)
        try:
            with self.sessions.begin() as s:
                col = Collection(name=name, description=description.strip())
                s.add(col)
        except IntegrityError as e:
            raise Conflict(f"a collection named {name!r} already exists") from e
        return col

    def get(self, collection_id: str) -> Collection:
        with self.sessions() as s:
            col = s.get(Collection, collection_id)
        if col is None:
            raise NotFound(f"no collection {collection_id}")
        return col

    def get_by_name(self, name: str) -> Collection:
        with self.sessions() as s:
            col = s.scalar(select(Collection).where(Collection.name == name))
        if col is None:
            raise NotFound(f"no collection named {name!r}")
        return col

    def list_collections(self, ids: Iterable[str] | None = None) -> list[Collection]:
        """Every collection, or those with the given ids, by name."""
        q = select(Collection).order_by(Collection.name)
        if ids is not None:
            q = q.where(Collection.id.in_(list(ids)))
        with self.sessions() as s:
            return list(s.scalars(q))

    def document_counts(self) -> dict[str, int]:
        with self.sessions() as s:
            rows = s.execute(
                select(Document.collection_id, func.count()).group_by(Document.collection_id)
            )
            return {str(cid): int(n) for cid, n in rows}

    def update(
        self, collection_id: str, *, name: str | None = None, description: str | None = None
    ) -> Collection:
        try:
            with self.sessions.begin() as s:
                col = s.get(Collection, collection_id)
                if col is None:
                    raise NotFound(f"no collection {collection_id}")
                if name is not None:
                    col.name = _name(name)
                if description is not None:
                    col.description = description.strip()
        except IntegrityError as e:
            raise Conflict(f"a collection named {name!r} already exists") from e
        return col

    def delete(
        self,
        collection_id: str,
        *,
        documents: DocumentService,
        vectors: VectorStore,
        lexical: LexicalIndex,
    ) -> int:
        """Delete the collection with its documents, their vectors, index entries and
        blobs. Returns how many documents went."""
        self.get(collection_id)
        doc_ids = [d.id for d in documents.list_documents(collection_id=collection_id)]
        for doc_id in doc_ids:
            documents.delete(doc_id, vectors=vectors, lexical=lexical)
        with self.sessions.begin() as s:
            col = s.get(Collection, collection_id)
            if col is not None:
                s.delete(col)
        return len(doc_ids)


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("collection name must not be empty")
    if len(name) > 200:
        raise InvalidInput("collection names are limited to 200 characters")
    return name
