"""Fixtures for the FAISS store tests (shared by test_faiss_store and test_faiss_durability)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrieval.vectorstores.faiss_store import FaissVectorStore
from tests.contract.vectorstore_contract import rec, vec
from tests.unit.faiss_helpers import open_store, unit_rows


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of many flushes: what they check does not depend on durability."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def flushed(tmp_path: Path) -> FaissVectorStore:
    """Collections a (d1: two chunks), b (d2), c (d3), e (e0..e29, 300 chunks), flushed."""
    store = open_store(tmp_path)
    store.upsert(
        [
            rec("a1", "d1", "a", vec(1)),
            rec("a2", "d1", "a", vec(1, 1)),
            rec("b1", "d2", "b", vec(0, 1)),
            rec("c1", "d3", "c", vec(0, 0, 1)),
        ]
    )
    store.upsert([rec(f"e{i}", f"e{i // 10}", "e", v) for i, v in enumerate(unit_rows(300, 3))])
    store.flush()
    return store
