"""FAISS vector store: exact inner-product search, one index per collection, atomic files.

Layout under ``directory``::

    manifest.json                 embedding model, dimension, backend, format version
    shards.json                   commit point: collection id -> its segment files, in order
    seg-<gen>-<n>.npz             immutable: rows a flush added to one collection (vectors,
                                  ids, chunk and document ids) + tombstones of older rows

A flush costs what changed, not the size of the index: it writes one segment per
changed collection with the rows added and the tombstones of rows deleted or
replaced since the last flush, occasionally merged with the newest segments or, at
too many segments or tombstones, with all of them (``_faiss_segments`` has the
policy; amortised, every row is rewritten O(log n) times). It then atomically
replaces ``shards.json`` and deletes the files that table no longer names. A segment
file is never overwritten, so a crash anywhere before that rename leaves the
previous ``shards.json`` and every file it names intact, and the last flushed state
loads; files it does not name are ignored and removed by the next flush. Opening
replays each collection's segments in order into an in-memory faiss index.

One process owns a directory for writing. ``close()`` does not flush: callers flush
after a whole unit of work (a document), so a crash never persists half of one.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import logging
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval._atomic import atomic_write, remove_files, remove_stale_files
from retrieval.errors import VectorStoreError
from retrieval.vectorstores import _faiss_segments as segments
from retrieval.vectorstores._faiss_segments import Segment
from retrieval.vectorstores.base import IndexManifest, Vector, VectorHit, VectorRecord
from retrieval.vectorstores.manifest import (
    REINDEX_HINT,
    SHARDS_NAME,
    SegmentTable,
    check_manifest,
    read_manifest,
    read_segment_table,
    write_manifest,
    write_segment_table,
)

logger = logging.getLogger(__name__)

BACKEND = "faiss"
FORMAT_VERSION = 2
_ID_MASK = (1 << 63) - 1


def faiss_id(chunk_id: str) -> int:
    """A stable non-negative int64 id for a chunk id (first 8 bytes of blake2b)."""
    digest = hashlib.blake2b(chunk_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _ID_MASK


@dataclass(frozen=True)
class _Location:
    faiss_id: int
    document_id: str
    collection_id: str


class FaissVectorStore:
    """A ``VectorStore`` of FAISS flat inner-product indexes, persisted as segments."""

    def __init__(self, directory: Path, *, embedding_model: str, dimension: int) -> None:
        if dimension <= 0:
            raise VectorStoreError(f"dimension must be positive, got {dimension}")
        self.directory = Path(directory)
        self.manifest = IndexManifest(embedding_model, dimension, BACKEND, FORMAT_VERSION)
        self._lock = threading.RLock()
        self._closed = False
        self._collections: dict[str, segments.Collection] = {}
        self._locations: dict[str, _Location] = {}
        self._by_document: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._committed: set[str] = set()  # files named by shards.json
        self._generation = 0
        self._sweep = True  # remove every unreferenced file at the next flush
        self._open()

    # -- opening ---------------------------------------------------------------

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        found = read_manifest(self.directory)
        if found is None:
            if (self.directory / SHARDS_NAME).exists():
                raise VectorStoreError(
                    f"index at {self.directory} has shards but no manifest.json; {REINDEX_HINT}"
                )
            write_manifest(self.directory, self.manifest)
            return
        check_manifest(found, self.manifest, self.directory)
        table = read_segment_table(
            self.directory, format_version=FORMAT_VERSION, valid_name=segments.is_segment_name
        )
        self._generation = table.generation
        for collection_id, entries in table.collections.items():
            coll = segments.load_collection(
                self.directory, collection_id, entries, self.manifest.dimension
            )
            self._collections[collection_id] = coll
            self._committed.update(s.file for s in coll.segments)
            for fid, (chunk_id, document_id) in coll.members.items():
                if chunk_id in self._locations:
                    raise VectorStoreError(
                        f"chunk {chunk_id!r} is in two collections of {self.directory}; "
                        f"{REINDEX_HINT}"
                    )
                self._locations[chunk_id] = _Location(fid, document_id, collection_id)
                self._by_document.setdefault(document_id, set()).add(chunk_id)

    # -- writes ----------------------------------------------------------------

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        """Insert or replace vectors by ``chunk_id``; a chunk may move between collections.

        The whole batch is validated before anything changes. Vectors are L2-normalised.
        """
        batch = list({r.chunk_id: r for r in records}.values())  # the last one for a chunk wins
        if not batch:
            return
        matrix = self._as_matrix([r.vector for r in batch], what="vector")
        ids = [faiss_id(r.chunk_id) for r in batch]
        with self._lock:
            self._check_open()
            self._check_batch(batch, ids)
            self._remove_chunks([r.chunk_id for r in batch if r.chunk_id in self._locations])
            by_collection: dict[str, list[int]] = {}
            for row, record in enumerate(batch):
                by_collection.setdefault(record.collection_id, []).append(row)
            for collection_id, rows in by_collection.items():
                coll = self._collections.get(collection_id) or self._new_collection()
                self._collections[collection_id] = coll
                coll.index.add_with_ids(matrix[rows], np.asarray([ids[i] for i in rows], np.int64))
                for i in rows:
                    record = batch[i]
                    coll.members[ids[i]] = (record.chunk_id, record.document_id)
                    coll.added[ids[i]] = None
                    self._locations[record.chunk_id] = _Location(
                        ids[i], record.document_id, collection_id
                    )
                    self._by_document.setdefault(record.document_id, set()).add(record.chunk_id)
                self._dirty.add(collection_id)

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove every vector of these documents; returns how many were removed."""
        if isinstance(document_ids, str):
            raise TypeError("document_ids must be a collection of ids, not a string")
        with self._lock:
            self._check_open()
            chunks = [c for d in set(document_ids) for c in self._by_document.get(d, ())]
            self._remove_chunks(chunks)
            return len(chunks)

    def clear(self) -> None:
        """Drop every vector; ``flush()`` then removes the segment files. Keeps the manifest."""
        with self._lock:
            self._check_open()
            self._dirty.update(self._collections)
            self._collections.clear()
            self._locations.clear()
            self._by_document.clear()

    def flush(self) -> None:
        """Write what changed since the last flush as new segment files, then switch
        ``shards.json`` to them atomically; see the module docstring."""
        with self._lock:
            self._check_open()
            if not self._dirty:
                return
            generation = self._generation + 1
            changed: dict[str, list[Segment]] = {}
            committed = False
            try:
                for n, collection_id in enumerate(sorted(self._dirty)):
                    changed[collection_id] = self._write_changes(collection_id, generation, n)
                table = SegmentTable(
                    generation,
                    {
                        c: tuple(s.entry() for s in changed.get(c, coll.segments))
                        for c, coll in self._collections.items()
                        if changed.get(c, coll.segments)
                    },
                )
                files = {s.file for entries in table.collections.values() for s in entries}
                if files != self._committed:  # else the changes cancelled out
                    write_segment_table(self.directory, table, format_version=FORMAT_VERSION)
                committed = True
            except (OSError, RuntimeError, ValueError) as e:
                raise VectorStoreError(f"cannot commit index at {self.directory}: {e}") from e
            finally:
                # A failed attempt may leave segment files that no table names.
                self._sweep = self._sweep or not committed
            for collection_id, written in changed.items():
                coll = self._collections.get(collection_id)
                if coll is None:
                    continue
                if not written:  # every row was deleted: the collection is gone
                    del self._collections[collection_id]
                    continue
                coll.segments, coll.added, coll.deleted = written, {}, []
            self._dirty.clear()
            if files != self._committed:
                self._generation = generation
                self._clean_up(files)

    def close(self) -> None:
        """Release the store without flushing; unflushed changes are discarded."""
        with self._lock:
            if self._dirty and not self._closed:
                logger.warning(
                    "closing FAISS index at %s with %d unflushed collection(s); changes discarded",
                    self.directory,
                    len(self._dirty),
                )
            self._closed = True
            self._collections.clear()
            self._locations.clear()
            self._by_document.clear()

    def __enter__(self) -> FaissVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------

    def search(
        self, query: Vector, *, k: int, collections: Collection[str] | None = None
    ) -> list[VectorHit]:
        """Top-``k`` hits by cosine; only the requested collections are searched."""
        if k < 0:
            raise VectorStoreError(f"k must be >= 0, got {k}")
        q = self._as_matrix([query], what="query")
        with self._lock:
            self._check_open()
            candidates: list[tuple[float, str, str, str]] = []
            for collection_id in self._selected(collections):
                coll = self._collections[collection_id]
                if k == 0 or coll.index.ntotal == 0:
                    continue
                scores, ids = coll.index.search(q, min(k, coll.index.ntotal))
                for score, fid in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
                    if fid >= 0:  # faiss pads missing results with -1
                        chunk_id, document_id = coll.members[fid]
                        candidates.append((score, chunk_id, document_id, collection_id))
        best = heapq.nsmallest(k, candidates, key=lambda c: (-c[0], c[1]))
        return [
            VectorHit(chunk_id=c, document_id=d, collection_id=col, score=s)
            for s, c, d, col in best
        ]

    def document_ids(self) -> set[str]:
        with self._lock:
            self._check_open()
            return set(self._by_document)

    def count(self, *, collections: Collection[str] | None = None) -> int:
        with self._lock:
            self._check_open()
            return sum(int(self._collections[c].index.ntotal) for c in self._selected(collections))

    # -- internals -------------------------------------------------------------

    def _new_collection(self) -> segments.Collection:
        return segments.Collection(index=segments.new_index(self.manifest.dimension))

    def _write_changes(self, collection_id: str, generation: int, n: int) -> list[Segment]:
        """Write the segment holding a collection's changes (merged with its newest
        segments, per the merge policy); returns the collection's new segment list."""
        coll = self._collections.get(collection_id)
        if coll is None or not coll.members:
            return []
        keep = coll.merge_plan()
        ids, tombstones = coll.merged_rows(keep)
        if not ids and not len(tombstones):
            return coll.segments[:keep]
        if ids:
            vectors = coll.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        else:
            vectors = np.zeros((0, self.manifest.dimension), dtype=np.float32)
        name = segments.segment_name(generation, n)
        write = functools.partial(
            segments.write_segment,
            collection_id=collection_id,
            generation=generation,
            ids=ids,
            vectors=vectors,
            members=coll.members,
            tombstones=tombstones,
        )
        atomic_write(self.directory / name, write)
        written = Segment(name, generation, len(ids), tombstones, dict.fromkeys(ids))
        return [*coll.segments[:keep], written]

    def _clean_up(self, keep: set[str]) -> None:
        """Delete the files the new ``shards.json`` no longer names (best effort)."""
        if self._sweep:
            done = remove_stale_files(self.directory, prefix=segments.SEGMENT_PREFIX, keep=keep)
        else:
            done = remove_files(self.directory, sorted(self._committed - keep))
        self._committed, self._sweep = keep, not done

    def _selected(self, collections: Collection[str] | None) -> list[str]:
        if collections is None:
            return list(self._collections)
        if isinstance(collections, str):
            raise TypeError("collections must be a collection of ids, not a string")
        return [c for c in set(collections) if c in self._collections]

    def _check_open(self) -> None:
        if self._closed:
            raise VectorStoreError(f"FAISS index at {self.directory} is closed")

    def _check_batch(self, batch: list[VectorRecord], ids: list[int]) -> None:
        """Refuse empty ids, and two chunk ids hashing to one faiss id in a collection (~2**-63)."""
        owners: dict[tuple[str, int], str] = {}
        for record, fid in zip(batch, ids, strict=True):
            for name in ("chunk_id", "document_id", "collection_id"):
                if not isinstance(value := getattr(record, name), str) or not value:
                    raise VectorStoreError(f"{name} must be a non-empty string, got {value!r}")
            coll = self._collections.get(record.collection_id)
            stored = coll.members.get(fid) if coll is not None else None
            batch_owner = owners.setdefault((record.collection_id, fid), record.chunk_id)
            if batch_owner != record.chunk_id or (stored and stored[0] != record.chunk_id):
                raise VectorStoreError(f"faiss id collision for chunk {record.chunk_id!r}")

    def _remove_chunks(self, chunk_ids: Iterable[str]) -> None:
        by_collection: dict[str, list[int]] = {}
        for chunk_id in chunk_ids:
            loc = self._locations.pop(chunk_id)
            by_collection.setdefault(loc.collection_id, []).append(loc.faiss_id)
            doc_chunks = self._by_document[loc.document_id]
            doc_chunks.discard(chunk_id)
            if not doc_chunks:
                del self._by_document[loc.document_id]
        for collection_id, fids in by_collection.items():
            coll = self._collections[collection_id]
            coll.index.remove_ids(np.asarray(fids, dtype=np.int64))
            for fid in fids:
                del coll.members[fid]
                coll.forget(fid)
            if not coll.members:
                del self._collections[collection_id]
            self._dirty.add(collection_id)

    def _as_matrix(self, vectors: Sequence[Vector], *, what: str) -> Any:
        try:
            matrix = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        except (ValueError, TypeError) as e:
            raise VectorStoreError(f"{what} is not a numeric vector: {e}") from e
        if matrix.shape[1] != self.manifest.dimension:
            raise VectorStoreError(
                f"{what} has dimension {matrix.shape[1]}, the index expects "
                f"{self.manifest.dimension} ({self.manifest.embedding_model!r})"
            )
        if not np.isfinite(matrix).all():
            raise VectorStoreError(f"{what} contains NaN or infinite values")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if (norms == 0).any():
            raise VectorStoreError(f"{what} is all zeros and has no direction")
        return np.ascontiguousarray(matrix / norms, dtype=np.float32)
