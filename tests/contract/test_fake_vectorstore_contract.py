"""The fake vector store (the ``fake`` kind) passes the vector store contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.vectorstores.base import VectorStore
from retrieval.vectorstores.registry import create_vector_store
from tests.contract.vectorstore_contract import StoreFactory, VectorStoreContract


class TestFakeVectorStore(VectorStoreContract):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        def make(directory: Path, *, embedding_model: str, dimension: int) -> VectorStore:
            return create_vector_store(
                "fake", directory=directory, embedding_model=embedding_model, dimension=dimension
            )

        return make
