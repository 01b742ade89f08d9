"""An HNSW graph with the index interface the FAISS store uses: faiss ids in, removal.

FAISS's ``IndexHNSWFlat`` numbers its rows 0..n-1 and cannot remove one. ``Graph``
keeps a row's faiss id, a map from each live id to its row, and a bitmap of live
rows that every search is filtered by inside the graph walk (``IDSelectorBitmap``):
a removed or replaced vector becomes a dead row, never returned, until the store
rebuilds the graph without them. Scores are the exact inner products of the stored
vectors.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
FloatMatrix = npt.NDArray[np.float32]
RETRIES = 2  # wider searches (4x efSearch each) before an exact scan of the live rows


class Graph:
    """HNSW (``m`` links a node, ``ef_construction`` and ``ef_search`` the breadth of the
    walks that build and search it) over the live rows of a collection."""

    def __init__(self, dimension: int, *, m: int, ef_construction: int, ef_search: int) -> None:
        self.d = dimension
        self.graph = faiss.IndexHNSWFlat(dimension, m, faiss.METRIC_INNER_PRODUCT)
        self.graph.hnsw.efConstruction = ef_construction
        self.ef_search = ef_search
        self._labels = np.zeros(0, dtype=np.int64)  # row -> faiss id (capacity grows)
        self._alive = np.zeros(0, dtype=bool)
        self._rows: dict[int, int] = {}  # live faiss id -> row
        self._bitmap: npt.NDArray[np.uint8] | None = None  # packed ``_alive``, while current
        self._selector: Any = None

    @property
    def ntotal(self) -> int:
        """Live vectors (what the store counts)."""
        return len(self._rows)

    @property
    def dead(self) -> int:
        """Rows removed or replaced since the graph was built, still in it."""
        return int(self.graph.ntotal) - len(self._rows)

    def add_with_ids(self, vectors: FloatMatrix, ids: Int64Array) -> None:
        self.remove_ids(ids)  # an id is live in one row at most
        start, n = int(self.graph.ntotal), len(ids)
        if start + n > len(self._labels):
            capacity = max(start + n, 2 * len(self._labels), 1024)
            self._labels = np.resize(self._labels, capacity)
            self._alive = np.concatenate([self._alive, np.zeros(capacity - len(self._alive), bool)])
        self.graph.add(vectors)
        self._labels[start : start + n] = ids
        self._alive[start : start + n] = True
        self._rows.update(zip(ids.tolist(), range(start, start + n), strict=True))
        self._bitmap = None

    def remove_ids(self, ids: Int64Array) -> int:
        rows = [r for r in (self._rows.pop(i, None) for i in ids.tolist()) if r is not None]
        if rows:
            self._alive[rows] = False
            self._bitmap = None
        return len(rows)

    def reconstruct_batch(self, ids: Int64Array) -> FloatMatrix:
        rows = np.fromiter((self._rows[i] for i in ids.tolist()), dtype=np.int64, count=len(ids))
        return np.asarray(self.graph.reconstruct_batch(rows), dtype=np.float32)

    def search(self, query: FloatMatrix, k: int) -> tuple[FloatMatrix, Int64Array]:
        """Top ``k`` live rows by inner product; a walk that finds fewer than there are
        (dead rows can cut a sparse graph's paths) is widened, then replaced by a scan."""
        want = min(k, self.ntotal)
        ef = max(self.ef_search, k)
        for _ in range(RETRIES + 1):
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = ef
            if self.dead:
                params.sel = self._live_selector()
            scores, rows = self.graph.search(query, k, params=params)
            if want == 0 or rows[0, want - 1] >= 0:
                return scores, self._ids(rows)
            ef *= 4
        params = faiss.SearchParameters()
        params.sel = self._live_selector()
        scores, rows = self.graph.storage.search(query, k, params=params)
        return scores, self._ids(rows)

    def _ids(self, rows: Int64Array) -> Int64Array:
        return np.where(rows >= 0, self._labels[np.maximum(rows, 0)], -1)

    def _live_selector(self) -> Any:
        if self._bitmap is None:
            self._bitmap = np.packbits(self._alive[: self.graph.ntotal], bitorder="little")
            self._selector = faiss.IDSelectorBitmap(len(self._bitmap), faiss.swig_ptr(self._bitmap))
        return self._selector
