"""Lexical index registry: the settings' ``kind`` picks a backend, imported only when used."""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple, cast

from retrieval.errors import LexicalIndexError
from retrieval.lexical.base import LexicalIndex


class _Backend(NamedTuple):
    module: str
    attribute: str
    extra: str | None  # the pip extra that brings its third-party dependencies


_BACKENDS: dict[str, _Backend] = {
    "bm25": _Backend("retrieval.lexical.bm25_index", "Bm25Index", None),
}


def available_kinds() -> list[str]:
    """Every kind the registry knows (whether or not its dependencies are installed)."""
    return sorted(_BACKENDS)


def create_lexical_index(kind: str = "bm25", **kwargs: Any) -> LexicalIndex:
    """Build the lexical index for ``kind``, passing ``kwargs`` to its constructor.

    Raises ``LexicalIndexError`` for an unknown kind or missing dependencies.
    """
    backend = _BACKENDS.get(kind)
    if backend is None:
        raise LexicalIndexError(
            f"unknown lexical index kind {kind!r}; choose one of {', '.join(available_kinds())}"
        )
    try:
        module = importlib.import_module(backend.module)
    except ModuleNotFoundError as e:
        if e.name == backend.module:
            raise LexicalIndexError(
                f"the {kind!r} lexical index is not available in this version of Lantern"
            ) from e
        install = (
            f"pip install 'lantern[{backend.extra}]'" if backend.extra else "reinstall Lantern"
        )
        raise LexicalIndexError(
            f"the {kind!r} lexical index needs {e.name!r}, which is not installed; {install}"
        ) from e
    factory = getattr(module, backend.attribute)
    return cast(LexicalIndex, factory(**kwargs))
