"""Chunk lookups for search and answers: texts, page texts, content hashes.

Only chunks of ready documents are searchable: a document being published or
deleted never surfaces, even though its vectors may exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Chunk, Collection, Document, DocumentStatus, Page


class ChunkRepository:
    """Reads chunks (and the pages they are on) by chunk id, one session per call."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def ready_texts(self, chunk_ids: Sequence[str]) -> dict[str, str]:
        """Text of each chunk of a ready document, by chunk id."""
        if not chunk_ids:
            return {}
        with self.sessions() as s:
            rows = s.execute(
                select(Chunk.id, Chunk.text)
                .join(Document, Chunk.document_id == Document.id)
                .where(Chunk.id.in_(list(chunk_ids)), Document.status == DocumentStatus.READY)
            ).all()
        return dict(rows)

    def ready_with_documents(
        self, chunk_ids: Sequence[str]
    ) -> dict[str, tuple[Chunk, Document, str]]:
        """Each chunk of a ready document with its document and collection name, by chunk id."""
        if not chunk_ids:
            return {}
        with self.sessions() as s:
            rows = s.execute(
                select(Chunk, Document, Collection.name)
                .join(Document, Chunk.document_id == Document.id)
                .join(Collection, Document.collection_id == Collection.id)
                .where(Chunk.id.in_(list(chunk_ids)), Document.status == DocumentStatus.READY)
            ).all()
        return {c.id: (c, d, cname) for c, d, cname in rows}

    def page_texts(self, chunk_ids: Sequence[str]) -> dict[tuple[str, int], str]:
        """Full text of every page these chunks are on, by (document id, page number):
        what packing needs to merge neighbouring chunks exactly."""
        if not chunk_ids:
            return {}
        with self.sessions() as s:
            rows = s.execute(
                select(Page.document_id, Page.number, Page.text)
                .join(Chunk, (Page.document_id == Chunk.document_id) & (Page.number == Chunk.page))
                .where(Chunk.id.in_(list(chunk_ids)))
            ).all()
        return {(doc, number): text for doc, number, text in rows}

    def content_hashes(self, chunk_ids: Sequence[str]) -> dict[str, str]:
        """Content hash of each chunk, by chunk id: provenance an answer can be traced by."""
        if not chunk_ids:
            return {}
        with self.sessions() as s:
            rows = s.execute(
                select(Chunk.id, Chunk.content_hash).where(Chunk.id.in_(list(chunk_ids)))
            ).all()
        return dict(rows)
