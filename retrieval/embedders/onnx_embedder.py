"""ONNX Runtime backend for sentence-transformers models: the same vectors, faster on CPU.

The transformer is exported once with ``torch.onnx.export`` into a cache directory keyed by
model name and weights hash, checked against torch, and run with plain onnxruntime.
Tokenization, truncation, pooling and normalisation follow the model's sentence-transformers
config. Any failure falls back to the torch embedder: the optimisation never fails ingestion.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from retrieval.embedders.base import Embedder, Matrix, ProgressFn, Tokenizer
from retrieval.embedders.sentence_transformer import SentenceTransformerEmbedder
from retrieval.errors import EmbeddingError

log = logging.getLogger(__name__)

#: Part of the cache key: bump it when the export recipe changes so old exports are redone.
EXPORT_FORMAT = 1
OPSET = 17
MODEL_FILE = "model.onnx"
INT8_FILE = "model.int8r.onnx"  # r: reduce_range (see _quantize); an older file is rebuilt
#: Exports and quantisations must reproduce torch's vectors at least this closely.
MIN_COSINE = 0.999
MIN_COSINE_INT8 = 0.98
LOCK_TIMEOUT_S = 900.0

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OUTPUT = "token_embeddings"
_POOLING_MODES = frozenset({"cls", "mean", "max", "mean_sqrt_len_tokens"})
# The order sentence-transformers concatenates legacy ``pooling_mode_*`` flags in.
_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# Short, long (truncated), non-Latin and punctuation-heavy text: what an export must get right.
_CHECK_TEXTS = (
    "Lantern answers questions about company documents with citations.",
    "What is the refund policy for annual subscriptions?",
    "员工手册规定每位员工每年有十五天带薪年假，需提前两周申请。",
    "Invoice #4711 — total €1,234.56, due 2026-12-01 (net 30).",
    " ".join(["The quarterly report lists revenue, costs and headcount by region."] * 60),
)

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Pooling:
    """How token vectors become one sentence vector (``1_Pooling/config.json``)."""

    modes: tuple[str, ...]
    #: A ``Normalize`` module follows; the output is L2-normalised either way (the contract).
    normalize: bool


def read_pooling(model_dir: Path) -> Pooling:
    """The pooling of a sentence-transformers directory; ``EmbeddingError`` for module stacks
    other than Transformer -> Pooling (-> Normalize), which this backend does not reproduce."""
    modules_file = model_dir / "modules.json"
    if not modules_file.exists():
        return Pooling(modes=("mean",), normalize=False)  # what sentence-transformers assumes
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise EmbeddingError(f"unsupported module stack {kinds} (need Transformer, Pooling)")
    if modules[0].get("path", "") not in ("", "."):
        raise EmbeddingError("the transformer is not at the model directory's root")
    config = json.loads((model_dir / modules[1]["path"] / "config.json").read_text("utf-8"))
    mode: Any = config.get("pooling_mode")
    if mode is None:
        mode = [m for key, m in _LEGACY_POOLING.items() if config.get(key)] or ["mean"]
    modes = (mode,) if isinstance(mode, str) else tuple(str(m) for m in mode)
    unsupported = set(modes) - _POOLING_MODES
    if unsupported:
        raise EmbeddingError(f"unsupported pooling {sorted(unsupported)}")
    return Pooling(modes=modes, normalize=len(kinds) == 3)


def cache_key(model_name: str, model_dir: Path) -> str:
    """``<model-name-slug>-<12 hex of sha256(export format + weights)>``."""
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(
        model_dir.glob("pytorch_model*.bin")
    )
    if not weights:
        raise EmbeddingError(f"no weights file in {model_dir}")
    digest = hashlib.sha256(f"lantern-onnx-{EXPORT_FORMAT}".encode())
    for path in weights:
        with path.open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    slug = re.sub(r"[^a-z0-9._]+", "-", model_name.lower()).strip("-.") or "model"
    return f"{slug}-{digest.hexdigest()[:12]}"


def pool(hidden: npt.NDArray[np.float32], mask: IntArray, pooling: Pooling) -> Matrix:
    """Pooled, L2-normalised rows, as sentence-transformers computes them."""
    weights = mask[:, :, None].astype(np.float32)
    parts: list[Matrix] = []
    for mode in pooling.modes:
        if mode == "cls":  # first attended position, so left padding works too
            parts.append(hidden[np.arange(len(hidden)), mask.argmax(axis=1)])
        elif mode == "max":
            parts.append(np.where(weights > 0, hidden, -np.inf).max(axis=1))
        else:
            count = np.maximum(weights.sum(axis=1), 1e-9)
            total = (hidden * weights).sum(axis=1)
            parts.append(total / (count if mode == "mean" else np.sqrt(count)))
    vecs = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.ascontiguousarray(vecs / np.maximum(norms, 1e-12), dtype=np.float32)


class OnnxEmbedder:
    """An ``Embedder`` running an exported sentence-transformers model on onnxruntime."""

    def __init__(
        self,
        model_file: Path,
        *,
        tokenizer: Any,
        token_spans: Tokenizer,
        pooling: Pooling,
        model_name: str,
        dimension: int,
        max_tokens: int,
        is_fallback: bool = False,
        query_instruction: str = "",
        batch_size: int = 32,
        threads: int | None = None,
        languages: frozenset[str] = frozenset({"*"}),
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _default_threads()
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own, untyped, errors
            raise EmbeddingError(f"cannot load {model_file}: {e}") from e
        self._inputs = [i.name for i in self._session.get_inputs()]
        # A private copy, used under a lock: a fast tokenizer mutates its truncation settings on
        # every call and raises "Already borrowed" when two threads call it at once.
        self._tok = copy.deepcopy(tokenizer)
        self._tok_lock = threading.Lock()
        self._pooling = pooling
        self.model_file = model_file
        self.backend = "onnx-int8" if model_file.name == INT8_FILE else "onnx"
        self.model_name = model_name
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.is_fallback = is_fallback
        self.query_instruction = query_instruction
        self.batch_size = batch_size
        self.tokenizer = token_spans
        self.languages = languages

    def embed_documents(
        self, texts: Sequence[str], *, progress: ProgressFn | None = None
    ) -> Matrix:
        total = len(texts)
        out = np.empty((total, self.dimension), dtype=np.float32)
        if total == 0:
            return out
        features = self._tokenize(texts)
        lengths = [len(ids) for ids in features["input_ids"]]
        # Longest first, in token counts, so each batch pads as little as possible.
        order = sorted(range(total), key=lambda i: lengths[i], reverse=True)
        for start in range(0, total, self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._run({k: [v[i] for i in idx] for k, v in features.items()})
            if progress is not None:
                progress(min(start + self.batch_size, total), total)
        return out

    def embed_query(self, text: str) -> Matrix:
        return self.embed_documents([self.query_instruction + text])

    def _tokenize(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        try:
            with self._tok_lock:
                enc = self._tok(
                    list(texts),
                    truncation=True,
                    max_length=self.max_tokens,
                    return_token_type_ids="token_type_ids" in self._inputs,
                    verbose=False,
                )
        except Exception as e:
            raise EmbeddingError(f"{self.model_name} failed to tokenize: {e}") from e
        return {name: enc[name] for name in self._inputs}

    def _run(self, batch: dict[str, list[list[int]]]) -> Matrix:
        ids = batch["input_ids"]
        width = max(len(row) for row in ids)
        left = getattr(self._tok, "padding_side", "right") == "left"
        pad_id = int(getattr(self._tok, "pad_token_id", None) or 0)
        feeds: dict[str, IntArray] = {}
        for name, rows in batch.items():
            arr = np.full((len(rows), width), pad_id if name == "input_ids" else 0, np.int64)
            for j, row in enumerate(rows):
                if left:
                    arr[j, width - len(row) :] = row
                else:
                    arr[j, : len(row)] = row
            feeds[name] = arr
        try:
            (hidden,) = self._session.run([_OUTPUT], feeds)
        except Exception as e:
            raise EmbeddingError(f"{self.model_name} failed to encode: {e}") from e
        return pool(np.asarray(hidden, dtype=np.float32), feeds["attention_mask"], self._pooling)


def load_onnx_embedder(
    reference: SentenceTransformerEmbedder,
    *,
    cache_dir: str | os.PathLike[str],
    quantize: bool = False,
    threads: int | None = None,
) -> Embedder:
    """``reference`` on onnxruntime: exported into ``cache_dir`` on first use, reused after,
    checked against ``reference`` every time. Returns ``reference`` itself, with a warning,
    when onnxruntime is missing or the export fails or disagrees with torch."""
    try:
        return _load(reference, Path(cache_dir), quantize=quantize, threads=threads)
    except ImportError as e:
        log.warning(
            "onnxruntime is not installed (%s); embedding %s with torch. "
            "pip install onnxruntime for about twice the CPU speed.",
            e,
            reference.model_name,
        )
    except Exception as e:  # never fail ingestion because of the optimisation
        log.warning(
            "ONNX export of %s failed (%s: %s); embedding with torch instead.",
            reference.model_name,
            type(e).__name__,
            str(e).splitlines()[0][:300] if str(e) else "",
        )
    return reference


def _load(
    reference: SentenceTransformerEmbedder, cache_dir: Path, *, quantize: bool, threads: int | None
) -> Embedder:
    import onnxruntime  # noqa: F401  # fail early, with ImportError, before exporting
    from filelock import FileLock

    if reference.model_path is None:
        raise EmbeddingError("the torch embedder does not know its model directory")
    model_dir = Path(reference.model_path)
    pooling = read_pooling(model_dir)
    key = cache_key(reference.model_name, model_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    directory = cache_dir / key

    def open_checked(model_file: Path, min_cosine: float) -> OnnxEmbedder:
        st = reference.sentence_transformer
        embedder = OnnxEmbedder(
            model_file,
            tokenizer=st.tokenizer,
            token_spans=reference.tokenizer,
            pooling=pooling,
            model_name=reference.model_name,
            dimension=reference.dimension,
            max_tokens=reference.max_tokens,
            is_fallback=reference.is_fallback,
            query_instruction=reference.query_instruction,
            batch_size=reference.batch_size,
            threads=threads,
            languages=reference.languages,
        )
        worst = _worst_cosine(embedder, reference)
        if not worst >= min_cosine:
            raise EmbeddingError(f"{model_file.name} disagrees with torch (cosine {worst:.4f})")
        log.debug("%s matches torch (min cosine %.5f)", model_file, worst)
        return embedder

    with FileLock(str(cache_dir / f"{key}.lock"), timeout=LOCK_TIMEOUT_S):
        for stale in cache_dir.glob(f".{key}.*.tmp"):  # left by a crash mid-export
            shutil.rmtree(stale, ignore_errors=True)
        int8 = directory / INT8_FILE
        if quantize and int8.exists():
            try:
                return _announce(open_checked(int8, MIN_COSINE_INT8))
            except EmbeddingError as e:
                log.warning("cached int8 model %s is unusable (%s); rebuilding it", int8, e)
                int8.unlink(missing_ok=True)
        embedder: OnnxEmbedder | None = None
        if directory.exists():
            try:
                embedder = open_checked(directory / MODEL_FILE, MIN_COSINE)
            except EmbeddingError as e:
                log.warning("cached ONNX model %s is unusable (%s); exporting again", directory, e)
                _discard(directory)
        if embedder is None:
            _export_atomically(reference, directory)
            embedder = open_checked(directory / MODEL_FILE, MIN_COSINE)
        if quantize:
            try:
                _quantize(directory / MODEL_FILE, int8)
                embedder = open_checked(int8, MIN_COSINE_INT8)
            except Exception as e:
                log.warning("int8 model unusable (%s); using the fp32 ONNX model", e)
                int8.unlink(missing_ok=True)
    return _announce(embedder)


def _announce(embedder: OnnxEmbedder) -> OnnxEmbedder:
    log.info(
        "embedding %s with onnxruntime (%s) from %s",
        embedder.model_name,
        embedder.backend,
        embedder.model_file,
    )
    return embedder


def _worst_cosine(candidate: Embedder, reference: Embedder) -> float:
    a = candidate.embed_documents(_CHECK_TEXTS)
    b = reference.embed_documents(_CHECK_TEXTS)
    return float(np.min(np.sum(a * b, axis=1)))


def _export_atomically(reference: SentenceTransformerEmbedder, directory: Path) -> None:
    """Export into a temporary sibling directory, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the cache from other service users
        started = time.perf_counter()
        inputs = export_transformer(reference.sentence_transformer, tmp / MODEL_FILE)
        seconds = time.perf_counter() - started
        manifest = {
            "model_name": reference.model_name,
            "source": reference.model_path,
            "inputs": inputs,
            "output": _OUTPUT,
            "opset": OPSET,
            "export_format": EXPORT_FORMAT,
            "export_seconds": round(seconds, 2),
        }
        (tmp / "export.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        for path in tmp.iterdir():
            _fsync(path)
        tmp.rename(directory)
        _fsync(directory.parent)
        log.info("exported %s to ONNX in %.1fs: %s", reference.model_name, seconds, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_transformer(st_model: Any, model_file: Path) -> list[str]:
    """Export the ``SentenceTransformer``'s transformer (token embeddings out, dynamic batch
    and sequence axes) to ``model_file``. Returns the input names."""
    import torch

    transformer = st_model[0].auto_model
    accepted = inspect.signature(transformer.forward).parameters
    sample = st_model.tokenizer(
        ["Lantern exports this model once.", "A second, longer sentence pads the batch a bit."],
        padding=True,
        return_tensors="pt",
    )
    names = [n for n in _INPUTS if n in sample and n in accepted]
    if names[:2] != ["input_ids", "attention_mask"]:
        raise EmbeddingError(f"the transformer takes {names}, not input_ids and attention_mask")

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            out = self.transformer(**dict(zip(names, args, strict=True)), return_dict=False)
            return out[0]  # type: ignore[no-any-return]

    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, _OUTPUT]}
    attention = getattr(transformer.config, "_attn_implementation", None)
    was_training = transformer.training
    try:
        # Plain attention exports to the MatMul/Softmax pattern onnxruntime fuses best.
        if attention not in (None, "eager") and hasattr(transformer, "set_attn_implementation"):
            transformer.set_attn_implementation("eager")
        transformer.eval()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter, not actionable
            torch.onnx.export(
                TokenEmbeddings(),
                tuple(sample[n] for n in names),
                str(model_file),
                input_names=names,
                output_names=[_OUTPUT],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        if attention not in (None, "eager") and hasattr(transformer, "set_attn_implementation"):
            transformer.set_attn_implementation(attention)
        transformer.train(was_training)
    return names


def _quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 weights, per channel (per tensor loses too much: cosine ~0.89)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.tmp.onnx")
    root = logging.getLogger()
    quiet = _DropRecordsFrom(str(Path(quantize_dynamic.__code__.co_filename).parent))
    root.addFilter(quiet)  # it logs a line per tensor to the root logger
    try:
        # reduce_range: 7-bit weights. On x86 CPUs without VNNI (AVX2, AVX-512F) the
        # u8 x s8 kernels saturate with 8-bit weights (cosine 0.967 on an AVX2 EPYC,
        # against 0.98 with VNNI); the file is cached and may move between CPUs.
        quantize_dynamic(src, tmp, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        _fsync(tmp)
        tmp.replace(dst)
    finally:
        root.removeFilter(quiet)
        tmp.unlink(missing_ok=True)


class _DropRecordsFrom(logging.Filter):
    def __init__(self, directory: str) -> None:
        super().__init__()
        self._directory = directory

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self._directory)


def _discard(directory: Path) -> None:
    aside = directory.with_name(f".{directory.name}.{os.getpid()}.bad.tmp")
    directory.rename(aside)
    shutil.rmtree(aside, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _default_threads() -> int:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:
        return os.cpu_count() or 1
