"""The bm25s index passes the lexical index and the persistence contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from retrieval.errors import LexicalIndexError
from retrieval.lexical.base import LexicalRecord
from retrieval.lexical.bm25_index import Bm25Index
from tests.contract.lexical_contract import IndexFactory, LexicalIndexContract, ids
from tests.contract.persistence_contract import PersistenceContract


class TestBm25Index(LexicalIndexContract):
    persists_only_on_flush = True

    @pytest.fixture
    def index_factory(self) -> IndexFactory:
        return Bm25Index


class TestBm25Persistence(PersistenceContract):
    table_name = "collections.json"
    prefix = "seg-"
    error = LexicalIndexError
    mismatch_error = LexicalIndexError

    def open(self, directory: Path) -> Bm25Index:
        return Bm25Index(directory)

    def record(self, chunk_id: str, document_id: str, collection_id: str) -> LexicalRecord:
        text = f"shared topic{collection_id} {chunk_id.replace('-', '')} {document_id}"
        return LexicalRecord(chunk_id, document_id, collection_id, text)

    def snapshot(self, index: Bm25Index) -> Any:
        searches = {q: sorted(ids(index.search(q, k=1000))) for q in ("shared", "e31", "topica")}
        return index.document_ids(), {c: index.count(collections={c}) for c in "abcde"}, searches
