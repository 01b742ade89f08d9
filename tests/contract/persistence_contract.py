"""Durability every file-backed sharded index shows (``retrieval._sharded``): crash safety
of ``flush``, clean-up of unnamed files, refusal of corrupt and foreign files.

Use it by subclassing and providing the store-specific hooks::

    class TestMyIndexPersistence(PersistenceContract):
        table_name = "shards.json"
        prefix = "seg-"
        error = MyError

        def open(self, directory): ...  # open the index at directory
        def record(self, chunk_id, document_id, collection_id): ...  # a record to upsert
        def snapshot(self, index): ...  # what a user sees of collections a..e

The ``flushed`` index holds collections a (document d1: chunks a1, a2), b (d2: b1),
c (d3: c1) and e (many chunks, documents e0..), flushed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest

from retrieval import _sharded


def killed(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


class PersistenceContract:
    table_name: ClassVar[str]
    prefix: ClassVar[str]
    error: ClassVar[type[Exception]]
    #: raised for a manifest of another backend or format
    mismatch_error: ClassVar[type[Exception]]

    # -- hooks -----------------------------------------------------------------

    def open(self, directory: Path) -> Any:
        raise NotImplementedError

    def record(self, chunk_id: str, document_id: str, collection_id: str) -> Any:
        raise NotImplementedError

    def snapshot(self, index: Any) -> Any:
        raise NotImplementedError

    def fill(self, index: Any) -> None:
        """The ``flushed`` state, before its flush."""
        rec = self.record
        index.upsert([rec("a1", "d1", "a"), rec("a2", "d1", "a"), rec("b1", "d2", "b")])
        index.upsert([rec("c1", "d3", "c")])
        index.upsert([rec(f"e{i}", f"e{i // 10}", "e") for i in range(300)])

    def change_every_kind_of_collection(self, index: Any) -> None:
        """Grow a, empty b and c, create d, change a few of e's many chunks."""
        rec = self.record
        index.upsert([rec("a3", "d4", "a"), rec("b1", "d2", "a")])  # b's only chunk moves
        index.delete_documents(["d3", "e1"])
        index.upsert([rec("d1", "d5", "d")])
        index.upsert([rec("e0", "e31", "e"), rec("e-new", "e30", "e")])  # e0 replaced

    # -- helpers ---------------------------------------------------------------

    @pytest.fixture
    def flushed(self, tmp_path: Path) -> Any:
        index = self.open(tmp_path)
        self.fill(index)
        index.flush()
        return index

    def table(self, directory: Path) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((directory / self.table_name).read_text())
        return state

    def files_of(self, directory: Path) -> dict[str, list[str]]:
        """Collection id -> the files the table names for it."""
        listed = self.table(directory)["collections"].items()
        return {c: [v] if isinstance(v, str) else [s["file"] for s in v] for c, v in listed}

    def files_on_disk(self, directory: Path) -> list[str]:
        return sorted(p.name for p in directory.glob(f"{self.prefix}*"))

    def edit_table(self, directory: Path, edit: Any) -> None:
        state = self.table(directory)
        edit(state)
        (directory / self.table_name).write_text(json.dumps(state))

    def assert_no_garbage(self, directory: Path) -> None:
        named = sorted(f for files in self.files_of(directory).values() for f in files)
        assert self.files_on_disk(directory) == named
        assert not list(directory.glob(".tmp-*"))

    # -- atomicity -------------------------------------------------------------

    @pytest.mark.parametrize("failing_call", [0, 1, 2, 3], ids=["file-a", "d", "e", "commit"])
    def test_crash_during_flush_leaves_previous_state_loadable(
        self, flushed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int
    ) -> None:
        before = self.snapshot(flushed)
        self.change_every_kind_of_collection(flushed)
        after = self.snapshot(flushed)
        real_replace, calls = os.replace, []

        def crashing_replace(src: Any, dst: Any) -> None:
            calls.append(Path(dst).name)
            if len(calls) - 1 == failing_call:
                raise OSError("disk on fire")
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", crashing_replace)
        with pytest.raises(self.error, match="disk on fire"):
            flushed.flush()
        monkeypatch.setattr(os, "replace", real_replace)
        assert (calls[-1] == self.table_name) == (failing_call == 3)
        # What a killed process would leave: a half-written temp file next to the data.
        (tmp_path / ".tmp-crashed.part").write_bytes(b"half a file")

        reopened = self.open(tmp_path)
        assert self.snapshot(reopened) == before
        reopened.close()
        flushed.flush()  # the failed flush kept its changes: retrying commits them
        flushed.close()
        assert self.snapshot(self.open(tmp_path)) == after
        self.assert_no_garbage(tmp_path)

    def test_process_killed_before_commit_then_another_process_flushes(
        self, flushed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        before = self.snapshot(flushed)
        self.change_every_kind_of_collection(flushed)
        with monkeypatch.context() as patch:  # every file is in place, the table is not
            patch.setattr(_sharded, "write_table", killed)
            with pytest.raises(KeyboardInterrupt):
                flushed.flush()
        assert len(self.files_on_disk(tmp_path)) > sum(map(len, self.files_of(tmp_path).values()))
        successor = self.open(tmp_path)
        assert self.snapshot(successor) == before
        successor.upsert([self.record("a9", "d9", "a")])
        successor.flush()  # reuses the dead attempt's file names, and removes its leftovers
        expected = self.snapshot(successor)
        successor.close()
        assert self.snapshot(self.open(tmp_path)) == expected
        self.assert_no_garbage(tmp_path)

    def test_crash_after_commit_before_cleanup_loads_new_state(
        self, flushed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.change_every_kind_of_collection(flushed)
        after = self.snapshot(flushed)

        def failing_unlink(self: Path, missing_ok: bool = False) -> None:
            raise OSError("read-only")

        with monkeypatch.context() as patch:
            patch.setattr(Path, "unlink", failing_unlink)
            flushed.flush()  # committed; only the clean-up failed
        assert len(self.files_on_disk(tmp_path)) > sum(map(len, self.files_of(tmp_path).values()))
        assert self.snapshot(self.open(tmp_path)) == after
        flushed.upsert([self.record("a4", "d6", "a")])
        flushed.flush()
        self.assert_no_garbage(tmp_path)

    def test_only_changed_collections_get_new_files(self, flushed: Any, tmp_path: Path) -> None:
        old = self.files_of(tmp_path)
        flushed.upsert([self.record("a3", "d4", "a")])
        flushed.flush()
        new = self.files_of(tmp_path)
        assert {c: new[c] for c in "bce"} == {c: old[c] for c in "bce"}
        assert new["a"] != old["a"]
        assert not (tmp_path / old["a"][0]).exists()
        self.assert_no_garbage(tmp_path)

    def test_flush_without_changes_writes_nothing(self, flushed: Any, tmp_path: Path) -> None:
        mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
        flushed.delete_documents(["no-such-document"])
        flushed.flush()
        assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes

    def test_files_are_removed_when_their_collection_empties(
        self, flushed: Any, tmp_path: Path
    ) -> None:
        c_files = self.files_of(tmp_path)["c"]
        flushed.delete_documents(["d3"])
        flushed.flush()
        assert "c" not in self.files_of(tmp_path)
        assert not any((tmp_path / f).exists() for f in c_files)
        flushed.clear()
        flushed.flush()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            ["manifest.json", self.table_name]
        )
        flushed.close()
        assert self.open(tmp_path).document_ids() == set()

    def test_close_does_not_flush_warns_and_is_final(
        self, flushed: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        flushed.upsert([self.record("x", "dx", "a")])
        with caplog.at_level(logging.WARNING):
            flushed.close()
        flushed.close()
        assert "unflushed" in caplog.text
        with pytest.raises(self.error, match="closed"):
            flushed.count()
        with pytest.raises(self.error, match="closed"):
            flushed.flush()
        assert "dx" not in self.open(tmp_path).document_ids()

    # -- corrupt and foreign files ---------------------------------------------

    @pytest.mark.parametrize(
        "corrupt",
        [lambda data: data[: len(data) // 2], lambda data: b"not a zip file at all"],
        ids=["truncated", "garbage"],
    )
    def test_corrupt_file_names_the_file_and_suggests_reindex(
        self, flushed: Any, tmp_path: Path, corrupt: Any
    ) -> None:
        flushed.close()
        path = tmp_path / self.files_of(tmp_path)["e"][0]
        path.write_bytes(corrupt(path.read_bytes()))
        with pytest.raises(self.error, match="lantern reindex") as info:
            self.open(tmp_path)
        assert path.name in str(info.value)

    def test_missing_file_is_reported(self, flushed: Any, tmp_path: Path) -> None:
        flushed.close()
        path = tmp_path / self.files_of(tmp_path)["b"][0]
        path.unlink()
        with pytest.raises(self.error, match="lantern reindex") as info:
            self.open(tmp_path)
        assert path.name in str(info.value)

    @pytest.mark.parametrize("name", ["table", "manifest.json"])
    @pytest.mark.parametrize("garbage", ["{not json", "[]"], ids=["not-json", "not-an-object"])
    def test_corrupt_json_suggests_reindex(
        self, flushed: Any, tmp_path: Path, name: str, garbage: str
    ) -> None:
        flushed.close()
        name = self.table_name if name == "table" else name
        (tmp_path / name).write_text(garbage)
        with pytest.raises(self.error, match=f"{name}.*lantern reindex"):
            self.open(tmp_path)

    @pytest.mark.parametrize(
        "edit",
        [
            lambda t, prefix: t["collections"].update(
                a=t["collections"]["c"], c=t["collections"]["a"]
            ),
            lambda t, prefix: t["collections"].update(b=t["collections"]["c"]),
            lambda t, prefix: t["collections"].update(
                b=json.loads(json.dumps(t["collections"]["b"]).replace(prefix, f"../{prefix}"))
            ),
            lambda t, prefix: t.update(generation=0),
            lambda t, prefix: t.update(format_version=t["format_version"] + 1),
            lambda t, prefix: t.pop("collections"),
        ],
        ids=["swapped", "shared-file", "path", "generation", "format", "malformed"],
    )
    def test_table_that_does_not_match_its_files_is_refused(
        self, flushed: Any, tmp_path: Path, edit: Any
    ) -> None:
        flushed.close()
        self.edit_table(tmp_path, lambda t: edit(t, self.prefix))
        with pytest.raises(self.error, match="lantern reindex"):
            self.open(tmp_path)

    def test_table_without_manifest_is_refused(self, flushed: Any, tmp_path: Path) -> None:
        flushed.close()
        (tmp_path / "manifest.json").unlink()
        with pytest.raises(self.error, match=f"{self.table_name} but no manifest.json"):
            self.open(tmp_path)

    @pytest.mark.parametrize(
        ("step", "message"), [(-1, "no longer reads"), (1, "newer than this Lantern")]
    )
    def test_index_in_another_format_is_refused(
        self, flushed: Any, tmp_path: Path, step: int, message: str
    ) -> None:
        flushed.close()
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        version = manifest["format_version"] + step
        (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format_version": version}))
        with pytest.raises(self.mismatch_error, match=f"format version {version}.*{message}"):
            self.open(tmp_path)

    def test_index_of_another_backend_is_refused(self, flushed: Any, tmp_path: Path) -> None:
        flushed.close()
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "backend": "milvus"}))
        with pytest.raises(self.mismatch_error, match=r"'milvus' backend.*lantern reindex"):
            self.open(tmp_path)
