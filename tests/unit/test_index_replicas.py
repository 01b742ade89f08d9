"""Index files one process writes and others read: a replica (an API process beside the
ingestion worker) sees what the writer committed, never what it has not, and writes
nothing itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import LexicalIndexError, RetrievalError, VectorStoreError
from retrieval.lexical.base import LexicalRecord
from retrieval.lexical.bm25_index import Bm25Index
from retrieval.vectorstores import _faiss_ann as ann
from retrieval.vectorstores.faiss_store import FaissVectorStore
from tests.contract.vectorstore_contract import MODEL, rec

DIM = 16


def unit(seed: int, n: int = 1) -> Any:
    rows = np.random.default_rng(seed).standard_normal((n, DIM))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    stores: list[Any] = []
    yield stores
    for store in stores:
        store.close()


@pytest.fixture
def faiss(tmp_path: Path, opened: list[Any]) -> Callable[..., FaissVectorStore]:
    def make(**options: Any) -> FaissVectorStore:
        store = FaissVectorStore(tmp_path / "vec", embedding_model=MODEL, dimension=DIM, **options)
        opened.append(store)
        return store

    return make


@pytest.fixture
def bm25(tmp_path: Path, opened: list[Any]) -> Callable[..., Bm25Index]:
    def make(**options: Any) -> Bm25Index:
        index = Bm25Index(tmp_path / "bm25", **options)
        opened.append(index)
        return index

    return make


def text(chunk: str, document: str, collection: str, words: str) -> LexicalRecord:
    return LexicalRecord(chunk, document, collection, words)


def test_a_vector_replica_sees_each_flushed_document_and_nothing_unflushed(
    faiss: Callable[..., FaissVectorStore],
) -> None:
    writer = faiss()
    q = unit(1)[0]
    writer.upsert([rec("a1", "A", "hr", q)])
    writer.flush()
    replica = faiss(read_only=True)
    assert [h.chunk_id for h in replica.search(q, k=3)] == ["a1"]

    writer.upsert([rec("b1", "B", "hr", q * 0.99 + unit(2)[0] * 0.01)])
    assert not replica.refresh()  # not flushed: a document is committed whole or not at all
    assert replica.document_ids() == {"A"}
    writer.flush()
    assert replica.refresh()
    assert {h.chunk_id for h in replica.search(q, k=3)} == {"a1", "b1"}
    assert replica.document_ids() == {"A", "B"}

    writer.delete_documents(["A"])
    writer.flush()
    replica.refresh()
    assert [h.chunk_id for h in replica.search(q, k=3)] == ["b1"]
    assert replica.count() == 1
    assert replica.versions() == writer.versions()


def test_a_replica_reloads_only_the_collections_the_writer_changed(
    faiss: Callable[..., FaissVectorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = faiss()
    writer.upsert([rec("a1", "A", "hr", unit(1)[0]), rec("l1", "L", "legal", unit(2)[0])])
    writer.flush()
    replica = faiss(read_only=True)
    before = replica.versions()
    loaded: list[str] = []
    load = FaissVectorStore._load_shard

    def counting(self: FaissVectorStore, collection_id: str, entries: Any) -> Any:
        loaded.append(collection_id)
        return load(self, collection_id, entries)

    monkeypatch.setattr(FaissVectorStore, "_load_shard", counting)
    writer.upsert([rec("a2", "A2", "hr", unit(3)[0])])
    writer.flush()
    assert replica.refresh()
    assert loaded == ["hr"]
    after = replica.versions()
    assert after["legal"] == before["legal"]
    assert after["hr"] > before["hr"]
    assert replica.count(collections=["hr"]) == 2


def test_a_replica_refuses_every_write_and_leaves_the_files_alone(
    faiss: Callable[..., FaissVectorStore], bm25: Callable[..., Bm25Index], tmp_path: Path
) -> None:
    writer = faiss()
    writer.upsert([rec("a1", "A", "hr", unit(1)[0])])
    writer.flush()
    replica = faiss(read_only=True)
    files = sorted(p.name for p in (tmp_path / "vec").iterdir())
    for write in (
        lambda: replica.upsert([rec("x", "X", "hr", unit(2)[0])]),
        lambda: replica.delete_documents(["A"]),
        replica.clear,
        replica.flush,
    ):
        with pytest.raises(VectorStoreError, match="read-only replica"):
            write()
    assert sorted(p.name for p in (tmp_path / "vec").iterdir()) == files
    words = bm25(read_only=True)
    with pytest.raises(LexicalIndexError, match="read-only replica"):
        words.upsert([text("x", "X", "hr", "holiday policy")])


def test_a_replica_opened_before_the_writer_follows_it_from_empty(
    faiss: Callable[..., FaissVectorStore], bm25: Callable[..., Bm25Index], tmp_path: Path
) -> None:
    replica = faiss(read_only=True)
    words = bm25(read_only=True)
    assert replica.count() == 0
    assert not (tmp_path / "vec" / "manifest.json").exists()
    writer, lexical = faiss(), bm25()
    writer.upsert([rec("a1", "A", "hr", unit(1)[0])])
    writer.flush()
    lexical.upsert([text("a1", "A", "hr", "parental leave lasts twenty weeks")])
    lexical.flush()
    assert replica.refresh()
    assert words.refresh()
    assert replica.document_ids() == words.document_ids() == {"A"}
    assert [h.chunk_id for h in words.search("parental leave", k=2)] == ["a1"]


def test_a_replica_of_another_embedding_model_refuses_to_follow(
    faiss: Callable[..., FaissVectorStore], tmp_path: Path, opened: list[Any]
) -> None:
    replica = FaissVectorStore(
        tmp_path / "vec", embedding_model="other-model", dimension=DIM, read_only=True
    )
    opened.append(replica)
    writer = faiss()
    writer.upsert([rec("a1", "A", "hr", unit(1)[0])])
    writer.flush()
    with pytest.raises(VectorStoreError, match=r"other-model|embedding model"):
        replica.refresh()
    assert replica.count() == 0


def test_a_commit_that_removes_the_files_being_loaded_is_followed_to_the_newest(
    faiss: Callable[..., FaissVectorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer commits again (and deletes the files of the table the replica is
    reading) while the replica loads: it reads the newest table instead of failing."""
    writer = faiss()
    writer.upsert([rec("a1", "A", "hr", unit(1)[0])])
    writer.flush()
    replica = faiss(read_only=True)
    writer.upsert([rec("b1", "B", "hr", unit(2)[0])])
    writer.flush()
    load = FaissVectorStore._load_shard
    raced: list[bool] = []

    def racing(self: FaissVectorStore, collection_id: str, entries: Any) -> Any:
        if self is replica and not raced:
            raced.append(True)
            # Enough writes that the merge policy rewrites the segments just read.
            for i in range(3):
                writer.upsert([rec(f"c{i}", f"C{i}", "hr", unit(10 + i)[0])])
                writer.flush()
        return load(self, collection_id, entries)

    monkeypatch.setattr(FaissVectorStore, "_load_shard", racing)
    assert replica.refresh()
    assert raced
    assert replica.document_ids() == writer.document_ids() == {"A", "B", "C0", "C1", "C2"}


def test_a_lexical_replica_ranks_as_its_writer_does(bm25: Callable[..., Bm25Index]) -> None:
    writer = bm25()
    writer.upsert(
        [
            text("a1", "A", "hr", "Vacation days: new employees get 25 vacation days."),
            text("b1", "B", "hr", "Expense claims are due within 30 days."),
        ]
    )
    writer.flush()
    replica = bm25(read_only=True)
    query = "how many vacation days"
    assert [(h.chunk_id, h.score) for h in replica.search(query, k=5)] == [
        (h.chunk_id, h.score) for h in writer.search(query, k=5)
    ]
    writer.delete_documents(["A"])
    writer.upsert([text("c1", "C", "hr", "Vacation requests go to your manager.")])
    writer.flush()
    replica.refresh()
    assert [(h.chunk_id, h.score) for h in replica.search(query, k=5)] == [
        (h.chunk_id, h.score) for h in writer.search(query, k=5)
    ]
    assert replica.versions() == writer.versions()


def test_a_replica_follows_by_itself(
    faiss: Callable[..., FaissVectorStore], bm25: Callable[..., Bm25Index]
) -> None:
    writer, lexical = faiss(), bm25()
    replica, words = (
        faiss(read_only=True, refresh_seconds=0.05),
        bm25(read_only=True, refresh_seconds=0.05),
    )
    writer.upsert([rec("a1", "A", "hr", unit(1)[0])])
    writer.flush()
    lexical.upsert([text("a1", "A", "hr", "the canteen opens at noon")])
    lexical.flush()
    deadline = time.monotonic() + 30
    while (replica.count(), words.count()) != (1, 1) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert replica.document_ids() == words.document_ids() == {"A"}


def test_a_big_collection_replica_restores_the_writers_graph(
    faiss: Callable[..., FaissVectorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collection past the ANN threshold: the replica serves it through the graph the
    writer kept on disk, never building one itself, and finds what the writer finds."""
    options = {"ann_threshold": 300, "background": False}
    writer = faiss(**options)
    vectors = unit(5, 400)
    writer.upsert([rec(f"c{i}", f"d{i // 10}", "big", v) for i, v in enumerate(vectors)])
    writer.flush()
    assert writer.approximate_collections() == {"big"}

    def broken(*args: Any) -> Any:
        raise AssertionError("the replica built a graph from scratch")

    with monkeypatch.context() as patch:
        patch.setattr(ann.Graph, "insert", broken)
        replica = faiss(read_only=True, **options)
        assert replica.approximate_collections() == {"big"}
    for v in vectors[:20]:
        assert [h.chunk_id for h in replica.search(v, k=5)] == [
            h.chunk_id for h in writer.search(v, k=5)
        ]


def test_an_unreadable_new_table_leaves_the_replica_serving_what_it_had(
    faiss: Callable[..., FaissVectorStore], tmp_path: Path
) -> None:
    writer = faiss()
    writer.upsert([rec("a1", "A", "hr", unit(1)[0])])
    writer.flush()
    replica = faiss(read_only=True)
    (tmp_path / "vec" / "shards.json").write_text("{not json")
    with pytest.raises(RetrievalError, match=r"shards\.json"):
        replica.refresh()
    assert [h.chunk_id for h in replica.search(unit(1)[0], k=1)] == ["a1"]
