"""Dense search over ready documents, returning chunks with their provenance."""

from __future__ import annotations

from collections.abc import Collection as Coll
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Chunk, Collection, Document, DocumentStatus
from retrieval.embedders.base import Embedder
from retrieval.vectorstores.base import VectorStore


@dataclass(frozen=True)
class SearchResult:
    chunk_id: str
    document_id: str
    document_name: str
    title: str | None
    collection: str
    #: None for formats without real pages (DOCX, HTML, Markdown, TXT).
    page: int | None
    section_path: tuple[str, ...]
    text: str
    char_start: int
    char_end: int
    score: float


class SearchService:
    def __init__(
        self, sessions: sessionmaker[Session], embedder: Embedder, vectors: VectorStore
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.vectors = vectors

    def search(
        self, query: str, *, k: int = 5, collection_ids: Coll[str] | None = None
    ) -> list[SearchResult]:
        """The ``k`` chunks closest to ``query`` in the given collections (all if None).
        Only documents that are fully ingested are visible."""
        if not query.strip() or k <= 0:
            return []
        qv = self.embedder.embed_query(query)[0]
        # Over-fetch a little: vectors of a document still being published or removed
        # are dropped by the status check below.
        hits = self.vectors.search(qv, k=k + 10, collections=collection_ids)
        if not hits:
            return []
        with self.sessions() as s:
            rows = s.execute(
                select(Chunk, Document, Collection.name)
                .join(Document, Chunk.document_id == Document.id)
                .join(Collection, Document.collection_id == Collection.id)
                .where(
                    Chunk.id.in_([h.chunk_id for h in hits]),
                    Document.status == DocumentStatus.READY,
                )
            ).all()
        by_id = {c.id: (c, d, cname) for c, d, cname in rows}
        out: list[SearchResult] = []
        for h in hits:
            if h.chunk_id not in by_id:
                continue
            c, d, cname = by_id[h.chunk_id]
            out.append(
                SearchResult(
                    chunk_id=c.id,
                    document_id=d.id,
                    document_name=d.name,
                    title=d.title,
                    collection=cname,
                    page=c.page if d.paginated else None,
                    section_path=tuple(c.section_path or ()),
                    text=c.text,
                    char_start=c.char_start,
                    char_end=c.char_end,
                    score=h.score,
                )
            )
            if len(out) == k:
                break
        return out
