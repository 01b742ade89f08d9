"""Lexical index registry: the settings' ``kind`` picks a backend, imported only when used."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrieval.backends import Backend, Registry
from retrieval.errors import LexicalIndexError
from retrieval.lexical.base import LexicalIndex

REGISTRY: Registry[LexicalIndex] = Registry(
    "lexical index",
    {
        "bm25": Backend("retrieval.lexical.bm25_index", "Bm25Index", None),
        "fake": Backend("retrieval.lexical.testing", "FakeLexicalIndex", None),
        "milvus": Backend("retrieval.lexical.milvus_index", "MilvusLexicalIndex", "milvus"),
    },
    error=LexicalIndexError,
)


def available_kinds() -> list[str]:
    """Every kind the registry knows (whether or not its dependencies are installed)."""
    return REGISTRY.kinds()


def create_lexical_index(
    kind: str = "bm25", context: Mapping[str, Any] | None = None, **kwargs: Any
) -> LexicalIndex:
    """Build the lexical index for ``kind``, passing ``kwargs`` (and what it takes of
    ``context``) to its constructor.

    Raises ``LexicalIndexError`` for an unknown kind or missing dependencies.
    """
    return REGISTRY.create(kind, context, **kwargs)
