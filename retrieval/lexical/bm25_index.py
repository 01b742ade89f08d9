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
``collections.json`` atomically and deletes the files it no longer names; a crash
before that rename leaves the last flushed state. ``close()`` does not flush. One
process owns a directory for writing.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from retrieval._atomic import remove_files, remove_stale_files
from retrieval.errors import LexicalIndexError
from retrieval.lexical import _bm25_files as files
from retrieval.lexical._bm25_files import REINDEX_HINT, Table
from retrieval.lexical._bm25_shards import Model, Shard, build_model, top_rows
from retrieval.lexical.analyzer import Analyzer
from retrieval.lexical.base import LexicalHit, LexicalRecord

logger = logging.getLogger(__name__)

BACKEND = "bm25s"
FORMAT_VERSION = 1
# bm25s methods that give a chunk without a query term zero (bm25l and bm25+ do not).
METHODS = ("lucene", "robertson", "atire")


class Bm25Index:
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
        self.directory = Path(directory)
        self.analyzer = Analyzer(language=language, stopwords=stopwords, cache_dir=cache_dir)
        self._params = {"k1": k1, "b": b, "method": method}
        if logging.getLogger("bm25s").level == logging.DEBUG:
            logging.getLogger("bm25s").setLevel(logging.NOTSET)  # bm25s forces DEBUG on import
        self._lock = threading.RLock()
        self._closed = False
        self._shards: dict[str, Shard] = {}
        self._where: dict[str, tuple[str, str]] = {}  # chunk id -> collection, document
        self._by_document: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._table = Table()
        self._sweep = True  # remove every unreferenced file at the next flush
        self._open()

    # -- opening ---------------------------------------------------------------

    def _open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LexicalIndexError(f"cannot create {self.directory}: {e}") from e
        manifest = self.directory / files.MANIFEST_NAME
        expected = {
            "backend": BACKEND,
            "format_version": FORMAT_VERSION,
            "analyzer": self.analyzer.fingerprint,
            "libraries": self.analyzer.library_versions(),
        }
        if not manifest.exists():
            if (self.directory / files.TABLE_NAME).exists():
                raise LexicalIndexError(
                    f"BM25 index at {self.directory} has {files.TABLE_NAME} but no "
                    f"{files.MANIFEST_NAME}; {REINDEX_HINT}"
                )
            self._write(lambda: files.write_json(manifest, expected))
            return
        self._check_manifest(files.read_json(manifest), expected)
        self._table = files.read_table(self.directory, format_version=FORMAT_VERSION)
        for collection_id, name in self._table.files.items():
            data = files.read_collection(self.directory / name, collection_id)
            shard = Shard(terms=data.terms, vocab={t: i for i, t in enumerate(data.terms)})
            for chunk_id, document_id, ids in zip(
                data.chunk_ids, data.document_ids, data.rows(), strict=True
            ):
                if chunk_id in self._where:
                    raise LexicalIndexError(
                        f"chunk {chunk_id!r} is in two collections of {self.directory}; "
                        f"{REINDEX_HINT}"
                    )
                shard.rows[chunk_id] = (document_id, ids)
                self._where[chunk_id] = (collection_id, document_id)
                self._by_document.setdefault(document_id, set()).add(chunk_id)
            self._shards[collection_id] = shard

    def _check_manifest(self, found: dict[str, Any], expected: dict[str, Any]) -> None:
        where = f"BM25 index at {self.directory}"
        if found.get("backend") != BACKEND:
            raise LexicalIndexError(
                f"{where} was written by {found.get('backend')!r}, not {BACKEND!r}; {REINDEX_HINT}"
            )
        if found.get("format_version") != FORMAT_VERSION:
            raise LexicalIndexError(
                f"{where} has format version {found.get('format_version')!r}, this Lantern "
                f"reads {FORMAT_VERSION}; {REINDEX_HINT}"
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
                self._where[record.chunk_id] = (record.collection_id, record.document_id)
                self._by_document.setdefault(record.document_id, set()).add(record.chunk_id)
                self._dirty.add(record.collection_id)

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove every chunk of these documents; returns how many were removed."""
        if isinstance(document_ids, str):
            raise TypeError("document_ids must be a collection of ids, not a string")
        with self._lock:
            self._check_open()
            chunks = [c for d in set(document_ids) for c in self._by_document.get(d, ())]
            self._remove_chunks(chunks)
            return len(chunks)

    def clear(self) -> None:
        """Drop every chunk; ``flush()`` then removes the files. Keeps the manifest."""
        with self._lock:
            self._check_open()
            self._dirty.update(self._shards)
            self._dirty.update(self._table.files)
            self._shards.clear()
            self._where.clear()
            self._by_document.clear()

    def flush(self) -> None:
        """Write the collections changed since the last flush, then commit them at once."""
        with self._lock:
            self._check_open()
            if not self._dirty:
                return
            generation = self._table.generation + 1
            table = dict(self._table.files)
            committed = False
            try:
                for n, collection_id in enumerate(sorted(self._dirty)):
                    shard = self._shards.get(collection_id)
                    if shard is None:
                        table.pop(collection_id, None)
                        continue
                    name = files.file_name(generation, n)
                    files.write_collection(self.directory / name, collection_id, shard.data())
                    table[collection_id] = name
                new = Table(generation, table)
                if table != self._table.files:
                    files.write_table(self.directory, new, format_version=FORMAT_VERSION)
                committed = True
            except (OSError, ValueError) as e:
                raise LexicalIndexError(f"cannot commit index at {self.directory}: {e}") from e
            finally:
                # A failed attempt may leave collection files that no table names.
                self._sweep = self._sweep or not committed
            self._dirty.clear()
            if table != self._table.files:
                self._clean_up(new)

    def close(self) -> None:
        """Release the index without flushing; unflushed changes are discarded."""
        with self._lock:
            if self._dirty and not self._closed:
                logger.warning(
                    "closing BM25 index at %s with %d unflushed collection(s); changes discarded",
                    self.directory,
                    len(self._dirty),
                )
            self._closed = True
            self._shards.clear()
            self._where.clear()
            self._by_document.clear()

    def __enter__(self) -> Bm25Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def document_ids(self) -> set[str]:
        with self._lock:
            self._check_open()
            return set(self._by_document)

    def count(self, *, collections: Collection[str] | None = None) -> int:
        with self._lock:
            self._check_open()
            return sum(len(self._shards[c].rows) for c in self._selected(collections))

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

    def _remove_chunks(self, chunk_ids: Iterable[str]) -> None:
        by_collection: dict[str, list[str]] = {}
        for chunk_id in chunk_ids:
            collection_id, document_id = self._where.pop(chunk_id)
            by_collection.setdefault(collection_id, []).append(chunk_id)
            chunks = self._by_document[document_id]
            chunks.discard(chunk_id)
            if not chunks:
                del self._by_document[document_id]
        for collection_id, removed in by_collection.items():
            shard = self._shards[collection_id]
            shard.remove(removed)
            if not shard.rows:
                del self._shards[collection_id]
            self._dirty.add(collection_id)

    def _clean_up(self, table: Table) -> None:
        """Delete the files the new table no longer names (best effort)."""
        keep = set(table.files.values())
        if self._sweep:
            done = remove_stale_files(self.directory, prefix=files.FILE_PREFIX, keep=keep)
        else:
            done = remove_files(self.directory, sorted(set(self._table.files.values()) - keep))
        self._table, self._sweep = table, not done

    def _selected(self, collections: Collection[str] | None) -> list[str]:
        if collections is None:
            return list(self._shards)
        if isinstance(collections, str):
            raise TypeError("collections must be a collection of ids, not a string")
        return sorted(c for c in set(collections) if c in self._shards)

    def _write(self, write: Callable[[], None]) -> None:
        try:
            write()
        except OSError as e:
            raise LexicalIndexError(f"cannot write to {self.directory}: {e}") from e

    def _check_open(self) -> None:
        if self._closed:
            raise LexicalIndexError(f"BM25 index at {self.directory} is closed")
