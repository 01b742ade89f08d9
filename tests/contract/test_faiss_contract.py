"""The FAISS vector store passes the vector store contract."""

from __future__ import annotations

import pytest

from retrieval.vectorstores.faiss_store import FaissVectorStore
from tests.contract.vectorstore_contract import StoreFactory, VectorStoreContract


class TestFaissVectorStore(VectorStoreContract):
    persists_only_on_flush = True

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return FaissVectorStore
