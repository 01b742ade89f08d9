"""Milvus vector store: one Milvus collection of chunk vectors, on milvus-lite or a server.

Fields: ``chunk_id`` (primary key), ``document_id``, ``collection_id`` (the partition
key) and ``vector`` (L2-normalised, inner-product metric, so scores are cosines).

Collection filtering: ``collection_id`` is the *partition key* and every search carries
the filter expression ``collection_id in [...]``. Milvus applies a search's filter as a
bitset *before* walking the ANN index, so a vector of another collection can never
take a slot among the hits (the security property ``VectorStore`` asks for); with the
partition key the same filter also prunes the search to the partitions those
collections hash to, so a search of one collection does not scan the others. A
partition per Lantern collection (or a Milvus collection each) would cap the number of
collections (Milvus allows 1024 partitions), and a bare filter without partition key
would scan everything.

The manifest (embedding model, dimension, backend, format) is kept in the collection's
properties and checked on open; another model is an ``IndexMismatchError`` telling to
run ``lantern reindex``. Every write is durable when it returns (Milvus's write-ahead
log): ``flush`` has nothing to do. See ``retrieval._milvus`` for names and reindexing.

With ``full_text`` (the lexical index is Milvus too, on the same connection) the
collection also keeps the chunks' analysed text and its BM25 field
(``retrieval._milvus_text``), and ``MilvusLexicalIndex(vectors=this store)`` is a view
of it: a hybrid search is then one ``hybrid_search`` call, both searches filtered
inside it and fused by Milvus's RRF, because Milvus fuses only the fields of one
collection. A row then exists once a chunk has a vector or a text: ``has_vector`` is
False for a chunk whose text came first (its vector is a placeholder no search sees),
``terms`` is null for one whose vector came first; each side writes only its own
fields (a partial upsert). As for the lexical index, milvus-lite then gets no partition
key (it keeps BM25 statistics per partition).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from pymilvus import AnnSearchRequest, DataType, MilvusClient

from retrieval._milvus import (
    ALL,
    ID_LENGTH,
    MAX_TOP_K,
    Connected,
    MilvusConnection,
    all_of,
    check_ids,
    in_filter,
    is_lite,
)
from retrieval._milvus_text import (
    FullText,
    add_text_fields,
    add_text_index,
    check_text,
    text_manifest,
    tokenizer_for,
)
from retrieval._sharded import REINDEX_HINT, check_format
from retrieval.errors import IndexMismatchError, VectorStoreError
from retrieval.vectorstores.base import IndexManifest, Vector, VectorHit, VectorRecord, unit_rows
from retrieval.vectorstores.manifest import manifest_payload

BACKEND = "milvus"
FORMAT_VERSION = 1
ROLE = "vectors"
_OUTPUT = ["chunk_id", "document_id", "collection_id"]
_BATCH = 1000  # rows per upsert call (keeps a gRPC message well under its 64 MB cap)
HAS_VECTOR = "has_vector == true"  # with full_text: rows whose vector is a real one


class MilvusVectorStore:
    """A ``VectorStore`` on Milvus; see the module docstring.

    ``index_type`` is the ANN index (``HNSW`` by default; ``FLAT`` is exact),
    ``hnsw_m``/``hnsw_ef_construction`` its build parameters and ``ef_search`` the
    least search depth (at least ``k`` is used). ``full_text``: keep the chunks' text
    too, for ``MilvusLexicalIndex(vectors=...)`` (see the module docstring).
    """

    def __init__(
        self,
        directory: Path,
        *,
        embedding_model: str,
        dimension: int,
        milvus: MilvusConnection | None = None,
        index_type: str = "HNSW",
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 200,
        ef_search: int = 64,
        full_text: FullText | None = None,
    ) -> None:
        if dimension <= 0:
            raise VectorStoreError(f"dimension must be positive, got {dimension}")
        if full_text is not None:
            full_text.check(VectorStoreError)
        self.manifest = IndexManifest(embedding_model, dimension, BACKEND, FORMAT_VERSION)
        self.full_text = full_text
        self._prefix = (milvus or MilvusConnection()).prefix
        self._ef_search = ef_search
        self._index_type = index_type.upper()
        self.analyzer = full_text.analyzer() if full_text is not None else None
        self._db = Connected(milvus, Path(directory), ROLE, VectorStoreError)
        lite = is_lite(self._db.uri)
        self._tokenizer = tokenizer_for(lite)
        self._partition_key = full_text is None or not lite
        self._text = (
            text_manifest(self.analyzer, self._tokenizer, self._partition_key)
            if self.analyzer is not None
            else None
        )
        self._only = HAS_VECTOR if full_text is not None else ""
        try:
            self._db.open(
                schema=self._schema(),
                index_params=self._index_params(hnsw_m, hnsw_ef_construction),
                manifest=manifest_payload(self.manifest) | {"full_text": self._text},
                check=self._check_manifest,
            )
        except BaseException:
            self._db.close()
            raise

    # -- writes ----------------------------------------------------------------

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        """Insert or replace vectors by ``chunk_id``; a chunk may move between collections.

        The whole batch is validated before anything is written. Vectors are L2-normalised.
        """
        batch = list({r.chunk_id: r for r in records}.values())  # the last one for a chunk wins
        if not batch:
            return
        for record in batch:
            check_ids(record, ("chunk_id", "document_id", "collection_id"), VectorStoreError)
        matrix = self._as_matrix([r.vector for r in batch], what="vector")
        rows = [
            {
                "chunk_id": r.chunk_id,
                "document_id": r.document_id,
                "collection_id": r.collection_id,
                "vector": matrix[i].tolist(),
            }
            for i, r in enumerate(batch)
        ]
        if self.full_text is not None:  # the text written beside it stays
            for row in rows:
                row["has_vector"] = True
        self._db.upsert(rows, batch=_BATCH, partial=self.full_text is not None)

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove the documents' vectors (with ``full_text``: their rows, texts too)."""
        return self._db.delete_documents(document_ids, only=self._only)

    def clear(self) -> None:
        """Drop every vector; the collection and its manifest stay."""
        self._db.clear()

    def flush(self) -> None:
        """Nothing to do: Milvus made each write durable when it returned."""
        self._db.call("flush", lambda: None)

    # -- reads -----------------------------------------------------------------

    def search(
        self, query: Vector, *, k: int, collections: Collection[str] | None = None
    ) -> list[VectorHit]:
        """Top-``k`` hits by cosine, filtered to ``collections`` inside the search."""
        if k < 0:
            raise VectorStoreError(f"k must be >= 0, got {k}")
        q = self._as_matrix([query], what="query")[0]
        if k == 0 or (collections is not None and not collections):
            return []
        limit = min(k, MAX_TOP_K)
        result = self._db.call(
            "search",
            self._db.client.search,
            self._db.name,
            data=[q.tolist()],
            anns_field="vector",
            limit=limit,
            filter=self._filter(collections),
            output_fields=_OUTPUT,
            search_params=self._search_params(limit),
        )
        hits = [
            VectorHit(
                chunk_id=hit["chunk_id"],
                document_id=hit["entity"]["document_id"],
                collection_id=hit["entity"]["collection_id"],
                score=float(hit["distance"]),
            )
            for hit in result[0]
        ]
        return heapq.nsmallest(limit, hits, key=lambda h: (-h.score, h.chunk_id))

    def dense_request(
        self, query: Vector, *, k: int, collections: Collection[str] | None
    ) -> tuple[Any, AnnSearchRequest]:
        """The unit query vector and the dense half of a hybrid search on this
        collection, filtered to ``collections`` inside it."""
        q = self._as_matrix([query], what="query")[0]
        limit = min(k, MAX_TOP_K)
        params = self._search_params(limit)
        request = AnnSearchRequest(
            data=[q.tolist()],
            anns_field="vector",
            param=params,
            limit=limit,
            expr=self._filter(collections),
        )
        return q, request

    def document_ids(self) -> set[str]:
        return set(self._db.scan("document_id", only=self._only or ALL))

    def count(self, *, collections: Collection[str] | None = None) -> int:
        return self._db.count(collections, only=self._only)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def db(self) -> Connected:
        """The open collection (``MilvusLexicalIndex`` works on it when it keeps text)."""
        return self._db

    def promote(self, directory: Path) -> None:
        """Become the store opened at ``directory``, replacing it in one step (the swap
        at the end of ``lantern reindex``); the replaced collection is dropped."""
        self._db.promote(Path(directory), ROLE, self._prefix)

    def close(self) -> None:
        self._db.close()

    # -- internals -------------------------------------------------------------

    def _filter(self, collections: Collection[str] | None) -> str:
        return all_of(self._only, in_filter("collection_id", collections))

    def _search_params(self, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"metric_type": "IP"}
        if self._index_type.startswith("HNSW"):
            params["params"] = {"ef": max(self._ef_search, limit)}
        return params

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
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.manifest.dimension)
        if self.full_text is not None:
            schema.add_field("has_vector", DataType.BOOL)
            add_text_fields(schema, tokenizer=self._tokenizer, nullable=True)
        return schema

    def _index_params(self, m: int, ef_construction: int) -> Any:
        params = self._db.client.prepare_index_params()
        build = {"M": m, "efConstruction": ef_construction}
        params.add_index(
            field_name="vector",
            index_type=self._index_type,
            metric_type="IP",
            params=build if self._index_type.startswith("HNSW") else {},
        )
        params.add_index(field_name="document_id", index_type="INVERTED")
        if self.full_text is not None:
            add_text_index(params, self.full_text)
        return params

    def _check_manifest(self, found: dict[str, Any]) -> None:
        expected = self.manifest
        try:
            model, dimension = str(found["embedding_model"]), int(found["dimension"])
        except (KeyError, TypeError, ValueError) as e:
            raise VectorStoreError(
                f"{self._db.where} has a malformed manifest ({e!r}); {REINDEX_HINT}"
            ) from e
        if (model, dimension) != (expected.embedding_model, expected.dimension):
            raise IndexMismatchError(
                f"{self._db.where} was built with {model!r} ({dimension}-d) but the "
                f"configured embedding model is {expected.embedding_model!r} "
                f"({expected.dimension}-d); {REINDEX_HINT}"
            )
        check_format(
            found,
            backend=BACKEND,
            version=FORMAT_VERSION,
            where=self._db.where,
            error=IndexMismatchError,
        )
        text = found.get("full_text")
        if (text is None) != (self._text is None):
            raise IndexMismatchError(
                f"{self._db.where} was built {'with' if text else 'without'} the chunks' "
                f"text, but the configured lexical index "
                f"{'keeps it' if self._text else 'is not Milvus'}; {REINDEX_HINT}"
            )
        if text is not None and self._text is not None:
            check_text(text, self._text, where=self._db.where, error=IndexMismatchError)

    def _as_matrix(self, vectors: Sequence[Vector], *, what: str) -> Any:
        return unit_rows(vectors, self.manifest, what=what)
