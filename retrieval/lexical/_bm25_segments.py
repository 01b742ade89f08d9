"""Segments of the BM25 index: immutable term-frequency postings of some chunks, a
live mask, and the merging of several segments into one (see ``bm25_index``).

Postings are grouped by term, like the columns of a CSC matrix: the rows (chunks)
holding term ``terms[j]`` are ``rows[indptr[j]:indptr[j + 1]]``, in ascending order,
with their term frequencies in ``tfs``. Term ids are the collection's vocabulary ids,
ascending, so finding a query term in a segment is a binary search. Nothing here
depends on BM25's parameters: scores are computed at query time (``_bm25_scoring``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Int32Array = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
TfArray = npt.NDArray[Any]  # the smallest unsigned dtype that holds a segment's counts

NO_TOMBSTONES: Int64Array = np.zeros((0, 2), dtype=np.int64)
NO_TOMBSTONES.setflags(write=False)


@dataclass(frozen=True, eq=False)
class Postings:
    """The rows of a segment (chunk and document ids, token counts) and its postings."""

    chunk_ids: list[str]
    document_ids: list[str]
    lengths: Int32Array  # tokens per row, repeats counted (the BM25 document length)
    terms: Int32Array  # ascending term ids
    indptr: Int64Array
    rows: Int32Array
    tfs: TfArray
    row_of: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row_of", {c: i for i, c in enumerate(self.chunk_ids)})

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def find(self, term_ids: Int64Array) -> list[tuple[int, int, int]]:
        """(index into ``term_ids``, start, end) of each of the terms this segment holds."""
        at = np.searchsorted(self.terms, term_ids)
        found = at < len(self.terms)
        found[found] = self.terms[at[found]] == term_ids[found]
        return [
            (i, int(self.indptr[j]), int(self.indptr[j + 1]))
            for i, j in zip(np.flatnonzero(found).tolist(), at[found].tolist(), strict=True)
        ]

    def nbytes(self) -> int:
        arrays = (self.lengths, self.terms, self.indptr, self.rows, self.tfs)
        return sum(a.nbytes for a in arrays)


@dataclass(frozen=True, eq=False)
class Segment:
    """Postings with the rows still live, and the file that holds them (None: not
    written yet). Never changed once built: a deletion makes a new ``Segment`` with
    another ``live``, so a search can use the one it found without a lock."""

    postings: Postings
    live: BoolArray
    live_count: int
    live_length: int  # tokens of the live rows
    file: str | None = None
    generation: int = 0
    # (generation, row) of older rows its file deletes
    tombstones: Int64Array = field(default_factory=lambda: NO_TOMBSTONES)

    @classmethod
    def of(cls, postings: Postings, **disk: Any) -> Segment:
        """A segment whose rows are all live."""
        live = np.ones(len(postings), dtype=np.bool_)
        length = int(postings.lengths.sum(dtype=np.int64))
        return cls(postings, live, len(postings), length, **disk)

    @property
    def dead(self) -> int:
        return len(self.postings) - self.live_count

    @property
    def rewrite_cost(self) -> int:
        return self.live_count + len(self.tombstones)

    def without(self, rows: Sequence[int]) -> Segment:
        """This segment with ``rows`` (live ones) deleted."""
        live = self.live.copy()
        live[list(rows)] = False
        gone = int(self.postings.lengths[list(rows)].sum(dtype=np.int64))
        return dataclasses.replace(
            self,
            live=live,
            live_count=self.live_count - len(rows),
            live_length=self.live_length - gone,
        )


@dataclass(frozen=True)
class View:
    """What a search reads of a collection: its vocabulary and its segments."""

    vocab: Mapping[str, int]
    segments: tuple[Segment, ...]


def build(rows: Sequence[tuple[str, str, Mapping[str, int]]]) -> tuple[Postings, list[str]]:
    """Postings of ``rows`` (chunk id, document id, term -> count), with term ids local
    to them, and those terms (id -> term); ``renumber`` puts them in a collection's ids."""
    flat = list(itertools.chain.from_iterable(counts for _, _, counts in rows))
    terms = list(dict.fromkeys(flat))
    local = {t: i for i, t in enumerate(terms)}
    term_ids = np.fromiter(map(local.__getitem__, flat), dtype=np.int32, count=len(flat))
    tfs = np.fromiter(
        itertools.chain.from_iterable(c.values() for _, _, c in rows), np.int64, len(flat)
    )
    row_ids = np.repeat(np.arange(len(rows), dtype=np.int32), [len(c) for _, _, c in rows])
    order = np.argsort(term_ids, kind="stable")  # stable: rows stay ascending within a term
    indptr = np.zeros(len(terms) + 1, dtype=np.int64)
    np.cumsum(np.bincount(term_ids, minlength=len(terms)), out=indptr[1:])
    postings = Postings(
        chunk_ids=[c for c, _, _ in rows],
        document_ids=[d for _, d, _ in rows],
        lengths=np.asarray([sum(c.values()) for _, _, c in rows], dtype=np.int32),
        terms=np.arange(len(terms), dtype=np.int32),
        indptr=indptr,
        rows=row_ids[order],
        tfs=compact_counts(tfs[order]),
    )
    return postings, terms


def renumber(postings: Postings, ids: Int32Array) -> Postings:
    """``postings`` with term ``t`` renamed ``ids[t]`` (distinct), its terms put back in
    ascending order."""
    renamed = ids[postings.terms]
    order = np.argsort(renamed, kind="stable")
    if bool((order == np.arange(len(order))).all()):
        return dataclasses.replace(postings, terms=renamed)
    indptr, gather = permute_terms(postings, order)
    return dataclasses.replace(
        postings,
        terms=renamed[order],
        indptr=indptr,
        rows=postings.rows[gather],
        tfs=postings.tfs[gather],
    )


def compact_counts(tfs: npt.NDArray[Any]) -> TfArray:
    """Term frequencies in the smallest unsigned dtype that holds them."""
    top = int(tfs.max()) if len(tfs) else 0
    return tfs.astype(np.min_scalar_type(top), copy=False)


def merge(segments: Sequence[Segment]) -> Postings:
    """One segment's postings holding the live rows of ``segments``, in their order.

    Each segment's postings are already grouped by ascending term, so every posting's
    place in the result is computed from per-term counts: no sort, O(postings).
    """
    union = np.unique(np.concatenate([s.postings.terms for s in segments]))
    counts = np.zeros(len(union), dtype=np.int64)
    plans = []
    offset = 0
    for segment in segments:
        p = segment.postings
        kept = segment.live[p.rows]
        before = np.concatenate(([0], np.cumsum(kept, dtype=np.int64)))  # kept before i
        per_term = before[p.indptr[1:]] - before[p.indptr[:-1]]
        at = np.searchsorted(union, p.terms)
        counts[at] += per_term
        renumber = (np.cumsum(segment.live, dtype=np.int64) - 1 + offset).astype(np.int32)
        plans.append((p, kept, before, per_term, at, renumber))
        offset += segment.live_count
    indptr = np.concatenate(([0], np.cumsum(counts)))
    cursor = indptr[:-1].copy()
    rows = np.empty(int(indptr[-1]), dtype=np.int32)
    tfs = np.empty(int(indptr[-1]), dtype=np.result_type(*(s.postings.tfs for s in segments)))
    for p, kept, before, per_term, at, renumber in plans:
        source = np.flatnonzero(kept)
        rank = np.arange(len(source)) - np.repeat(before[p.indptr[:-1]], per_term)
        target = np.repeat(cursor[at], per_term) + rank
        cursor[at] += per_term
        rows[target] = renumber[p.rows[source]]
        tfs[target] = p.tfs[source]
    used = counts > 0
    chunk_ids: list[str] = []
    document_ids: list[str] = []
    for segment in segments:
        alive = np.flatnonzero(segment.live).tolist()
        chunk_ids.extend(segment.postings.chunk_ids[i] for i in alive)
        document_ids.extend(segment.postings.document_ids[i] for i in alive)
    return Postings(
        chunk_ids=chunk_ids,
        document_ids=document_ids,
        lengths=np.concatenate([s.postings.lengths[s.live] for s in segments]),
        terms=union[used].astype(np.int32),
        indptr=np.concatenate(([0], indptr[1:][used])),
        rows=rows,
        tfs=compact_counts(tfs),
    )


def permute_terms(postings: Postings, order: Int64Array) -> tuple[Int64Array, Int64Array]:
    """The indptr of ``postings``'s term blocks put in ``order``, and the index that
    gathers its rows and tfs into that order."""
    sizes = np.diff(postings.indptr)[order]
    indptr = np.concatenate(([0], np.cumsum(sizes)))
    starts = postings.indptr[:-1][order]
    gather = np.repeat(starts - indptr[:-1], sizes) + np.arange(int(indptr[-1]))
    return indptr, gather
