"""FAISS-specific behaviour: crash safety of flush, corrupt files, shard files, registry."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import IndexMismatchError, VectorStoreError
from retrieval.vectorstores import faiss_store
from retrieval.vectorstores.faiss_store import FaissVectorStore, faiss_id
from retrieval.vectorstores.registry import create_vector_store
from tests.contract.vectorstore_contract import DIM, MODEL, rec, vec


def open_store(directory: Path, model: str = MODEL, dimension: int = DIM) -> FaissVectorStore:
    return FaissVectorStore(directory, embedding_model=model, dimension=dimension)


def snapshot(store: FaissVectorStore) -> tuple[Any, ...]:
    hits = store.search(vec(1, 1, 1), k=100)
    per_collection = {c: store.count(collections={c}) for c in ("a", "b", "c", "d")}
    return (
        store.document_ids(),
        per_collection,
        [(h.chunk_id, h.document_id, h.collection_id, round(h.score, 5)) for h in hits],
    )


def shard_files(directory: Path) -> dict[str, str]:
    table = json.loads((directory / "shards.json").read_text())
    return {c: entry["file"] for c, entry in table["shards"].items()}


@pytest.fixture
def flushed(tmp_path: Path) -> FaissVectorStore:
    """Collections a (d1: two chunks), b (d2), c (d3), flushed to disk."""
    store = open_store(tmp_path)
    store.upsert(
        [
            rec("a1", "d1", "a", vec(1)),
            rec("a2", "d1", "a", vec(1, 1)),
            rec("b1", "d2", "b", vec(0, 1)),
            rec("c1", "d3", "c", vec(0, 0, 1)),
        ]
    )
    store.flush()
    return store


def change_every_kind_of_shard(store: FaissVectorStore) -> None:
    """Grow a, move b's only chunk to a (b empties), delete c's document, create d."""
    store.upsert([rec("a3", "d4", "a", vec(1, 2)), rec("b1", "d2", "a", vec(0, 1))])
    store.delete_documents(["d3"])
    store.upsert([rec("d1", "d5", "d", vec(2, 1, 1))])


# -- atomicity ---------------------------------------------------------------


@pytest.mark.parametrize("failing_call", [0, 1, 2])
def test_crash_during_flush_leaves_previous_state_loadable(
    flushed: FaissVectorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int
) -> None:
    before = snapshot(flushed)
    change_every_kind_of_shard(flushed)
    after = snapshot(flushed)
    real_replace, calls = os.replace, []

    def crashing_replace(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) - 1 == failing_call:  # 0, 1: a new shard file; 2: shards.json
            raise OSError("disk on fire")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(VectorStoreError, match="disk on fire"):
        flushed.flush()
    monkeypatch.setattr(os, "replace", real_replace)
    # What a killed process would leave: a half-written temp file next to the data.
    (tmp_path / ".tmp-crashed.part").write_bytes(b"half a shard")

    reopened = open_store(tmp_path)
    assert snapshot(reopened) == before
    reopened.close()

    flushed.flush()  # the failed flush kept its changes: retrying commits them
    flushed.close()
    assert snapshot(open_store(tmp_path)) == after
    assert not list(tmp_path.glob(".tmp-*"))
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == sorted(
        shard_files(tmp_path).values()
    )


def test_crash_after_commit_before_cleanup_loads_new_state(
    flushed: FaissVectorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    change_every_kind_of_shard(flushed)
    after = snapshot(flushed)

    def failing_unlink(self: Path, missing_ok: bool = False) -> None:
        raise OSError("read-only")

    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", failing_unlink)
        flushed.flush()  # committed; only the clean-up failed
    assert len(list(tmp_path.glob("shard-*"))) > len(shard_files(tmp_path))
    assert snapshot(open_store(tmp_path)) == after

    flushed.upsert([rec("a4", "d6", "a", vec(3, 1))])
    flushed.flush()
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == sorted(
        shard_files(tmp_path).values()
    )


def test_only_changed_shards_are_rewritten(flushed: FaissVectorStore, tmp_path: Path) -> None:
    old = shard_files(tmp_path)
    flushed.upsert([rec("a3", "d4", "a", vec(1, 2))])
    flushed.flush()
    new = shard_files(tmp_path)
    assert new["b"] == old["b"]
    assert new["c"] == old["c"]
    assert new["a"] != old["a"]
    assert not (tmp_path / old["a"]).exists()


def test_flush_without_changes_writes_nothing(flushed: FaissVectorStore, tmp_path: Path) -> None:
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    flushed.flush()
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes


def test_shard_file_is_removed_when_its_collection_empties(
    flushed: FaissVectorStore, tmp_path: Path
) -> None:
    c_file = shard_files(tmp_path)["c"]
    flushed.delete_documents(["d3"])
    flushed.flush()
    assert "c" not in shard_files(tmp_path)
    assert not (tmp_path / c_file).exists()
    flushed.clear()
    flushed.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "shards.json"]


# -- corrupt and foreign files -----------------------------------------------


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"not a zip file at all",
        lambda data: data[:200] + bytes(b ^ 0xFF for b in data[200:260]) + data[260:],
    ],
    ids=["truncated", "garbage", "flipped-bytes"],
)
def test_corrupt_shard_file_names_the_file_and_suggests_reindex(
    flushed: FaissVectorStore, tmp_path: Path, corrupt: Any
) -> None:
    flushed.close()
    path = tmp_path / shard_files(tmp_path)["a"]
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(VectorStoreError, match="lantern reindex") as info:
        open_store(tmp_path)
    assert path.name in str(info.value)


@pytest.mark.parametrize("name", ["shards.json", "manifest.json"])
def test_corrupt_json_suggests_reindex(
    flushed: FaissVectorStore, tmp_path: Path, name: str
) -> None:
    flushed.close()
    (tmp_path / name).write_text("{not json")
    with pytest.raises(VectorStoreError, match=f"{name}.*lantern reindex"):
        open_store(tmp_path)


def test_missing_shard_file_is_reported(flushed: FaissVectorStore, tmp_path: Path) -> None:
    flushed.close()
    (tmp_path / shard_files(tmp_path)["b"]).unlink()
    with pytest.raises(VectorStoreError, match="lantern reindex"):
        open_store(tmp_path)


def test_shards_without_manifest_are_refused(flushed: FaissVectorStore, tmp_path: Path) -> None:
    flushed.close()
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(VectorStoreError, match="no manifest"):
        open_store(tmp_path)


def test_mismatch_message_names_both_models(tmp_path: Path) -> None:
    open_store(tmp_path, "all-MiniLM-L6-v2", 384).close()
    with pytest.raises(IndexMismatchError) as info:
        open_store(tmp_path, "BAAI/bge-base-en-v1.5", 768)
    assert str(info.value) == (
        f"index at {tmp_path} was built with 'all-MiniLM-L6-v2' (384-d) but the configured "
        "embedding model is 'BAAI/bge-base-en-v1.5' (768-d); run `lantern reindex` to rebuild it"
    )


def test_index_of_another_backend_is_refused(tmp_path: Path) -> None:
    manifest = {
        "embedding_model": MODEL,
        "dimension": DIM,
        "backend": "milvus",
        "format_version": 1,
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="'milvus' backend"):
        open_store(tmp_path)


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


@pytest.mark.parametrize(("kind", "message"), [("milvus", "not available"), ("nope", "unknown")])
def test_registry_explains_missing_kinds(kind: str, message: str) -> None:
    with pytest.raises(VectorStoreError, match=message):
        create_vector_store(kind)


def test_registry_imports_backends_lazily() -> None:
    code = "import sys, retrieval.vectorstores.registry; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
