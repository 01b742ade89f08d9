"""BM25 lexical index on bm25s: one model per collection, rebuilt lazily, tokens on disk.

Layout under ``directory``::

    manifest.json          backend, file format, the analyzer that made the tokens
    collections.json       commit point: collection id -> its token file
    col-<gen>-<n>.npz      one collection's chunks: ids and analysed term ids (no text)

bm25s indexes are static, so the index keeps each collection's analysed tokens and
builds that collection's ``bm25s.BM25`` model on the first search after chunks were
added to it (building costs far less than analysing: the tokens are kept, the text
is not). A build runs outside the index lock, so searches of other collections and
writes go on meanwhile. Deleting chunks does not rebuild: their rows get weight 0 in
bm25s's ``weight_mask``, and the statistics count them until the next rebuild (as
Lucene's count deleted documents until a merge), forced once over
``_bm25_shards.MAX_DEAD_FRACTION`` of a model's rows are deleted. bm25s builds at
about a million terms a second on one core (a 100k-chunk collection: ~15 s), so a
caller that knows a burst of writes is over may call ``warm()``.

Searching runs only the models of the requested collections, so the collection
filter is inside the search. A chunk's score uses its own collection's statistics
(IDF, average length), like a shard of Elasticsearch: a search in one collection
ranks the same whatever the others hold, and nothing of a collection the user may
not read shapes the ranking. Scores of different collections are merged as they are.

``flush`` rewrites the collections that changed, each to a new file, then switches
``collections.json`` atomically and deletes the files it no longer names;
``retrieval._sharded`` owns that commit and its guarantees (a crash before the rename
leaves the last flushed state; ``close()`` does not flush).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from retrieval._sharded import REINDEX_HINT, ShardedIndex, Written, check_format, file_name
from retrieval.errors import LexicalIndexError
from retrieval.lexical import _bm25_files as files
from retrieval.lexical._bm25_files import CollectionFile
from retrieval.lexical._bm25_shards import Model, Shard, build_model, top_rows
from retrieval.lexical.analyzer import Analyzer
from retrieval.lexical.base import LexicalHit, LexicalRecord

logger = logging.getLogger(__name__)

BACKEND = "bm25s"
FORMAT_VERSION = 1
# bm25s methods that give a chunk without a query term zero (bm25l and bm25+ do not).
METHODS = ("lucene", "robertson", "atire")


class Bm25Index(ShardedIndex[Shard, CollectionFile]):
    """A ``LexicalIndex`` on bm25s; see the module docstring.

    ``k1``, ``b`` and ``method`` (one of ``METHODS``) only shape scoring and may change
    between openings; the analyzer's settings decide the stored tokens and may not.
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
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise LexicalIndexError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        if method not in METHODS:
            raise LexicalIndexError(f"unknown BM25 method {method!r}; choose one of {METHODS}")
        super().__init__(directory, files.layout(FORMAT_VERSION), label="BM25 index")
        self.analyzer = Analyzer(language=language, stopwords=stopwords, cache_dir=cache_dir)
        self._params = {"k1": k1, "b": b, "method": method}
        if logging.getLogger("bm25s").level == logging.DEBUG:
            logging.getLogger("bm25s").setLevel(logging.NOTSET)  # bm25s forces DEBUG on import
        expected = {
            "backend": BACKEND,
            "format_version": FORMAT_VERSION,
            "analyzer": self.analyzer.fingerprint,
            "libraries": self.analyzer.library_versions(),
        }
        self._open(expected, lambda found: self._check_manifest(found, expected))

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
        tokens = [self.analyzer.tokens(r.text) for r in batch]  # slow part: outside the lock
        with self._lock:
            self._check_open()
            self._remove_chunks([r.chunk_id for r in batch if r.chunk_id in self._where])
            for record, terms in zip(batch, tokens, strict=True):
                shard = self._shards.setdefault(record.collection_id, Shard())
                shard.add(record.chunk_id, record.document_id, terms)
                self._place(record.chunk_id, record.document_id, record.collection_id)

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
        with self._lock:
            self._check_open()
            selected = self._selected(collections) if terms and k else []
            plan = [(c, self._shards[c], self._shards[c].model) for c in selected]
        candidates: list[tuple[float, str, str, str]] = []
        for collection_id, shard, model in plan:  # unlocked: models never change
            for score, (chunk_id, document_id) in top_rows(model or self._build(shard), terms, k):
                candidates.append((score, chunk_id, document_id, collection_id))
        best = heapq.nsmallest(k, candidates, key=lambda c: (-c[0], c[1]))
        return [
            LexicalHit(chunk_id=c, document_id=d, collection_id=col, score=s)
            for s, c, d, col in best
        ]

    def warm(self, collections: Collection[str] | None = None) -> None:
        """Build now the models the next search would build (not part of the protocol):
        for callers that know a burst of writes is over, e.g. an idle ingestion queue."""
        with self._lock:
            self._check_open()
            stale = [self._shards[c] for c in self._selected(collections)]
        for shard in stale:
            if shard.model is None:
                self._build(shard)

    # -- payload hooks (see ``retrieval._sharded``) ----------------------------

    def _load_shard(
        self, collection_id: str, entries: tuple[CollectionFile, ...]
    ) -> tuple[Shard, Iterable[tuple[str, str]]]:
        (entry,) = entries
        data = files.read_collection(self.directory / entry.file, collection_id)
        shard = Shard(terms=data.terms, vocab={t: i for i, t in enumerate(data.terms)})
        for chunk_id, document_id, ids in zip(
            data.chunk_ids, data.document_ids, data.rows(), strict=True
        ):
            shard.rows[chunk_id] = (document_id, ids)
        return shard, zip(data.chunk_ids, data.document_ids, strict=True)

    def _write_shard(self, collection_id: str, generation: int, n: int) -> Written[CollectionFile]:
        name = file_name(files.FILE_PREFIX, generation, n)
        files.write_collection(
            self.directory / name, collection_id, self._shards[collection_id].data()
        )
        return Written((CollectionFile(name, generation),))

    def _drop(self, shard: Shard, chunk_ids: list[str]) -> None:
        shard.remove(chunk_ids)

    def _size(self, shard: Shard) -> int:
        return len(shard.rows)

    # -- internals -------------------------------------------------------------

    def _build(self, shard: Shard) -> Model:
        """Build a collection's model from a snapshot of its rows, outside the index lock;
        one build at a time per collection (the others wait for it and use it)."""
        with shard.build_lock:
            with self._lock:
                if shard.model is not None:
                    return shard.model
                version, rows, vocab = shard.version, list(shard.rows.items()), dict(shard.vocab)
            model = build_model(rows, vocab, self._params)
            with self._lock:
                if shard.version == version:
                    shard.model = model
            return model
