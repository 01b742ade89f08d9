"""One persistence skeleton for the file-backed indexes (FAISS vectors, BM25 tokens).

Layout under ``directory``::

    manifest.json        what built the index (backend, format version, model or analyzer)
    <table>.json         commit point: collection id -> its files, and the last flush generation
    <prefix><gen>-<n>.npz  immutable per-collection files, named by the flush that wrote them

A store subclasses ``ShardedIndex`` and keeps only its per-collection payload: how a
collection is loaded from its files, written to new ones, searched and shrunk. This
module owns the rest: the in-memory table of chunks, documents and collections, the
manifest check, and ``flush``: it writes every changed collection to new files, then
atomically replaces the table and deletes the files it no longer names. A file is
never overwritten, so a crash anywhere before that rename leaves the previous table
and every file it names intact, and the last flushed state loads; files no table
names are ignored and removed by the next flush. ``close()`` does not flush: callers
flush after a whole unit of work (a document), so a crash never persists half of one.

One process owns a directory for writing. Other processes open it ``read_only``: a
replica writes nothing (no flush, no clean-up) and follows the writer, checking the
table's file every ``refresh_seconds`` (a ``stat``) and, when another table was
committed, loading the collections whose files changed, outside the lock, then
swapping them in; searches go on meanwhile on the state before. The writer deletes
the files of an old table once it commits a new one, so a load that finds a file gone
reads the newest table again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar
from zipfile import BadZipFile

import numpy as np
import numpy.typing as npt

from retrieval._atomic import atomic_write_json, remove_files, remove_stale_files
from retrieval.errors import RetrievalError

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
REINDEX_HINT = "run `lantern reindex` to rebuild it"
# What numpy and zipfile raise on a truncated, corrupt or foreign file.
READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    RuntimeError,
    BadZipFile,
)


class Entry(Protocol):
    """One committed file of a collection, as the table names it."""

    @property
    def file(self) -> str: ...

    @property
    def generation(self) -> int: ...


E = TypeVar("E", bound=Entry)
P = TypeVar("P")
Err = TypeVar("Err", bound=RetrievalError)


def file_name(prefix: str, generation: int, n: int) -> str:
    """The name of the ``n``-th file a flush of ``generation`` writes."""
    return f"{prefix}{generation:010d}-{n:06d}.npz"


def file_generation(prefix: str, name: str) -> int:
    """The generation in a file's name; 0 for a name outside the naming scheme."""
    match = re.fullmatch(rf"{re.escape(prefix)}(\d{{10}})-\d{{6}}\.npz", name)
    return int(match[1]) if match else 0


def read_json(path: Path, error: type[RetrievalError]) -> dict[str, Any]:
    """Read a JSON object; a missing or unreadable file is an ``error``."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"cannot read {path}: {e}; {REINDEX_HINT}") from e
    if not isinstance(payload, dict):
        raise error(f"{path} is not a JSON object; {REINDEX_HINT}")
    return payload


def read_arrays(
    path: Path, names: Iterable[str], error: type[RetrievalError]
) -> list[npt.NDArray[Any]]:
    """The named arrays of an ``.npz`` file, read without pickle; a bad file is an ``error``."""
    try:
        # Our own handle: np.load leaks the one it opens when the zip is truncated.
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            return [data[name] for name in names]
    except READ_ERRORS as e:
        raise error(f"cannot read index file {path}: {e}; {REINDEX_HINT}") from e


def inconsistent(path: Path, error: type[Err]) -> Err:
    """The error for a file that reads but does not match its table or itself."""
    return error(f"index file {path} is inconsistent; {REINDEX_HINT}")


def check_format(
    found: Mapping[str, Any],
    *,
    backend: str,
    version: int,
    where: str,
    error: type[RetrievalError],
) -> None:
    """Refuse a manifest of another backend or on-disk format (older or newer)."""
    if found.get("backend") != backend:
        raise error(
            f"{where} was written by the {found.get('backend')!r} backend, not {backend!r}; "
            f"{REINDEX_HINT}"
        )
    got = found.get("format_version")
    if isinstance(got, int) and got > version:
        raise error(
            f"{where} has format version {got}, newer than this Lantern understands "
            f"({version}); upgrade Lantern or {REINDEX_HINT}"
        )
    if got != version:
        raise error(
            f"{where} has format version {got!r}, which this Lantern no longer reads "
            f"(it reads {version}); {REINDEX_HINT}"
        )


@dataclass(frozen=True)
class Table(Generic[E]):
    """The committed state: collection id -> its files, oldest first, and a generation
    counter that makes every flush's file names new."""

    generation: int = 0
    collections: Mapping[str, tuple[E, ...]] = field(default_factory=dict)

    def files(self) -> set[str]:
        return {e.file for entries in self.collections.values() for e in entries}


@dataclass(frozen=True)
class Layout(Generic[E]):
    """How a store names its files and encodes one collection's entries in the table."""

    table_name: str
    table_version: int
    prefix: str
    encode: Callable[[tuple[E, ...]], Any]
    decode: Callable[[Any], tuple[E, ...]]  # raises KeyError, TypeError or ValueError
    error: type[RetrievalError]


def read_table(directory: Path, layout: Layout[E]) -> Table[E]:
    """The committed table; an empty one when nothing was flushed yet.

    A table in another format, or naming a file outside the index's own naming
    scheme, is refused rather than half-read.
    """
    path = directory / layout.table_name
    if not path.exists():
        return Table()
    state = read_json(path, layout.error)
    if state.get("format_version") != layout.table_version:
        raise layout.error(
            f"{path} has format version {state.get('format_version')!r}, this Lantern reads "
            f"{layout.table_version}; {REINDEX_HINT}"
        )
    try:
        generation = int(state["generation"])
        collections = {str(c): layout.decode(v) for c, v in state["collections"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise layout.error(f"{path} is malformed ({e!r}); {REINDEX_HINT}") from e
    entries = [e for listed in collections.values() for e in listed]
    sane = all(
        file_generation(layout.prefix, e.file) > 0 and 0 < e.generation <= generation
        for e in entries
    )
    if not sane or len({e.file for e in entries}) != len(entries):
        raise layout.error(f"{path} names invalid files; {REINDEX_HINT}")
    return Table(generation, collections)


def write_table(directory: Path, layout: Layout[E], table: Table[E]) -> None:
    """Commit ``table`` with one atomic rename: the single point a flush takes effect."""
    atomic_write_json(
        directory / layout.table_name,
        {
            "format_version": layout.table_version,
            "generation": table.generation,
            "collections": {c: layout.encode(e) for c, e in table.collections.items()},
        },
    )


def select(collections: Collection[str] | None, present: Collection[str]) -> list[str]:
    """The ids of ``collections`` (every one when None) that are in ``present``."""
    if collections is None:
        return list(present)
    if isinstance(collections, str):
        raise TypeError("collections must be a collection of ids, not a string")
    return sorted(c for c in set(collections) if c in present)


def _nothing() -> None:
    pass


def _ignore(_: dict[str, Any]) -> None:
    pass


@dataclass(frozen=True)
class Written(Generic[E]):
    """A changed collection's new entries (none: it is gone), and what to do in memory
    once a table naming them is committed."""

    entries: tuple[E, ...]
    install: Callable[[], None] = _nothing


class ShardedIndex(Generic[P, E]):
    """Chunks kept per collection (payload ``P``), committed as files named by a table.

    Subclasses call ``_open`` from ``__init__`` and implement the four payload hooks.
    """

    def __init__(
        self,
        directory: Path,
        layout: Layout[E],
        *,
        label: str,
        read_only: bool = False,
        refresh_seconds: float = 0.0,
    ) -> None:
        """``read_only``: a replica of a directory another process writes, refreshed every
        ``refresh_seconds`` by a thread of its own (0: only when ``refresh`` is called)."""
        self.directory = Path(directory)
        self.read_only = read_only
        self._refresh_seconds = refresh_seconds
        self._stamp: tuple[int, int, int] | None = None
        self._closing = threading.Event()
        self._check: Callable[[dict[str, Any]], None] = _ignore
        self._layout = layout
        self._error = layout.error
        self._label = label
        self._lock = threading.RLock()
        self._closed = False
        self._shards: dict[str, P] = {}
        self._where: dict[str, tuple[str, str]] = {}  # chunk id -> collection, document
        self._by_document: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._table: Table[E] = Table()
        self._sweep = True  # remove every unreferenced file at the next flush

    # -- payload hooks ---------------------------------------------------------

    def _load_shard(
        self, collection_id: str, entries: tuple[E, ...]
    ) -> tuple[P, Iterable[tuple[str, str]]]:
        """Read a committed collection: its payload and its (chunk id, document id) pairs."""
        raise NotImplementedError

    def _write_shard(self, collection_id: str, generation: int, n: int) -> Written[E]:
        """Write a changed collection's new files (names from ``file_name``)."""
        raise NotImplementedError

    def _drop(self, shard: P, chunk_ids: list[str]) -> None:
        """Remove chunks from a collection's payload."""
        raise NotImplementedError

    def _size(self, shard: P) -> int:
        """The number of chunks in a collection's payload."""
        raise NotImplementedError

    def _members(self, shard: P) -> Iterable[tuple[str, str]]:
        """A collection's (chunk id, document id) pairs (a replica drops them on reload)."""
        raise NotImplementedError

    def _refreshed(self, collection_ids: set[str]) -> None:
        """A replica swapped in these collections (lock held); e.g. publish, rebuild."""

    # -- opening ---------------------------------------------------------------

    def _open(self, manifest: dict[str, Any], check: Callable[[dict[str, Any]], None]) -> None:
        """Write ``manifest`` into a new index, or ``check`` the stored one and load."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._error(f"cannot create {self.directory}: {e}") from e
        path = self.directory / MANIFEST_NAME
        self._stamp = self._table_stamp()
        if not path.exists() and self.read_only:
            # The writer has not opened it yet: follow it from empty; the manifest is
            # checked once its first table is there.
            self._check = check
            self._stamp = None
            return
        if not path.exists():
            if (self.directory / self._layout.table_name).exists():
                raise self._error(
                    f"{self._label} at {self.directory} has {self._layout.table_name} but no "
                    f"{MANIFEST_NAME}; {REINDEX_HINT}"
                )
            try:
                atomic_write_json(path, manifest)
            except OSError as e:
                raise self._error(f"cannot write to {self.directory}: {e}") from e
            return
        check(read_json(path, self._error))
        self._table = read_table(self.directory, self._layout)
        for collection_id, entries in self._table.collections.items():
            shard, members = self._load_shard(collection_id, entries)
            for chunk_id, document_id in members:
                if chunk_id in self._where:
                    raise self._error(
                        f"chunk {chunk_id!r} is in two collections of {self.directory}; "
                        f"{REINDEX_HINT}"
                    )
                self._where[chunk_id] = (collection_id, document_id)
                self._by_document.setdefault(document_id, set()).add(chunk_id)
            self._shards[collection_id] = shard
        self._check = check

    # -- replicas --------------------------------------------------------------

    def refresh(self) -> bool:
        """A replica: load what the writer committed since the last look; returns
        whether anything changed. Cheap when nothing did (one ``stat``)."""
        if not self.read_only or self._closed:
            return False
        for _ in range(10):
            stamp = self._table_stamp()  # before reading: a later commit changes it
            if stamp == self._stamp:
                return False
            try:
                if self._stamp is None:
                    self._check(read_json(self.directory / MANIFEST_NAME, self._error))
                table = read_table(self.directory, self._layout)
                current = self._table.collections
                changed = {
                    c
                    for c in set(table.collections) | set(current)
                    if table.collections.get(c) != current.get(c)
                }
                loaded = {
                    c: self._load_shard(c, table.collections[c])
                    for c in sorted(changed)
                    if c in table.collections
                }
            except RetrievalError:
                if self._table_stamp() != stamp:
                    continue  # the writer committed again and removed files this table named
                raise
            with self._lock:
                if self._closed:
                    return False
                self._swap(table, changed, loaded)
                self._stamp = stamp
                self._refreshed(changed)
            return True
        return False

    def versions(self, collections: Collection[str] | None = None) -> dict[str, int]:
        """Collection id -> the generation of the newest flush that changed it, for the
        collections that hold chunks: equal in the writer and its replicas once they
        have caught up, so a cache may key on it."""
        with self._lock:
            table = self._table.collections
            return {
                c: max(e.generation for e in table[c])
                for c in select(collections, table)
                if table[c]
            }

    def _swap(
        self,
        table: Table[E],
        changed: set[str],
        loaded: Mapping[str, tuple[P, Iterable[tuple[str, str]]]],
    ) -> None:
        for collection_id in changed:
            old = self._shards.pop(collection_id, None)
            for chunk_id, document_id in self._members(old) if old is not None else ():
                self._where.pop(chunk_id, None)
                chunks = self._by_document.get(document_id)
                if chunks is not None:
                    chunks.discard(chunk_id)
                    if not chunks:
                        del self._by_document[document_id]
            if collection_id not in loaded:
                continue
            shard, members = loaded[collection_id]
            self._shards[collection_id] = shard
            for chunk_id, document_id in members:
                self._where[chunk_id] = (collection_id, document_id)
                self._by_document.setdefault(document_id, set()).add(chunk_id)
        self._table = table

    def _table_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.directory / self._layout.table_name)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _start_following(self) -> None:
        """Start a replica's refresh thread (subclasses: at the end of ``__init__``)."""
        if not self.read_only or self._refresh_seconds <= 0:
            return
        thread = threading.Thread(target=self._follow, name="index-replica", daemon=True)
        thread.start()

    def _follow(self) -> None:
        while not self._closing.wait(self._refresh_seconds):
            try:
                self.refresh()
            except Exception:  # keep serving what was loaded; retried at the next look
                logger.exception(
                    "%s at %s: could not load the new generation", self._label, self.directory
                )

    # -- writes ----------------------------------------------------------------

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove every chunk of these documents; returns how many were removed."""
        if isinstance(document_ids, str):
            raise TypeError("document_ids must be a collection of ids, not a string")
        with self._lock:
            self._check_writable()
            chunks = [c for d in set(document_ids) for c in self._by_document.get(d, ())]
            self._remove_chunks(chunks)
            return len(chunks)

    def clear(self) -> None:
        """Drop every chunk; ``flush()`` then removes the files. Keeps the manifest."""
        with self._lock:
            self._check_writable()
            self._dirty.update(self._shards)
            self._dirty.update(self._table.collections)
            self._shards.clear()
            self._where.clear()
            self._by_document.clear()

    def flush(self) -> None:
        """Write the collections changed since the last flush to new files, then switch
        the table to them atomically; see the module docstring."""
        with self._lock:
            self._check_writable()
            if not self._dirty:
                return
            generation = self._table.generation + 1
            collections = dict(self._table.collections)
            written: dict[str, Written[E]] = {}
            committed = False
            try:
                for n, collection_id in enumerate(sorted(self._dirty)):
                    done: Written[E] = Written(())
                    if collection_id in self._shards:
                        done = self._write_shard(collection_id, generation, n)
                    written[collection_id] = done
                    if done.entries:
                        collections[collection_id] = done.entries
                    else:
                        collections.pop(collection_id, None)
                table = Table(generation, collections)
                changed = table.files() != self._table.files()  # else the changes cancelled out
                if changed:
                    write_table(self.directory, self._layout, table)
                committed = True
            except (OSError, RuntimeError, ValueError) as e:
                raise self._error(f"cannot commit index at {self.directory}: {e}") from e
            finally:
                # A failed attempt may leave files that no table names.
                self._sweep = self._sweep or not committed
            for collection_id, done in written.items():
                if done.entries:
                    done.install()
                else:
                    self._shards.pop(collection_id, None)
            self._dirty.clear()
            if changed:
                self._clean_up(table)

    def close(self) -> None:
        """Release the index without flushing; unflushed changes are discarded."""
        with self._lock:
            if self._dirty and not self._closed:
                logger.warning(
                    "closing %s at %s with %d unflushed collection(s); changes discarded",
                    self._label,
                    self.directory,
                    len(self._dirty),
                )
            self._closed = True
            self._closing.set()
            self._shards.clear()
            self._where.clear()
            self._by_document.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------

    def document_ids(self) -> set[str]:
        with self._lock:
            self._check_open()
            return set(self._by_document)

    def count(self, *, collections: Collection[str] | None = None) -> int:
        with self._lock:
            self._check_open()
            return sum(self._size(self._shards[c]) for c in self._selected(collections))

    # -- internals -------------------------------------------------------------

    def _place(self, chunk_id: str, document_id: str, collection_id: str) -> None:
        """Record that a chunk now lives in ``collection_id`` (its payload holds it)."""
        self._where[chunk_id] = (collection_id, document_id)
        self._by_document.setdefault(document_id, set()).add(chunk_id)
        self._dirty.add(collection_id)

    def _remove_chunks(self, chunk_ids: Iterable[str]) -> None:
        by_collection: dict[str, list[str]] = {}
        for chunk_id in chunk_ids:
            collection_id, document_id = self._where.pop(chunk_id)
            by_collection.setdefault(collection_id, []).append(chunk_id)
            chunks = self._by_document[document_id]
            chunks.discard(chunk_id)
            if not chunks:
                del self._by_document[document_id]
        for collection_id, removed in by_collection.items():
            shard = self._shards[collection_id]
            self._drop(shard, removed)
            if not self._size(shard):
                del self._shards[collection_id]
            self._dirty.add(collection_id)

    def _clean_up(self, table: Table[E]) -> None:
        """Delete the files the new table no longer names (best effort)."""
        keep = table.files()
        if self._sweep:
            done = remove_stale_files(self.directory, prefix=self._layout.prefix, keep=keep)
        else:
            done = remove_files(self.directory, sorted(self._table.files() - keep))
        self._table, self._sweep = table, not done

    def _selected(self, collections: Collection[str] | None) -> list[str]:
        return select(collections, self._shards)

    def _check_open(self) -> None:
        if self._closed:
            raise self._error(f"{self._label} at {self.directory} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise self._error(
                f"{self._label} at {self.directory} is a read-only replica here: another "
                "process writes it (the ingestion worker that holds the data dir's lock)"
            )
