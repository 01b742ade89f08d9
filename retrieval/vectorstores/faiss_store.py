"""FAISS vector store: inner-product search, one index per collection, atomic files.

A collection is searched exactly (a flat index) until it holds ``ann_threshold``
vectors; then a background thread gives it an approximate HNSW graph, which serves
its searches once built (``_faiss_ann`` has the design and why HNSW).

Layout under ``directory``::

    manifest.json                 embedding model, dimension, backend, format version
    shards.json                   commit point: collection id -> its segment files, in order
    seg-<gen>-<n>.npz             immutable: rows a flush added to one collection (vectors,
                                  ids, chunk and document ids) + tombstones of older rows
    graph-<key>.hnsw              a big collection's HNSW graph as last built: a cache,
                                  checked against the segments when restored

A flush costs what changed, not the size of the index: it writes one segment per
changed collection with the rows added and the tombstones of rows deleted or
replaced since the last flush, occasionally merged with the newest segments or, at
too many segments or tombstones, with all of them (``_faiss_segments`` has the
policy; amortised, every row is rewritten O(log n) times). It then atomically
replaces ``shards.json`` and deletes the files that table no longer names
(``retrieval._sharded`` owns that commit, and its guarantees: a crash anywhere before
the rename leaves the previous ``shards.json`` and every file it names intact, and
the last flushed state loads; ``close()`` does not flush). Opening replays each
collection's segments in order into an in-memory faiss index.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import logging
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval._atomic import atomic_write
from retrieval._sharded import ShardedIndex, Written, file_name
from retrieval.errors import VectorStoreError
from retrieval.vectorstores import _faiss_ann as ann
from retrieval.vectorstores import _faiss_segments as segments
from retrieval.vectorstores import _faiss_snapshot as snapshot
from retrieval.vectorstores._faiss_graph import Graph, new_flat
from retrieval.vectorstores._faiss_segments import Segment
from retrieval.vectorstores.base import IndexManifest, Vector, VectorHit, VectorRecord, unit_rows
from retrieval.vectorstores.manifest import (
    SEGMENT_PREFIX,
    SegmentEntry,
    check_manifest,
    layout,
    manifest_payload,
)

logger = logging.getLogger(__name__)

BACKEND = "faiss"
FORMAT_VERSION = 2
_ID_MASK = (1 << 63) - 1
CLOSE_WAIT_S = 30.0  # a build stops within a step once the store is closed


def faiss_id(chunk_id: str) -> int:
    """A stable non-negative int64 id for a chunk id (first 8 bytes of blake2b)."""
    digest = hashlib.blake2b(chunk_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _ID_MASK


class FaissVectorStore(ShardedIndex[segments.Collection, SegmentEntry]):
    """A ``VectorStore`` of FAISS inner-product indexes (flat, an HNSW graph once a
    collection is big), persisted as segments.

    ``background=False`` builds a graph inside the write that calls for it (for tests
    and batch jobs); ``wait_until_built`` waits for background builds.
    """

    def __init__(
        self,
        directory: Path,
        *,
        embedding_model: str,
        dimension: int,
        ann_threshold: int = ann.AnnOptions.threshold,
        ann_m: int = ann.AnnOptions.m,
        ann_ef_construction: int = ann.AnnOptions.ef_construction,
        ann_ef_search: int = ann.AnnOptions.ef_search,
        ann_persist: bool = True,
        background: bool = True,
        read_only: bool = False,
        refresh_seconds: float = 0.0,
    ) -> None:
        if dimension <= 0:
            raise VectorStoreError(f"dimension must be positive, got {dimension}")
        if ann_threshold < 0 or min(ann_m, ann_ef_construction, ann_ef_search) < 1:
            raise VectorStoreError(
                f"invalid ANN settings: threshold {ann_threshold}, m {ann_m}, "
                f"ef_construction {ann_ef_construction}, ef_search {ann_ef_search}"
            )
        super().__init__(
            directory,
            layout(FORMAT_VERSION),
            label="FAISS index",
            read_only=read_only,
            refresh_seconds=refresh_seconds,
        )
        self.manifest = IndexManifest(embedding_model, dimension, BACKEND, FORMAT_VERSION)
        self._ann = ann.AnnOptions(ann_threshold, ann_m, ann_ef_construction, ann_ef_search)
        self._background = background
        self._persist = ann_persist
        self._builds: list[threading.Thread] = []
        self._open(
            manifest_payload(self.manifest),
            lambda found: check_manifest(found, self.manifest, self.directory),
        )
        if not read_only:  # a replica restores the writer's graphs, never writes one
            snapshot.remove_stale(self.directory, self._shards if ann_persist else ())
        with self._lock:
            self._maintain()
        self._start_following()

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
            self._check_writable()
            self._check_batch(batch, ids)
            self._remove_chunks([r.chunk_id for r in batch if r.chunk_id in self._where])
            by_collection: dict[str, list[int]] = {}
            for row, record in enumerate(batch):
                by_collection.setdefault(record.collection_id, []).append(row)
            for collection_id, rows in by_collection.items():
                coll = self._shards.get(collection_id) or self._new_collection()
                self._shards[collection_id] = coll
                coll.add(matrix[rows], np.asarray([ids[i] for i in rows], np.int64))
                for i in rows:
                    record = batch[i]
                    coll.members[ids[i]] = (record.chunk_id, record.document_id)
                    coll.added[ids[i]] = None
                    self._place(record.chunk_id, record.document_id, collection_id)
            self._maintain()

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove every vector of these documents; returns how many were removed."""
        with self._lock:
            removed = super().delete_documents(document_ids)
            self._maintain()
            return removed

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
                coll = self._shards[collection_id]
                if k == 0 or coll.index.ntotal == 0:
                    continue
                scores, ids = ann.search(coll.index, q, k)
                for score, fid in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
                    if fid >= 0:  # faiss pads missing results with -1
                        chunk_id, document_id = coll.members[fid]
                        candidates.append((score, chunk_id, document_id, collection_id))
        best = heapq.nsmallest(k, candidates, key=lambda c: (-c[0], c[1]))
        return [
            VectorHit(chunk_id=c, document_id=d, collection_id=col, score=s)
            for s, c, d, col in best
        ]

    # -- approximate indexes ---------------------------------------------------

    def approximate_collections(self) -> set[str]:
        """The collections whose searches now go through an approximate index (a graph)."""
        with self._lock:
            self._check_open()
            return {c for c, coll in self._shards.items() if isinstance(coll.index, Graph)}

    def wait_until_built(self, timeout: float | None = None) -> bool:
        """Wait for the builds and merges under way; False if some still run after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # a finished build may start the next one
            with self._lock:
                builds = [t for t in self._builds if t.is_alive()]
            if not builds:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            for thread in builds:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Release the index without flushing; builds under way stop (waited for briefly)."""
        super().close()
        if not self.wait_until_built(CLOSE_WAIT_S):
            logger.warning("an index build of %s is still stopping", self.directory)

    def _maintain(self) -> None:
        """Start the (re)builds the collections' sizes call for (under the lock)."""
        self._builds = [t for t in self._builds if t.is_alive()]
        for collection_id, coll in self._shards.items():
            action = self._ann.plan(coll.ann, coll.index)
            if action is None:
                continue
            job = coll.ann.job = self._job(action, collection_id, coll)
            if not self._background:
                job.run()
                continue
            thread = threading.Thread(target=job.run, name="faiss-index-build", daemon=True)
            self._builds.append(thread)
            thread.start()

    def _job(self, action: str, collection_id: str, coll: segments.Collection) -> ann.Job:
        current = functools.partial(self._holds, collection_id, coll)
        label = f"collection {collection_id!r} of {self.directory}"
        if action == ann.MERGE:
            return ann.Merge(coll, self._lock, current, label, then=self._maintain)
        dimension = self.manifest.dimension
        graph = action == ann.GRAPH
        keep = graph and self._persist
        return ann.Build(
            source=coll,
            lock=self._lock,
            current=current,
            target=self._ann.graph(dimension) if graph else new_flat(dimension),
            label=label,
            ids=np.fromiter(coll.members, dtype=np.int64, count=len(coll.members)),
            then=self._maintain,
            # A flat collection restores its kept graph; a graph rebuilt (dead rows) does not.
            restore=functools.partial(self._restore, collection_id)
            if keep and not isinstance(coll.index, Graph)
            else None,
            save=functools.partial(
                snapshot.save, directory=self.directory, collection_id=collection_id
            )
            if keep and not self.read_only
            else None,
        )

    def _restore(self, collection_id: str) -> Graph | None:
        """The graph an earlier build of the collection kept on disk, if it fits."""
        found = snapshot.load(
            self.directory,
            collection_id,
            dimension=self.manifest.dimension,
            m=self._ann.m,
            ef_construction=self._ann.ef_construction,
        )
        return None if found is None else self._ann.restored(*found)

    def _holds(self, collection_id: str, coll: segments.Collection) -> bool:
        return not self._closed and self._shards.get(collection_id) is coll

    # -- payload hooks (see ``retrieval._sharded``) ----------------------------

    def _load_shard(
        self, collection_id: str, entries: tuple[SegmentEntry, ...]
    ) -> tuple[segments.Collection, Iterable[tuple[str, str]]]:
        coll = segments.load_collection(
            self.directory, collection_id, entries, self.manifest.dimension
        )
        return coll, self._members(coll)

    def _write_shard(self, collection_id: str, generation: int, n: int) -> Written[SegmentEntry]:
        """Write the segment holding a collection's changes (merged with its newest
        segments, per the merge policy); the collection's new segment list."""
        coll = self._shards[collection_id]
        written = self._write_changes(coll, collection_id, generation, n)

        def install() -> None:
            coll.segments, coll.added, coll.deleted = written, {}, []

        return Written(tuple(s.entry() for s in written), install)

    def _drop(self, shard: segments.Collection, chunk_ids: list[str]) -> None:
        fids = [faiss_id(c) for c in chunk_ids]
        shard.remove(np.asarray(fids, dtype=np.int64))
        for fid in fids:
            del shard.members[fid]
            shard.forget(fid)

    def _size(self, shard: segments.Collection) -> int:
        return int(shard.index.ntotal)

    def _members(self, shard: segments.Collection) -> Iterable[tuple[str, str]]:
        return shard.members.values()

    def _refreshed(self, collection_ids: set[str]) -> None:
        self._maintain()  # a big collection reloaded flat restores the kept graph

    # -- internals -------------------------------------------------------------

    def _new_collection(self) -> segments.Collection:
        return segments.Collection(index=new_flat(self.manifest.dimension))

    def _write_changes(
        self, coll: segments.Collection, collection_id: str, generation: int, n: int
    ) -> list[Segment]:
        keep = coll.merge_plan()
        ids, tombstones = coll.merged_rows(keep)
        if not ids and not len(tombstones):
            return coll.segments[:keep]
        if ids:
            vectors = coll.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        else:
            vectors = np.zeros((0, self.manifest.dimension), dtype=np.float32)
        name = file_name(SEGMENT_PREFIX, generation, n)
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

    def _check_batch(self, batch: list[VectorRecord], ids: list[int]) -> None:
        """Refuse empty ids, and two chunk ids hashing to one faiss id in a collection (~2**-63)."""
        owners: dict[tuple[str, int], str] = {}
        for record, fid in zip(batch, ids, strict=True):
            for name in ("chunk_id", "document_id", "collection_id"):
                if not isinstance(value := getattr(record, name), str) or not value:
                    raise VectorStoreError(f"{name} must be a non-empty string, got {value!r}")
            coll = self._shards.get(record.collection_id)
            stored = coll.members.get(fid) if coll is not None else None
            batch_owner = owners.setdefault((record.collection_id, fid), record.chunk_id)
            if batch_owner != record.chunk_id or (stored and stored[0] != record.chunk_id):
                raise VectorStoreError(f"faiss id collision for chunk {record.chunk_id!r}")

    def _as_matrix(self, vectors: Sequence[Vector], *, what: str) -> Any:
        return unit_rows(vectors, self.manifest, what=what)
