"""Milvus full-text lexical index: Milvus's own BM25 on a sparse field, fed Lantern's tokens.

Fields: ``chunk_id`` (primary key), ``document_id``, ``collection_id`` (filtered inside
the search as in ``retrieval.vectorstores.milvus_store``; the partition key on a
server), ``terms`` (VARCHAR with an analyzer) and ``sparse`` (SPARSE_FLOAT_VECTOR, the
output of a BM25 ``Function`` on ``terms``, indexed with metric BM25).

Analysis: the text goes through Lantern's ``Analyzer`` (jieba for Chinese, Snowball
stems, stop words) and ``terms`` holds the analysed tokens joined by spaces; queries
are analysed the same way. So Milvus's BM25 sees exactly the tokens the bundled BM25
index sees, in every language, instead of Milvus's analyzers (whose ``standard``
tokenizer splits Chinese into single characters and does not stem). Milvus then only
has to split on the spaces: a server gets the ``whitespace`` tokenizer; milvus-lite,
which has none, gets ``standard`` (``\\w+``, lower case), which returns our tokens
unchanged, since each is a run of word characters, already case-folded. The analyzer's
fingerprint is recorded in the manifest (the collection's properties) and checked on
open, as the BM25 index does. The text itself is not stored.

Scoring is Milvus's BM25 (``k1``, ``b``), with the statistics (IDF, average length)
Milvus keeps over the whole Milvus collection, not per Lantern collection as the
bundled index does. milvus-lite keeps them per segment, and writes a segment per
partition: so on milvus-lite there is no partition key (one partition, filtered by
expression only), or a ranking would change when its rows move from memory to disk.
Every write is durable when it returns: ``flush`` has nothing to do.

Given ``vectors``, a ``MilvusVectorStore`` that keeps the chunks' text (its
``full_text``, which the container sets when both indexes are Milvus), the index is a
view of that store's collection instead of a collection of its own: its writes fill
the rows' text fields, and ``fused_search`` runs the dense and the BM25 search and
their RRF fusion as one ``hybrid_search`` call (``FusingIndex``). Milvus fuses only the
vector fields of one collection (``hybrid_search`` takes one collection name), which
is why the two indexes share one. See ``retrieval.vectorstores.milvus_store``.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient, RRFRanker

from retrieval._milvus import (
    ALL,
    ID_LENGTH,
    MAX_TOP_K,
    Connected,
    MilvusConnection,
    check_ids,
    in_filter,
    is_lite,
)
from retrieval._milvus_text import (
    TERMS,
    FullText,
    add_text_fields,
    add_text_index,
    bm25_request,
    bm25_score,
    check_text,
    terms_text,
    text_manifest,
    tokenizer_for,
)
from retrieval._sharded import check_format
from retrieval.errors import LexicalIndexError
from retrieval.lexical.base import FusedHit, FusedResult, LexicalHit, LexicalRecord
from retrieval.vectorstores.base import Vector
from retrieval.vectorstores.milvus_store import MilvusVectorStore

log = logging.getLogger(__name__)

BACKEND = "milvus-bm25"
FORMAT_VERSION = 1
ROLE = "lexical"
_OUTPUT = ["chunk_id", "document_id", "collection_id"]
_BATCH = 500  # rows per upsert call
_HAS_TEXT = f"{TERMS} is not null"  # in a store's collection: rows whose text was written
#: Milvus's RRF takes an integer k in (0, 16384).
_RRF_K_RANGE = range(1, 16384)


class MilvusLexicalIndex:
    """A ``LexicalIndex`` on Milvus full-text search; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        milvus: MilvusConnection | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        language: str = "english",
        stopwords: bool = True,
        cache_dir: Path | None = None,
        vectors: object | None = None,
    ) -> None:
        full_text = FullText(k1, b, language, stopwords, cache_dir)
        full_text.check(LexicalIndexError)
        self._prefix = (milvus or MilvusConnection()).prefix
        store = vectors if isinstance(vectors, MilvusVectorStore) else None
        if store is not None and store.full_text is not None and store.analyzer is not None:
            if replace(store.full_text, cache_dir=None) != replace(full_text, cache_dir=None):
                raise LexicalIndexError(
                    f"the Milvus vector store keeps its text with {store.full_text}, not the "
                    f"configured {full_text}"
                )
            self._store: MilvusVectorStore | None = store
            self.analyzer = store.analyzer
            self._db = store.db  # the store's: it closes it
            self._only = _HAS_TEXT
            return
        self._store = None
        self._only = ""
        self.analyzer = full_text.analyzer()
        self._db = Connected(milvus, Path(directory), ROLE, LexicalIndexError)
        lite = is_lite(self._db.uri)
        self._tokenizer = tokenizer_for(lite)
        self._partition_key = not lite
        expected = text_manifest(self.analyzer, self._tokenizer, self._partition_key)
        try:
            self._db.open(
                schema=self._schema(),
                index_params=self._index_params(full_text),
                manifest={"backend": BACKEND, "format_version": FORMAT_VERSION, **expected},
                check=lambda found: self._check_manifest(found, expected),
            )
        except BaseException:
            self._db.close()
            raise

    # -- writes ----------------------------------------------------------------

    def upsert(self, records: Sequence[LexicalRecord]) -> None:
        """Insert or replace texts by ``chunk_id``; a chunk may move between collections.

        The batch is checked and analysed before anything is written.
        """
        batch = list({r.chunk_id: r for r in records}.values())  # the last one for a chunk wins
        for record in batch:
            check_ids(record, ("chunk_id", "document_id", "collection_id"), LexicalIndexError)
            if not isinstance(record.text, str):
                raise LexicalIndexError(f"text must be a string, got {record.text!r}")
        tokens = self.analyzer.tokens_many(r.text for r in batch)  # outside the lock
        rows = [
            {
                "chunk_id": r.chunk_id,
                "document_id": r.document_id,
                "collection_id": r.collection_id,
                TERMS: terms_text(r.chunk_id, terms),
            }
            for r, terms in zip(batch, tokens, strict=True)
        ]
        if self._store is None:
            self._db.upsert(rows, batch=_BATCH)
        else:
            self._upsert_beside_vectors(rows, self._store.manifest.dimension)

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove the documents' texts (in a store's collection: their rows, vectors too)."""
        return self._db.delete_documents(document_ids, only=self._only)

    def clear(self) -> None:
        self._db.clear()

    def flush(self) -> None:
        """Nothing to do: Milvus made each write durable when it returned."""
        self._db.call("flush", lambda: None)

    # -- reads -----------------------------------------------------------------

    def search(
        self, query: str, *, k: int, collections: Collection[str] | None = None
    ) -> list[LexicalHit]:
        """Top-``k`` chunks by BM25 score, filtered to ``collections`` inside the search.

        Chunks that share no term with the query never appear. Ties go by chunk id.
        """
        if k < 0:
            raise LexicalIndexError(f"k must be >= 0, got {k}")
        terms = self.analyzer.tokens(query)
        if not terms or k == 0 or (collections is not None and not collections):
            return []
        limit = min(k, MAX_TOP_K)
        result = self._db.call(
            "search",
            self._db.client.search,
            self._db.name,
            data=[" ".join(terms)],
            anns_field="sparse",
            limit=limit,
            filter=in_filter("collection_id", collections),
            output_fields=_OUTPUT,
            search_params={"metric_type": "BM25"},
        )
        hits = [
            LexicalHit(h["chunk_id"], h["document_id"], h["collection_id"], bm25_score(d))
            for h in result[0]
            if (d := h["distance"]) != 0
        ]
        return heapq.nsmallest(limit, hits, key=lambda h: (-h.score, h.chunk_id))

    def fuses_with(self, vectors: object) -> bool:
        return self._store is not None and vectors is self._store

    def fused_search(
        self,
        query_vector: Vector,
        query: str,
        *,
        dense_k: int,
        lexical_k: int,
        rrf_k: float,
        collections: Collection[str] | None,
    ) -> FusedResult | None:
        """The dense and BM25 searches and their RRF fusion in one ``hybrid_search``
        (``FusingIndex``); only in a store's collection (else a ``LexicalIndexError``).

        Milvus returns the fused list and its scores only: the top cosine comes from the
        returned vectors (the candidates hold the whole dense list), each chunk's two
        ranks from its fused score (``_ranks``). Returning the vectors costs about as
        much as the search on milvus-lite, but abstention needs the cosine."""
        store = self._store
        if store is None:
            raise LexicalIndexError("fused_search needs the index in a vector store's collection")
        if dense_k <= 0 or lexical_k <= 0:
            raise LexicalIndexError(f"need dense_k and lexical_k > 0, got {dense_k}, {lexical_k}")
        terms = self.analyzer.tokens(query)
        if not terms or rrf_k != int(rrf_k) or int(rrf_k) not in _RRF_K_RANGE:
            return None
        q, dense = store.dense_request(query_vector, k=dense_k, collections=collections)
        if collections is not None and not collections:
            return FusedResult([], 0.0)
        lexical = bm25_request(terms, limit=min(lexical_k, MAX_TOP_K), collections=collections)
        result = self._db.call(
            "hybrid_search",
            self._db.client.hybrid_search,
            self._db.name,
            [dense, lexical],
            RRFRanker(int(rrf_k)),
            limit=min(dense.limit + lexical.limit, MAX_TOP_K),
            output_fields=["document_id", "collection_id", "vector", "has_vector"],
        )
        return _fused(result[0], q, dense_k=dense.limit, lexical_k=lexical.limit, rrf_k=rrf_k)

    def document_ids(self) -> set[str]:
        return set(self._db.scan("document_id", only=self._only or ALL))

    def count(self, *, collections: Collection[str] | None = None) -> int:
        return self._db.count(collections, only=self._only)

    # -- lifecycle ---------------------------------------------------------------

    def promote(self, directory: Path) -> None:
        """Become the index opened at ``directory``, replacing it in one step (the swap
        at the end of ``lantern reindex``); the replaced collection is dropped. In a
        store's collection the store's ``promote`` moved it: a collection of this index's
        own left at ``directory`` (from before the two shared one) is dropped."""
        if self._store is not None:
            self._db.drop_index(Path(directory), ROLE, self._prefix)
            return
        self._db.promote(Path(directory), ROLE, self._prefix)

    def close(self) -> None:
        if self._store is None:  # else the store's connection, closed with the store
            self._db.close()

    # -- internals -------------------------------------------------------------

    def _upsert_beside_vectors(self, rows: list[dict[str, Any]], dimension: int) -> None:
        """Write texts into the store's rows; a chunk without a row yet gets one with a
        placeholder vector (``has_vector`` False: no search sees it) until its own."""
        placeholder = [1.0] + [0.0] * (dimension - 1)
        with self._db.lock:
            for start in range(0, len(rows), _BATCH):
                part = rows[start : start + _BATCH]
                have = self._db.existing([r["chunk_id"] for r in part])
                old = [r for r in part if r["chunk_id"] in have]
                new = [
                    r | {"vector": placeholder, "has_vector": False}
                    for r in part
                    if r["chunk_id"] not in have
                ]
                if old:
                    self._db.upsert(old, batch=_BATCH, partial=True)
                if new:
                    self._db.upsert(new, batch=_BATCH)

    def _schema(self) -> Any:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_LENGTH)
        schema.add_field("document_id", DataType.VARCHAR, max_length=ID_LENGTH)
        schema.add_field(
            "collection_id",
            DataType.VARCHAR,
            max_length=ID_LENGTH,
            is_partition_key=self._partition_key,
        )
        add_text_fields(schema, tokenizer=self._tokenizer)
        return schema

    def _index_params(self, full_text: FullText) -> Any:
        params = self._db.client.prepare_index_params()
        add_text_index(params, full_text)
        params.add_index(field_name="document_id", index_type="INVERTED")
        return params

    def _check_manifest(self, found: dict[str, Any], expected: dict[str, Any]) -> None:
        where = self._db.where
        check_format(
            found, backend=BACKEND, version=FORMAT_VERSION, where=where, error=LexicalIndexError
        )
        check_text(found, expected, where=where, error=LexicalIndexError)


def _fused(
    hits: list[dict[str, Any]], query: Vector, *, dense_k: int, lexical_k: int, rrf_k: float
) -> FusedResult:
    """``FusedHit``s of a ``hybrid_search`` answer (see ``fused_search``)."""
    from retrieval.fusion import order_key

    cosine = {
        h["chunk_id"]: float(np.dot(query, np.asarray(h["entity"]["vector"], dtype=np.float32)))
        for h in hits
        if h["entity"]["has_vector"]
    }
    by_cosine = sorted(cosine, key=lambda i: (-cosine[i], i))
    near = {chunk_id: rank for rank, chunk_id in enumerate(by_cosine, start=1)}
    options = {
        h["chunk_id"]: _ranks(
            float(h["distance"]), near.get(h["chunk_id"]), dense_k, lexical_k, rrf_k
        )
        for h in hits
    }
    # A rank belongs to one chunk per list: the surest chunks choose first.
    ranks: dict[str, tuple[int | None, int | None]] = {}
    taken: set[tuple[int, int]] = set()
    for chunk_id in sorted(options, key=lambda i: _doubt(options[i], near.get(i), dense_k)):
        free = [
            p
            for p in options[chunk_id]
            if not any(r is not None and (n, r) in taken for n, r in enumerate(p))
        ]
        pair = (free or options[chunk_id] or [(None, None)])[0]
        ranks[chunk_id] = pair
        taken.update((n, r) for n, r in enumerate(pair) if r is not None)
    out = []
    for h in hits:
        chunk_id, e = h["chunk_id"], h["entity"]
        d, lexical_rank = ranks[chunk_id]
        out.append(
            FusedHit(
                chunk_id,
                e["document_id"],
                e["collection_id"],
                float(h["distance"]),
                d,
                lexical_rank,
            )
        )
    out.sort(key=lambda f: order_key(f.score, (f.dense_rank, f.lexical_rank), f.chunk_id))
    top = cosine[by_cosine[0]] if by_cosine else 0.0
    return FusedResult(out, top)


def _ranks(
    score: float, near: int | None, dense_k: int, lexical_k: int, rrf_k: float
) -> list[tuple[int | None, int | None]]:
    """The (dense, BM25) rank pairs whose RRF sum is ``score`` (Milvus's, in float32),
    likeliest first.

    Distinct rank pairs almost never sum to the same score; where several do (a chunk
    at rank r of one list only, or ranks swapped between the lists), the one whose
    dense rank is nearest ``near``, the chunk's rank by cosine among the candidates,
    comes first. ``near`` alone is not the dense rank: on an approximate index the dense list
    can miss a close chunk that the BM25 list brought in."""
    tolerance = 1e-6 * score
    found: list[tuple[int | None, int | None]] = []
    for d in [None, *range(1, dense_k + 1)]:
        left = score - (1.0 / (rrf_k + d) if d is not None else 0.0)
        if abs(left) <= tolerance:
            found.append((d, None))
            continue
        if left <= 0:
            continue
        r = round(1.0 / left - rrf_k)
        if 1 <= r <= lexical_k and abs(1.0 / (rrf_k + r) - left) <= tolerance:
            found.append((d, r))
    # Empty: not an RRF score of these depths.
    return sorted(found, key=lambda pair: _distance(pair, near, dense_k))


def _distance(pair: tuple[int | None, int | None], near: int | None, dense_k: int) -> int:
    far = dense_k + 1  # where a chunk outside the dense list sits
    return abs((far if pair[0] is None else pair[0]) - (far if near is None else near))


def _doubt(
    options: list[tuple[int | None, int | None]], near: int | None, dense_k: int
) -> tuple[int, int]:
    """How unsure a chunk's ranks are: one option, then a clear favourite, first."""
    if len(options) < 2:
        return (0, 0)
    best, second = (_distance(p, near, dense_k) for p in options[:2])
    return (1, best - second)
