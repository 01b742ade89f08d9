"""Rebuild the vector index from the database (after a model change or index damage).

File indexes are built in a staging directory that then replaces the live one; an
index on a database server (Milvus) is ``Promotable``: it is built under a staging
name and then takes the live index's place itself.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Chunk, Document, DocumentStatus
from app.db.repositories import generations
from ingestion.chunking import ChunkDraft
from retrieval.embedders.base import Embedder
from retrieval.lexical.base import LexicalIndex, LexicalRecord
from retrieval.vectorstores.base import VectorRecord, VectorStore

log = logging.getLogger(__name__)

BATCH = 256
T = TypeVar("T", VectorStore, LexicalIndex)


@runtime_checkable
class Promotable(Protocol):
    """An index that lives outside the file system, so its directory cannot be renamed."""

    def promote(self, directory: Path) -> None:
        """Replace the index opened at ``directory`` with this one, in one step."""

    def clear(self) -> None: ...


def rebuild_index(
    sessions: sessionmaker[Session],
    embedder: Embedder,
    directory: Path,
    open_store: Callable[[Path], VectorStore],
    *,
    lexical_dir: Path | None = None,
    open_lexical: Callable[[Path, VectorStore], LexicalIndex] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Re-embed every chunk of every ready document into fresh vector and lexical
    indexes built beside the live ones, then swap them in. Search keeps working on the
    old indexes until the swap; a crash mid-way leaves them untouched. Returns the count.

    ``open_lexical`` gets the fresh vector store too: a lexical index that lives in the
    store's storage (Milvus) is built and swapped with it."""
    staging = _staging(directory)
    store = _fresh(open_store(staging))
    lexical = None
    lexical_staging = None
    if lexical_dir is not None and open_lexical is not None:
        lexical_staging = _staging(lexical_dir)
        lexical = _fresh(open_lexical(lexical_staging, store))
    with sessions() as s:
        q = (
            select(Chunk, Document.collection_id, Document.title)
            .join(Document, Chunk.document_id == Document.id)
            .where(Document.status == DocumentStatus.READY)
            .order_by(Chunk.document_id, Chunk.ordinal)
        )
        total = len(
            s.scalars(
                select(Chunk.id).join(Document).where(Document.status == DocumentStatus.READY)
            ).all()
        )
        done = 0
        batch: list[tuple[Chunk, str, str | None]] = []
        for row in s.execute(q).yield_per(BATCH):
            batch.append(tuple(row))  # type: ignore[arg-type]
            if len(batch) == BATCH:
                done += _flush_batch(store, lexical, embedder, batch)
                batch = []
                if progress:
                    progress(done, total)
        if batch:
            done += _flush_batch(store, lexical, embedder, batch)
    for index in (store, lexical):
        if index is not None:
            index.flush()
    if progress:
        progress(done, total)
    swaps: list[tuple[VectorStore | LexicalIndex, Path, Path]] = [(store, staging, directory)]
    if lexical is not None and lexical_dir is not None and lexical_staging is not None:
        swaps.append((lexical, lexical_staging, lexical_dir))
    try:
        for index, fresh, live in swaps:
            _replace(index, fresh, live)
    finally:
        for index, _, _ in reversed(swaps):  # the lexical index may live in the store's
            index.close()
    with sessions.begin() as s:
        generations.bump_all(s)  # answers cached from the old index are stale now
    log.info("reindexed %d chunks with %s", done, embedder.model_name)
    return done


def _staging(directory: Path) -> Path:
    staging = directory.with_name(directory.name + ".rebuild")
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def _fresh(index: T) -> T:
    """A server-side staging index emptied of what a crashed rebuild left in it (a staging
    directory is removed instead)."""
    if isinstance(index, Promotable):
        index.clear()
    return index


def _replace(index: VectorStore | LexicalIndex, staging: Path, directory: Path) -> None:
    """Put the flushed staging ``index`` in the place of the one at ``directory``
    (closing a file index first; ``close`` is idempotent)."""
    if isinstance(index, Promotable):
        index.promote(directory)
        return
    index.close()
    _swap(staging, directory)


def _swap(staging: Path, directory: Path) -> None:
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def _flush_batch(
    store: VectorStore,
    lexical: LexicalIndex | None,
    embedder: Embedder,
    batch: list[tuple[Chunk, str, str | None]],
) -> int:
    texts = [
        ChunkDraft(
            c.ordinal, c.text, c.page, tuple(c.section_path or ()), c.char_start, c.char_end, 0
        ).embedding_text(title)
        for c, _, title in batch
    ]
    vecs = embedder.embed_documents(texts)
    # Vectors first, as ingestion writes them: a lexical index in the store's rows then
    # only fills in their text.
    store.upsert(
        [
            VectorRecord(c.id, c.document_id, collection_id, vecs[i])
            for i, (c, collection_id, _) in enumerate(batch)
        ]
    )
    if lexical is not None:
        lexical.upsert(
            [
                LexicalRecord(c.id, c.document_id, collection_id, texts[i])
                for i, (c, collection_id, _) in enumerate(batch)
            ]
        )
    return len(batch)
