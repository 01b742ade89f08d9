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
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from pymilvus import DataType, Function, FunctionType, MilvusClient

from retrieval._milvus import (
    ID_LENGTH,
    MAX_TOP_K,
    Connected,
    MilvusConnection,
    check_ids,
    in_filter,
    is_lite,
)
from retrieval._sharded import REINDEX_HINT, check_format
from retrieval.errors import LexicalIndexError
from retrieval.lexical.analyzer import Analyzer
from retrieval.lexical.base import LexicalHit, LexicalRecord

log = logging.getLogger(__name__)

BACKEND = "milvus-bm25"
FORMAT_VERSION = 1
ROLE = "lexical"
MAX_TERMS_BYTES = 65535  # Milvus's longest VARCHAR
_OUTPUT = ["chunk_id", "document_id", "collection_id"]
_BATCH = 500  # rows per upsert call


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
    ) -> None:
        if k1 <= 0 or not 0 <= b <= 1:
            raise LexicalIndexError(f"need k1 > 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.analyzer = Analyzer(language=language, stopwords=stopwords, cache_dir=cache_dir)
        self._prefix = (milvus or MilvusConnection()).prefix
        self._db = Connected(milvus, Path(directory), ROLE, LexicalIndexError)
        lite = is_lite(self._db.uri)
        self._tokenizer = "standard" if lite else "whitespace"
        self._partition_key = not lite
        expected = {
            "backend": BACKEND,
            "format_version": FORMAT_VERSION,
            "analyzer": self.analyzer.fingerprint,
            "tokenizer": self._tokenizer,
            "partition_key": self._partition_key,
        }
        try:
            self._db.open(
                schema=self._schema(),
                index_params=self._index_params(k1, b),
                manifest=expected,
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
                "terms": self._terms(r.chunk_id, terms),
            }
            for r, terms in zip(batch, tokens, strict=True)
        ]
        self._db.upsert(rows, batch=_BATCH)

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        return self._db.delete_documents(document_ids)

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
            # milvus-lite reports BM25 as a negated distance, a server as the score.
            LexicalHit(h["chunk_id"], h["document_id"], h["collection_id"], abs(h["distance"]))
            for h in result[0]
            if h["distance"] != 0
        ]
        return heapq.nsmallest(limit, hits, key=lambda h: (-h.score, h.chunk_id))

    def document_ids(self) -> set[str]:
        return set(self._db.scan("document_id"))

    def count(self, *, collections: Collection[str] | None = None) -> int:
        return self._db.count(collections)

    # -- lifecycle ---------------------------------------------------------------

    def promote(self, directory: Path) -> None:
        """Become the index opened at ``directory``, replacing it in one step (the swap
        at the end of ``lantern reindex``); the replaced collection is dropped."""
        self._db.promote(Path(directory), ROLE, self._prefix)

    def close(self) -> None:
        self._db.close()

    # -- internals -------------------------------------------------------------

    def _terms(self, chunk_id: str, terms: list[str]) -> str:
        """The tokens as Milvus stores them: space-separated, cut to the VARCHAR limit."""
        text = " ".join(terms)
        if len(text.encode("utf-8")) <= MAX_TERMS_BYTES:
            return text
        cut = text.encode("utf-8")[:MAX_TERMS_BYTES].decode("utf-8", "ignore")
        log.warning("chunk %s has more terms than Milvus stores; indexed its first part", chunk_id)
        return cut.rsplit(" ", 1)[0]

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
        schema.add_field(
            "terms",
            DataType.VARCHAR,
            max_length=MAX_TERMS_BYTES,
            enable_analyzer=True,
            analyzer_params={"tokenizer": self._tokenizer},
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["terms"],
                output_field_names=["sparse"],
            )
        )
        return schema

    def _index_params(self, k1: float, b: float) -> Any:
        params = self._db.client.prepare_index_params()
        params.add_index(
            field_name="sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"bm25_k1": k1, "bm25_b": b},
        )
        params.add_index(field_name="document_id", index_type="INVERTED")
        return params

    def _check_manifest(self, found: dict[str, Any], expected: dict[str, Any]) -> None:
        where = self._db.where
        check_format(
            found, backend=BACKEND, version=FORMAT_VERSION, where=where, error=LexicalIndexError
        )
        for key in ("analyzer", "tokenizer", "partition_key"):
            if found.get(key) != expected[key]:
                raise LexicalIndexError(
                    f"{where} was analysed with {key} {found.get(key)!r}, but the configured "
                    f"one is {expected[key]!r}; queries would not match its tokens; "
                    f"{REINDEX_HINT}"
                )
