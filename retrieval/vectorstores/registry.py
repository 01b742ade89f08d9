"""Vector store registry: the settings' ``kind`` picks a backend, imported only when used."""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple, cast

from retrieval.errors import VectorStoreError
from retrieval.vectorstores.base import VectorStore


class _Backend(NamedTuple):
    module: str
    attribute: str
    extra: str | None  # the pip extra that brings its third-party dependencies


_BACKENDS: dict[str, _Backend] = {
    "faiss": _Backend("retrieval.vectorstores.faiss_store", "FaissVectorStore", None),
    # Reserved: picked up as soon as retrieval/vectorstores/milvus_store.py exists.
    "milvus": _Backend("retrieval.vectorstores.milvus_store", "MilvusVectorStore", "milvus"),
}


def available_kinds() -> list[str]:
    """Every kind the registry knows (whether or not its dependencies are installed)."""
    return sorted(_BACKENDS)


def create_vector_store(kind: str, **kwargs: Any) -> VectorStore:
    """Build the vector store for ``kind``, passing ``kwargs`` to its constructor.

    Raises ``VectorStoreError`` for an unknown kind, a backend this version does not
    ship yet, or one whose optional dependencies are not installed.
    """
    backend = _BACKENDS.get(kind)
    if backend is None:
        raise VectorStoreError(
            f"unknown vector store kind {kind!r}; choose one of {', '.join(available_kinds())}"
        )
    try:
        module = importlib.import_module(backend.module)
    except ModuleNotFoundError as e:
        if e.name == backend.module:
            raise VectorStoreError(
                f"the {kind!r} vector store is not available in this version of Lantern yet; "
                f"use 'faiss'"
            ) from e
        install = (
            f"pip install 'lantern[{backend.extra}]'" if backend.extra else "reinstall Lantern"
        )
        raise VectorStoreError(
            f"the {kind!r} vector store needs {e.name!r}, which is not installed; {install}"
        ) from e
    factory = getattr(module, backend.attribute)
    return cast(VectorStore, factory(**kwargs))
