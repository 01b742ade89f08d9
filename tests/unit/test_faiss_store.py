"""FAISS-specific behaviour: segments and their merging, vectors and ids, the registry."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import VectorStoreError
from retrieval.vectorstores import _faiss_segments as segments
from retrieval.vectorstores import faiss_store
from retrieval.vectorstores.faiss_store import FaissVectorStore, faiss_id
from retrieval.vectorstores.registry import create_vector_store
from tests.contract.vectorstore_contract import DIM, MODEL, rec, vec
from tests.unit.faiss_helpers import (
    COLLECTIONS,
    assert_no_garbage,
    change_every_kind_of_collection,
    files_on_disk,
    open_store,
    segment_files,
    snapshot,
    table,
    unit_rows,
)

# -- segments: a flush writes what changed -------------------------------------


def test_a_flush_appends_a_segment_of_the_changes(
    flushed: FaissVectorStore, tmp_path: Path
) -> None:
    old = segment_files(tmp_path)
    change_every_kind_of_collection(flushed)
    flushed.flush()
    new = segment_files(tmp_path)
    assert set(new) == {"a", "d", "e"}
    assert new["e"][0] == old["e"][0]  # the big segment stays; its changes are appended
    (added,) = [s for s in table(tmp_path)["e"] if s["file"] not in old["e"]]
    assert (added["vectors"], added["tombstones"]) == (2, 21)  # e0 and e-new; 20 + e0's old row
    assert len(new["a"]) == 1  # small segments are merged by every flush
    assert_no_garbage(tmp_path)


@pytest.mark.parametrize("change", ["add", "replace", "delete"])
def test_small_flush_into_large_collection_writes_o_of_the_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    store = open_store(tmp_path, dimension=64)
    rows = unit_rows(20_000, 1, 64)
    store.upsert([rec(f"c{i}", f"d{i // 50}", "big", v) for i, v in enumerate(rows)])
    store.flush()
    (base,) = files_on_disk(tmp_path)
    full = (tmp_path / base).stat().st_size
    base_mtime = (tmp_path / base).stat().st_mtime_ns
    written: list[int] = []
    real_replace = os.replace

    def measuring_replace(src: Any, dst: Any) -> None:
        written.append(Path(src).stat().st_size)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", measuring_replace)
    if change == "delete":
        assert store.delete_documents(["d7"]) == 50
    else:
        prefix = "new" if change == "add" else "c"
        store.upsert(
            [rec(f"{prefix}{i}", "dn", "big", v) for i, v in enumerate(unit_rows(50, 2, 64))]
        )
    store.flush()
    assert sum(written) < 0.05 * full
    assert len(files_on_disk(tmp_path)) == 2
    assert (tmp_path / base).stat().st_mtime_ns == base_mtime


def test_many_small_flushes_reopen_like_one_big_flush(tmp_path: Path, no_fsync: None) -> None:
    rng = np.random.default_rng(11)
    small, big = open_store(tmp_path / "small"), open_store(tmp_path / "big")
    docs: dict[str, list[str]] = {}
    max_segments = 0
    for step in range(400):
        action = rng.choice(["add", "add", "replace", "delete"]) if docs else "add"
        if action == "delete":
            doc = sorted(docs)[rng.integers(len(docs))]
            del docs[doc]
            for store in (small, big):
                store.delete_documents([doc])
        else:
            doc = f"doc{step}" if action == "add" else sorted(docs)[rng.integers(len(docs))]
            n = len(docs.get(doc, ())) or int(rng.integers(1, 12))
            docs[doc] = [f"{doc}-{i}" for i in range(n)]
            collection = COLLECTIONS[int(rng.integers(3))]  # a replace may move the document
            batch = [
                rec(c, doc, collection, v)
                for c, v in zip(docs[doc], unit_rows(n, step), strict=True)
            ]
            for store in (small, big):
                store.upsert(batch)
        small.flush()
        max_segments = max(
            [max_segments, *(len(f) for f in segment_files(tmp_path / "small").values())]
        )
    big.flush()
    queries = unit_rows(10, 99)
    expected = [snapshot(small)] + [small.search(q, k=10) for q in queries]
    for store in (small, big):
        store.close()
    for directory in ("small", "big"):
        again = open_store(tmp_path / directory)
        assert [snapshot(again)] + [again.search(q, k=10) for q in queries] == expected
        assert [again.search(q, k=5, collections={"b"}) for q in queries] == [
            [h for h in again.search(q, k=1000) if h.collection_id == "b"][:5] for q in queries
        ]
    assert 1 < max_segments <= segments.MAX_SEGMENTS
    assert_no_garbage(tmp_path / "small")


def test_segment_count_and_files_stay_bounded(tmp_path: Path, no_fsync: None) -> None:
    store = open_store(tmp_path)
    rows = unit_rows(6000, 5)
    for start in range(0, 6000, 10):
        store.upsert([rec(f"c{i}", f"d{start}", "a", rows[i]) for i in range(start, start + 10)])
        store.flush()
        assert len(segment_files(tmp_path)["a"]) <= 1 + segments.tier(start + 10)
        assert len(files_on_disk(tmp_path)) == len(segment_files(tmp_path)["a"])
    assert store.count() == 6000
    one_segment = open_store(tmp_path / "one")
    one_segment.upsert([rec(f"c{i}", f"d{i - i % 10}", "a", rows[i]) for i in range(6000)])
    one_segment.flush()
    on_disk = sum(p.stat().st_size for p in tmp_path.glob("seg-*"))
    assert on_disk < 1.1 * sum(p.stat().st_size for p in (tmp_path / "one").glob("seg-*"))


def test_tombstones_over_a_quarter_compact_the_collection(tmp_path: Path, no_fsync: None) -> None:
    store = open_store(tmp_path)
    store.upsert([rec(f"c{i}", f"d{i // 10}", "a", v) for i, v in enumerate(unit_rows(2000, 4))])
    store.flush()
    layouts = []
    for doc in range(60):  # 10 chunks each: 600 of 2000 vectors
        store.delete_documents([f"d{doc}"])
        store.flush()
        layouts.append([(s["vectors"], s["tombstones"]) for s in table(tmp_path)["a"]])
    assert layouts[0] == [(2000, 0), (0, 10)]  # a delete writes tombstones only
    # 41st delete: 410 dead > 25% of 1590 live, so the flush rewrites the collection.
    assert layouts.index([(1590, 0)]) == 40
    assert all(layout[0] == (2000, 0) and len(layout) <= 4 for layout in layouts[:40])
    assert layouts[-1] == [(1590, 0), (0, 130), (0, 60)]
    assert len(files_on_disk(tmp_path)) == 3
    store.close()
    again = open_store(tmp_path)
    assert again.count() == 1400
    assert again.document_ids() == {f"d{i}" for i in range(60, 200)}


def test_replacements_and_deletes_survive_reopening(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.upsert([rec(f"c{i}", f"d{i // 10}", "a", v) for i, v in enumerate(unit_rows(500, 6))])
    store.flush()
    for round_ in range(3):  # the same chunk replaced in three successive segments
        store.upsert([rec("c0", "d0", "a", vec(1, round_))])
        store.delete_documents([f"d{round_ + 1}"])
        store.flush()
    store.upsert([rec("c499", "d49", "b", vec(0, 1))])  # moved to another collection
    store.flush()
    assert len(segment_files(tmp_path)["a"]) > 1
    before = snapshot(store)
    store.close()
    again = open_store(tmp_path)
    assert snapshot(again) == before
    assert again.count(collections={"a"}) == 500 - 30 - 1
    (hit,) = again.search(vec(1, 2), k=1)
    assert (hit.chunk_id, hit.score) == ("c0", pytest.approx(1.0, abs=1e-5))
    assert [h.chunk_id for h in again.search(vec(0, 1), k=1, collections={"b"})] == ["c499"]
    assert not {"d1", "d2", "d3"} & again.document_ids()


def fake_segment(vectors: int, live: int, tombstones: int = 0) -> segments.Segment:
    return segments.Segment(
        "seg.npz", 1, vectors, np.zeros((tombstones, 2), np.int64), dict.fromkeys(range(live))
    )


@pytest.mark.parametrize(
    ("sizes", "pending", "keep"),
    [
        ([1000, 300], 50, 2),  # a smaller tier than the newest segment: append
        ([1000, 100], 50, 1),  # same tier: merge
        ([5000, 300, 100], 200, 1),  # merging stops at a larger tier
        ([1000, 300, 100], 0, 3),  # nothing changed: nothing rewritten
    ],
)
def test_merge_policy_merges_the_newest_segments_of_a_tier(
    sizes: list[int], pending: int, keep: int
) -> None:
    found = [fake_segment(n, n) for n in sizes]
    assert segments.segments_to_keep(found, pending=pending, live=sum(sizes)) == keep


def test_merge_policy_caps_segments_and_compacts_tombstones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(segments, "MAX_SEGMENTS", 3)
    tiers = [fake_segment(n, n) for n in (100_000, 10_000, 1000)]
    assert segments.segments_to_keep(tiers, pending=1, live=111_001) == 2
    dead = [fake_segment(1000, 790), fake_segment(0, 0, 210)]
    assert segments.segments_to_keep(dead, pending=1, live=790) == 0


# -- vectors, ids, lifecycle -------------------------------------------------


def test_vectors_are_normalised_so_scores_are_cosines(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    raw = np.zeros(DIM, dtype=np.float32)
    raw[:2] = [30.0, 40.0]
    store.upsert([rec("c1", "d1", "a", raw)])
    (hit,) = store.search(raw * 7, k=1)
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert store.search(vec(1), k=1)[0].score == pytest.approx(0.6, abs=1e-5)


@pytest.mark.parametrize("value", [np.inf, 0.0])
def test_infinite_and_zero_vectors_are_rejected(tmp_path: Path, value: float) -> None:
    store = open_store(tmp_path)
    bad = np.full(DIM, value, dtype=np.float32)
    with pytest.raises(VectorStoreError):
        store.upsert([rec("c1", "d1", "a", bad)])
    with pytest.raises(VectorStoreError):
        store.search(bad, k=1)


def test_last_record_wins_within_one_batch(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.upsert([rec("c1", "d1", "a", vec(1)), rec("c1", "d1", "b", vec(0, 1))])
    assert (store.count(collections={"a"}), store.count(collections={"b"})) == (0, 1)


def test_faiss_ids_are_stable_non_negative_int64() -> None:
    assert faiss_id("chunk-1") == faiss_id("chunk-1") != faiss_id("chunk-2")
    assert 0 <= faiss_id("chunk-1") < 2**63


def test_faiss_id_collision_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path)
    monkeypatch.setattr(faiss_store, "faiss_id", lambda chunk_id: 42)
    store.upsert([rec("c1", "d1", "a", vec(1))])
    with pytest.raises(VectorStoreError, match="collision"):
        store.upsert([rec("c2", "d2", "a", vec(0, 1))])
    assert store.count() == 1


def test_misused_arguments_fail_loudly(flushed: FaissVectorStore) -> None:
    with pytest.raises(TypeError):
        flushed.delete_documents("d1")
    with pytest.raises(TypeError):
        flushed.search(vec(1), k=1, collections="a")
    with pytest.raises(VectorStoreError, match="k must be"):
        flushed.search(vec(1), k=-1)
    assert flushed.search(vec(1), k=0) == []
    with pytest.raises(VectorStoreError, match="non-empty"):
        flushed.upsert([rec("c9", "", "a", vec(1))])


def test_close_does_not_flush_and_warns(
    flushed: FaissVectorStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flushed.upsert([rec("x", "dx", "a", vec(1))])
    with caplog.at_level(logging.WARNING):
        flushed.close()
    flushed.close()
    assert "unflushed" in caplog.text
    with pytest.raises(VectorStoreError, match="closed"):
        flushed.search(vec(1), k=1)
    assert "dx" not in open_store(tmp_path).document_ids()


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            rng = np.random.default_rng(worker)
            for i in range(50):
                v = rng.standard_normal(DIM).astype(np.float32)
                store.upsert([rec(f"w{worker}-{i}", f"d{worker}", f"c{worker % 2}", v)])
                store.search(v, k=3, collections={"c0"})
                if i % 10 == 0:
                    store.flush()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store.flush()
    assert open_store(tmp_path).count() == 300


# -- registry ----------------------------------------------------------------


def test_registry_builds_faiss(tmp_path: Path) -> None:
    store = create_vector_store("faiss", directory=tmp_path, embedding_model=MODEL, dimension=DIM)
    assert isinstance(store, FaissVectorStore)
    assert store.manifest.backend == "faiss"


def test_registry_explains_an_unknown_kind() -> None:
    with pytest.raises(VectorStoreError, match="unknown vector store kind 'nope'"):
        create_vector_store("nope")


def test_registry_imports_backends_lazily() -> None:
    code = "import sys, retrieval.vectorstores.registry; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
