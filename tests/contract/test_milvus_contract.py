"""The Milvus backends pass the vector store and lexical index contracts on milvus-lite,
each in a collection of its own and both sharing one (the store keeping the text too,
as when both are Milvus: hybrid search in one call, ``tests/integration/test_milvus_hybrid``).

Each test gets its own milvus-lite database under ``tmp_path`` (one per index
directory, as the store defaults it), whose server stops when the last index on it
closes; pytest removes the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from retrieval._milvus import MilvusConnection
from retrieval._milvus_text import FullText
from retrieval.errors import IndexMismatchError
from retrieval.lexical.base import LexicalRecord
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


class TestMilvusStoreKeepingText(VectorStoreContract):
    """The store whose collection also holds the lexical index's text."""

    persists_only_on_flush = False

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        def make(directory: Path, *, embedding_model: str, dimension: int) -> MilvusVectorStore:
            return MilvusVectorStore(
                directory,
                embedding_model=embedding_model,
                dimension=dimension,
                full_text=FullText(),
            )

        return make


class TestMilvusLexicalIndexInTheStore(LexicalIndexContract):
    """The lexical index as a view of that store's collection (texts without vectors)."""

    persists_only_on_flush = False

    @pytest.fixture
    def index_factory(self) -> Iterator[IndexFactory]:
        stores: list[MilvusVectorStore] = []

        def make(directory: Path) -> MilvusLexicalIndex:
            store = MilvusVectorStore(
                directory, embedding_model=MODEL, dimension=DIM, full_text=FullText()
            )
            stores.append(store)
            return MilvusLexicalIndex(directory, vectors=store)

        yield make
        for store in stores:
            store.close()


def test_a_store_opened_with_or_without_the_text_it_was_built_without_or_with_is_refused(
    tmp_path: Path,
) -> None:
    plain = MilvusVectorStore(tmp_path / "a", embedding_model=MODEL, dimension=DIM)
    plain.close()
    with pytest.raises(IndexMismatchError, match=r"without the chunks' text.*lantern reindex"):
        MilvusVectorStore(
            tmp_path / "a", embedding_model=MODEL, dimension=DIM, full_text=FullText()
        )
    keeping = MilvusVectorStore(
        tmp_path / "b", embedding_model=MODEL, dimension=DIM, full_text=FullText()
    )
    keeping.close()
    with pytest.raises(IndexMismatchError, match=r"with the chunks' text.*lantern reindex"):
        MilvusVectorStore(tmp_path / "b", embedding_model=MODEL, dimension=DIM)
    with pytest.raises(IndexMismatchError, match=r"analysed with analyzer.*lantern reindex"):
        MilvusVectorStore(
            tmp_path / "b",
            embedding_model=MODEL,
            dimension=DIM,
            full_text=FullText(language="german"),
        )


def test_vectors_and_texts_written_in_either_order_meet_in_one_row(tmp_path: Path) -> None:
    store = MilvusVectorStore(
        tmp_path / "milvus", embedding_model=MODEL, dimension=DIM, full_text=FullText()
    )
    lexical = MilvusLexicalIndex(tmp_path / "milvus", vectors=store)
    try:
        lexical.upsert([LexicalRecord("text-first", "d1", "col", "vacation policy")])
        assert store.search(vec(1), k=5) == []  # its placeholder vector is never found
        store.upsert(
            [rec("text-first", "d1", "col", vec(1)), rec("vector-first", "d2", "col", vec(0, 1))]
        )
        lexical.upsert([LexicalRecord("vector-first", "d2", "col", "expense policy")])
        assert [h.chunk_id for h in store.search(vec(1), k=5)] == ["text-first", "vector-first"]
        assert [h.chunk_id for h in lexical.search("vacation", k=5)] == ["text-first"]
        assert [h.chunk_id for h in lexical.search("expense", k=5)] == ["vector-first"]
        assert store.count() == lexical.count() == 2
        store.upsert([rec("vector-first", "d2", "col", vec(1, 1))])  # its text stays
        assert [h.chunk_id for h in lexical.search("expense", k=5)] == ["vector-first"]
        # The two share rows: a document deleted from one is gone from both.
        assert store.delete_documents(["d1"]) == 1
        assert lexical.search("vacation", k=5) == []
        assert lexical.count() == 1
    finally:
        lexical.close()
        store.close()


def test_a_rebuilt_store_takes_the_live_ones_place_and_the_old_collection_goes(
    tmp_path: Path,
) -> None:
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


def test_a_rebuilt_store_keeping_text_replaces_both_live_collections(tmp_path: Path) -> None:
    """``lantern reindex`` from two collections to one: the lexical one goes too."""
    conn = MilvusConnection(uri=str(tmp_path / "milvus.db"))
    live_store = MilvusVectorStore(
        tmp_path / "milvus", embedding_model=MODEL, dimension=DIM, milvus=conn
    )
    live_lexical = MilvusLexicalIndex(tmp_path / "milvus", milvus=conn)
    live_lexical.upsert([LexicalRecord("old", "d1", "col", "vacation")])
    live_lexical.close()
    live_store.close()
    staging = MilvusVectorStore(
        tmp_path / "milvus.rebuild",
        embedding_model=MODEL,
        dimension=DIM,
        milvus=conn,
        full_text=FullText(),
    )
    lexical = MilvusLexicalIndex(tmp_path / "milvus.rebuild", milvus=conn, vectors=staging)
    staging.upsert([rec("new", "d1", "col", vec(1))])
    lexical.upsert([LexicalRecord("new", "d1", "col", "vacation")])
    staging.promote(tmp_path / "milvus")
    lexical.promote(tmp_path / "milvus")
    lexical.close()
    names = staging.db.client.list_collections()
    staging.close()
    assert len(names) == 1  # the old vectors, the old texts and the staging alias went
    again = MilvusVectorStore(
        tmp_path / "milvus", embedding_model=MODEL, dimension=DIM, milvus=conn, full_text=FullText()
    )
    view = MilvusLexicalIndex(tmp_path / "milvus", milvus=conn, vectors=again)
    try:
        assert [h.chunk_id for h in view.search("vacation", k=5)] == ["new"]
        assert [h.chunk_id for h in again.search(vec(1), k=5)] == ["new"]
    finally:
        view.close()
        again.close()
