"""The FAISS vector store passes the vector store and the persistence contracts."""

from __future__ import annotations

import functools
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import IndexMismatchError, VectorStoreError
from retrieval.vectorstores.base import VectorRecord
from retrieval.vectorstores.faiss_store import FaissVectorStore
from tests.contract.persistence_contract import PersistenceContract
from tests.contract.vectorstore_contract import DIM, MODEL, StoreFactory, VectorStoreContract, vec


class TestFaissVectorStore(VectorStoreContract):
    persists_only_on_flush = True

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return FaissVectorStore


class TestFaissApproximateVectorStore(VectorStoreContract):
    """The same contract with every collection of two or more vectors on an HNSW graph,
    built inside the write that calls for it."""

    persists_only_on_flush = True

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return functools.partial(FaissVectorStore, ann_threshold=2, background=False)


class TestFaissPersistence(PersistenceContract):
    table_name = "shards.json"
    prefix = "seg-"
    error = VectorStoreError
    mismatch_error = IndexMismatchError

    def open(self, directory: Path) -> FaissVectorStore:
        return FaissVectorStore(directory, embedding_model=MODEL, dimension=DIM)

    def record(self, chunk_id: str, document_id: str, collection_id: str) -> VectorRecord:
        seed = zlib.crc32(f"{chunk_id}/{document_id}/{collection_id}".encode())
        vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        return VectorRecord(chunk_id, document_id, collection_id, vector)

    def snapshot(self, index: FaissVectorStore) -> Any:
        hits = index.search(vec(1, 1, 1), k=1000)
        return (
            index.document_ids(),
            {c: index.count(collections={c}) for c in "abcde"},
            [(h.chunk_id, h.document_id, h.collection_id, round(h.score, 5)) for h in hits],
        )
