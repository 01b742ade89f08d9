"""An HNSW graph with the index interface the FAISS store uses: faiss ids, removal, and
fresh writes that cost what a flat index's do.

FAISS's ``IndexHNSWFlat`` numbers its rows 0..n-1 and cannot remove one. ``Graph``
keeps a row's faiss id, a map from each live id to its row, and a bitmap of live
rows that every search is filtered by inside the graph walk (``IDSelectorBitmap``):
a removed or replaced vector becomes a dead row, never returned, until the store
rebuilds the graph without them. New vectors go to a small exact *delta* (a flat
index searched beside the graph, so a write is searchable at once and costs no graph
insertion under the store's lock); ``merge`` moves them into the graph a step at a
time. Scores are the exact inner products of the stored vectors.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
FloatMatrix = npt.NDArray[np.float32]
RETRIES = 2  # wider walks (4x efSearch each) before an exact scan of the live rows


def new_flat(dimension: int) -> Any:
    """An exact inner-product index keyed by faiss ids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


class Graph:
    """HNSW (``m`` links a node, ``ef_construction`` and ``ef_search`` the breadth of the
    walks that build and search it) over the live rows of a collection, and a delta."""

    def __init__(self, dimension: int, *, m: int, ef_construction: int, ef_search: int) -> None:
        self.d, self.m = dimension, m
        self.graph = faiss.IndexHNSWFlat(dimension, m, faiss.METRIC_INNER_PRODUCT)
        self.graph.hnsw.efConstruction = ef_construction
        self.ef_search = ef_search
        self.delta = new_flat(dimension)
        self._labels = np.zeros(0, dtype=np.int64)  # row -> faiss id (capacity grows)
        self._alive = np.zeros(0, dtype=bool)
        self._rows: dict[int, int] = {}  # live faiss id -> row
        self._bitmap: npt.NDArray[np.uint8] | None = None  # packed ``_alive``, while current
        self._selector: Any = None
        self._saved: dict[int, int] = {}  # restoring: faiss id -> row, not yet confirmed

    @classmethod
    def restored(cls, index: Any, labels: Int64Array, *, ef_search: int) -> Graph:
        """A graph read back from disk (``_faiss_snapshot``): every row dead until
        ``confirm`` finds its vector live and unchanged."""
        graph = cls(index.d, m=index.hnsw.nb_neighbors(1), ef_construction=1, ef_search=ef_search)
        graph.graph = index
        graph._labels = np.array(labels, dtype=np.int64)
        graph._alive = np.zeros(len(labels), dtype=bool)
        graph._saved = dict(zip(graph._labels.tolist(), range(len(labels)), strict=True))
        return graph

    @property
    def labels(self) -> Int64Array:
        """Row -> faiss id, for the rows in the graph (dead ones included)."""
        return self._labels[: self.graph.ntotal]

    @property
    def ntotal(self) -> int:
        """Live vectors (what the store counts)."""
        return len(self._rows) + int(self.delta.ntotal)

    @property
    def dead(self) -> int:
        """Rows removed or replaced since the graph was built, still in it."""
        return int(self.graph.ntotal) - len(self._rows)

    @property
    def pending(self) -> int:
        """Vectors in the delta, not in the graph yet."""
        return int(self.delta.ntotal)

    def add_with_ids(self, vectors: FloatMatrix, ids: Int64Array) -> None:
        """Add to the delta (searchable at once; ``merge`` moves them into the graph)."""
        self.remove_ids(ids)  # an id is live in one place at most
        self.delta.add_with_ids(vectors, ids)

    def insert(self, vectors: FloatMatrix, ids: Int64Array) -> None:
        """Add straight into the graph (what building and merging do)."""
        self.remove_ids(ids)
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

    def confirm(self, vectors: FloatMatrix, ids: Int64Array) -> None:
        """Restoring: ``ids`` are live with these ``vectors``. Each one the graph holds
        with that very vector is live in it again; the others go to the delta."""
        rows = np.fromiter((self._saved.pop(i, -1) for i in ids.tolist()), np.int64, len(ids))
        same = rows >= 0
        if same.any():
            held = self.graph.reconstruct_batch(rows[same])
            same[same] = np.all(held == vectors[same], axis=1)
        if same.any():
            self._alive[rows[same]] = True
            self._rows.update(zip(ids[same].tolist(), rows[same].tolist(), strict=True))
            self._bitmap = None
        if not same.all():
            self.add_with_ids(np.ascontiguousarray(vectors[~same]), ids[~same])

    def restore_done(self) -> None:
        """Restoring is over: the rows never confirmed stay dead."""
        self._saved = {}

    def merge(self, limit: int) -> int:
        """Move up to ``limit`` of the oldest delta vectors into the graph; how many moved."""
        ids = faiss.vector_to_array(self.delta.id_map)[:limit].astype(np.int64)
        if len(ids):
            vectors = self.delta.reconstruct_batch(ids)
            self.delta.remove_ids(ids)
            self.insert(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        return len(ids)

    def remove_ids(self, ids: Int64Array) -> int:
        rows = [r for r in (self._rows.pop(i, None) for i in ids.tolist()) if r is not None]
        if rows:
            self._alive[rows] = False
            self._bitmap = None
        if len(rows) < len(ids) and self.delta.ntotal:
            return len(rows) + int(self.delta.remove_ids(ids))
        return len(rows)

    def reconstruct_batch(self, ids: Int64Array) -> FloatMatrix:
        rows = self._rows
        in_graph = np.fromiter((i in rows for i in ids.tolist()), dtype=bool, count=len(ids))
        out = np.empty((len(ids), self.d), dtype=np.float32)
        if in_graph.any():
            where = np.fromiter((rows[i] for i in ids[in_graph].tolist()), dtype=np.int64)
            out[in_graph] = self.graph.reconstruct_batch(where)
        if not in_graph.all():
            out[~in_graph] = self.delta.reconstruct_batch(ids[~in_graph])
        return out

    def search(self, query: FloatMatrix, k: int) -> tuple[FloatMatrix, Int64Array]:
        """Top ``k`` live vectors by inner product, of the graph and the delta together."""
        scores, ids = self._search_graph(query, min(k, len(self._rows)))
        if self.delta.ntotal and k:
            more_scores, more_ids = self.delta.search(query, min(k, int(self.delta.ntotal)))
            scores = np.concatenate([scores, more_scores], axis=1)
            ids = np.concatenate([ids, more_ids], axis=1)
            best = np.argsort(-scores[0], kind="stable")[:k]
            scores, ids = scores[:, best], ids[:, best]
        return scores, ids

    def _search_graph(self, query: FloatMatrix, k: int) -> tuple[FloatMatrix, Int64Array]:
        """A walk that finds fewer than ``k`` (dead rows can cut a sparse graph's paths)
        is widened, then replaced by an exact scan of the live rows."""
        if not k:
            return np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64)
        ef = max(self.ef_search, k)
        for _ in range(RETRIES + 1):
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = ef
            if self.dead:
                params.sel = self._live_selector()
            scores, rows = self.graph.search(query, k, params=params)
            if rows[0, k - 1] >= 0:
                return scores, self._labels[rows]
            ef *= 4
        params = faiss.SearchParameters()
        params.sel = self._live_selector()
        scores, rows = self.graph.storage.search(query, k, params=params)
        return scores, np.where(rows >= 0, self._labels[np.maximum(rows, 0)], -1)

    def _live_selector(self) -> Any:
        if self._bitmap is None:
            self._bitmap = np.packbits(self._alive[: self.graph.ntotal], bitorder="little")
            self._selector = faiss.IDSelectorBitmap(len(self._bitmap), faiss.swig_ptr(self._bitmap))
        return self._selector
