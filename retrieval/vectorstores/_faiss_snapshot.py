"""HNSW graphs kept on disk, so that reopening a big collection does not build it again.

Building the graph of a million vectors takes ~10 minutes of both cores, and searches
are exact (~100x slower) until it is done. So a build, once its graph holds every
vector it copied, writes it to ``graph-<key>.hnsw`` beside the segments (outside the
store's lock: the graph is the build's own until it is swapped in). Opening the
collection again, the store restores that graph instead of building one
(``Graph.restored``): each live vector the file holds unchanged is live again in it,
every other live vector goes to the graph's exact delta (and is merged in, in the
background), and rows of the file that are no longer live are dead rows. The file is
a cache of the segments, never the truth: what it holds is checked against them, a
file that does not read or fits other settings is ignored (and rebuilt), and one of a
collection that no longer exists is removed at open.

One file: an 8-byte length, a JSON header (version, collection, dimension, HNSW
parameters, rows), the row labels (faiss ids) as ``.npy``, then the faiss index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any

import faiss
import numpy as np

from retrieval._atomic import atomic_write
from retrieval.vectorstores._faiss_graph import Graph

logger = logging.getLogger(__name__)

PREFIX, SUFFIX = "graph-", ".hnsw"
VERSION = 1


def path_for(directory: Path, collection_id: str) -> Path:
    key = hashlib.blake2b(collection_id.encode("utf-8"), digest_size=12).hexdigest()
    return directory / f"{PREFIX}{key}{SUFFIX}"


def save(graph: Graph, directory: Path, collection_id: str) -> None:
    """Write ``graph`` (its HNSW index and row labels; every row live) for the collection."""
    n = int(graph.graph.ntotal)
    header = {
        "version": VERSION,
        "collection_id": collection_id,
        "dimension": graph.d,
        "m": graph.m,
        "ef_construction": int(graph.graph.hnsw.efConstruction),
        "rows": n,
    }

    def write(fh: IO[bytes]) -> None:
        raw = json.dumps(header).encode("utf-8")
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        np.lib.format.write_array(fh, np.ascontiguousarray(graph.labels[:n]))
        writer = faiss.PyCallbackIOWriter(fh.write)  # type: ignore[attr-defined]
        faiss.write_index(graph.graph, writer)
        del writer  # flushes

    atomic_write(path_for(directory, collection_id), write)


def load(
    directory: Path, collection_id: str, *, dimension: int, m: int, ef_construction: int
) -> tuple[Any, Any] | None:
    """The saved HNSW index and its row labels for the collection, or None when there is
    none, or it does not read, or it was built with other settings."""
    path = path_for(directory, collection_id)
    if not path.exists():
        return None
    expected = {
        "version": VERSION,
        "collection_id": collection_id,
        "dimension": dimension,
        "m": m,
        "ef_construction": ef_construction,
    }
    try:
        with path.open("rb") as fh:
            header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
            if {k: header.get(k) for k in expected} != expected:
                logger.info("%s was built with other settings; building the graph again", path)
                return None
            labels = np.lib.format.read_array(fh, allow_pickle=False)
            reader = faiss.PyCallbackIOReader(fh.read)  # type: ignore[attr-defined]
            index = faiss.read_index(reader)
    except Exception as e:  # truncated, corrupt, another faiss: a cache, so rebuild
        logger.warning("cannot read the saved graph %s (%s); building it again", path, e)
        return None
    if int(index.ntotal) != len(labels) or len(labels) != header.get("rows"):
        logger.warning("the saved graph %s is inconsistent; building it again", path)
        return None
    return index, labels.astype(np.int64, copy=False)


def remove_stale(directory: Path, collections: Collection[str]) -> None:
    """Remove the saved graphs of collections other than ``collections``."""
    keep = {path_for(directory, c).name for c in collections}
    for path in directory.glob(f"{PREFIX}*{SUFFIX}"):
        if path.name not in keep:
            with contextlib.suppress(OSError):
                path.unlink()
