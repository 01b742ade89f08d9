"""Weighted reciprocal-rank fusion (Cormack et al., 2009) of ranked id lists.

``score(d) = sum_i w_i / (k + rank_i(d))`` over the lists that contain ``d`` (ranks start
at 1). Only ranks matter, so a cosine list and a BM25 list fuse without calibrating
their scores; ``k`` damps the lead of the very top ranks (60 is the paper's value and
works across collections), the weights say how much each retriever is trusted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_RRF_K = 60


@dataclass(frozen=True)
class Fused:
    id: str
    score: float
    #: 1-based rank of ``id`` in each input list, None where a list does not contain it.
    ranks: tuple[int | None, ...]


def rrf(
    rankings: Sequence[Sequence[str]],
    *,
    weights: Sequence[float] | None = None,
    k: float = DEFAULT_RRF_K,
) -> list[Fused]:
    """Fuse ranked id lists (best first) into one list, best first.

    Ties are broken deterministically: the better best-rank first, then the id found
    earlier in the earlier list, then the smaller id. A repeated id within one list
    keeps its first (best) rank. Raises ``ValueError`` on a weight count that does not
    match, a negative or non-finite weight, or ``k < 0``.
    """
    if weights is None:
        weights = (1.0,) * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"weights must be finite and >= 0, got {tuple(weights)}")
    if not math.isfinite(k) or k < 0:
        raise ValueError(f"k must be finite and >= 0, got {k}")

    ranks: dict[str, list[int | None]] = {}
    for i, ranking in enumerate(rankings):
        for rank, doc_id in enumerate(ranking, start=1):
            slots = ranks.setdefault(doc_id, [None] * len(rankings))
            if slots[i] is None:
                slots[i] = rank
    fused = [
        Fused(doc_id, _score(slots, weights, k), tuple(slots)) for doc_id, slots in ranks.items()
    ]
    fused.sort(key=lambda f: order_key(f.score, f.ranks, f.id))
    return fused


def _score(ranks: Sequence[int | None], weights: Sequence[float], k: float) -> float:
    # Summed in list order, so equal inputs always give bit-identical scores.
    return sum(w / (k + r) for w, r in zip(weights, ranks, strict=True) if r is not None)


def order_key(
    score: float, ranks: Sequence[int | None], doc_id: str
) -> tuple[float, float, tuple[float, ...], str]:
    """``rrf``'s order: the higher score, then the better best rank, then the id found
    earlier in the earlier list, then the smaller id (for a fusion done elsewhere too)."""
    by_list = tuple(math.inf if r is None else float(r) for r in ranks)
    return (-score, min(by_list, default=math.inf), by_list, doc_id)
