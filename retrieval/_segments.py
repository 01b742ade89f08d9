"""The merge policy of segmented indexes (FAISS vectors, BM25 postings): which segments a
write rewrites so that a collection keeps O(log n) segments.

A collection is a list of immutable segments, oldest first. A write adds the rows
that changed as a new segment, merged with the newest segments while they are in the
same size tier or a smaller one (binary-counter merging: a row is rewritten O(log n)
times), with more of them when there would be over ``max_segments``, and with all of
them (a compaction) when over ``max_dead_fraction`` of the collection is deleted rows
still held by the segments. Only a suffix of the list is ever merged, so a segment
only refers to (tombstones) segments listed before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Mergeable(Protocol):
    """What the policy needs to know of a segment."""

    @property
    def rewrite_cost(self) -> int:
        """Rows a merge copies: the live rows and the tombstones it may carry."""

    @property
    def dead(self) -> int:
        """Rows the segment holds that are deleted."""


@dataclass(frozen=True)
class MergePolicy:
    max_segments: int = 16
    tier_base: int = 128  # segments under this many rows are merged by every write
    max_dead_fraction: float = 0.25

    def tier(self, rows: int) -> int:
        return (rows // self.tier_base).bit_length()

    def keep(self, segments: Sequence[Mergeable], *, pending: int, live: int) -> int:
        """How many of the oldest ``segments`` a write of ``pending`` changed rows into a
        collection of ``live`` rows leaves alone; it rewrites the rest with the change."""
        keep = len(segments)
        if pending == 0:
            return keep
        size = pending
        while keep and self.tier(segments[keep - 1].rewrite_cost) <= self.tier(size):
            keep -= 1
            size += segments[keep].rewrite_cost
        keep = min(keep, self.max_segments - 1)
        if sum(s.dead for s in segments[:keep]) > self.max_dead_fraction * live:
            return 0
        return keep
