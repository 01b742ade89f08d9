"""Chunk lookups by id: what search shows and what an answer is packed and traced by."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db.models import Chunk, Document, DocumentStatus, Page
from app.db.repositories.chunks import ChunkRepository
from tests.fixtures import docs
from tests.unit.ingest_helpers import ingest


def stored(container: Any) -> tuple[list[Chunk], dict[tuple[str, int], str]]:
    with container.sessions() as s:
        chunks = list(s.scalars(select(Chunk).order_by(Chunk.page, Chunk.ordinal)))
        pages = {(p.document_id, p.number): p.text for p in s.scalars(select(Page))}
    return chunks, pages


def test_lookups_by_chunk_id(container: Any) -> None:
    pdf = docs.make_pdf(["Vacation: twenty-five days.", "Expenses: within thirty days."])
    ingest(container, {"handbook.pdf": pdf})
    chunks, pages = stored(container)
    repo = ChunkRepository(container.sessions)
    last = chunks[-1]
    assert last.page == 2
    # Only the page the asked chunk is on, with its full text.
    assert repo.page_texts([last.id]) == {(last.document_id, 2): pages[(last.document_id, 2)]}
    assert repo.content_hashes([c.id for c in chunks] + ["no-such-chunk"]) == {
        c.id: c.content_hash for c in chunks
    }
    assert repo.ready_texts([last.id]) == {last.id: last.text}
    [(chunk, document, collection)] = repo.ready_with_documents([last.id]).values()
    assert (chunk.text, document.name, collection) == (last.text, "handbook.pdf", "default")
    assert repo.page_texts([]) == repo.content_hashes([]) == repo.ready_texts([]) == {}


def test_chunks_of_a_document_that_is_not_ready_are_not_shown(container: Any) -> None:
    ingest(container, {"notes.txt": b"Badges are renewed every spring at the front desk."})
    [chunk], _ = stored(container)
    with container.sessions.begin() as s:
        s.get(Document, chunk.document_id).status = DocumentStatus.PROCESSING
    repo = ChunkRepository(container.sessions)
    assert repo.ready_texts([chunk.id]) == {}
    assert repo.ready_with_documents([chunk.id]) == {}
    # Answers already given stay traceable to the chunk they quoted.
    assert repo.content_hashes([chunk.id]) == {chunk.id: chunk.content_hash}
