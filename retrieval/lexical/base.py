"""The lexical (BM25) index protocol. Every backend passes ``tests/contract/lexical_contract.py``.

It mirrors the vector store: records keyed by chunk id, deletion by document,
collection filtering *inside* the search, explicit ``flush`` for durability.
Scores are BM25 scores (higher is better, not comparable across queries).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from retrieval.vectorstores.base import Vector


@dataclass(frozen=True)
class LexicalRecord:
    chunk_id: str
    document_id: str
    collection_id: str
    text: str


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: str
    document_id: str
    collection_id: str
    score: float


class LexicalIndex(Protocol):
    """Errors: ``LexicalIndexError`` (``retrieval.errors``) for I/O and corrupt files,
    with a message that suggests ``lantern reindex``."""

    def upsert(self, records: Sequence[LexicalRecord]) -> None:
        """Insert or replace texts by ``chunk_id``."""

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove every chunk of these documents; returns how many were removed."""

    def search(
        self, query: str, *, k: int, collections: Collection[str] | None = None
    ) -> list[LexicalHit]:
        """Top-``k`` by BM25 score, only chunks in ``collections`` (all when None; none
        when empty). Chunks with no query term never appear."""

    def document_ids(self) -> set[str]: ...

    def count(self, *, collections: Collection[str] | None = None) -> int: ...

    def flush(self) -> None:
        """Make every change so far durable (atomic on disk)."""

    def clear(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class FusedHit:
    chunk_id: str
    document_id: str
    collection_id: str
    #: The unweighted RRF score, ``sum 1 / (rrf_k + rank)`` over the two lists.
    score: float
    #: 1-based rank in the dense / BM25 list; None where that search did not return it.
    dense_rank: int | None
    lexical_rank: int | None


@dataclass(frozen=True)
class FusedResult:
    hits: list[FusedHit]  # best first, ties in ``retrieval.fusion.rrf``'s order
    #: Cosine of the closest chunk in the allowed collections (0.0 when there is none).
    top_dense_score: float


@runtime_checkable
class FusingIndex(Protocol):
    """A lexical index that shares its storage with a vector store and runs a hybrid
    search (both searches, filtered inside, fused by unweighted RRF) in one call."""

    def fuses_with(self, vectors: object) -> bool:
        """True when ``vectors`` is the store this index shares its storage with."""

    def fused_search(
        self,
        query_vector: Vector,
        query: str,
        *,
        dense_k: int,
        lexical_k: int,
        rrf_k: float,
        collections: Collection[str] | None,
    ) -> FusedResult | None:
        """The fusion of the top ``dense_k`` by cosine and the top ``lexical_k`` by BM25,
        every candidate of both; None where one call cannot do it (the query has no
        terms, or Milvus cannot take this ``rrf_k``): then search separately."""
