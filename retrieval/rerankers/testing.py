"""A deterministic stand-in reranker for tests: scores by the query words a passage shares."""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\w+")


class FakeReranker:
    """Score = the share of the query's distinct words found in the passage (0..1)."""

    def __init__(self, *, top_n: int = 30, model_name: str = "fake") -> None:
        if top_n <= 0:
            raise ValueError(f"top_n must be positive, got {top_n}")
        self.model_name = model_name
        self.top_n = top_n

    def rerank(self, query: str, items: Sequence[tuple[str, str]]) -> list[tuple[str, float]]:
        wanted = set(_WORD.findall(query.lower()))
        scores = [
            len(wanted & set(_WORD.findall(text.lower()))) / len(wanted) if wanted else 0.0
            for _, text in items
        ]
        order = sorted(range(len(items)), key=lambda i: (-scores[i], i))
        return [(items[i][0], scores[i]) for i in order]
