"""The bm25s index passes the lexical index contract."""

from __future__ import annotations

import pytest

from retrieval.lexical.bm25_index import Bm25Index
from tests.contract.lexical_contract import IndexFactory, LexicalIndexContract


class TestBm25Index(LexicalIndexContract):
    persists_only_on_flush = True

    @pytest.fixture
    def index_factory(self) -> IndexFactory:
        return Bm25Index
