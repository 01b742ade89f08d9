"""Lexical index registry: the settings' ``kind`` picks a backend, imported only when used."""

from __future__ import annotations

from typing import Any, cast

from retrieval._backends import Backend, build_backend
from retrieval.errors import LexicalIndexError
from retrieval.lexical.base import LexicalIndex

_BACKENDS: dict[str, Backend] = {
    "bm25": Backend("retrieval.lexical.bm25_index", "Bm25Index", None),
}


def available_kinds() -> list[str]:
    """Every kind the registry knows (whether or not its dependencies are installed)."""
    return sorted(_BACKENDS)


def create_lexical_index(kind: str = "bm25", **kwargs: Any) -> LexicalIndex:
    """Build the lexical index for ``kind``, passing ``kwargs`` to its constructor.

    Raises ``LexicalIndexError`` for an unknown kind or missing dependencies.
    """
    index = build_backend(
        _BACKENDS, kind, family="lexical index", error=LexicalIndexError, **kwargs
    )
    return cast(LexicalIndex, index)
