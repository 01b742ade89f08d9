"""FAISS store durability: crash safety of flush, corrupt and foreign files."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from retrieval.errors import IndexMismatchError, VectorStoreError
from retrieval.vectorstores import faiss_store
from retrieval.vectorstores.faiss_store import FaissVectorStore
from tests.contract.vectorstore_contract import DIM, MODEL, rec, vec
from tests.unit.faiss_helpers import (
    assert_no_garbage,
    change_every_kind_of_collection,
    files_on_disk,
    open_store,
    segment_files,
    snapshot,
)

# -- atomicity ---------------------------------------------------------------


@pytest.mark.parametrize("failing_call", [0, 1, 2, 3], ids=["seg-a", "seg-d", "seg-e", "commit"])
def test_crash_during_flush_leaves_previous_state_loadable(
    flushed: FaissVectorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int
) -> None:
    before = snapshot(flushed)
    change_every_kind_of_collection(flushed)
    after = snapshot(flushed)
    real_replace, calls = os.replace, []

    def crashing_replace(src: Any, dst: Any) -> None:
        calls.append(Path(dst).name)
        if len(calls) - 1 == failing_call:
            raise OSError("disk on fire")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(VectorStoreError, match="disk on fire"):
        flushed.flush()
    monkeypatch.setattr(os, "replace", real_replace)
    assert calls[-1] == ("shards.json" if failing_call == 3 else calls[-1])
    # What a killed process would leave: a half-written temp file next to the data.
    (tmp_path / ".tmp-crashed.part").write_bytes(b"half a segment")

    reopened = open_store(tmp_path)
    assert snapshot(reopened) == before
    reopened.close()

    flushed.flush()  # the failed flush kept its changes: retrying commits them
    flushed.close()
    assert snapshot(open_store(tmp_path)) == after
    assert_no_garbage(tmp_path)


def test_process_killed_before_commit_then_another_process_flushes(
    flushed: FaissVectorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(flushed)
    change_every_kind_of_collection(flushed)
    with monkeypatch.context() as patch:  # every segment is in place, shards.json is not
        patch.setattr(faiss_store, "write_segment_table", _raise_killed)
        with pytest.raises(KeyboardInterrupt):
            flushed.flush()
    assert len(files_on_disk(tmp_path)) > sum(map(len, segment_files(tmp_path).values()))
    successor = open_store(tmp_path)
    assert snapshot(successor) == before
    successor.upsert([rec("a9", "d9", "a", vec(3, 1))])
    successor.flush()  # reuses the dead attempt's file names, and removes its leftovers
    expected = snapshot(successor)
    successor.close()
    assert snapshot(open_store(tmp_path)) == expected
    assert_no_garbage(tmp_path)


def _raise_killed(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def test_crash_after_commit_before_cleanup_loads_new_state(
    flushed: FaissVectorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    change_every_kind_of_collection(flushed)
    after = snapshot(flushed)

    def failing_unlink(self: Path, missing_ok: bool = False) -> None:
        raise OSError("read-only")

    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", failing_unlink)
        flushed.flush()  # committed; only the clean-up failed
    assert len(files_on_disk(tmp_path)) > sum(map(len, segment_files(tmp_path).values()))
    assert snapshot(open_store(tmp_path)) == after

    flushed.upsert([rec("a4", "d6", "a", vec(3, 1))])
    flushed.flush()
    assert_no_garbage(tmp_path)


def test_only_changed_collections_get_new_files(flushed: FaissVectorStore, tmp_path: Path) -> None:
    old = segment_files(tmp_path)
    flushed.upsert([rec("a3", "d4", "a", vec(1, 2))])
    flushed.flush()
    new = segment_files(tmp_path)
    assert {c: new[c] for c in "bce"} == {c: old[c] for c in "bce"}
    assert new["a"] != old["a"]
    assert not (tmp_path / old["a"][0]).exists()


def test_flush_without_changes_writes_nothing(flushed: FaissVectorStore, tmp_path: Path) -> None:
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    flushed.upsert([rec("tmp", "dt", "a", vec(1))])
    flushed.delete_documents(["dt"])
    flushed.flush()
    flushed.flush()
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes


def test_segment_files_are_removed_when_their_collection_empties(
    flushed: FaissVectorStore, tmp_path: Path
) -> None:
    c_files = segment_files(tmp_path)["c"]
    flushed.delete_documents(["d3"])
    flushed.flush()
    assert "c" not in segment_files(tmp_path)
    assert not any((tmp_path / f).exists() for f in c_files)
    flushed.clear()
    flushed.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "shards.json"]


# -- corrupt and foreign files -----------------------------------------------


def flip_last_data_byte(data: bytes) -> bytes:
    """Flip a bit in the data of the segment's last array (tombstones), past its header."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("tombstones.npy")
    start = info.header_offset + 30 + int.from_bytes(data[info.header_offset + 26 :][:2], "little")
    end = start + int.from_bytes(data[info.header_offset + 28 :][:2], "little") + info.file_size
    return data[: end - 1] + bytes([data[end - 1] ^ 1]) + data[end:]


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"not a zip file at all",
        lambda data: data[:200] + bytes(b ^ 0xFF for b in data[200:260]) + data[260:],
        flip_last_data_byte,
    ],
    ids=["truncated", "garbage", "flipped-bytes", "one-bit-flipped"],
)
@pytest.mark.parametrize("which", [0, -1], ids=["base-segment", "tombstone-segment"])
def test_corrupt_segment_file_names_the_file_and_suggests_reindex(
    flushed: FaissVectorStore, tmp_path: Path, corrupt: Any, which: int
) -> None:
    flushed.delete_documents(["e5"])
    flushed.flush()
    flushed.close()
    path = tmp_path / segment_files(tmp_path)["e"][which]
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


def test_missing_segment_file_is_reported(flushed: FaissVectorStore, tmp_path: Path) -> None:
    flushed.close()
    (tmp_path / segment_files(tmp_path)["b"][0]).unlink()
    with pytest.raises(VectorStoreError, match="lantern reindex"):
        open_store(tmp_path)


def rewrite_table(directory: Path, edit: Any) -> None:
    state = json.loads((directory / "shards.json").read_text())
    edit(state)
    (directory / "shards.json").write_text(json.dumps(state))


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t["collections"]["b"][0].update(file=t["collections"]["c"][0]["file"]),
        lambda t: t["collections"]["e"].reverse(),
        lambda t: t["collections"]["e"].pop(0),
        lambda t: t["collections"]["e"][1].update(tombstones=3),
        lambda t: t["collections"]["b"][0].update(file="../seg-0000000001-000000.npz"),
        lambda t: t.update(generation=0),
    ],
    ids=["other-collection", "reordered", "base-missing", "count", "path", "generation"],
)
def test_table_that_does_not_match_its_files_is_refused(
    flushed: FaissVectorStore, tmp_path: Path, edit: Any
) -> None:
    flushed.delete_documents(["e5"])
    flushed.flush()
    flushed.close()
    rewrite_table(tmp_path, edit)
    with pytest.raises(VectorStoreError, match="lantern reindex"):
        open_store(tmp_path)


@pytest.mark.parametrize(
    ("version", "message"), [(1, "no longer reads"), (3, "newer than this Lantern")]
)
def test_index_in_another_format_is_refused(
    flushed: FaissVectorStore, tmp_path: Path, version: int, message: str
) -> None:
    flushed.close()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format_version": version}))
    with pytest.raises(IndexMismatchError, match=f"format version {version}.*{message}"):
        open_store(tmp_path)


def test_commit_table_in_another_format_is_refused(
    flushed: FaissVectorStore, tmp_path: Path
) -> None:
    flushed.close()
    rewrite_table(tmp_path, lambda t: t.update(format_version=1))
    with pytest.raises(VectorStoreError, match=r"format version 1.*lantern reindex"):
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
