"""A deterministic stand-in vector store for tests: exact search over a dict, one JSON file.

It keeps the whole ``VectorStore`` contract (collection filter inside the search, manifest
checks, durable only on ``flush``) with no index structure, so a test can swap it in
where FAISS would be incidental.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import numpy as np

from retrieval._atomic import atomic_write_json
from retrieval._fake_records import FakeRecords
from retrieval._sharded import MANIFEST_NAME, read_json
from retrieval.errors import VectorStoreError
from retrieval.vectorstores.base import IndexManifest, Vector, VectorHit, VectorRecord
from retrieval.vectorstores.manifest import check_manifest, manifest_payload

BACKEND = "fake"
DATA_NAME = "fake-vectors.json"


class FakeVectorStore(FakeRecords[VectorRecord]):
    """Brute-force cosine search over every stored vector."""

    def __init__(self, directory: Path, *, embedding_model: str, dimension: int) -> None:
        if dimension <= 0:
            raise VectorStoreError(f"dimension must be positive, got {dimension}")
        self.directory = Path(directory)
        self.manifest = IndexManifest(embedding_model, dimension, BACKEND)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / MANIFEST_NAME
        if path.exists():
            check_manifest(read_json(path, VectorStoreError), self.manifest, self.directory)
        else:
            atomic_write_json(path, manifest_payload(self.manifest))
        self._records: dict[str, VectorRecord] = {}
        path = self.directory / DATA_NAME
        if path.exists():
            for chunk_id, document_id, collection_id, vector in json.loads(path.read_text())[
                "records"
            ]:
                self._records[chunk_id] = VectorRecord(
                    chunk_id, document_id, collection_id, np.asarray(vector, dtype=np.float32)
                )

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        for r in records:
            self._check(r.vector)
        for r in records:
            self._records.pop(r.chunk_id, None)  # a replaced chunk goes to the end
            self._records[r.chunk_id] = r

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        gone = set(document_ids)
        doomed = [c for c, r in self._records.items() if r.document_id in gone]
        for chunk_id in doomed:
            del self._records[chunk_id]
        return len(doomed)

    def search(
        self, query: Vector, *, k: int, collections: Collection[str] | None = None
    ) -> list[VectorHit]:
        q = self._check(query)
        rows = [
            r
            for r in self._records.values()
            if collections is None or r.collection_id in collections
        ]
        if not rows or k <= 0:
            return []
        scores = np.stack([r.vector for r in rows]) @ q
        order = sorted(range(len(rows)), key=lambda i: (-float(scores[i]), i))[:k]
        return [
            VectorHit(
                rows[i].chunk_id, rows[i].document_id, rows[i].collection_id, float(scores[i])
            )
            for i in order
        ]

    def flush(self) -> None:
        rows = [
            [r.chunk_id, r.document_id, r.collection_id, r.vector.tolist()]
            for r in self._records.values()
        ]
        atomic_write_json(self.directory / DATA_NAME, {"records": rows})

    def clear(self) -> None:
        self._records.clear()

    def close(self) -> None:
        pass

    def _check(self, vector: Vector) -> Vector:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.manifest.dimension:
            raise VectorStoreError(
                f"vector has dimension {v.shape[0]}, the index expects "
                f"{self.manifest.dimension} ({self.manifest.embedding_model!r})"
            )
        if not np.isfinite(v).all():
            raise VectorStoreError("vector contains NaN or infinity")
        return v
