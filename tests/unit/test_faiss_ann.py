"""Big FAISS collections get an approximate index (HNSW) in the background: same top hits
as exact search, every write honoured during and after the build, close() safe."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import VectorStoreError
from retrieval.vectorstores import _faiss_ann as ann
from retrieval.vectorstores.base import VectorRecord
from retrieval.vectorstores.faiss_store import FaissVectorStore
from tests.contract.vectorstore_contract import MODEL, rec

DIM = 48
THRESHOLD = 1_000
COPIED: list[int] = []  # vectors each copy step of a paused build took


def clustered(n: int, seed: int, clusters: int = 40) -> Any:
    """Unit vectors around ``clusters`` random centres, as an embedder's are."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((clusters, DIM))
    rows = centres[rng.integers(0, clusters, n)] + 0.8 * rng.standard_normal((n, DIM))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def records(vectors: Any, collection: str = "big", start: int = 0) -> list[VectorRecord]:
    return [
        rec(f"c{start + i}", f"d{(start + i) // 10}", collection, v) for i, v in enumerate(vectors)
    ]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., FaissVectorStore]]:
    opened: list[FaissVectorStore] = []

    def make(name: str = "idx", **options: Any) -> FaissVectorStore:
        options.setdefault("ann_threshold", THRESHOLD)
        store = FaissVectorStore(tmp_path / name, embedding_model=MODEL, dimension=DIM, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def paused(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Builds copy 200 vectors a step and stop before their third step until ``go`` is set;
    ``waiting`` is set when one does."""
    waiting, go = threading.Event(), threading.Event()
    copy = ann.Build._copy
    calls: dict[int, int] = {}

    def slow_copy(self: ann.Build, ids: Any) -> Any:
        calls[id(self)] = calls.get(id(self), 0) + 1
        if calls[id(self)] == 3:
            waiting.set()
            assert go.wait(30)
        rows = copy(self, ids)
        if rows is not None:
            COPIED.append(len(rows[0]))
        return rows

    COPIED.clear()

    monkeypatch.setattr(ann, "CHUNK", 200)
    monkeypatch.setattr(ann.Build, "_copy", slow_copy)
    yield waiting, go
    go.set()


def top(store: FaissVectorStore, query: Any, k: int = 10, **kw: Any) -> list[str]:
    return [h.chunk_id for h in store.search(query, k=k, **kw)]


def test_a_big_collection_finds_the_exact_top_hits(make: Callable[..., FaissVectorStore]) -> None:
    data, queries = clustered(4_000, 1), clustered(50, 2)
    store, exact = make(), make("exact", ann_threshold=0)
    for start in range(0, len(data), 500):
        batch = records(data[start : start + 500], start=start)
        store.upsert(batch)
        exact.upsert(batch)
    assert store.wait_until_built(60)
    assert store.approximate_collections() == {"big"}
    assert exact.approximate_collections() == set()
    found = [len(set(top(store, q)) & set(top(exact, q))) / 10 for q in queries]
    assert np.mean(found) >= 0.98
    # Scores are the exact cosines of the vectors found.
    for q in queries[:5]:
        cosines = {h.chunk_id: h.score for h in exact.search(q, k=4_000)}
        for hit in store.search(q, k=10):
            assert hit.score == pytest.approx(cosines[hit.chunk_id], abs=1e-5)


def test_the_collection_filter_holds_on_approximate_indexes(
    make: Callable[..., FaissVectorStore],
) -> None:
    store = make(background=False)
    store.upsert(records(clustered(1_500, 3), "one"))
    store.upsert(records(clustered(1_500, 3), "two", start=10_000))  # the same vectors
    assert store.approximate_collections() == {"one", "two"}
    for q in clustered(10, 4):
        hits = store.search(q, k=10, collections={"two"})
        assert len(hits) == 10
        assert {h.collection_id for h in hits} == {"two"}


def test_k_hits_come_back_from_a_graph_that_is_mostly_dead(
    make: Callable[..., FaissVectorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ann, "DEAD_FRACTION", 1.0)  # never rebuilt without the dead rows
    store = make(background=False, ann_ef_search=8, ann_threshold=100)
    data = clustered(1_500, 17)
    store.upsert(records(data))
    store.delete_documents([f"d{i}" for i in range(150) if i % 20])  # 80 vectors left
    assert store.approximate_collections() == {"big"}
    hits = store.search(data[0], k=50)
    assert len({h.chunk_id for h in hits}) == 50
    assert all(int(h.chunk_id[1:]) // 10 % 20 == 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(store.search(data[0], k=100)) == 80


def test_searches_are_exact_until_the_build_is_ready(
    make: Callable[..., FaissVectorStore], paused: tuple[threading.Event, threading.Event]
) -> None:
    waiting, go = paused
    data = clustered(2_000, 5)
    store = make()
    store.upsert(records(data))
    assert waiting.wait(30)
    assert store.approximate_collections() == set()
    assert top(store, data[7], k=1) == ["c7"]
    go.set()
    assert store.wait_until_built(60)
    assert store.approximate_collections() == {"big"}


def test_writes_during_a_build_are_honoured(
    make: Callable[..., FaissVectorStore],
    paused: tuple[threading.Event, threading.Event],
    tmp_path: Path,
) -> None:
    waiting, go = paused
    data = clustered(2_000, 6)
    store = make()
    store.upsert(records(data))
    assert waiting.wait(30)  # c0-c399 copied, the rest not yet
    fresh = clustered(4, 7)
    store.upsert(
        [
            rec("c5", "d0", "big", fresh[0]),  # copied already, replaced
            rec("c1500", "d150", "big", fresh[1]),  # not copied yet, replaced
            rec("new", "dn", "big", fresh[2]),
            rec("c1900", "d190", "small", fresh[3]),  # moved out
        ]
    )
    store.delete_documents(["d1", "d160"])  # c10-c19 (copied), c1600-c1609 (not yet)
    go.set()
    assert store.wait_until_built(60)
    assert store.approximate_collections() == {"big"}
    check_the_writes(store, data, fresh)
    store.flush()
    store.close()
    check_the_writes(make(), data, fresh)


def check_the_writes(store: FaissVectorStore, data: Any, fresh: Any) -> None:
    assert store.wait_until_built(60)
    assert store.count(collections={"big"}) == 2_000 - 20 - 1 + 1
    for i, chunk_id in enumerate(["c5", "c1500", "new"]):
        (hit,) = store.search(fresh[i], k=1, collections={"big"})
        assert (hit.chunk_id, hit.score) == (chunk_id, pytest.approx(1.0, abs=1e-5))
    assert top(store, fresh[3], k=1) == ["c1900"]
    assert "c1900" not in top(store, fresh[3], k=20, collections={"big"})
    for i in (5, 1500):  # the old vectors are gone: nothing matches them exactly
        assert store.search(data[i], k=1)[0].score < 0.999
    gone = {f"c{i}" for i in [*range(10, 20), *range(1600, 1610)]}
    for i in [*range(10, 20), *range(1600, 1610)]:
        assert not gone & set(top(store, data[i], k=20))


def test_deletes_and_replacements_after_the_build_are_honoured(
    make: Callable[..., FaissVectorStore],
) -> None:
    data = clustered(1_500, 8)
    store = make(background=False)
    store.upsert(records(data))
    assert store.approximate_collections() == {"big"}
    store.delete_documents([f"d{i}" for i in range(0, 150, 2)])  # half the chunks
    moved = clustered(1, 9)[0]
    store.upsert([rec("c15", "d1", "big", moved)])
    for i in range(0, 1_500, 37):
        hits = top(store, data[i], k=5)
        deleted = (i // 10) % 2 == 0
        assert (f"c{i}" in hits) == (not deleted)
        assert all((int(c[1:]) // 10) % 2 == 1 for c in hits)
    assert top(store, moved, k=1) == ["c15"]


def test_writes_to_a_graph_are_searchable_at_once_and_merged_in_the_background(
    make: Callable[..., FaissVectorStore],
) -> None:
    store = make()
    store.upsert(records(clustered(1_500, 18)))
    assert store.wait_until_built(60)
    fresh = clustered(3_000, 19)
    store.upsert(records(fresh, start=10_000))  # more than a merge step: merged in steps
    for i in (0, 1_234, 2_999):
        assert top(store, fresh[i], k=1) == [f"c{10_000 + i}"]
    assert store.wait_until_built(60)
    graph = store._shards["big"].index
    assert (graph.pending, graph.ntotal) == (0, 4_500)
    store.delete_documents(["d1123"])  # c11230-c11239, merged into the graph by now
    assert store.count() == 4_490
    assert top(store, fresh[0], k=1) == ["c10000"]
    assert "c11234" not in top(store, fresh[1_234], k=10)


def test_a_shrunk_collection_goes_back_to_exact_search(
    make: Callable[..., FaissVectorStore],
) -> None:
    data = clustered(1_200, 10)
    store = make(background=False)
    store.upsert(records(data))
    assert store.approximate_collections() == {"big"}
    store.delete_documents([f"d{i}" for i in range(80)])  # 400 left, under half the threshold
    assert store.approximate_collections() == set()
    assert top(store, data[1_000], k=1) == ["c1000"]
    assert store.count() == 400


def test_close_during_a_build_neither_crashes_nor_hangs(
    make: Callable[..., FaissVectorStore],
    paused: tuple[threading.Event, threading.Event],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    waiting, go = paused
    store = make()
    store.upsert(records(clustered(2_000, 11)))
    store.flush()
    assert waiting.wait(30)
    threading.Timer(0.2, go.set).start()  # the build resumes while close() waits for it
    copied = list(COPIED)
    with caplog.at_level(logging.WARNING):
        store.close()
    assert store.wait_until_built(0)
    assert copied == COPIED  # it stopped instead of copying the rest
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    with pytest.raises(VectorStoreError, match="closed"):
        store.search(clustered(1, 1)[0], k=1)
    again = make()
    assert again.count() == 2_000


def test_close_right_after_a_build_started_returns(
    make: Callable[..., FaissVectorStore], caplog: pytest.LogCaptureFixture
) -> None:
    store = make()
    store.upsert(records(clustered(3_000, 12)))
    with caplog.at_level(logging.WARNING):
        store.close()
    assert store.wait_until_built(0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_existing_big_collection_is_indexed_when_opened(
    make: Callable[..., FaissVectorStore],
) -> None:
    data = clustered(1_500, 13)
    first = make(ann_threshold=0)
    first.upsert(records(data))
    first.flush()
    first.close()
    store = make()
    assert store.wait_until_built(60)
    assert store.approximate_collections() == {"big"}
    assert top(store, data[3], k=1) == ["c3"]


def test_a_failed_build_leaves_the_collection_searchable(
    make: Callable[..., FaissVectorStore],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(ann.Graph, "insert", broken)
    data = clustered(1_500, 14)
    store = make()
    store.upsert(records(data))
    assert store.wait_until_built(60)
    assert store.approximate_collections() == set()
    assert top(store, data[9], k=1) == ["c9"]
    store.upsert(records(clustered(10, 15), start=5_000))  # no endless retries
    assert store.wait_until_built(60)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "failed" in errors[0].getMessage()


def test_invalid_ann_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(VectorStoreError, match="ef_search"):
        FaissVectorStore(tmp_path, embedding_model=MODEL, dimension=DIM, ann_ef_search=0)


def test_settings_reach_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.container import Container
    from app.settings import Settings

    monkeypatch.setenv("LANTERN_VECTOR_STORE__FAISS__ANN_THRESHOLD", "1000")
    monkeypatch.setenv("LANTERN_VECTOR_STORE__FAISS__ANN_EF_SEARCH", "16")
    settings = Settings(data_dir=tmp_path, embedding={"kind": "fake", "fake": {"dimension": DIM}})
    container = Container(settings)
    try:
        store = container.vectors
        assert isinstance(store, FaissVectorStore)
        store.upsert(records(clustered(1_000, 16)))
        assert store.wait_until_built(60)
        assert store.approximate_collections() == {"big"}
    finally:
        container.close()


def kept_graphs(store: FaissVectorStore) -> list[Path]:
    return sorted(store.directory.glob("graph-*.hnsw"))


def built_and_closed(make: Callable[..., FaissVectorStore], seed: int) -> tuple[Any, Path]:
    """1,500 vectors whose graph was built, flushed and closed; the vectors, the index dir."""
    data = clustered(1_500, seed)
    first = make()
    first.upsert(records(data))
    assert first.wait_until_built(60)
    first.flush()
    first.close()
    return data, first.directory


def no_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph filled from scratch fails from now on (restoring one does not insert)."""

    def broken(*args: Any) -> Any:
        raise AssertionError("the graph was built again")

    monkeypatch.setattr(ann.Graph, "insert", broken)


def test_a_reopened_big_collection_restores_its_graph_instead_of_building_it(
    make: Callable[..., FaissVectorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, directory = built_and_closed(make, 21)
    assert len(list(directory.glob("graph-*.hnsw"))) == 1

    no_building(monkeypatch)
    store = make()
    assert store.wait_until_built(60)
    assert store.approximate_collections() == {"big"}
    for i in (0, 700, 1_499):
        assert top(store, data[i], k=1) == [f"c{i}"]


def test_writes_since_the_graph_was_kept_are_honoured_when_it_is_restored(
    make: Callable[..., FaissVectorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = built_and_closed(make, 22)

    # Changed with the graph off: replaced, deleted and new vectors the kept graph lacks.
    changed = make(ann_threshold=0)
    moved = clustered(1, 23)[0]
    changed.upsert([rec("c3", "d0", "big", moved)])
    changed.delete_documents(["d50"])  # c500..c509
    new = clustered(20, 24)
    changed.upsert(records(new, start=9_000))
    changed.flush()
    changed.close()

    no_building(monkeypatch)  # merging the delta into the graph inserts: allowed later
    store = make()
    assert store.wait_until_built(60)
    assert store.approximate_collections() == {"big"}
    (hit,) = store.search(moved, k=1)
    assert hit.chunk_id == "c3"
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert "c3" not in top(store, data[3], k=3)  # its old vector is gone
    assert not {f"c{i}" for i in range(500, 510)} & set(top(store, data[505], k=20))
    assert top(store, new[7], k=1) == ["c9007"]
    assert len(store.search(data[0], k=2_000)) == 1_500 - 10 + 20


def test_a_kept_graph_that_does_not_read_is_built_again(
    make: Callable[..., FaissVectorStore], caplog: pytest.LogCaptureFixture
) -> None:
    data, directory = built_and_closed(make, 25)
    (kept,) = directory.glob("graph-*.hnsw")
    kept.write_bytes(kept.read_bytes()[: kept.stat().st_size // 2])

    store = make()
    assert store.wait_until_built(60)
    assert store.approximate_collections() == {"big"}
    assert top(store, data[42], k=1) == ["c42"]
    assert "building it again" in caplog.text
    assert kept.stat().st_size > 2 * len(data) * DIM  # written again, whole


def test_graphs_are_not_kept_when_turned_off_nor_for_gone_collections(
    make: Callable[..., FaissVectorStore],
) -> None:
    off = make("off", ann_persist=False)
    off.upsert(records(clustered(1_500, 26)))
    assert off.wait_until_built(60)
    assert kept_graphs(off) == []

    _, directory = built_and_closed(make, 27)
    assert len(list(directory.glob("graph-*.hnsw"))) == 1
    emptied = make()
    emptied.clear()
    emptied.flush()
    emptied.close()
    assert len(kept_graphs(make())) == 0
