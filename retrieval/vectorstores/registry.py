"""Vector store registry: the settings' ``kind`` picks a backend, imported only when used."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrieval.backends import Backend, Registry
from retrieval.errors import VectorStoreError
from retrieval.vectorstores.base import VectorStore

REGISTRY: Registry[VectorStore] = Registry(
    "vector store",
    {
        "faiss": Backend("retrieval.vectorstores.faiss_store", "FaissVectorStore", None),
        "fake": Backend("retrieval.vectorstores.testing", "FakeVectorStore", None),
        "milvus": Backend("retrieval.vectorstores.milvus_store", "MilvusVectorStore", "milvus"),
    },
    error=VectorStoreError,
    fallback_hint="; use 'faiss'",
)


def available_kinds() -> list[str]:
    """Every kind the registry knows (whether or not its dependencies are installed)."""
    return REGISTRY.kinds()


def create_vector_store(
    kind: str, context: Mapping[str, Any] | None = None, **kwargs: Any
) -> VectorStore:
    """Build the vector store for ``kind``, passing ``kwargs`` (and what it takes of
    ``context``) to its constructor.

    Raises ``VectorStoreError`` for an unknown kind, a backend this version does not
    ship yet, or one whose optional dependencies are not installed.
    """
    return REGISTRY.create(kind, context, **kwargs)
