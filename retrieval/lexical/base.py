"""The lexical (BM25) index protocol. Every backend passes ``tests/contract/lexical_contract.py``.

It mirrors the vector store: records keyed by chunk id, deletion by document,
collection filtering *inside* the search, explicit ``flush`` for durability.
Scores are BM25 scores (higher is better, not comparable across queries).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


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
