"""BM25 scores of a collection's segments, from statistics of its live chunks at query time.

The formulas are bm25s's (``bm25s.scoring``) for the methods it scores without a
non-occurrence term; with N live chunks, a term in ``df`` of them, a chunk of length
``dl`` holding it ``tf`` times and the live chunks' mean length ``avgdl``::

    lucene:    idf = ln(1 + (N - df + 0.5) / (df + 0.5))    tf / (tf + k1 (1 - b + b dl / avgdl))
    robertson: idf = ln(max(1, (N - df + 0.5) / (df + 0.5)))   the same
    atire:     idf = ln(N / df)        tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))

summed over the query's terms, a repeated query term counting each time (as bm25s
does). N, ``avgdl`` and ``df`` count live chunks only, so a score equals what a
bm25s index built from scratch over the same chunks gives (to float32 rounding: bm25s
stores its scores in float32, these are float64). ``df`` is counted from the very
postings the query reads, so a query costs the postings of its terms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from retrieval.lexical._bm25_segments import Int32Array, Segment, View

Float64Array = npt.NDArray[np.float64]
METHODS = ("lucene", "robertson", "atire")


@dataclass(frozen=True)
class Scoring:
    k1: float
    b: float
    method: str

    def idf(self, df: Float64Array, n: int) -> Float64Array:
        if self.method == "atire":
            return np.log(n / df)
        inner = (n - df + 0.5) / (df + 0.5)
        if self.method == "robertson":
            return np.log(np.maximum(inner, 1.0))
        return np.log(1.0 + inner)

    def saturation(self, tf: Float64Array, length: Int32Array, avgdl: float) -> Float64Array:
        norm = self.k1 * (1.0 - self.b + self.b * length / avgdl)
        if self.method == "atire":
            return tf * (self.k1 + 1.0) / (tf + norm)
        return tf / (tf + norm)


@dataclass(frozen=True)
class _Matches:
    """The live postings of the query's terms in one segment."""

    segment: Segment
    term: npt.NDArray[np.intp]  # index into the query's distinct terms
    rows: Int32Array
    tfs: Float64Array


def top_rows(
    view: View, terms: Sequence[str], k: int, scoring: Scoring
) -> list[tuple[float, str, str]]:
    """(score, chunk id, document id) of the best ``k`` chunks of one collection with a
    positive score; every chunk tied with the k-th is included, so the caller can
    break ties by chunk id."""
    known = Counter(i for i in (view.vocab.get(t) for t in terms) if i is not None)
    n = sum(s.live_count for s in view.segments)
    total = sum(s.live_length for s in view.segments)
    if not known or not total:
        return []
    query = np.fromiter(known, dtype=np.int64, count=len(known))
    repeats = np.fromiter(known.values(), dtype=np.float64, count=len(known))
    found = [m for s in view.segments if (m := _match(s, query)) is not None]
    df = np.zeros(len(query), dtype=np.float64)
    for m in found:
        df += np.bincount(m.term, minlength=len(query))
    seen = df > 0
    weights = np.zeros(len(query), dtype=np.float64)
    weights[seen] = repeats[seen] * scoring.idf(df[seen], n)
    avgdl = total / n
    scores: list[Float64Array] = []
    owners: list[Int32Array] = []
    rows: list[Int32Array] = []
    for i, m in enumerate(found):
        lengths = m.segment.postings.lengths[m.rows]
        part = weights[m.term] * scoring.saturation(m.tfs, lengths, avgdl)
        unique, summed = _sum_by_row(m.rows, part, len(m.segment.postings))
        positive = summed > 0
        scores.append(summed[positive])
        rows.append(unique[positive])
        owners.append(np.full(int(positive.sum()), i, dtype=np.int32))
    if not scores:
        return []
    score, owner, row = np.concatenate(scores), np.concatenate(owners), np.concatenate(rows)
    if len(score) > k:
        kth = np.partition(score, len(score) - k)[len(score) - k]
        best = score >= kth
        score, owner, row = score[best], owner[best], row[best]
    out = []
    for s, o, r in zip(score.tolist(), owner.tolist(), row.tolist(), strict=True):
        postings = found[o].segment.postings
        out.append((s, postings.chunk_ids[r], postings.document_ids[r]))
    return out


def _match(segment: Segment, query: npt.NDArray[np.int64]) -> _Matches | None:
    postings = segment.postings
    spans = postings.find(query)
    if not spans:
        return None
    sizes = [end - start for _, start, end in spans]
    term = np.repeat(np.asarray([i for i, _, _ in spans], dtype=np.intp), sizes)
    rows = np.concatenate([postings.rows[start:end] for _, start, end in spans])
    tfs = np.concatenate([postings.tfs[start:end] for _, start, end in spans])
    if segment.live_count < len(postings):
        live = segment.live[rows]
        term, rows, tfs = term[live], rows[live], tfs[live]
        if not len(rows):
            return None
    return _Matches(segment, term, rows, tfs.astype(np.float64))


def _sum_by_row(
    rows: Int32Array, values: Float64Array, size: int
) -> tuple[Int32Array, Float64Array]:
    """The distinct ``rows`` and the sum of ``values`` of each: by sorting when the rows
    are few next to the segment, else by a dense count (whichever is cheaper)."""
    if len(rows) * 16 < size:
        unique, inverse = np.unique(rows, return_inverse=True)
        summed = np.bincount(inverse, weights=values).astype(np.float64, copy=False)
        return unique, summed
    dense = np.bincount(rows, weights=values, minlength=size).astype(np.float64, copy=False)
    present = np.flatnonzero(dense).astype(np.int32)
    return present, dense[present]
