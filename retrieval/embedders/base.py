"""The embedder protocol: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each batch."""


class Tokenizer(Protocol):
    """The embedding model's own tokenizer, so chunk sizes are measured in its tokens."""

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character ``(start, end)`` of every token of every text (no special tokens)."""


class Embedder(Protocol):
    """Errors: ``EmbeddingError`` when the model cannot load or encode."""

    model_name: str
    dimension: int
    #: Longest input in tokens the model attends to; longer text is truncated.
    max_tokens: int
    #: True when the configured model could not load and a bundled fallback is in use.
    is_fallback: bool
    #: ISO 639-1 codes of the languages the model was trained on, or ``{"*"}`` for a
    #: multilingual one: the hybrid retriever gives a query in other scripts to BM25.
    languages: frozenset[str]
    tokenizer: Tokenizer

    def embed_documents(
        self, texts: Sequence[str], *, progress: ProgressFn | None = None
    ) -> Matrix:
        """One normalised row per text, in order."""

    def embed_query(self, text: str) -> Matrix:
        """A single normalised row; applies the model's query instruction (bge)."""
