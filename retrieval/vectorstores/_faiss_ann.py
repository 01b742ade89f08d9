"""Approximate search for big FAISS collections: an IVF index, built in the background.

A collection starts on an exact ``IndexIDMap2(IndexFlatIP)``. Once it holds
``threshold`` vectors a thread builds an ``IndexIVFFlat`` (inner product, a hashtable
direct map) from it and swaps it in; the flat index is then dropped, so the
vectors are held once. The IVF index *is* the collection's index from then on:
it takes ``add_with_ids``, ``remove_ids`` (O(1) a row through the direct map) and
``reconstruct`` (what a flush needs to write a segment), and returns exact inner
products of the vectors it scans, so scores stay cosines and a deleted row is gone.

Why IVF and not HNSW (measured on 100k clustered 384-d vectors, 2 cores, one query
at a time; ``bench/retrieval_scale.py`` has the numbers at 1M): FAISS's HNSW
cannot remove a vector, so a mutable store would need tombstones filtered in every
search and periodic full rebuilds; its graph costs another ~256 bytes a vector at
M=32, and building it took 25 s against 7 s to train and fill IVF1024, for a
recall@10 of 0.96-0.98 (efSearch 64-128) against 1.00 for IVF (nprobe 8-32) at a
similar p95 of well under a millisecond.

While a build runs, searches use the old index and writes go to it as before and
into a journal; the build copies the vectors in chunks under the store's lock
(never all at once), replays the journal onto the new index outside the lock until
little is left, and swaps it in under the lock. The k-means runs a few iterations a
step, so ``close()`` (or ``clear()``, or the collection disappearing) stops a build
within a step. A collection is rebuilt (retrained) when it has grown to
``GROWTH`` times the vectors it was trained on, or had ``REMOVED_FRACTION`` of them
removed, and goes back to a flat index below half the threshold. Nothing of the IVF
index is persisted: opening a big collection loads it flat and builds in the
background again (the segment format is unchanged).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import faiss
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

MIN_POINTS_PER_LIST = 39  # FAISS warns below this many training points a centroid
TRAIN_POINTS_PER_LIST = 64
KMEANS_ITERATIONS = 10
KMEANS_STEP = 2  # iterations between checks for a cancelled build
CHUNK = 16_384  # vectors copied out of the live index per lock hold
SWAP_ROWS = 1_024  # journal rows left to replay under the lock at the swap
GROWTH = 2.0
REMOVED_FRACTION = 0.5

Int64Array = npt.NDArray[np.int64]
FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AnnOptions:
    """When a collection gets an IVF index, and how it is searched."""

    threshold: int = 50_000  # vectors in a collection; 0: never
    nlist: int = 0  # 0: about 4 * sqrt(n)
    nprobe: int = 32

    def nlist_for(self, n: int) -> int:
        """Lists for a collection of ``n`` vectors: the setting (or ~4 sqrt(n), a power of
        two), fewer where there are not ``MIN_POINTS_PER_LIST`` vectors to train each."""
        wanted = self.nlist or 1 << max(0, round(np.log2(4 * np.sqrt(max(n, 1)))))
        return max(1, min(wanted, n // MIN_POINTS_PER_LIST))

    def plan(self, state: AnnState, size: int) -> int | None:
        """What a collection of ``size`` vectors should be rebuilt into now: an IVF index
        of that many lists, 0 for a flat one, None to leave it as it is."""
        if state.build is not None or state.failed:
            return None
        if not state.trained:
            if self.threshold and size >= self.threshold:
                return self.nlist_for(size)
            return None
        if not self.threshold or size < self.threshold // 2:
            return 0
        if size >= GROWTH * state.trained or state.removed >= REMOVED_FRACTION * state.trained:
            return self.nlist_for(size)
        return None


@dataclass(eq=False)
class AnnState:
    """A collection's approximate-index bookkeeping: vectors its IVF index was trained
    on (0: it is flat), removed since, and the build under way, if any."""

    trained: int = 0
    removed: int = 0
    build: Build | None = None
    failed: bool = False

    def added(self, ids: Int64Array, vectors: FloatMatrix) -> None:
        if self.build is not None:
            self.build.journal.append((ids, vectors))

    def dropped(self, ids: Int64Array) -> None:
        self.removed += len(ids)
        if self.build is not None:
            self.build.journal.append((ids, None))


def new_flat(dimension: int) -> Any:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def search(index: Any, query: FloatMatrix, k: int) -> tuple[FloatMatrix, Int64Array]:
    """Top ``min(k, ntotal)`` of one index. An IVF search whose probed lists hold fewer
    than that many vectors probes more lists, so a big enough collection always fills k."""
    k = min(k, int(index.ntotal))
    scores, ids = index.search(query, k)
    if isinstance(index, faiss.IndexIVF):
        nprobe = int(index.nprobe)
        while ids[0, -1] < 0 and nprobe < index.nlist:
            nprobe = min(2 * nprobe, int(index.nlist))
            params = faiss.SearchParametersIVF()
            params.nprobe = nprobe
            scores, ids = index.search(query, k, params=params)
    return scores, ids


class Source(Protocol):
    """What a build reads from, under ``lock``: the collection's live index and ids."""

    index: Any
    ann: AnnState

    @property
    def members(self) -> Collection[int]: ...


@dataclass(eq=False)
class Build:
    """One background (re)build of a collection's index into IVF (``nlist`` lists) or,
    with ``nlist`` 0, a flat index; see the module docstring."""

    source: Source
    lock: threading.RLock
    current: Callable[[], bool]  # false once the store closed or dropped the collection
    nlist: int
    nprobe: int
    label: str
    ids: Int64Array  # the live ids when the build started
    then: Callable[[], None]  # called under the lock once swapped in (to plan the next)
    journal: list[tuple[Int64Array, FloatMatrix | None]] = field(default_factory=list)

    def run(self) -> None:
        """Build, catch up and swap in; on failure the collection stays on its index."""
        try:
            target = self._train()
            for start in range(0, len(self.ids), CHUNK):
                rows = self._copy(self.ids[start : start + CHUNK])
                if rows is None:
                    return
                target.add_with_ids(rows[1], rows[0])
            self._catch_up(target)
        except _Cancelled:
            pass
        except Exception:
            logger.exception("building the index of %s failed; it stays as it is", self.label)
            with self.lock:
                self.source.ann.failed = True
        finally:
            with self.lock:
                if self.source.ann.build is self:
                    self.source.ann.build = None

    def _cancelled(self) -> bool:
        return not self.current() or self.source.ann.build is not self

    def _copy(self, ids: Int64Array) -> tuple[Int64Array, FloatMatrix] | None:
        """The vectors of those ``ids`` still live, or None when the build is cancelled."""
        with self.lock:
            if self._cancelled():
                return None
            members = self.source.members
            live = ids[np.fromiter((i in members for i in ids.tolist()), bool, len(ids))]
            if not len(live):
                return live, np.zeros((0, self.source.index.d), dtype=np.float32)
            return live, self.source.index.reconstruct_batch(live)

    def _train(self) -> Any:
        dimension = int(self.source.index.d)
        if not self.nlist:
            return new_flat(dimension)
        rng = np.random.default_rng(len(self.ids))
        n = min(len(self.ids), self.nlist * TRAIN_POINTS_PER_LIST)
        sample = self._copy(np.sort(rng.choice(self.ids, size=n, replace=False)))
        if sample is None or not len(sample[0]):
            raise _Cancelled
        centroids = _kmeans(sample[1], self.nlist, self._cancelled)
        quantizer = faiss.IndexFlatIP(dimension)
        quantizer.add(centroids)
        # (faiss's Python wrapper keeps the quantizer alive as long as the index)
        index = faiss.IndexIVFFlat(quantizer, dimension, len(centroids), faiss.METRIC_INNER_PRODUCT)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        index.nprobe = min(self.nprobe, len(centroids))
        return index

    def _catch_up(self, target: Any) -> None:
        """Replay the writes made since the build started, then swap ``target`` in."""
        done = 0
        while True:
            with self.lock:
                if self._cancelled():
                    return
                pending = self.journal[done:]
                if sum(len(ids) for ids, _ in pending) <= SWAP_ROWS:
                    _replay(target, pending)
                    self._install(target)
                    return
            _replay(target, pending)
            done += len(pending)

    def _install(self, target: Any) -> None:
        ann = self.source.ann
        self.source.index = target
        ann.trained = len(self.ids) if self.nlist else 0
        ann.removed = 0
        ann.build = None
        logger.info(
            "%s now searches %s (%d vectors)",
            self.label,
            f"an IVF index of {target.nlist} lists" if self.nlist else "exactly",
            target.ntotal,
        )
        self.then()


class _Cancelled(Exception):
    pass


def _replay(target: Any, journal: list[tuple[Int64Array, FloatMatrix | None]]) -> None:
    # Every write removes a chunk before adding it again, so replaying removals and
    # additions in order leaves each id once, with its last vector.
    for ids, vectors in journal:
        if vectors is None:
            target.remove_ids(ids)
        else:
            target.add_with_ids(vectors, ids)


def _kmeans(sample: FloatMatrix, k: int, cancelled: Callable[[], bool]) -> FloatMatrix:
    """Spherical k-means centroids of ``sample``, a few iterations a step."""
    k = min(k, len(sample))
    if k == 1:
        return np.ascontiguousarray(sample[:1])
    kmeans = faiss.Kmeans(
        sample.shape[1],
        k,
        niter=KMEANS_STEP,
        spherical=True,
        seed=len(sample),
        min_points_per_centroid=1,
        max_points_per_centroid=len(sample),
    )
    centroids = None
    for _ in range(0, KMEANS_ITERATIONS, KMEANS_STEP):
        if cancelled():
            raise _Cancelled
        kmeans.train(sample, init_centroids=centroids)
        centroids = kmeans.centroids
    return np.ascontiguousarray(centroids, dtype=np.float32)
