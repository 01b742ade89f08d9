"""Reranker registry: the settings' ``kind`` picks a backend, imported only when used.

A backend may build None (the ``cross-encoder`` kind does, with a log line, where its
weights are not on the machine): retrieval then runs without reranking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrieval.backends import Backend, Registry
from retrieval.errors import RerankError
from retrieval.rerankers.base import Reranker

REGISTRY: Registry[Reranker | None] = Registry(
    "reranker",
    {
        "cross-encoder": Backend("retrieval.rerankers.cross_encoder", "load_reranker", None),
        "fake": Backend("retrieval.rerankers.testing", "FakeReranker", None),
    },
    error=RerankError,
)


def available_kinds() -> list[str]:
    """Every kind the registry knows (whether or not its dependencies are installed)."""
    return REGISTRY.kinds()


def create_reranker(
    kind: str = "cross-encoder", context: Mapping[str, Any] | None = None, **kwargs: Any
) -> Reranker | None:
    """Build the reranker for ``kind`` (None where its model cannot load), passing
    ``kwargs`` (and what it takes of ``context``) to its constructor."""
    return REGISTRY.create(kind, context, **kwargs)
