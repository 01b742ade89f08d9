"""Behaviour every ``VectorStore`` backend must show (after haystack's testing/document_store.py).

Use it by subclassing and providing one fixture::

    class TestMyStore(VectorStoreContract):
        @pytest.fixture
        def store_factory(self) -> StoreFactory:
            return MyStore  # (directory, *, embedding_model, dimension) -> VectorStore

Tests open stores through ``make_store``, which defaults the directory to a fresh
``tmp_path`` and closes every store at teardown (so ``close()`` must be idempotent).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import pytest

from retrieval.errors import IndexMismatchError, VectorStoreError
from retrieval.vectorstores.base import Vector, VectorRecord, VectorStore

MODEL = "contract/model-a"
DIM = 16


class StoreFactory(Protocol):
    def __call__(self, directory: Path, *, embedding_model: str, dimension: int) -> VectorStore: ...


class MakeStore(Protocol):
    def __call__(
        self, directory: Path | None = None, *, embedding_model: str = ..., dimension: int = ...
    ) -> VectorStore: ...


def vec(*components: float, dimension: int = DIM) -> Vector:
    """A unit vector whose first components are ``components`` (before normalising)."""
    v = np.zeros(dimension, dtype=np.float32)
    v[: len(components)] = components
    return (v / np.linalg.norm(v)).astype(np.float32)


def rec(chunk_id: str, document_id: str, collection_id: str, vector: Vector) -> VectorRecord:
    return VectorRecord(chunk_id, document_id, collection_id, vector)


class VectorStoreContract:
    #: False for backends that make every write durable at once (e.g. a database server).
    persists_only_on_flush: ClassVar[bool] = True

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        raise NotImplementedError("a VectorStoreContract subclass must provide store_factory")

    @pytest.fixture
    def make_store(self, store_factory: StoreFactory, tmp_path: Path) -> Iterator[MakeStore]:
        opened: list[VectorStore] = []

        def make(
            directory: Path | None = None, *, embedding_model: str = MODEL, dimension: int = DIM
        ) -> VectorStore:
            store = store_factory(
                directory or tmp_path / "index",
                embedding_model=embedding_model,
                dimension=dimension,
            )
            opened.append(store)
            return store

        yield make
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, make_store: MakeStore) -> VectorStore:
        return make_store()

    @pytest.fixture
    def three(self, store: VectorStore) -> VectorStore:
        """c1 = e0, c2 halfway between e0 and e1, c3 = e1, all in one collection."""
        store.upsert(
            [
                rec("c1", "d1", "col", vec(1)),
                rec("c2", "d1", "col", vec(1, 1)),
                rec("c3", "d2", "col", vec(0, 1)),
            ]
        )
        return store

    # -- search ----------------------------------------------------------------

    def test_search_returns_nearest_first_with_cosine_scores(self, three: VectorStore) -> None:
        hits = three.search(vec(1), k=3)
        assert [h.chunk_id for h in hits] == ["c1", "c2", "c3"]
        assert [h.score for h in hits] == pytest.approx([1.0, 0.5**0.5, 0.0], abs=1e-5)

    def test_hits_carry_document_and_collection(self, three: VectorStore) -> None:
        (hit,) = three.search(vec(0, 1), k=1)
        assert (hit.chunk_id, hit.document_id, hit.collection_id) == ("c3", "d2", "col")

    def test_k_bounds_the_number_of_hits(self, three: VectorStore) -> None:
        assert [h.chunk_id for h in three.search(vec(1), k=2)] == ["c1", "c2"]

    def test_k_beyond_count_returns_what_exists_without_padding(self, three: VectorStore) -> None:
        hits = three.search(vec(1), k=50)
        assert sorted(h.chunk_id for h in hits) == ["c1", "c2", "c3"]

    def test_empty_store_returns_no_hits(self, store: VectorStore) -> None:
        assert store.search(vec(1), k=5) == []

    def test_collection_filter_is_applied_inside_the_search(self, store: VectorStore) -> None:
        allowed = [rec(f"a{i}", "da", "allowed", vec(1, 1 + i)) for i in range(3)]
        closer = [rec(f"x{i}", "dx", "secret", vec(1, 0.01 * i)) for i in range(20)]
        store.upsert(allowed + closer)
        hits = store.search(vec(1), k=3, collections={"allowed"})
        assert [h.chunk_id for h in hits] == ["a0", "a1", "a2"]
        assert {h.collection_id for h in hits} == {"allowed"}

    def test_search_over_several_collections(self, store: VectorStore) -> None:
        store.upsert([rec("a", "d1", "ca", vec(1)), rec("b", "d2", "cb", vec(1, 1))])
        store.upsert([rec("c", "d3", "cc", vec(1, 0.1))])
        hits = store.search(vec(1), k=5, collections=["ca", "cb", "unknown"])
        assert [h.chunk_id for h in hits] == ["a", "b"]
        assert store.search(vec(1), k=5, collections={"unknown"}) == []

    def test_empty_collection_set_returns_no_hits(self, three: VectorStore) -> None:
        assert three.search(vec(1), k=3, collections=set()) == []

    # -- writes ----------------------------------------------------------------

    def test_upsert_same_chunk_id_replaces_the_vector(self, three: VectorStore) -> None:
        three.upsert([rec("c1", "d1", "col", vec(0, 1))])
        assert three.count() == 3
        scores = {h.chunk_id: h.score for h in three.search(vec(1), k=3)}
        assert scores == pytest.approx({"c1": 0.0, "c2": 0.5**0.5, "c3": 0.0}, abs=1e-5)
        assert three.search(vec(0, 1), k=1)[0].score == pytest.approx(1.0, abs=1e-5)

    def test_upsert_moves_a_chunk_to_another_collection(self, three: VectorStore) -> None:
        three.upsert([rec("c1", "d1", "other", vec(1))])
        assert three.count(collections={"col"}) == 2
        assert three.count(collections={"other"}) == 1
        assert "c1" not in {h.chunk_id for h in three.search(vec(1), k=3, collections={"col"})}
        (hit,) = three.search(vec(1), k=1, collections={"other"})
        assert (hit.chunk_id, hit.collection_id) == ("c1", "other")

    def test_empty_upsert_changes_nothing(self, three: VectorStore) -> None:
        three.upsert([])
        assert three.count() == 3

    def test_delete_documents_removes_exactly_their_vectors(self, three: VectorStore) -> None:
        three.upsert([rec("e1", "d3", "elsewhere", vec(1))])
        assert three.delete_documents(["d1", "nope"]) == 2
        assert [h.chunk_id for h in three.search(vec(1), k=10)] == ["e1", "c3"]
        assert three.delete_documents(["d1"]) == 0
        assert three.count() == 2

    def test_document_ids_lists_documents_with_vectors(self, three: VectorStore) -> None:
        assert three.document_ids() == {"d1", "d2"}
        three.delete_documents(["d2"])
        assert three.document_ids() == {"d1"}

    def test_count_with_and_without_collections(self, three: VectorStore) -> None:
        three.upsert([rec("o1", "d9", "other", vec(1)), rec("o2", "d9", "other", vec(0, 0, 1))])
        assert three.count() == 5
        assert three.count(collections={"col"}) == 3
        assert three.count(collections={"col", "other"}) == 5
        assert three.count(collections={"missing"}) == 0
        assert three.count(collections=set()) == 0

    def test_clear_drops_every_vector(self, three: VectorStore) -> None:
        three.clear()
        assert three.count() == 0
        assert three.document_ids() == set()
        assert three.search(vec(1), k=3) == []
        three.upsert([rec("n1", "d1", "col", vec(1))])
        assert [h.chunk_id for h in three.search(vec(1), k=3)] == ["n1"]

    # -- validation ------------------------------------------------------------

    def test_wrong_dimension_is_rejected(self, three: VectorStore) -> None:
        with pytest.raises(VectorStoreError, match="dimension"):
            three.upsert([rec("bad", "d1", "col", vec(1, dimension=DIM + 1))])
        with pytest.raises(VectorStoreError, match="dimension"):
            three.search(vec(1, dimension=DIM - 1), k=1)
        assert three.count() == 3

    def test_nan_vector_is_rejected(self, three: VectorStore) -> None:
        bad = vec(1)
        bad[3] = np.nan
        with pytest.raises(VectorStoreError):
            three.upsert([rec("bad", "d1", "col", bad)])
        assert three.count() == 3

    # -- persistence -----------------------------------------------------------

    def test_manifest_records_the_model(self, store: VectorStore) -> None:
        assert (store.manifest.embedding_model, store.manifest.dimension) == (MODEL, DIM)

    def test_flushed_state_survives_reopening(self, make_store: MakeStore, tmp_path: Path) -> None:
        first = make_store(tmp_path / "idx")
        first.upsert([rec("c1", "d1", "ca", vec(1)), rec("c2", "d2", "cb", vec(0, 1))])
        first.upsert([rec("c3", "d3", "cb", vec(1, 1)), rec("c4", "d4", "cc", vec(1, 2))])
        first.delete_documents(["d4"])
        first.flush()
        first.close()
        again = make_store(tmp_path / "idx")
        assert again.count() == 3
        assert again.document_ids() == {"d1", "d2", "d3"}
        assert again.count(collections={"cb"}) == 2
        hits = again.search(vec(1), k=3, collections={"cb"})
        assert [(h.chunk_id, h.document_id) for h in hits] == [("c3", "d3"), ("c2", "d2")]

    def test_changes_across_several_flushes_survive_reopening(
        self, make_store: MakeStore, tmp_path: Path
    ) -> None:
        first = make_store(tmp_path / "idx")
        first.upsert([rec(f"c{i}", f"d{i % 3}", "ca", vec(1, i)) for i in range(6)])
        first.flush()
        first.upsert([rec("c0", "d0", "ca", vec(0, 0, 1))])  # replaced
        first.flush()
        first.upsert([rec("c1", "d1", "cb", vec(1, 1))])  # moved
        first.delete_documents(["d2"])
        first.flush()
        first.close()
        again = make_store(tmp_path / "idx")
        assert (again.count(collections={"ca"}), again.count(collections={"cb"})) == (3, 1)
        (hit,) = again.search(vec(0, 0, 1), k=1)
        assert (hit.chunk_id, hit.score) == ("c0", pytest.approx(1.0, abs=1e-5))
        assert [h.chunk_id for h in again.search(vec(1), k=5, collections={"cb"})] == ["c1"]
        assert again.document_ids() == {"d0", "d1"}

    def test_unflushed_changes_are_not_persisted(
        self, make_store: MakeStore, tmp_path: Path
    ) -> None:
        if not self.persists_only_on_flush:
            pytest.skip("this backend makes every write durable at once")
        first = make_store(tmp_path / "idx")
        first.upsert([rec("kept", "d1", "col", vec(1))])
        first.flush()
        first.upsert([rec("lost", "d2", "col", vec(0, 1))])
        first.delete_documents(["d1"])
        first.close()
        again = make_store(tmp_path / "idx")
        assert again.document_ids() == {"d1"}
        assert [h.chunk_id for h in again.search(vec(1), k=5)] == ["kept"]

    def test_cleared_state_survives_reopening(self, make_store: MakeStore, tmp_path: Path) -> None:
        first = make_store(tmp_path / "idx")
        first.upsert([rec("c1", "d1", "col", vec(1))])
        first.flush()
        first.clear()
        first.flush()
        first.close()
        again = make_store(tmp_path / "idx")
        assert again.count() == 0
        assert again.manifest.embedding_model == MODEL

    @pytest.mark.parametrize(("model", "dimension"), [("contract/model-b", DIM), (MODEL, DIM * 2)])
    def test_reopening_with_another_model_is_refused(
        self, make_store: MakeStore, tmp_path: Path, model: str, dimension: int
    ) -> None:
        first = make_store(tmp_path / "idx")
        first.upsert([rec("c1", "d1", "col", vec(1))])
        first.flush()
        first.close()
        with pytest.raises(IndexMismatchError, match="lantern reindex") as info:
            make_store(tmp_path / "idx", embedding_model=model, dimension=dimension)
        assert MODEL in str(info.value)
        assert f"{DIM}-d" in str(info.value)

    # -- scale -----------------------------------------------------------------

    def test_query_equal_to_a_stored_vector_finds_it_among_many(
        self, make_store: MakeStore
    ) -> None:
        dim, n = 64, 5000
        store = make_store(dimension=dim)
        rng = np.random.default_rng(7)
        data = rng.standard_normal((n, dim)).astype(np.float32)
        data /= np.linalg.norm(data, axis=1, keepdims=True)
        for start in range(0, n, 1000):
            store.upsert(
                [
                    rec(f"c{i}", f"d{i // 10}", f"col{i % 3}", data[i])
                    for i in range(start, start + 1000)
                ]
            )
        assert store.count() == n
        for i in rng.choice(n, size=25, replace=False).tolist():
            top = store.search(data[i], k=1)[0]
            assert top.chunk_id == f"c{i}"
            assert top.score == pytest.approx(1.0, abs=1e-4)
            inside = store.search(data[i], k=10, collections={f"col{i % 3}"})
            assert inside[0].chunk_id == f"c{i}"
            assert len(inside) == 10
            assert {h.collection_id for h in inside} == {f"col{i % 3}"}
