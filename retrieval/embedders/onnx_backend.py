"""The ``onnx`` embedder kind: load the model with sentence-transformers, run it on
onnxruntime (CPU only), falling back to torch with a warning wherever that is impossible."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection

from retrieval.embedders.base import Embedder
from retrieval.embedders.sentence_transformer import load_sentence_transformer

log = logging.getLogger(__name__)


def load_onnx(
    model: str,
    *,
    cache_dir: str | os.PathLike[str],
    quantize: bool = False,
    threads: int | None = None,
    device: str = "cpu",
    allow_download: bool = True,
    fallback: bool = True,
    query_instruction: str | None = None,
    batch_size: int = 32,
    languages: Collection[str] | None = None,
) -> Embedder:
    """``model`` exported once into ``cache_dir`` and run on onnxruntime; ``quantize`` uses
    dynamic int8 weights (faster, cosine ~0.99 to torch)."""
    reference = load_sentence_transformer(
        model,
        device=device,
        allow_download=allow_download,
        fallback=fallback,
        query_instruction=query_instruction,
        batch_size=batch_size,
        languages=languages,
    )
    if device != "cpu":
        log.warning("the onnx embedding backend runs on CPU only; using torch on %s", device)
        return reference
    from retrieval.embedders.onnx_embedder import load_onnx_embedder

    return load_onnx_embedder(reference, cache_dir=cache_dir, quantize=quantize, threads=threads)
