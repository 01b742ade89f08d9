"""Vector store registry: the settings' ``kind`` picks a backend, imported only when used."""

from __future__ import annotations

from typing import Any, cast

from retrieval._backends import Backend, build_backend
from retrieval.errors import VectorStoreError
from retrieval.vectorstores.base import VectorStore

_BACKENDS: dict[str, Backend] = {
    "faiss": Backend("retrieval.vectorstores.faiss_store", "FaissVectorStore", None),
    # Reserved: picked up as soon as retrieval/vectorstores/milvus_store.py exists.
    "milvus": Backend("retrieval.vectorstores.milvus_store", "MilvusVectorStore", "milvus"),
}


def available_kinds() -> list[str]:
    """Every kind the registry knows (whether or not its dependencies are installed)."""
    return sorted(_BACKENDS)


def create_vector_store(kind: str, **kwargs: Any) -> VectorStore:
    """Build the vector store for ``kind``, passing ``kwargs`` to its constructor.

    Raises ``VectorStoreError`` for an unknown kind, a backend this version does not
    ship yet, or one whose optional dependencies are not installed.
    """
    store = build_backend(
        _BACKENDS,
        kind,
        family="vector store",
        error=VectorStoreError,
        fallback_hint="; use 'faiss'",
        **kwargs,
    )
    return cast(VectorStore, store)
