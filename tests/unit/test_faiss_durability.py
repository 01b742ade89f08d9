"""FAISS durability beyond ``tests/contract/persistence_contract``: segment checks, models."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from retrieval.errors import IndexMismatchError, VectorStoreError
from retrieval.vectorstores.faiss_store import FaissVectorStore
from tests.contract.vectorstore_contract import rec, vec
from tests.unit.faiss_helpers import open_store, segment_files

# -- flushes -------------------------------------------------------------------


def test_changes_that_cancel_out_write_nothing(flushed: FaissVectorStore, tmp_path: Path) -> None:
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    flushed.upsert([rec("tmp", "dt", "a", vec(1))])
    flushed.delete_documents(["dt"])
    flushed.flush()
    flushed.flush()
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes


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
        lambda data: data[:200] + bytes(b ^ 0xFF for b in data[200:260]) + data[260:],
        flip_last_data_byte,
    ],
    ids=["flipped-bytes", "one-bit-flipped"],
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


def rewrite_table(directory: Path, edit: Any) -> None:
    state = json.loads((directory / "shards.json").read_text())
    edit(state)
    (directory / "shards.json").write_text(json.dumps(state))


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t["collections"]["e"].reverse(),
        lambda t: t["collections"]["e"].pop(0),
        lambda t: t["collections"]["e"][1].update(tombstones=3),
    ],
    ids=["reordered", "base-missing", "count"],
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


def test_mismatch_message_names_both_models(tmp_path: Path) -> None:
    open_store(tmp_path, "all-MiniLM-L6-v2", 384).close()
    with pytest.raises(IndexMismatchError) as info:
        open_store(tmp_path, "BAAI/bge-base-en-v1.5", 768)
    assert str(info.value) == (
        f"index at {tmp_path} was built with 'all-MiniLM-L6-v2' (384-d) but the configured "
        "embedding model is 'BAAI/bge-base-en-v1.5' (768-d); run `lantern reindex` to rebuild it"
    )
