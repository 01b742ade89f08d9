"""A deterministic stand-in embedder for tests: words hashed into buckets, no model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from retrieval.embedders.base import Matrix, ProgressFn
from retrieval.language import MULTILINGUAL

_WORD = re.compile(r"\w+")


class WordTokenizer:
    """Every run of word characters is one token."""

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[m.span() for m in _WORD.finditer(text)] for text in texts]


class FakeEmbedder:
    """Bag-of-words vectors (lower-cased words hashed into ``dimension`` buckets, then
    L2-normalised): texts sharing words are close, the same text always gets the same
    vector, and nothing is downloaded."""

    is_fallback = False
    languages = MULTILINGUAL  # words are hashed whatever their script

    def __init__(
        self, *, dimension: int = 64, max_tokens: int = 512, model_name: str = "fake"
    ) -> None:
        if dimension <= 0:
            raise ValueError(f"dimension must be positive, got {dimension}")
        self.model_name = model_name
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.tokenizer = WordTokenizer()

    def embed_documents(
        self, texts: Sequence[str], *, progress: ProgressFn | None = None
    ) -> Matrix:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._vector(text)
        if progress is not None and texts:
            progress(len(texts), len(texts))
        return out

    def embed_query(self, text: str) -> Matrix:
        return self._vector(text).reshape(1, -1)

    def _vector(self, text: str) -> Matrix:
        v = np.zeros(self.dimension, dtype=np.float32)
        for word in _WORD.findall(text.lower())[: self.max_tokens]:
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            v[int.from_bytes(digest, "little") % self.dimension] += 1.0
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            v[0] = 1.0  # an empty text still gets a unit vector, as real models give
            return v
        return v / norm
