"""Approximate search for big FAISS collections: an HNSW graph, built in the background.

A collection starts on an exact ``IndexIDMap2(IndexFlatIP)``. Once it holds
``threshold`` vectors a thread builds an HNSW graph (``_faiss_graph.Graph``) from it
and swaps it in; the flat index is then dropped, so the vectors are held once (the
graph stores them, plus ~256 bytes a vector of links at M=32). The graph *is* the
collection's index from then on: new vectors go to its small exact delta (searchable
at once, as cheap to write as before) and a background ``Merge`` moves them into the
graph a hundred or so a lock hold; removal is a tombstone (a live-row bitmap every
search filters by); it reconstructs vectors for the segment files; its scores are
the exact cosines of the vectors it returns.

Why HNSW and not IVF, measured with ``bench/retrieval_scale.py``'s vectors (calibrated
on MiniLM's vectors of SciFact, where IVF needs as large a share of its lists probed;
2 cores, one query at a time, k=10): at 1M, HNSW (M=32, efConstruction 40) gives a
recall@10 of 0.978 at efSearch 128 (p95 1.5 ms) and 0.997 at 256 (p95 2.7 ms), while
IVF4096 (exact distances, the friendliest IVF to a mutable store: it removes rows
through a direct map) gives 0.93 probing 128 lists (p95 4.8 ms) and 0.977 at 256
(p95 9.2 ms). IVF trains and fills faster (107 s against 431 s for HNSW at 1M), but
recall at the latency goal decides, and a build runs in the background anyway. On
SciFact itself HNSW reaches 0.996 at efSearch 64, IVF128 0.975 probing a quarter.

While a build runs, searches use the old index and writes go to it as before and
into a journal; the build copies the vectors in chunks under the store's lock
(never all at once), replays the journal onto the new graph outside the lock until
little is left, and swaps it in under the lock. ``close()`` (or ``clear()``, or the
collection disappearing) stops a build at its next chunk. A graph with
``DEAD_FRACTION`` of its rows dead is rebuilt without them, and a collection shrunk
below half the threshold goes back to a flat index. A graph built from scratch is kept
on disk once filled (``_faiss_snapshot``); opening the collection again loads it flat
from its segments, as before, and a build then *restores* the kept graph instead of
filling an empty one: it checks each live vector against it (unchanged: live in the
graph; new or changed: into the delta) in the same locked steps, so searches and
writes go on as during any build.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from retrieval.vectorstores._faiss_graph import FloatMatrix, Graph, Int64Array

logger = logging.getLogger(__name__)

CHUNK = 4_096  # vectors copied out of the live index per lock hold (and a cancel check)
SWAP_ROWS = 1_024  # journal rows left to replay under the lock at the swap
DEAD_FRACTION = 0.25
MERGE_AT = 1_024  # delta vectors that start a merge into the graph
MERGE_STEP = 128  # delta vectors moved into the graph per lock hold (~0.1 s at 1M)
MERGE_PAUSE_S = 0.002  # between merge steps, for the searches and writes waiting

GRAPH, FLAT, MERGE = "graph", "flat", "merge"


@dataclass(frozen=True)
class AnnOptions:
    """When a collection gets an HNSW graph, and how it is built and searched."""

    threshold: int = 50_000  # vectors in a collection; 0: never
    m: int = 32
    ef_construction: int = 40
    ef_search: int = 256

    def plan(self, state: AnnState, index: Any) -> str | None:
        """What a collection's index needs now: (re)building into a graph (``GRAPH``) or
        a flat index (``FLAT``), its delta merged (``MERGE``), or nothing (None)."""
        if state.job is not None or state.failed:
            return None
        size = int(index.ntotal)
        if not isinstance(index, Graph):
            return GRAPH if self.threshold and size >= self.threshold else None
        if not self.threshold or size < self.threshold // 2:
            return FLAT
        if index.dead >= DEAD_FRACTION * index.graph.ntotal:
            return GRAPH
        return MERGE if index.pending >= MERGE_AT else None

    def graph(self, dimension: int) -> Graph:
        return Graph(
            dimension, m=self.m, ef_construction=self.ef_construction, ef_search=self.ef_search
        )

    def restored(self, index: Any, labels: Int64Array) -> Graph:
        return Graph.restored(index, labels, ef_search=self.ef_search)


@dataclass(eq=False)
class AnnState:
    """A collection's approximate-search bookkeeping: the job (build or merge) under way."""

    job: Job | None = None
    failed: bool = False

    def added(self, ids: Int64Array, vectors: FloatMatrix) -> None:
        if isinstance(self.job, Build):
            self.job.journal.append((ids, vectors))

    def dropped(self, ids: Int64Array) -> None:
        if isinstance(self.job, Build):
            self.job.journal.append((ids, None))


def search(index: Any, query: FloatMatrix, k: int) -> tuple[FloatMatrix, Int64Array]:
    """Top ``min(k, ntotal)`` of a collection's index, flat or graph."""
    if isinstance(index, Graph):
        return index.search(query, min(k, index.ntotal))
    return index.search(query, min(k, int(index.ntotal)))  # type: ignore[no-any-return]


class Source(Protocol):
    """What a build reads from, under ``lock``: the collection's live index and ids."""

    index: Any
    ann: AnnState

    @property
    def members(self) -> Collection[int]: ...


@dataclass(eq=False)
class Build:
    """One background (re)build of a collection's index into ``target`` (an empty graph
    or flat index); see the module docstring."""

    source: Source
    lock: threading.RLock
    current: Callable[[], bool]  # false once the store closed or dropped the collection
    target: Any
    label: str
    ids: Int64Array  # the live ids when the build started
    then: Callable[[], None]  # called under the lock once swapped in (to plan the next)
    #: A graph saved by an earlier build, to restore instead of building (None: none).
    restore: Callable[[], Graph | None] | None = None
    #: Keeps a graph built from scratch once filled (before catching up).
    save: Callable[[Graph], None] | None = None
    journal: list[tuple[Int64Array, FloatMatrix | None]] = field(default_factory=list)

    def run(self) -> None:
        """Fill (or restore), catch up and swap in; on failure the collection stays on
        its index."""
        with _job(self, "building the index of %s failed; it stays as it is"):
            restored = self.restore() if self.restore is not None else None
            if restored is not None:
                self.target = restored
                logger.info("restoring the saved graph of %s", self.label)
            if restored is not None:
                fill = restored.confirm
            elif isinstance(self.target, Graph):
                fill = self.target.insert
            else:
                fill = self.target.add_with_ids
            for start in range(0, len(self.ids), CHUNK):
                rows = self._copy(self.ids[start : start + CHUNK])
                if rows is None:
                    return
                if len(rows[0]):
                    fill(rows[1], rows[0])
            if restored is not None:
                restored.restore_done()
            elif self.save is not None and isinstance(self.target, Graph):
                # The graph is this build's own until swapped in: no lock. A failure
                # costs the next open a build, not this one.
                try:
                    self.save(self.target)
                except Exception as e:
                    logger.warning("could not keep the graph of %s on disk: %s", self.label, e)
            self._catch_up()

    def _cancelled(self) -> bool:
        return not self.current() or self.source.ann.job is not self

    def _copy(self, ids: Int64Array) -> tuple[Int64Array, FloatMatrix] | None:
        """The vectors of those ``ids`` still live, or None when the build is cancelled."""
        with self.lock:
            if self._cancelled():
                return None
            members = self.source.members
            live = ids[np.fromiter((i in members for i in ids.tolist()), bool, len(ids))]
            if not len(live):
                return live, np.zeros((0, self.source.index.d), dtype=np.float32)
            return live, np.asarray(self.source.index.reconstruct_batch(live), np.float32)

    def _catch_up(self) -> None:
        """Replay the writes made since the build started, then swap the target in."""
        done = 0
        while True:
            with self.lock:
                if self._cancelled():
                    return
                pending = self.journal[done:]
                if sum(len(ids) for ids, _ in pending) <= SWAP_ROWS:
                    _replay(self.target, pending)
                    self._install()
                    return
            _replay(self.target, pending)
            done += len(pending)

    def _install(self) -> None:
        self.source.index = self.target
        self.source.ann.job = None
        logger.info(
            "%s is now searched %s (%d vectors)",
            self.label,
            "through an HNSW graph" if isinstance(self.target, Graph) else "exactly",
            self.target.ntotal,
        )
        self.then()


@dataclass(eq=False)
class Merge:
    """Moves a graph's delta into the graph in the background, ``MERGE_STEP`` vectors a
    lock hold, so searches and writes wait for one step at most."""

    source: Source
    lock: threading.RLock
    current: Callable[[], bool]
    label: str
    then: Callable[[], None]

    def run(self) -> None:
        with _job(self, "merging new vectors into the graph of %s failed; they stay exact"):
            while True:
                with self.lock:
                    graph = self.source.index
                    if not self.current() or self.source.ann.job is not self:
                        return
                    if not isinstance(graph, Graph) or not graph.merge(MERGE_STEP):
                        self.source.ann.job = None
                        self.then()
                        return
                time.sleep(MERGE_PAUSE_S)


Job = Build | Merge


@contextlib.contextmanager
def _job(job: Job, failure: str) -> Iterator[None]:
    """Log a job's failure (the collection stays searchable; no retries) and release it."""
    try:
        yield
    except Exception:
        logger.exception(failure, job.label)
        with job.lock:
            job.source.ann.failed = True
    finally:
        with job.lock:
            if job.source.ann.job is job:
                job.source.ann.job = None


def _replay(target: Any, journal: list[tuple[Int64Array, FloatMatrix | None]]) -> None:
    # Every write removes a chunk before adding it again, so replaying removals and
    # additions in order leaves each id once, with its last vector.
    for ids, vectors in journal:
        if vectors is None:
            target.remove_ids(ids)
        else:
            target.add_with_ids(vectors, ids)
