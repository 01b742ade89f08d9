"""The Milvus backends pass the vector store and lexical index contracts on milvus-lite.

Each test gets its own milvus-lite database under ``tmp_path`` (one per index
directory, as the store defaults it), whose server stops when the last index on it
closes; pytest removes the files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from retrieval.lexical.milvus_index import MilvusLexicalIndex
from retrieval.vectorstores.milvus_store import MilvusVectorStore
from tests.contract.lexical_contract import IndexFactory, LexicalIndexContract
from tests.contract.vectorstore_contract import StoreFactory, VectorStoreContract


class TestMilvusVectorStore(VectorStoreContract):
    persists_only_on_flush = False

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        def make(directory: Path, *, embedding_model: str, dimension: int) -> MilvusVectorStore:
            return MilvusVectorStore(
                directory, embedding_model=embedding_model, dimension=dimension
            )

        return make


class TestMilvusLexicalIndex(LexicalIndexContract):
    persists_only_on_flush = False

    @pytest.fixture
    def index_factory(self) -> IndexFactory:
        return MilvusLexicalIndex
