"""FAISS vector store: exact inner-product search, one shard per collection, atomic files.

Layout under ``directory``::

    manifest.json                 embedding model, dimension, backend, format version
    shards.json                   commit point: collection id -> shard file (+ vector count)
    shard-<gen>-<n>.npz           one per collection: serialised faiss index + chunk metadata

A shard file is never overwritten: ``flush()`` writes new files only for the
collections that changed, then atomically replaces ``shards.json``, then deletes
the files it no longer names. A crash anywhere before that rename leaves the
previous ``shards.json`` and every file it names intact, so the last flushed state
loads; files it does not name are ignored and removed by the next flush.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zipfile import BadZipFile

import faiss
import numpy as np

from retrieval.errors import VectorStoreError
from retrieval.vectorstores.base import IndexManifest, Vector, VectorHit, VectorRecord
from retrieval.vectorstores.manifest import (
    REINDEX_HINT,
    SHARDS_NAME,
    ShardTable,
    atomic_write,
    check_manifest,
    read_manifest,
    read_shard_table,
    remove_stale_files,
    write_manifest,
    write_shard_table,
)

logger = logging.getLogger(__name__)

BACKEND = "faiss"
FORMAT_VERSION = 1
SHARD_PREFIX = "shard-"
_ID_MASK = (1 << 63) - 1
# What numpy, zipfile and faiss raise on a truncated, corrupt or foreign file.
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, BadZipFile)


def faiss_id(chunk_id: str) -> int:
    """A stable non-negative int64 id for a chunk id (first 8 bytes of blake2b)."""
    digest = hashlib.blake2b(chunk_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _ID_MASK


@dataclass
class _Shard:
    """One collection's vectors; ``members`` maps faiss id -> (chunk_id, document_id)."""

    index: Any
    members: dict[int, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Location:
    faiss_id: int
    document_id: str
    collection_id: str


class FaissVectorStore:
    """A ``VectorStore`` persisted as FAISS flat inner-product shards under ``directory``."""

    def __init__(self, directory: Path, *, embedding_model: str, dimension: int) -> None:
        if dimension <= 0:
            raise VectorStoreError(f"dimension must be positive, got {dimension}")
        self.directory = Path(directory)
        self.manifest = IndexManifest(embedding_model, dimension, BACKEND, FORMAT_VERSION)
        self._lock = threading.RLock()
        self._closed = False
        self._shards: dict[str, _Shard] = {}
        self._locations: dict[str, _Location] = {}
        self._by_document: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._committed: dict[str, str] = {}  # collection id -> file named by shards.json
        self._generation = 0
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
        table = read_shard_table(self.directory)
        self._generation = table.generation
        for collection_id, (name, count) in table.shards.items():
            shard = self._load_shard(self.directory / name, collection_id, count)
            self._shards[collection_id] = shard
            self._committed[collection_id] = name
            for fid, (chunk_id, document_id) in shard.members.items():
                if chunk_id in self._locations:
                    raise VectorStoreError(
                        f"chunk {chunk_id!r} is in two shards of {self.directory}; {REINDEX_HINT}"
                    )
                self._locations[chunk_id] = _Location(fid, document_id, collection_id)
                self._by_document.setdefault(document_id, set()).add(chunk_id)

    def _load_shard(self, path: Path, collection_id: str, count: int) -> _Shard:
        try:
            with np.load(path, allow_pickle=False) as data:
                stored_collection = str(data["collection_id"])
                ids = data["ids"].astype(np.int64)
                chunk_ids = [str(c) for c in data["chunk_ids"]]
                document_ids = [str(d) for d in data["document_ids"]]
                index: Any = faiss.deserialize_index(data["index"])
            index_ids = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
        except _READ_ERRORS as e:
            raise VectorStoreError(f"cannot read index file {path}: {e}; {REINDEX_HINT}") from e
        consistent = (
            stored_collection == collection_id
            and index.d == self.manifest.dimension
            and len(ids) == len(chunk_ids) == len(document_ids) == index.ntotal == count
            and np.array_equal(index_ids, np.sort(ids))
            and len(set(ids.tolist())) == len(ids)
        )
        if not consistent:
            raise VectorStoreError(f"index file {path} is inconsistent; {REINDEX_HINT}")
        members = dict(zip(ids.tolist(), zip(chunk_ids, document_ids, strict=True), strict=True))
        return _Shard(index=index, members=members)

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
                shard = self._shards.get(collection_id) or self._new_shard()
                self._shards[collection_id] = shard
                shard.index.add_with_ids(matrix[rows], np.asarray([ids[i] for i in rows], np.int64))
                for i in rows:
                    record = batch[i]
                    shard.members[ids[i]] = (record.chunk_id, record.document_id)
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
        """Drop every vector; ``flush()`` then removes the shard files. Keeps the manifest."""
        with self._lock:
            self._check_open()
            self._dirty.update(self._shards, self._committed)
            self._shards.clear()
            self._locations.clear()
            self._by_document.clear()

    def flush(self) -> None:
        """Write changed shards to new files, then switch ``shards.json`` to them atomically."""
        with self._lock:
            self._check_open()
            if not self._dirty:
                return
            generation = self._generation + 1
            files = dict(self._committed)
            for n, collection_id in enumerate(sorted(self._dirty)):
                files.pop(collection_id, None)
                if collection_id not in self._shards:
                    continue
                name = f"{SHARD_PREFIX}{generation:010d}-{n:06d}.npz"
                try:
                    atomic_write(
                        self.directory / name, functools.partial(self._dump, collection_id)
                    )
                except (OSError, RuntimeError, ValueError) as e:
                    raise VectorStoreError(f"cannot write index file {name}: {e}") from e
                files[collection_id] = name
            table = ShardTable(
                generation, {c: (f, len(self._shards[c].members)) for c, f in files.items()}
            )
            try:
                write_shard_table(self.directory, table, format_version=FORMAT_VERSION)
            except OSError as e:
                raise VectorStoreError(f"cannot commit index at {self.directory}: {e}") from e
            self._committed, self._generation = files, generation
            self._dirty.clear()
            remove_stale_files(self.directory, prefix=SHARD_PREFIX, keep=set(files.values()))

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
            self._shards.clear()
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
        """Top-``k`` hits by cosine; only the requested collections' shards are searched."""
        if k < 0:
            raise VectorStoreError(f"k must be >= 0, got {k}")
        q = self._as_matrix([query], what="query")
        with self._lock:
            self._check_open()
            candidates: list[tuple[float, str, str, str]] = []
            for collection_id in self._selected(collections):
                shard = self._shards[collection_id]
                if k == 0 or shard.index.ntotal == 0:
                    continue
                scores, ids = shard.index.search(q, min(k, shard.index.ntotal))
                for score, fid in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
                    if fid >= 0:  # faiss pads missing results with -1
                        chunk_id, document_id = shard.members[fid]
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
            return sum(int(self._shards[c].index.ntotal) for c in self._selected(collections))

    # -- internals -------------------------------------------------------------

    def _new_shard(self) -> _Shard:
        return _Shard(index=faiss.IndexIDMap2(faiss.IndexFlatIP(self.manifest.dimension)))

    def _selected(self, collections: Collection[str] | None) -> list[str]:
        if collections is None:
            return list(self._shards)
        if isinstance(collections, str):
            raise TypeError("collections must be a collection of ids, not a string")
        return [c for c in set(collections) if c in self._shards]

    def _check_open(self) -> None:
        if self._closed:
            raise VectorStoreError(f"FAISS index at {self.directory} is closed")

    def _check_batch(self, batch: list[VectorRecord], ids: list[int]) -> None:
        """Refuse empty ids, and two chunk ids hashing to one faiss id in a shard (~2**-63)."""
        owners: dict[tuple[str, int], str] = {}
        for record, fid in zip(batch, ids, strict=True):
            for name in ("chunk_id", "document_id", "collection_id"):
                if not isinstance(value := getattr(record, name), str) or not value:
                    raise VectorStoreError(f"{name} must be a non-empty string, got {value!r}")
            shard = self._shards.get(record.collection_id)
            stored = shard.members.get(fid) if shard is not None else None
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
            shard = self._shards[collection_id]
            shard.index.remove_ids(np.asarray(fids, dtype=np.int64))
            for fid in fids:
                del shard.members[fid]
            if not shard.members:
                del self._shards[collection_id]
            self._dirty.add(collection_id)

    def _dump(self, collection_id: str, fh: IO[bytes]) -> None:
        shard = self._shards[collection_id]
        ids = list(shard.members)
        np.savez(
            fh,
            collection_id=np.asarray(collection_id),
            ids=np.asarray(ids, dtype=np.int64),
            chunk_ids=np.asarray([shard.members[i][0] for i in ids], dtype=np.str_),
            document_ids=np.asarray([shard.members[i][1] for i in ids], dtype=np.str_),
            index=faiss.serialize_index(shard.index),
        )

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
