"""Helpers and fixtures shared by the FAISS store tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.vectorstores.faiss_store import FaissVectorStore
from tests.contract.vectorstore_contract import DIM, MODEL, rec, vec

COLLECTIONS = ("a", "b", "c", "d", "e")


def open_store(directory: Path, model: str = MODEL, dimension: int = DIM) -> FaissVectorStore:
    return FaissVectorStore(directory, embedding_model=model, dimension=dimension)


def snapshot(store: FaissVectorStore, k: int = 1000) -> tuple[Any, ...]:
    hits = store.search(vec(1, 1, 1), k=k)
    per_collection = {c: store.count(collections={c}) for c in COLLECTIONS}
    return (
        store.document_ids(),
        per_collection,
        [(h.chunk_id, h.document_id, h.collection_id, round(h.score, 5)) for h in hits],
    )


def table(directory: Path) -> dict[str, list[dict[str, Any]]]:
    collections: dict[str, list[dict[str, Any]]] = json.loads(
        (directory / "shards.json").read_text()
    )["collections"]
    return collections


def segment_files(directory: Path) -> dict[str, list[str]]:
    return {c: [s["file"] for s in entries] for c, entries in table(directory).items()}


def files_on_disk(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("seg-*"))


def assert_no_garbage(directory: Path) -> None:
    named = sorted(f for files in segment_files(directory).values() for f in files)
    assert files_on_disk(directory) == named
    assert not list(directory.glob(".tmp-*"))


def unit_rows(n: int, seed: int, dimension: int = DIM) -> Any:
    rows = np.random.default_rng(seed).standard_normal((n, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def change_every_kind_of_collection(store: FaissVectorStore) -> None:
    """Grow a, move b's only chunk to a (b empties), delete c's document, create d;
    in e (big enough to keep its segment) delete two documents, replace and add a chunk."""
    store.upsert([rec("a3", "d4", "a", vec(1, 2)), rec("b1", "d2", "a", vec(0, 1))])
    store.delete_documents(["d3", "e1", "e2"])
    store.upsert([rec("d1", "d5", "d", vec(2, 1, 1))])
    store.upsert([rec("e0", "e0", "e", vec(1, 1, 1)), rec("e-new", "e30", "e", vec(1, 1, 0.9))])
