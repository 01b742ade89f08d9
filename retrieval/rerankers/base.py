"""The reranker protocol: rescore (query, passage) pairs jointly, best first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Reranker(Protocol):
    """Errors: ``RerankError`` when scoring fails."""

    model_name: str
    #: How many of the fused candidates are worth rescoring (cross-encoders are slow).
    top_n: int

    def rerank(self, query: str, items: Sequence[tuple[str, str]]) -> list[tuple[str, float]]:
        """``(id, text)`` pairs in, ``(id, score)`` out, best first (ties keep input order)."""
