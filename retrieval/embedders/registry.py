"""Build the configured embedder. The only place that knows the implementations."""

from __future__ import annotations

from typing import Any

from retrieval.embedders.base import Embedder


def create_embedder(kind: str = "sentence-transformers", **kwargs: Any) -> Embedder:
    if kind == "sentence-transformers":
        from retrieval.embedders.sentence_transformer import load_sentence_transformer

        return load_sentence_transformer(**kwargs)
    raise ValueError(f"unknown embedder kind {kind!r}; available: sentence-transformers")
