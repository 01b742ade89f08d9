"""BM25 lexical index: segments of term-frequency postings per collection, scored exactly.

Layout under ``directory``::

    manifest.json          backend, file format, the analyzer that made the tokens
    collections.json       commit point: collection id -> its segment files, in order
    seg-<gen>-<n>.npz      immutable: the analysed rows a flush added to one collection
                           (ids, lengths, postings; no text) + tombstones of older rows

Each collection is a list of immutable segments (``_bm25_segments``): postings grouped
by term, each row's length and a live mask. An upsert analyses its chunks and adds
them as a new segment, merged with the newest unwritten ones while they are of the
same size tier (``retrieval._segments``), so a collection has O(log n) segments; a
deletion only clears live bits. Nothing is built ahead of a search: scores come from
the live chunks' statistics at query time (``_bm25_scoring``: N, mean length and
document frequencies of exactly the chunks present, deleted ones not counted), and
equal those of a bm25s index built from scratch over the same chunks. A search reads
only the postings of the query's terms, in the requested collections only, so the
collection filter is inside the search. A chunk's score uses its own collection's
statistics, like a shard of Elasticsearch: a search in one collection ranks the same
whatever the others hold, and nothing of a collection the user may not read shapes
the ranking. Scores of different collections are merged as they are.

Searches take no lock: every write publishes a new snapshot of the index, immutable
segments in an immutable mapping, so a search sees each write whole or not at all,
and a flush that merges large segments delays writers, never searches.

``flush`` writes, per changed collection, one segment of the rows added and the
tombstones of rows deleted or replaced since the last flush, merged with its newest
segments by the same policy as the FAISS store's (amortised, a row is rewritten
O(log n) times; over a quarter of tombstoned rows compacts the collection). Then
``retrieval._sharded`` switches ``collections.json`` atomically and deletes the files
it no longer names (a crash before the rename leaves the last flushed state;
``close()`` does not flush).
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from retrieval._sharded import REINDEX_HINT, ShardedIndex, Written, check_format, file_name, select
from retrieval.errors import LexicalIndexError
from retrieval.lexical import _bm25_files as files
from retrieval.lexical import _bm25_shards as shards
from retrieval.lexical._bm25_files import SegmentFile
from retrieval.lexical._bm25_scoring import METHODS, Scoring, top_rows
from retrieval.lexical._bm25_segments import Segment, View, build
from retrieval.lexical._bm25_shards import Shard
from retrieval.lexical.analyzer import Analyzer
from retrieval.lexical.base import LexicalHit, LexicalRecord

logger = logging.getLogger(__name__)

BACKEND = "bm25s"
FORMAT_VERSION = 2
__all__ = ["BACKEND", "FORMAT_VERSION", "METHODS", "Bm25Index"]


class Bm25Index(ShardedIndex[Shard, SegmentFile]):
    """A ``LexicalIndex`` of BM25 segments; see the module docstring.

    ``k1``, ``b`` and ``method`` (one of ``METHODS``, with bm25s's formulas) only shape
    scoring and may change between openings; the analyzer's settings decide the stored
    tokens and may not.
    """

    def __init__(
        self,
        directory: Path,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        language: str = "english",
        stopwords: bool = True,
        cache_dir: Path | None = None,
        read_only: bool = False,
        refresh_seconds: float = 0.0,
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise LexicalIndexError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        if method not in METHODS:
            raise LexicalIndexError(f"unknown BM25 method {method!r}; choose one of {METHODS}")
        super().__init__(
            directory,
            files.layout(FORMAT_VERSION),
            label="BM25 index",
            read_only=read_only,
            refresh_seconds=refresh_seconds,
        )
        self.analyzer = Analyzer(language=language, stopwords=stopwords, cache_dir=cache_dir)
        self._scoring = Scoring(k1=k1, b=b, method=method)
        self._views: Mapping[str, View] = MappingProxyType({})
        if logging.getLogger("bm25s").level == logging.DEBUG:
            logging.getLogger("bm25s").setLevel(logging.NOTSET)  # bm25s forces DEBUG on import
        expected = {
            "backend": BACKEND,
            "format_version": FORMAT_VERSION,
            "analyzer": self.analyzer.fingerprint,
            "libraries": self.analyzer.library_versions(),
        }
        self._open(expected, lambda found: self._check_manifest(found, expected))
        self._publish()
        self._start_following()

    def _check_manifest(self, found: dict[str, Any], expected: dict[str, Any]) -> None:
        where = f"BM25 index at {self.directory}"
        check_format(
            found, backend=BACKEND, version=FORMAT_VERSION, where=where, error=LexicalIndexError
        )
        if found.get("analyzer") != expected["analyzer"]:
            raise LexicalIndexError(
                f"{where} was analysed with {found.get('analyzer')!r}, but the configured "
                f"analyzer is {expected['analyzer']!r}; queries would not match its tokens; "
                f"{REINDEX_HINT}"
            )
        if found.get("libraries") != expected["libraries"]:
            logger.warning(
                "BM25 index at %s was built with %s, now %s: tokens may differ slightly; "
                "run `lantern reindex` if search quality drops",
                self.directory,
                found.get("libraries"),
                expected["libraries"],
            )

    # -- writes ----------------------------------------------------------------

    def upsert(self, records: Sequence[LexicalRecord]) -> None:
        """Insert or replace texts by ``chunk_id``; a chunk may move between collections.

        The batch is checked and analysed before anything changes.
        """
        batch = list({r.chunk_id: r for r in records}.values())  # the last one for a chunk wins
        for record in batch:
            for name in ("chunk_id", "document_id", "collection_id", "text"):
                value = getattr(record, name)
                if not isinstance(value, str) or (name != "text" and not value):
                    raise LexicalIndexError(f"{name} must be a non-empty string, got {value!r}")
        # The slow part, outside the lock: analysis, and postings with their own term ids.
        grouped: dict[str, list[tuple[str, str, Counter[str]]]] = {}
        for record in batch:
            counts = Counter(self.analyzer.tokens(record.text))
            grouped.setdefault(record.collection_id, []).append(
                (record.chunk_id, record.document_id, counts)
            )
        built = {c: build(rows) for c, rows in grouped.items()}
        with self._lock:
            self._check_writable()
            self._remove_chunks([r.chunk_id for r in batch if r.chunk_id in self._where])
            for collection_id, (postings, terms) in built.items():
                self._shards.setdefault(collection_id, Shard()).add(postings, terms)
                for chunk_id, document_id in zip(
                    postings.chunk_ids, postings.document_ids, strict=True
                ):
                    self._place(chunk_id, document_id, collection_id)
            self._publish()

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove every chunk of these documents; returns how many were removed."""
        with self._lock:
            removed = super().delete_documents(document_ids)
            self._publish()
            return removed

    def clear(self) -> None:
        """Drop every chunk; ``flush()`` then removes the files. Keeps the manifest."""
        with self._lock:
            super().clear()
            self._publish()

    def flush(self) -> None:
        """Write the changes since the last flush; see the module docstring."""
        with self._lock:
            try:
                super().flush()
            finally:
                self._publish()

    def close(self) -> None:
        """Release the index without flushing; unflushed changes are discarded."""
        with self._lock:
            super().close()
            self._publish()

    # -- reads -----------------------------------------------------------------

    def search(
        self, query: str, *, k: int, collections: Collection[str] | None = None
    ) -> list[LexicalHit]:
        """Top-``k`` chunks by BM25 score, searching only the requested collections.

        Chunks that share no term with the query never appear. Ties go by chunk id.
        """
        if k < 0:
            raise LexicalIndexError(f"k must be >= 0, got {k}")
        terms = self.analyzer.tokens(query)
        views = self._views  # one read: a consistent snapshot of every collection
        self._check_open()
        selected = select(collections, views)
        if not terms or not k:
            return []
        candidates: list[tuple[float, str, str, str]] = []
        for collection_id in selected:
            for score, chunk_id, document_id in top_rows(
                views[collection_id], terms, k, self._scoring
            ):
                candidates.append((score, chunk_id, document_id, collection_id))
        best = heapq.nsmallest(k, candidates, key=lambda c: (-c[0], c[1]))
        return [
            LexicalHit(chunk_id=c, document_id=d, collection_id=col, score=s)
            for s, c, d, col in best
        ]

    def warm(self, collections: Collection[str] | None = None) -> None:
        """Nothing to prepare: searches need no model built ahead (kept for callers that
        warm indexes when a burst of writes is over, e.g. an idle ingestion queue)."""
        self._check_open()

    # -- payload hooks (see ``retrieval._sharded``) ----------------------------

    def _load_shard(
        self, collection_id: str, entries: tuple[SegmentFile, ...]
    ) -> tuple[Shard, Iterable[tuple[str, str]]]:
        shard = shards.load(self.directory, collection_id, entries)
        return shard, self._members(shard)

    def _write_shard(self, collection_id: str, generation: int, n: int) -> Written[SegmentFile]:
        """Write the segment holding a collection's changes (merged per the merge
        policy); the collection's new segment list."""
        shard = self._shards[collection_id]
        plan = shard.plan_flush()
        written: Segment | None = None
        if plan.postings is not None:
            name = file_name(files.FILE_PREFIX, generation, n)
            files.write_segment(
                self.directory / name,
                collection_id=collection_id,
                generation=generation,
                postings=plan.postings,
                vocabulary=plan.terms,
                tombstones=plan.tombstones,
            )
            written = Segment.of(
                plan.postings, file=name, generation=generation, tombstones=plan.tombstones
            )
        kept = shard.segments[: plan.keep]
        entries = [_entry(s) for s in kept] + ([_entry(written)] if written else [])
        return Written(tuple(entries), lambda: shard.install(plan, written))

    def _drop(self, shard: Shard, chunk_ids: list[str]) -> None:
        shard.drop(chunk_ids)

    def _size(self, shard: Shard) -> int:
        return shard.size

    def _members(self, shard: Shard) -> list[tuple[str, str]]:
        return [
            (segment.postings.chunk_ids[row], segment.postings.document_ids[row])
            for segment in shard.segments
            for row in segment.live.nonzero()[0].tolist()
        ]

    def _refreshed(self, collection_ids: set[str]) -> None:
        self._publish()

    # -- internals -------------------------------------------------------------

    def _publish(self) -> None:
        """Make the current state what searches see (called with the lock held)."""
        if self._closed:
            self._views = MappingProxyType({})
            return
        self._views = MappingProxyType({c: s.view for c, s in self._shards.items()})


def _entry(segment: Segment) -> SegmentFile:
    assert segment.file is not None
    return SegmentFile(
        segment.file, segment.generation, len(segment.postings), len(segment.tombstones)
    )
