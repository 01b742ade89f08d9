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
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from pymilvus import DataType, MilvusClient

from retrieval._milvus import (
    ID_LENGTH,
    MAX_TOP_K,
    Connected,
    MilvusConnection,
    check_ids,
    in_filter,
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


class MilvusVectorStore:
    """A ``VectorStore`` on Milvus; see the module docstring.

    ``index_type`` is the ANN index (``HNSW`` by default; ``FLAT`` is exact),
    ``hnsw_m``/``hnsw_ef_construction`` its build parameters and ``ef_search`` the
    least search depth (at least ``k`` is used).
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
    ) -> None:
        if dimension <= 0:
            raise VectorStoreError(f"dimension must be positive, got {dimension}")
        self.manifest = IndexManifest(embedding_model, dimension, BACKEND, FORMAT_VERSION)
        self._prefix = (milvus or MilvusConnection()).prefix
        self._ef_search = ef_search
        self._index_type = index_type.upper()
        self._db = Connected(milvus, Path(directory), ROLE, VectorStoreError)
        try:
            self._db.open(
                schema=self._schema(),
                index_params=self._index_params(hnsw_m, hnsw_ef_construction),
                manifest=manifest_payload(self.manifest),
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
        self._db.upsert(rows, batch=_BATCH)

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        return self._db.delete_documents(document_ids)

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
        params: dict[str, Any] = {"metric_type": "IP"}
        if self._index_type.startswith("HNSW"):
            params["params"] = {"ef": max(self._ef_search, limit)}
        result = self._db.call(
            "search",
            self._db.client.search,
            self._db.name,
            data=[q.tolist()],
            anns_field="vector",
            limit=limit,
            filter=in_filter("collection_id", collections),
            output_fields=_OUTPUT,
            search_params=params,
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

    def document_ids(self) -> set[str]:
        return set(self._db.scan("document_id"))

    def count(self, *, collections: Collection[str] | None = None) -> int:
        return self._db.count(collections)

    # -- lifecycle ---------------------------------------------------------------

    def promote(self, directory: Path) -> None:
        """Become the store opened at ``directory``, replacing it in one step (the swap
        at the end of ``lantern reindex``); the replaced collection is dropped."""
        self._db.promote(Path(directory), ROLE, self._prefix)

    def close(self) -> None:
        self._db.close()

    # -- internals -------------------------------------------------------------

    def _schema(self) -> Any:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_LENGTH)
        schema.add_field("document_id", DataType.VARCHAR, max_length=ID_LENGTH)
        schema.add_field(
            "collection_id", DataType.VARCHAR, max_length=ID_LENGTH, is_partition_key=True
        )
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.manifest.dimension)
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

    def _as_matrix(self, vectors: Sequence[Vector], *, what: str) -> Any:
        return unit_rows(vectors, self.manifest, what=what)
