"""Embedder registry: the settings' ``kind`` picks a runtime, imported only when used.

``torch`` runs a sentence-transformers model; ``onnx`` runs the same model on onnxruntime
(falling back to torch, with a warning, where that is impossible); ``fake`` hashes words,
for tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrieval.backends import Backend, Registry
from retrieval.embedders.base import Embedder
from retrieval.errors import EmbeddingError

REGISTRY: Registry[Embedder] = Registry(
    "embedder",
    {
        "torch": Backend(
            "retrieval.embedders.sentence_transformer", "load_sentence_transformer", None
        ),
        "onnx": Backend("retrieval.embedders.onnx_backend", "load_onnx", None),
        "fake": Backend("retrieval.embedders.testing", "FakeEmbedder", None),
    },
    error=EmbeddingError,
)


def available_kinds() -> list[str]:
    """Every kind the registry knows (whether or not its dependencies are installed)."""
    return REGISTRY.kinds()


def create_embedder(
    kind: str = "torch", context: Mapping[str, Any] | None = None, **kwargs: Any
) -> Embedder:
    """Build the embedder for ``kind``, passing ``kwargs`` (and what it takes of
    ``context``) to its constructor.

    Raises ``EmbeddingError`` for an unknown kind or a model that cannot load.
    """
    return REGISTRY.create(kind, context, **kwargs)
