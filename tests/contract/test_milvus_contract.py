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
from tests.contract.vectorstore_contract import (
    DIM,
    MODEL,
    StoreFactory,
    VectorStoreContract,
    rec,
    vec,
)


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


def test_a_rebuilt_store_takes_the_live_ones_place_and_the_old_collection_goes(
    tmp_path: Path,
) -> None:
    from retrieval._milvus import MilvusConnection

    conn = MilvusConnection(uri=str(tmp_path / "milvus.db"))
    live = MilvusVectorStore(tmp_path / "milvus", embedding_model=MODEL, dimension=DIM, milvus=conn)
    live.upsert([rec("old", "d1", "col", vec(1))])
    staging = MilvusVectorStore(
        tmp_path / "milvus.rebuild", embedding_model="contract/model-b", dimension=DIM, milvus=conn
    )
    staging.upsert([rec("new", "d1", "col", vec(1))])
    staging.promote(tmp_path / "milvus")
    staging.close()
    # The open store sees the rebuilt collection at once; reopening finds the new model.
    assert [h.chunk_id for h in live.search(vec(1), k=5)] == ["new"]
    live.close()
    again = MilvusVectorStore(
        tmp_path / "milvus", embedding_model="contract/model-b", dimension=DIM, milvus=conn
    )
    assert again.document_ids() == {"d1"}
    names = again._db.client.list_collections()
    again.close()
    assert len(names) == 1  # the replaced collection was dropped, the staging alias too
