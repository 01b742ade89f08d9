"""Cross-encoder reranking: score (query, passage) pairs jointly, reorder the fused top-N.

The ``cross-encoder`` reranker kind. The default model is ``BAAI/bge-reranker-base``.
Where its weights are not on the machine (no reranker ships on PyPI), ``load_reranker``
returns None and logs one line, and retrieval runs without reranking. A checkpoint without
a trained classification head is refused: sentence-transformers would otherwise load it
with a random head and rerank by noise while looking like it works.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from retrieval.errors import RerankError

log = logging.getLogger(__name__)

DEFAULT_RERANKER = "BAAI/bge-reranker-base"
DEFAULT_TOP_N = 30


class CrossEncoderLike(Protocol):
    def predict(self, inputs: Any, *, batch_size: int, show_progress_bar: bool) -> Any: ...


class CrossEncoderReranker:
    """A ``Reranker`` over a sentence-transformers ``CrossEncoder`` (or anything with its
    ``predict``)."""

    def __init__(
        self,
        model: CrossEncoderLike,
        *,
        model_name: str,
        top_n: int = DEFAULT_TOP_N,
        batch_size: int = 16,
    ) -> None:
        if top_n <= 0:
            raise ValueError(f"top_n must be positive, got {top_n}")
        self._model = model
        self.model_name = model_name
        self.top_n = top_n
        self.batch_size = batch_size

    def rerank(self, query: str, items: Sequence[tuple[str, str]]) -> list[tuple[str, float]]:
        if not items:
            return []
        pairs = [(query, text) for _, text in items]
        try:
            raw = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
            scores = [float(s) for s in raw]
        except Exception as e:  # torch/tokenizers raise many types
            raise RerankError(f"reranker {self.model_name} failed to score: {e}") from e
        if len(scores) != len(items):
            raise RerankError(
                f"reranker {self.model_name} returned {len(scores)} scores for {len(items)} pairs"
            )
        order = sorted(range(len(items)), key=lambda i: (-scores[i], i))
        return [(items[i][0], scores[i]) for i in order]


def load_reranker(
    model: str = DEFAULT_RERANKER,
    *,
    device: str = "cpu",
    allow_download: bool = True,
    top_n: int = DEFAULT_TOP_N,
    batch_size: int = 16,
    max_length: int = 512,
) -> CrossEncoderReranker | None:
    """The cross-encoder ``model`` from a local path, the HF cache or the hub (one quick
    reachability check, no minute of retries), or None (logged once, at warning level)
    when it cannot load or has no trained classification head."""
    from retrieval.embedders.sentence_transformer import resolve_model_path

    path, reasons = resolve_model_path(model, allow_download=allow_download)
    if path is not None:
        problem = missing_head(Path(path))
        if problem is not None:
            reasons.append(problem)
        else:
            try:
                encoder = _load_cross_encoder(path, device=device, max_length=max_length)
            except Exception as e:
                reasons.append(f"failed to load from {path}: {type(e).__name__}: {e}")
            else:
                log.info("reranker %s loaded from %s", model, path)
                return CrossEncoderReranker(
                    encoder, model_name=model, top_n=top_n, batch_size=batch_size
                )
    reason = "; ".join(r.splitlines()[0][:200] for r in reasons) or "unknown reason"
    log.warning("reranker %s unavailable (%s); reranking is off", model, reason)
    return None


def missing_head(
    model_dir: Path,
    *,
    architecture: str = "ForSequenceClassification",
    heads: tuple[str, ...] = ("classifier.", "score.", "classification_head."),
    what: str = "a cross-encoder",
    head: str = "classification",
) -> str | None:
    """Why ``model_dir`` is not a trained checkpoint of ``architecture`` (a class-name
    suffix), or None.

    Checks the config's architecture and, for safetensors checkpoints, that the head's
    weights (tensor names starting with one of ``heads``) are really in the file: a bare
    encoder would get a randomly initialised head.
    """
    config_file = model_dir / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"unreadable {config_file.name} in {model_dir} ({type(e).__name__})"
    architectures = [str(a) for a in config.get("architectures") or []]
    if not any(a.endswith(architecture) for a in architectures):
        return f"{model_dir} is not {what} (architectures {architectures})"
    weights = sorted(model_dir.glob("*.safetensors"))
    if weights and not any(_has_head_tensor(w, heads) for w in weights):
        return f"{model_dir} has no trained {head} head"
    return None


def _has_head_tensor(weights_file: Path, heads: tuple[str, ...]) -> bool:
    from safetensors import safe_open

    with safe_open(str(weights_file), framework="numpy") as f:
        return any(
            any(name.startswith(p) or f".{p}" in name for p in heads)
            for name in f.keys()  # noqa: SIM118 (not iterable)
        )


def _load_cross_encoder(path: str, *, device: str, max_length: int) -> CrossEncoderLike:
    from sentence_transformers import CrossEncoder

    model: CrossEncoderLike = CrossEncoder(
        path, device=device, max_length=max_length, local_files_only=True
    )
    return model
