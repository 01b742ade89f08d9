"""On-disk format of the BM25 index: its table entries and one token file per collection.

``collections.json`` is the commit point (``retrieval._sharded`` reads and writes it):
collection id -> the file that holds its chunks. A collection file
(``col-<generation>-<n>.npz``, never overwritten) holds the analysed tokens, not the
text: chunk and document ids and the vocabulary as UTF-8 blobs with offsets, and
every chunk's term ids as one int32 array with offsets. ``np.load`` reads it without
pickle. Files are written with ``atomic_write`` (temp file, fsync, rename).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from retrieval._atomic import atomic_write
from retrieval._sharded import Layout, file_generation, inconsistent, read_arrays
from retrieval.errors import LexicalIndexError

TABLE_NAME = "collections.json"
FILE_PREFIX = "col-"

Int32Array = npt.NDArray[np.int32]


@dataclass(frozen=True)
class CollectionFile:
    """A collection's one committed file and the flush generation in its name."""

    file: str
    generation: int


def _encode(entries: tuple[CollectionFile, ...]) -> str:
    (entry,) = entries
    return entry.file


def _decode(value: Any) -> tuple[CollectionFile, ...]:
    name = str(value)
    return (CollectionFile(name, file_generation(FILE_PREFIX, name)),)


def layout(format_version: int) -> Layout[CollectionFile]:
    """The collection table of a BM25 index in ``format_version``."""
    return Layout(TABLE_NAME, format_version, FILE_PREFIX, _encode, _decode, LexicalIndexError)


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
    names = ["collection_id", "offsets", "tokens"]
    names += [f"{n}_{part}" for n in _STRINGS for part in ("utf8", "offsets")]
    arrays = dict(zip(names, read_arrays(path, names, LexicalIndexError), strict=True))
    stored, offsets, tokens = arrays["collection_id"], arrays["offsets"], arrays["tokens"]
    try:
        chunk_ids, document_ids, terms = (_unpack(arrays, n) for n in _STRINGS)
    except (ValueError, UnicodeDecodeError) as e:
        raise inconsistent(path, LexicalIndexError) from e
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
        raise inconsistent(path, LexicalIndexError)
    return CollectionData(chunk_ids, document_ids, terms, offsets, tokens)


def pack_rows(rows: Sequence[Int32Array]) -> tuple[npt.NDArray[np.int64], Int32Array]:
    """Offsets and the concatenation of per-chunk term id arrays."""
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    tokens = np.concatenate(rows).astype(np.int32, copy=False) if rows else _EMPTY
    return offsets, tokens


_STRINGS = ("chunk_ids", "document_ids", "terms")
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
