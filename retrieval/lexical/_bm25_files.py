"""On-disk format of the BM25 index: manifest, collection table and one token file per collection.

``manifest.json`` records the backend, the file format and the analyzer that made
the tokens. ``collections.json`` is the commit point: collection id -> the file that
holds its chunks. A collection file (``col-<generation>-<n>.npz``, never overwritten)
holds the analysed tokens, not the text: chunk and document ids and the vocabulary
as UTF-8 blobs with offsets, and every chunk's term ids as one int32 array with
offsets. ``np.load`` reads it without pickle. Files are written with
``atomic_write`` (temp file, fsync, rename), as the FAISS store's are.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zipfile import BadZipFile

import numpy as np
import numpy.typing as npt

from retrieval._atomic import atomic_write, atomic_write_json
from retrieval.errors import LexicalIndexError

MANIFEST_NAME = "manifest.json"
TABLE_NAME = "collections.json"
FILE_PREFIX = "col-"
REINDEX_HINT = "run `lantern reindex` to rebuild it"
_NAME = re.compile(r"col-\d{10}-\d{6}\.npz")
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, RuntimeError, BadZipFile)

Int32Array = npt.NDArray[np.int32]


def file_name(generation: int, n: int) -> str:
    return f"{FILE_PREFIX}{generation:010d}-{n:06d}.npz"


# -- manifest ------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LexicalIndexError(f"cannot read {path}: {e}; {REINDEX_HINT}") from e
    if not isinstance(payload, dict):
        raise LexicalIndexError(f"{path} is not a JSON object; {REINDEX_HINT}")
    return payload


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_json(path, payload)


# -- collection table ----------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """The committed state: collection id -> its file, and the last flush generation."""

    generation: int = 0
    files: Mapping[str, str] = field(default_factory=dict)


def read_table(directory: Path, *, format_version: int) -> Table:
    """The committed table; an empty one when nothing was flushed yet."""
    path = directory / TABLE_NAME
    if not path.exists():
        return Table()
    state = read_json(path)
    if state.get("format_version") != format_version:
        raise LexicalIndexError(
            f"{path} has format version {state.get('format_version')!r}, this Lantern reads "
            f"{format_version}; {REINDEX_HINT}"
        )
    try:
        generation = int(state["generation"])
        files = {str(c): str(f) for c, f in state["collections"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise LexicalIndexError(f"{path} is malformed ({e!r}); {REINDEX_HINT}") from e
    sane = all(
        _NAME.fullmatch(f) and 0 < int(f[4:14]) <= generation for f in files.values()
    ) and len(set(files.values())) == len(files)
    if not sane:
        raise LexicalIndexError(f"{path} names invalid collection files; {REINDEX_HINT}")
    return Table(generation, files)


def write_table(directory: Path, table: Table, *, format_version: int) -> None:
    """Commit ``table`` with one atomic rename: the single point a flush takes effect."""
    write_json(
        directory / TABLE_NAME,
        {
            "format_version": format_version,
            "generation": table.generation,
            "collections": dict(sorted(table.files.items())),
        },
    )


# -- collection files ------------------------------------------------------------


@dataclass(frozen=True)
class CollectionData:
    """One collection as stored: row i is ``chunk_ids[i]`` of ``document_ids[i]`` with
    term ids ``tokens[offsets[i]:offsets[i + 1]]`` into ``terms``."""

    chunk_ids: list[str]
    document_ids: list[str]
    terms: list[str]
    offsets: npt.NDArray[np.int64]
    tokens: Int32Array

    def rows(self) -> list[Int32Array]:
        return np.split(self.tokens, self.offsets[1:-1]) if self.chunk_ids else []


def write_collection(path: Path, collection_id: str, data: CollectionData) -> None:
    arrays: dict[str, Any] = {
        "collection_id": np.asarray(collection_id),
        "offsets": data.offsets,
        "tokens": data.tokens,
        **_pack("chunk_ids", data.chunk_ids),
        **_pack("document_ids", data.document_ids),
        **_pack("terms", data.terms),
    }

    def write(fh: IO[bytes]) -> None:
        np.savez(fh, **arrays)

    atomic_write(path, write)


def read_collection(path: Path, collection_id: str) -> CollectionData:
    """Read and check one collection file; anything inconsistent is a ``LexicalIndexError``."""
    try:
        # Our own handle: np.load leaks the one it opens when the zip is truncated.
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        stored = arrays["collection_id"]
        offsets, tokens = arrays["offsets"], arrays["tokens"]
        chunk_ids = _unpack(arrays, "chunk_ids")
        document_ids = _unpack(arrays, "document_ids")
        terms = _unpack(arrays, "terms")
    except _READ_ERRORS as e:
        raise LexicalIndexError(f"cannot read index file {path}: {e}; {REINDEX_HINT}") from e
    n = len(chunk_ids)
    consistent = (
        stored.shape == ()
        and stored.dtype.kind == "U"
        and str(stored) == collection_id
        and n > 0
        and len(document_ids) == n
        and len(set(chunk_ids)) == n
        and all(chunk_ids)
        and all(document_ids)
        and offsets.dtype == np.int64
        and offsets.shape == (n + 1,)
        and offsets[0] == 0
        and bool((np.diff(offsets) >= 0).all())
        and tokens.dtype == np.int32
        and tokens.shape == (int(offsets[-1]),)
        and (tokens.size == 0 or (int(tokens.min()) >= 0 and int(tokens.max()) < len(terms)))
        and len(set(terms)) == len(terms)
    )
    if not consistent:
        raise LexicalIndexError(f"index file {path} is inconsistent; {REINDEX_HINT}")
    return CollectionData(chunk_ids, document_ids, terms, offsets, tokens)


def pack_rows(rows: Sequence[Int32Array]) -> tuple[npt.NDArray[np.int64], Int32Array]:
    """Offsets and the concatenation of per-chunk term id arrays."""
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    tokens = np.concatenate(rows).astype(np.int32, copy=False) if rows else _EMPTY
    return offsets, tokens


_EMPTY: Int32Array = np.zeros(0, dtype=np.int32)


def _pack(name: str, strings: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return {f"{name}_utf8": blob, f"{name}_offsets": offsets}


def _unpack(arrays: Mapping[str, npt.NDArray[Any]], name: str) -> list[str]:
    blob, offsets = arrays[f"{name}_utf8"], arrays[f"{name}_offsets"]
    ok = (
        blob.dtype == np.uint8
        and blob.ndim == 1
        and offsets.dtype == np.int64
        and offsets.ndim == 1
        and len(offsets) >= 1
        and offsets[0] == 0
        and offsets[-1] == len(blob)
        and bool((np.diff(offsets) >= 0).all())
    )
    if not ok:
        raise ValueError(f"{name} is malformed")
    data = blob.tobytes()
    bounds = offsets.tolist()
    return [data[a:b].decode("utf-8") for a, b in itertools.pairwise(bounds)]
