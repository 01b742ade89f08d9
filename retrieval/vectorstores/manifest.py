"""On-disk metadata of the FAISS store: its manifest and the entries of its segment table.

``manifest.json`` records which embedding model (and dimension) built an index, so
an index is never queried with vectors from another model. ``shards.json`` is the
commit point (``retrieval._sharded`` reads and writes it): it lists each collection's
segment files with the counts they hold, checked when a file is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval._sharded import REINDEX_HINT, Layout, check_format
from retrieval.errors import IndexMismatchError, VectorStoreError
from retrieval.vectorstores.base import IndexManifest

SHARDS_NAME = "shards.json"
SEGMENT_PREFIX = "seg-"


def manifest_payload(manifest: IndexManifest) -> dict[str, Any]:
    return {
        "embedding_model": manifest.embedding_model,
        "dimension": manifest.dimension,
        "backend": manifest.backend,
        "format_version": manifest.format_version,
    }


def check_manifest(payload: dict[str, Any], expected: IndexManifest, directory: Path) -> None:
    """Refuse an index built with another model, dimension, backend or on-disk format."""
    try:
        found = IndexManifest(
            embedding_model=str(payload["embedding_model"]),
            dimension=int(payload["dimension"]),
            backend=str(payload["backend"]),
            format_version=int(payload["format_version"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise VectorStoreError(
            f"{directory / 'manifest.json'} is malformed ({e!r}); {REINDEX_HINT}"
        ) from e
    if (found.embedding_model, found.dimension) != (expected.embedding_model, expected.dimension):
        raise IndexMismatchError(
            f"index at {directory} was built with {found.embedding_model!r} "
            f"({found.dimension}-d) but the configured embedding model is "
            f"{expected.embedding_model!r} ({expected.dimension}-d); {REINDEX_HINT}"
        )
    check_format(
        manifest_payload(found),
        backend=expected.backend,
        version=expected.format_version,
        where=f"index at {directory}",
        error=IndexMismatchError,
    )


@dataclass(frozen=True)
class SegmentEntry:
    """One committed segment file: the flush generation that wrote it, how many vectors
    and tombstones it holds (checked against the file when it is read)."""

    file: str
    generation: int
    vectors: int
    tombstones: int


def _encode(entries: tuple[SegmentEntry, ...]) -> list[dict[str, Any]]:
    return [
        {
            "file": s.file,
            "generation": s.generation,
            "vectors": s.vectors,
            "tombstones": s.tombstones,
        }
        for s in entries
    ]


def _decode(value: Any) -> tuple[SegmentEntry, ...]:
    entries = tuple(
        SegmentEntry(
            file=str(s["file"]),
            generation=int(s["generation"]),
            vectors=int(s["vectors"]),
            tombstones=int(s["tombstones"]),
        )
        for s in value
    )
    if any(s.vectors < 0 or s.tombstones < 0 for s in entries):
        raise ValueError("negative count")
    return entries


def layout(format_version: int) -> Layout[SegmentEntry]:
    """The segment table of a FAISS store in ``format_version``."""
    return Layout(SHARDS_NAME, format_version, SEGMENT_PREFIX, _encode, _decode, VectorStoreError)
