"""On-disk format of the BM25 index: its table entries and its segment files.

``collections.json`` is the commit point (``retrieval._sharded`` reads and writes it):
collection id -> its segment files, oldest first, with the rows and tombstones each
holds. A segment file (``seg-<generation>-<n>.npz``, never overwritten) holds the
analysed tokens of the rows one flush wrote, not their text: chunk and document ids
and the segment's terms (sorted, as UTF-8 blobs with offsets), each row's length,
each term's postings (row, count) and the tombstones, ``(generation, row)`` pairs
naming rows of the collection's earlier segments that were deleted since. ``np.load``
reads it without pickle. Files are written with ``atomic_write``.
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
from retrieval._sharded import Layout, inconsistent, read_arrays
from retrieval.errors import LexicalIndexError
from retrieval.lexical._bm25_segments import Int64Array, Postings, permute_terms

TABLE_NAME = "collections.json"
FILE_PREFIX = "seg-"


@dataclass(frozen=True)
class SegmentFile:
    """One committed segment file: the flush generation that wrote it, how many rows
    and tombstones it holds (checked against the file when it is read)."""

    file: str
    generation: int
    rows: int
    tombstones: int


def _encode(entries: tuple[SegmentFile, ...]) -> list[dict[str, Any]]:
    return [
        {"file": s.file, "generation": s.generation, "rows": s.rows, "tombstones": s.tombstones}
        for s in entries
    ]


def _decode(value: Any) -> tuple[SegmentFile, ...]:
    entries = tuple(
        SegmentFile(
            file=str(s["file"]),
            generation=int(s["generation"]),
            rows=int(s["rows"]),
            tombstones=int(s["tombstones"]),
        )
        for s in value
    )
    if any(s.rows < 0 or s.tombstones < 0 for s in entries):
        raise ValueError("negative count")
    return entries


def layout(format_version: int) -> Layout[SegmentFile]:
    """The segment table of a BM25 index in ``format_version``."""
    return Layout(TABLE_NAME, format_version, FILE_PREFIX, _encode, _decode, LexicalIndexError)


# -- segment files ---------------------------------------------------------------


@dataclass(frozen=True)
class StoredSegment:
    """A segment as read from its file; term ``j`` is ``terms[j]`` (sorted)."""

    chunk_ids: list[str]
    document_ids: list[str]
    terms: list[str]
    lengths: npt.NDArray[np.int32]
    indptr: Int64Array
    rows: npt.NDArray[np.int32]
    tfs: npt.NDArray[Any]
    tombstones: Int64Array


def write_segment(
    path: Path,
    *,
    collection_id: str,
    generation: int,
    postings: Postings,
    vocabulary: Sequence[str],
    tombstones: Int64Array,
) -> None:
    """Write ``postings`` (term ids into ``vocabulary``) with its terms in sorted order."""
    terms = [vocabulary[i] for i in postings.terms.tolist()]
    order = np.asarray(sorted(range(len(terms)), key=terms.__getitem__), dtype=np.int64)
    indptr, gather = permute_terms(postings, order)
    arrays: dict[str, Any] = {
        "collection_id": np.asarray(collection_id),
        "generation": np.asarray(generation, dtype=np.int64),
        "lengths": postings.lengths,
        "indptr": indptr,
        "rows": postings.rows[gather],
        "tfs": postings.tfs[gather],
        "tombstones": tombstones,
        **_pack("chunk_ids", postings.chunk_ids),
        **_pack("document_ids", postings.document_ids),
        **_pack("terms", [terms[i] for i in order.tolist()]),
    }

    def write(fh: IO[bytes]) -> None:
        np.savez(fh, **arrays)

    atomic_write(path, write)


def read_segment(path: Path, collection_id: str, entry: SegmentFile) -> StoredSegment:
    """Read and check one segment file; anything inconsistent is a ``LexicalIndexError``."""
    names = ["collection_id", "generation", "lengths", "indptr", "rows", "tfs", "tombstones"]
    names += [f"{n}_{part}" for n in _STRINGS for part in ("utf8", "offsets")]
    arrays = dict(zip(names, read_arrays(path, names, LexicalIndexError), strict=True))
    try:
        chunk_ids, document_ids, terms = (_unpack(arrays, n) for n in _STRINGS)
    except (ValueError, UnicodeDecodeError) as e:
        raise inconsistent(path, LexicalIndexError) from e
    stored, generation = arrays["collection_id"], arrays["generation"]
    lengths, indptr, rows, tfs = (arrays[n] for n in ("lengths", "indptr", "rows", "tfs"))
    tombstones = arrays["tombstones"]
    n, m = len(chunk_ids), len(terms)
    consistent = (
        stored.shape == ()
        and stored.dtype.kind == "U"
        and str(stored) == collection_id
        and generation.shape == ()
        and generation.dtype == np.int64
        and int(generation) == entry.generation
        and n == entry.rows
        and len(document_ids) == n
        and all(chunk_ids)
        and all(document_ids)
        and len(set(chunk_ids)) == n
        and all(a < b for a, b in itertools.pairwise(terms))
        and lengths.dtype == np.int32
        and lengths.shape == (n,)
        and indptr.dtype == np.int64
        and indptr.shape == (m + 1,)
        and indptr[0] == 0
        and bool((np.diff(indptr) > 0).all())
        and rows.dtype == np.int32
        and rows.shape == (int(indptr[-1]),)
        and tfs.dtype.kind == "u"
        and tfs.shape == rows.shape
        and tombstones.dtype == np.int64
        and tombstones.shape == (entry.tombstones, 2)
    )
    if not consistent or not _postings_match(lengths, indptr, rows, tfs):
        raise inconsistent(path, LexicalIndexError)
    return StoredSegment(chunk_ids, document_ids, terms, lengths, indptr, rows, tfs, tombstones)


def _postings_match(
    lengths: npt.NDArray[np.int32], indptr: Int64Array, rows: npt.NDArray[Any], tfs: Any
) -> bool:
    """Rows in range and ascending within each term, counts positive, and every row's
    length the sum of its counts."""
    if not len(rows):
        return not lengths.any()
    if int(rows.min()) < 0 or int(rows.max()) >= len(lengths) or not tfs.all():
        return False
    ascending = np.diff(rows) > 0
    ascending[indptr[1:-1] - 1] = True  # a new term may start anywhere
    totals = np.bincount(rows, weights=tfs, minlength=len(lengths))
    return bool(ascending.all()) and bool((totals == lengths).all())


_STRINGS = ("chunk_ids", "document_ids", "terms")


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
