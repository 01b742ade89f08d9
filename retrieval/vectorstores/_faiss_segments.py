"""Segments of the FAISS store: immutable files of vectors and tombstones, and their merging.

Each collection is a list of segment files, oldest first. A segment holds the
vectors that one flush added to the collection (faiss ids, float32 rows, chunk and
document ids) and *tombstones*: ``(generation, faiss id)`` pairs naming vectors of
earlier segments of the collection that were deleted or replaced since. Loading
replays the list in order, so a vector is live unless a later segment tombstones
it; an upsert of an existing chunk is a tombstone plus a row in the new segment.

A flush writes at most one segment per changed collection: the changes since the
last flush, merged with the newest segments while they are in the same size tier
or a smaller one (binary-counter merging: a collection has O(log n) segments and a
vector is rewritten O(log n) times), with more of them when there would be over
``MAX_SEGMENTS``, and with all of them (a compaction) when over
``MAX_DEAD_FRACTION`` of the collection is tombstoned. Only a suffix of the list is
ever merged, so every tombstone names a segment listed before its own: merged
tombstones that name a kept segment are carried into the new one, the rest dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from retrieval._segments import MergePolicy
from retrieval._sharded import inconsistent, read_arrays
from retrieval.errors import VectorStoreError
from retrieval.vectorstores._faiss_ann import AnnState
from retrieval.vectorstores._faiss_graph import FloatMatrix, new_flat
from retrieval.vectorstores.manifest import SegmentEntry

MAX_SEGMENTS = 16
TIER_BASE = 128  # segments under this many rows are merged by every flush
MAX_DEAD_FRACTION = 0.25
Int64Array = npt.NDArray[np.int64]


@dataclass(eq=False)
class Segment:
    """A committed segment; ``live`` holds its rows' faiss ids still in the index, in file order."""

    file: str
    generation: int
    vectors: int
    tombstones: Int64Array  # shape (k, 2): generation, faiss id
    live: dict[int, None]

    @property
    def dead(self) -> int:
        return self.vectors - len(self.live)

    @property
    def rewrite_cost(self) -> int:
        """Rows a merge copies: the live vectors and the tombstones it may carry."""
        return len(self.live) + len(self.tombstones)

    def entry(self) -> SegmentEntry:
        return SegmentEntry(self.file, self.generation, self.vectors, len(self.tombstones))


@dataclass(eq=False)
class Collection:
    """One collection in memory: its faiss index (flat, or IVF once big: ``_faiss_ann``)
    and chunk metadata (faiss id -> (chunk_id, document_id)), its committed segments,
    and what changed since."""

    index: Any
    members: dict[int, tuple[str, str]] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    added: dict[int, None] = field(default_factory=dict)  # live, in no segment yet
    deleted: list[tuple[int, int]] = field(default_factory=list)  # tombstones to write
    ann: AnnState = field(default_factory=AnnState)

    def add(self, vectors: FloatMatrix, ids: Int64Array) -> None:
        """Add rows to the index (and to the journal of a build under way)."""
        self.index.add_with_ids(vectors, ids)
        self.ann.added(ids, vectors)

    def remove(self, ids: Int64Array) -> None:
        """Remove rows from the index (and from the index a build is making)."""
        self.index.remove_ids(ids)
        self.ann.dropped(ids)

    @property
    def pending(self) -> int:
        return len(self.added) + len(self.deleted)

    def forget(self, fid: int) -> None:
        """Account for ``fid`` leaving the index: a tombstone if a segment holds it."""
        if fid in self.added:
            del self.added[fid]
            return
        for segment in reversed(self.segments):
            if fid in segment.live:
                del segment.live[fid]
                self.deleted.append((segment.generation, fid))
                return

    def merge_plan(self) -> int:
        """How many of the oldest segments the next flush keeps; it rewrites the rest."""
        return segments_to_keep(self.segments, pending=self.pending, live=len(self.members))

    def merged_rows(self, keep: int) -> tuple[list[int], Int64Array]:
        """Faiss ids and tombstones of the segment that replaces ``segments[keep:]``."""
        merged = self.segments[keep:]
        kept = {s.generation for s in self.segments[:keep]}
        ids = [fid for s in merged for fid in s.live]
        ids.extend(self.added)
        carried = [t for s in merged for t in s.tombstones.tolist()]
        carried.extend(self.deleted)
        tombstones = [t for t in carried if t[0] in kept]
        return ids, np.asarray(tombstones, dtype=np.int64).reshape(-1, 2)


def tier(rows: int) -> int:
    return MergePolicy(tier_base=TIER_BASE).tier(rows)


def segments_to_keep(segments: Sequence[Segment], *, pending: int, live: int) -> int:
    """The merge policy (``retrieval._segments``): the number of oldest segments left
    alone by a flush that writes ``pending`` changed rows into a collection of ``live``
    vectors."""
    policy = MergePolicy(MAX_SEGMENTS, TIER_BASE, MAX_DEAD_FRACTION)
    return policy.keep(segments, pending=pending, live=live)


def write_segment(
    fh: IO[bytes],
    *,
    collection_id: str,
    generation: int,
    ids: Sequence[int],
    vectors: npt.NDArray[np.float32],
    members: dict[int, tuple[str, str]],
    tombstones: Int64Array,
) -> None:
    """Serialise one segment as plain arrays (``np.load`` reads it without pickle)."""
    np.savez(
        fh,
        collection_id=np.asarray(collection_id),
        generation=np.asarray(generation, dtype=np.int64),
        ids=np.asarray(ids, dtype=np.int64),
        vectors=vectors,
        chunk_ids=np.asarray([members[i][0] for i in ids], dtype=np.str_),
        document_ids=np.asarray([members[i][1] for i in ids], dtype=np.str_),
        tombstones=tombstones,
    )


def load_collection(
    directory: Path, collection_id: str, entries: Sequence[SegmentEntry], dimension: int
) -> Collection:
    """Replay a collection's segments into a fresh index, checking every file against
    the table and every tombstone against the segment it names."""
    collection = Collection(index=new_flat(dimension))
    home: dict[int, Segment] = {}  # live faiss id -> the segment holding it
    ids_of: dict[int, Int64Array] = {}
    for entry in entries:
        path = directory / entry.file
        stored, generation, ids, tombstones = _read(
            path, ("collection_id", "generation", "ids", "tombstones")
        )
        consistent = (
            (not collection.segments or collection.segments[-1].generation < entry.generation)
            and stored.shape == ()
            and str(stored) == collection_id
            and generation.shape == ()
            and generation.dtype == np.int64
            and int(generation) == entry.generation
            and ids.dtype == np.int64
            and ids.shape == (entry.vectors,)
            and bool((ids >= 0).all())
            and tombstones.dtype == np.int64
            and tombstones.shape == (entry.tombstones, 2)
        )
        if not consistent:
            raise _inconsistent(path)
        segment = Segment(entry.file, entry.generation, entry.vectors, tombstones, {})
        for target_generation, fid in tombstones.tolist():
            owner = home.pop(fid, None)
            if owner is None or owner.generation != target_generation:
                raise _inconsistent(path)
            del owner.live[fid]
        for fid in ids.tolist():
            if fid in home:
                raise _inconsistent(path)
            home[fid] = segment
            segment.live[fid] = None
        collection.segments.append(segment)
        ids_of[entry.generation] = ids
    for segment in collection.segments:  # every file is read whole: its CRCs get checked
        _add_rows(collection, directory / segment.file, segment, ids_of[segment.generation])
    return collection


def _add_rows(collection: Collection, path: Path, segment: Segment, ids: Int64Array) -> None:
    vectors, chunk_ids, document_ids = _read(path, ("vectors", "chunk_ids", "document_ids"))
    n, dimension = segment.vectors, collection.index.d
    consistent = (
        vectors.dtype == np.float32
        and vectors.shape == (n, dimension)
        and chunk_ids.dtype.kind == document_ids.dtype.kind == "U"
        and chunk_ids.shape == document_ids.shape == (n,)
    )
    if not consistent:
        raise _inconsistent(path)
    if not segment.live:
        return
    if len(segment.live) < n:
        mask = np.fromiter((fid in segment.live for fid in ids.tolist()), dtype=bool, count=n)
        ids, vectors = ids[mask], vectors[mask]
        chunk_ids, document_ids = chunk_ids[mask], document_ids[mask]
    collection.index.add_with_ids(np.ascontiguousarray(vectors), ids)
    collection.members.update(
        zip(ids.tolist(), zip(chunk_ids.tolist(), document_ids.tolist(), strict=True), strict=True)
    )


def _read(path: Path, names: tuple[str, ...]) -> list[npt.NDArray[Any]]:
    return read_arrays(path, names, VectorStoreError)


def _inconsistent(path: Path) -> VectorStoreError:
    return inconsistent(path, VectorStoreError)
