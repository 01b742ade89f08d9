"""Ranking metrics as BEIR reports them (pytrec_eval's definitions).

``qrels`` map a document id to a graded relevance; grade <= 0 is not relevant. nDCG uses
linear gains (``gain = grade``, as trec_eval and BEIR do, not ``2**grade - 1``) and a
``log2(rank + 1)`` discount; the ideal ranking is every judged document sorted by grade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Qrels = Mapping[str, int]


def ndcg_at_k(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """Normalised discounted cumulative gain of the top ``k``; 0 when nothing is relevant."""
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    if idcg == 0:
        return 0.0
    dcg = sum(max(qrels.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(_top(ranked, k)))
    return dcg / idcg


def recall_at_k(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """Share of the relevant documents found in the top ``k``; 0 when none is relevant."""
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_top(ranked, k))) / len(relevant)


def mrr_at_k(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """Reciprocal rank of the first relevant document in the top ``k``, else 0."""
    for i, doc in enumerate(_top(ranked, k)):
        if qrels.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def _top(ranked: Sequence[str], k: int) -> list[str]:
    """The first ``k`` distinct ids (a repeated id would otherwise count twice)."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    return list(dict.fromkeys(ranked))[:k]
