"""The fake lexical index (the ``fake`` kind) passes the lexical index contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.lexical.base import LexicalIndex
from retrieval.lexical.registry import create_lexical_index
from tests.contract.lexical_contract import IndexFactory, LexicalIndexContract


class TestFakeLexicalIndex(LexicalIndexContract):
    @pytest.fixture
    def index_factory(self) -> IndexFactory:
        def make(directory: Path) -> LexicalIndex:
            return create_lexical_index("fake", directory=directory)

        return make
