"""On-disk metadata of file-backed indexes: the manifest and the segment table.

``manifest.json`` records which embedding model (and dimension) built an index, so
an index is never queried with vectors from another model. ``shards.json`` is the
commit point of a segmented index: it names the files that make up each collection.
Both are written with ``retrieval._atomic``'s crash-safe writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval._atomic import atomic_write_json
from retrieval.errors import IndexMismatchError, VectorStoreError
from retrieval.vectorstores.base import IndexManifest

MANIFEST_NAME = "manifest.json"
SHARDS_NAME = "shards.json"
REINDEX_HINT = "run `lantern reindex` to rebuild it"


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a missing or unreadable file is a ``VectorStoreError``."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VectorStoreError(f"cannot read {path}: {e}; {REINDEX_HINT}") from e
    if not isinstance(payload, dict):
        raise VectorStoreError(f"{path} is not a JSON object; {REINDEX_HINT}")
    return payload


def read_manifest(directory: Path) -> IndexManifest | None:
    """The manifest in ``directory``, or ``None`` when there is none yet."""
    path = directory / MANIFEST_NAME
    if not path.exists():
        return None
    payload = read_json(path)
    try:
        return IndexManifest(
            embedding_model=str(payload["embedding_model"]),
            dimension=int(payload["dimension"]),
            backend=str(payload["backend"]),
            format_version=int(payload["format_version"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise VectorStoreError(f"{path} is malformed ({e!r}); {REINDEX_HINT}") from e


def write_manifest(directory: Path, manifest: IndexManifest) -> None:
    atomic_write_json(
        directory / MANIFEST_NAME,
        {
            "embedding_model": manifest.embedding_model,
            "dimension": manifest.dimension,
            "backend": manifest.backend,
            "format_version": manifest.format_version,
        },
    )


def check_manifest(found: IndexManifest, expected: IndexManifest, directory: Path) -> None:
    """Refuse an index built with another model, dimension, backend or on-disk format."""
    if (found.embedding_model, found.dimension) != (expected.embedding_model, expected.dimension):
        raise IndexMismatchError(
            f"index at {directory} was built with {found.embedding_model!r} "
            f"({found.dimension}-d) but the configured embedding model is "
            f"{expected.embedding_model!r} ({expected.dimension}-d); {REINDEX_HINT}"
        )
    if found.backend != expected.backend:
        raise IndexMismatchError(
            f"index at {directory} was written by the {found.backend!r} backend, "
            f"not {expected.backend!r}; {REINDEX_HINT}"
        )
    if found.format_version > expected.format_version:
        raise IndexMismatchError(
            f"index at {directory} has format version {found.format_version}, newer than "
            f"this Lantern understands ({expected.format_version}); upgrade Lantern or "
            f"{REINDEX_HINT}"
        )
    if found.format_version != expected.format_version:
        raise IndexMismatchError(
            f"index at {directory} has format version {found.format_version}, which this "
            f"Lantern no longer reads (it reads {expected.format_version}); {REINDEX_HINT}"
        )


@dataclass(frozen=True)
class SegmentEntry:
    """One committed segment file: the flush generation that wrote it, how many vectors
    and tombstones it holds (checked against the file when it is read)."""

    file: str
    generation: int
    vectors: int
    tombstones: int


@dataclass(frozen=True)
class SegmentTable:
    """The committed state: collection id -> its segments, oldest first, and a
    generation counter that makes every flush's file names new."""

    generation: int = 0
    collections: Mapping[str, tuple[SegmentEntry, ...]] = field(default_factory=dict)


def read_segment_table(
    directory: Path, *, format_version: int, valid_name: Callable[[str], bool]
) -> SegmentTable:
    """The committed segment table; an empty one when nothing was flushed yet.

    A table in another format, or naming a file outside the index's own naming
    scheme, is refused rather than half-read.
    """
    path = directory / SHARDS_NAME
    if not path.exists():
        return SegmentTable()
    state = read_json(path)
    if state.get("format_version") != format_version:
        raise VectorStoreError(
            f"{path} has format version {state.get('format_version')!r}, this Lantern reads "
            f"{format_version}; {REINDEX_HINT}"
        )
    try:
        generation = int(state["generation"])
        collections = {
            str(collection): tuple(
                SegmentEntry(
                    file=str(s["file"]),
                    generation=int(s["generation"]),
                    vectors=int(s["vectors"]),
                    tombstones=int(s["tombstones"]),
                )
                for s in segments
            )
            for collection, segments in state["collections"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise VectorStoreError(f"{path} is malformed ({e!r}); {REINDEX_HINT}") from e
    files = [s.file for entries in collections.values() for s in entries]
    sane = all(
        valid_name(s.file)
        and 0 < s.generation <= generation
        and s.vectors >= 0
        and s.tombstones >= 0
        for entries in collections.values()
        for s in entries
    )
    if not sane or len(set(files)) != len(files):
        raise VectorStoreError(f"{path} names invalid segment files; {REINDEX_HINT}")
    return SegmentTable(generation=generation, collections=collections)


def write_segment_table(directory: Path, table: SegmentTable, *, format_version: int) -> None:
    """Commit ``table`` with one atomic rename: the single point a flush takes effect."""
    atomic_write_json(
        directory / SHARDS_NAME,
        {
            "format_version": format_version,
            "generation": table.generation,
            "collections": {
                collection: [
                    {
                        "file": s.file,
                        "generation": s.generation,
                        "vectors": s.vectors,
                        "tombstones": s.tombstones,
                    }
                    for s in segments
                ]
                for collection, segments in table.collections.items()
            },
        },
    )
