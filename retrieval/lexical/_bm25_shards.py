"""One collection of the BM25 index in memory: its vocabulary and segments, how writes
change them and what a flush writes (see ``bm25_index``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval._segments import MergePolicy
from retrieval._sharded import inconsistent
from retrieval.errors import LexicalIndexError
from retrieval.lexical import _bm25_files as files
from retrieval.lexical import _bm25_segments as segs
from retrieval.lexical._bm25_files import SegmentFile
from retrieval.lexical._bm25_segments import BoolArray, Int64Array, Postings, Segment, View

POLICY = MergePolicy()


@dataclass(frozen=True)
class FlushPlan:
    """What a flush writes for a collection: it keeps the ``keep`` oldest committed
    segments and replaces the rest, and the changes, by one segment of ``postings``
    (None: by nothing) carrying ``tombstones``."""

    keep: int
    postings: Postings | None
    tombstones: Int64Array
    terms: list[str]  # the vocabulary the postings' term ids refer to


@dataclass(eq=False)
class Shard:
    """A collection: term id -> term, its segments (the committed ones first, oldest
    first, then those no flush wrote yet) and the tombstones its next flush writes.

    The vocabulary only grows between compactions, so a search may read it while a
    write adds terms: a term new to it is in no segment the search knows.
    """

    terms: list[str] = field(default_factory=list)
    vocab: dict[str, int] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    deleted: list[tuple[int, int]] = field(default_factory=list)  # (generation, row)

    @property
    def view(self) -> View:
        return View(self.vocab, tuple(self.segments))

    @property
    def size(self) -> int:
        return sum(s.live_count for s in self.segments)

    def add(self, postings: Postings, terms: Sequence[str]) -> None:
        """Add ``postings`` (of ``segs.build``: term ids into ``terms``) as a new segment,
        merged with the newest unwritten ones per the merge policy."""
        new = list(itertools.filterfalse(self.vocab.__contains__, terms))
        self.vocab.update(zip(new, range(len(self.terms), len(self.terms) + len(new)), strict=True))
        self.terms.extend(new)
        ids = np.fromiter(map(self.vocab.__getitem__, terms), dtype=np.int32, count=len(terms))
        self.segments.append(Segment.of(segs.renumber(postings, ids)))
        first = self._first_pending()
        pending = self.segments[first:]
        live = sum(s.live_count for s in pending)
        keep = POLICY.keep(pending[:-1], pending=pending[-1].rewrite_cost, live=live)
        if keep < len(pending) - 1:
            merged = Segment.of(segs.merge(pending[keep:]))
            self.segments[first + keep :] = [merged]

    def drop(self, chunk_ids: Iterable[str]) -> None:
        """Delete live chunks; those a committed segment holds become tombstones."""
        by_segment: dict[int, list[int]] = {}
        for chunk_id in chunk_ids:
            for i in range(len(self.segments) - 1, -1, -1):
                segment = self.segments[i]
                row = segment.postings.row_of.get(chunk_id)
                if row is not None and segment.live[row]:
                    by_segment.setdefault(i, []).append(row)
                    break
            else:
                raise KeyError(chunk_id)
        for i, rows in by_segment.items():
            segment = self.segments[i]
            self.segments[i] = segment.without(rows)
            if segment.file is not None:
                self.deleted.extend((segment.generation, row) for row in rows)

    def plan_flush(self) -> FlushPlan:
        """The segment a flush writes: the changes since the last one, merged with the
        newest committed segments per the merge policy; at a full merge the vocabulary
        is compacted to the terms still used."""
        committed = self._first_pending()
        pending = self.segments[committed:]
        changed = sum(s.live_count for s in pending) + len(self.deleted)
        keep = POLICY.keep(self.segments[:committed], pending=changed, live=self.size)
        rewritten = self.segments[keep:]
        kept = {s.generation for s in self.segments[:keep]}
        carried = [t for s in rewritten if s.file is not None for t in s.tombstones.tolist()]
        carried.extend(self.deleted)
        tombstones = np.asarray([t for t in carried if t[0] in kept], dtype=np.int64)
        tombstones = tombstones.reshape(-1, 2)
        merged = segs.merge(rewritten) if rewritten else segs.build([])[0]  # tombstones only
        terms = self.terms
        if keep == 0:
            terms = [terms[i] for i in merged.terms.tolist()]
            merged = segs.renumber(merged, _increasing_map(merged, len(self.terms)))
        written = merged if len(merged) or len(tombstones) else None
        return FlushPlan(keep, written, tombstones, terms)

    def install(self, plan: FlushPlan, written: Segment | None) -> None:
        """Take on the state a committed flush of ``plan`` wrote."""
        self.segments = [*self.segments[: plan.keep], *([written] if written else [])]
        self.deleted = []
        if plan.terms is not self.terms:
            self.terms = plan.terms
            self.vocab = {t: i for i, t in enumerate(plan.terms)}

    def _first_pending(self) -> int:
        return next((i for i, s in enumerate(self.segments) if s.file is None), len(self.segments))


def _increasing_map(postings: Postings, vocabulary: int) -> segs.Int32Array:
    """Old term id -> its rank among the terms ``postings`` holds."""
    new_ids = np.full(vocabulary, -1, dtype=np.int32)
    new_ids[postings.terms] = np.arange(len(postings.terms), dtype=np.int32)
    return new_ids


def load(directory: Path, collection_id: str, entries: Sequence[SegmentFile]) -> Shard:
    """Read a collection's segment files and replay their tombstones, oldest first."""
    stored: list[tuple[SegmentFile, files.StoredSegment]] = []
    for entry in entries:
        path = directory / entry.file
        segment = files.read_segment(path, collection_id, entry)
        if stored and stored[-1][0].generation >= entry.generation:
            raise inconsistent(path, LexicalIndexError)
        stored.append((entry, segment))
    terms = sorted(set().union(*(s.terms for _, s in stored)))
    shard = Shard(terms=terms, vocab={t: i for i, t in enumerate(terms)})
    lives: dict[int, BoolArray] = {}
    for entry, s in stored:
        for generation, row in s.tombstones.tolist():
            live = lives.get(generation)
            if live is None or not 0 <= row < len(live) or not live[row]:
                raise inconsistent(directory / entry.file, LexicalIndexError)
            live[row] = False
        lives[entry.generation] = np.ones(len(s.chunk_ids), dtype=np.bool_)
    for entry, s in stored:
        postings = Postings(
            chunk_ids=s.chunk_ids,
            document_ids=s.document_ids,
            lengths=s.lengths,
            terms=np.fromiter((shard.vocab[t] for t in s.terms), np.int32, len(s.terms)),
            indptr=s.indptr,
            rows=s.rows,
            tfs=s.tfs,
        )
        live = lives[entry.generation]
        shard.segments.append(
            Segment(
                postings,
                live,
                int(live.sum()),
                int(s.lengths[live].sum(dtype=np.int64)),
                file=entry.file,
                generation=entry.generation,
                tombstones=s.tombstones,
            )
        )
    return shard
