"""The vector store protocol. Every backend passes ``tests/contract/vectorstore_contract.py``.

Vectors are L2-normalised float32 rows; scores are inner products (cosine),
higher is better. Collection filtering happens *inside* the search: a vector
outside the requested collections can never displace or appear among the hits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class VectorRecord:
    chunk_id: str
    document_id: str
    collection_id: str
    vector: Vector


@dataclass(frozen=True)
class VectorHit:
    chunk_id: str
    document_id: str
    collection_id: str
    score: float


@dataclass(frozen=True)
class IndexManifest:
    """Recorded beside every index; opening with another model is an error."""

    embedding_model: str
    dimension: int
    backend: str
    format_version: int = 1


def unit_rows(vectors: Sequence[Vector], manifest: IndexManifest, *, what: str) -> Vector:
    """``vectors`` as a contiguous float32 matrix of L2-normalised rows, checked against
    the index's dimension; ``VectorStoreError`` says what is wrong with them."""
    from retrieval.errors import VectorStoreError

    try:
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    except (ValueError, TypeError) as e:
        raise VectorStoreError(f"{what} is not a numeric vector: {e}") from e
    if matrix.shape[1] != manifest.dimension:
        raise VectorStoreError(
            f"{what} has dimension {matrix.shape[1]}, the index expects "
            f"{manifest.dimension} ({manifest.embedding_model!r})"
        )
    if not np.isfinite(matrix).all():
        raise VectorStoreError(f"{what} contains NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if (norms == 0).any():
        raise VectorStoreError(f"{what} is all zeros and has no direction")
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


class VectorStore(Protocol):
    """A persistent, filterable nearest-neighbour index of chunk vectors.

    Errors: ``VectorStoreError`` for I/O and backend failures,
    ``IndexMismatchError`` when opened with a different model or dimension
    than the one the index was built with (the message says to run
    ``lantern reindex``).
    """

    manifest: IndexManifest

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        """Insert or replace vectors by ``chunk_id``."""

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove every vector of these documents; returns how many were removed."""

    def search(
        self, query: Vector, *, k: int, collections: Collection[str] | None = None
    ) -> list[VectorHit]:
        """Top-``k`` hits by descending score. ``collections=None`` searches all;
        an empty collection set returns no hits."""

    def document_ids(self) -> set[str]:
        """Every document id that has at least one vector (for orphan clean-up)."""

    def count(self, *, collections: Collection[str] | None = None) -> int:
        """Number of vectors, optionally within some collections."""

    def flush(self) -> None:
        """Make every change so far durable (atomic on disk for file backends)."""

    def clear(self) -> None:
        """Drop every vector (used by ``lantern reindex``); keeps the manifest."""

    def close(self) -> None: ...
