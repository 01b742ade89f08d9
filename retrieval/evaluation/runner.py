"""Evaluate a retrieval mode on a BEIR-format dataset (``lantern eval retrieval --beir``,
or ``--squad``: a SQuAD-format file read by ``retrieval.evaluation.squad``).

The corpus (title + text, one chunk per document, one collection) is indexed into a
vector store and a BM25 index under ``workdir``; every judged query then goes through
``HybridRetriever`` exactly as the app's queries do, and the run is scored with BEIR's
metrics. Corpus embeddings are cached in ``workdir`` keyed by model and corpus hash, so
evaluating another mode does not embed the corpus again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embedders.base import Embedder, Matrix
from retrieval.evaluation.beir import BeirDataset, load_beir
from retrieval.evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from retrieval.fusion import DEFAULT_RRF_K
from retrieval.hybrid import MODES, HybridRetriever, Mode
from retrieval.lexical.base import LexicalIndex, LexicalRecord
from retrieval.rerankers.base import Reranker
from retrieval.vectorstores.base import VectorRecord, VectorStore

log = logging.getLogger(__name__)

COLLECTION = "beir"
#: Part of the embedding cache key: bump when ``BeirDoc.indexed_text`` changes.
TEXT_RECIPE = 1
DEPTH = 100  # deep enough for Recall@100

VectorFactory = Callable[[Path, str, int], VectorStore]
"""``(directory, embedding model name, dimension) -> an empty or existing store``."""
LexicalFactory = Callable[[Path], LexicalIndex]
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` with stage ``"embed"``, ``"index"`` or ``"query"``."""


@dataclass(frozen=True)
class EvalReport:
    mode: str
    ndcg10: float
    recall5: float
    recall10: float
    recall100: float
    mrr10: float
    #: Per-query wall time of ``HybridRetriever.retrieve`` (query embedding included).
    p50_ms: float
    p95_ms: float
    n_queries: int
    #: Seconds to build the indexes, embedding included unless it came from the cache.
    index_s: float
    dataset: str = ""
    embedding_model: str = ""
    embeddings_cached: bool = False
    #: The cross-encoder used, "" when none ran (``hybrid+rerank`` without one = hybrid).
    reranker: str = ""
    #: Mean milliseconds per retrieval stage.
    stage_ms: dict[str, float] = field(default_factory=dict)

    def as_row(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "nDCG@10": round(self.ndcg10 * 100, 2),
            "Recall@5": round(self.recall5 * 100, 2),
            "Recall@10": round(self.recall10 * 100, 2),
            "Recall@100": round(self.recall100 * 100, 2),
            "MRR@10": round(self.mrr10 * 100, 2),
            "p50 ms": round(self.p50_ms, 1),
            "p95 ms": round(self.p95_ms, 1),
            "queries": self.n_queries,
            "index s": round(self.index_s, 1),
        }


def evaluate_beir(folder: str | Path, *, split: str = "test", **options: Any) -> EvalReport:
    """Index a BEIR folder's corpus and score a mode on its judged queries (the options
    are ``evaluate_dataset``'s)."""
    return evaluate_dataset(load_beir(folder, split=split), **options)


def evaluate_dataset(
    data: BeirDataset,
    *,
    mode: Mode,
    embedder: Embedder | None,
    lexical_factory: LexicalFactory | None,
    vector_factory: VectorFactory | None = None,
    workdir: str | Path,
    batch_size: int = 256,
    progress: Progress | None = None,
    reranker: Reranker | None = None,
    weights: tuple[float, float] = (1.0, 1.0),
    rrf_k: float = DEFAULT_RRF_K,
    ignore_identical_ids: bool = True,
) -> EvalReport:
    """Index ``data``'s corpus and score ``mode`` on its judged queries.

    ``embedder`` may be None for ``bm25``; ``lexical_factory`` may be None for ``dense``.
    ``ignore_identical_ids`` drops a hit whose id equals the query's id, as BEIR does.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    needs_dense = mode != "bm25"
    needs_lexical = mode != "dense"
    if needs_dense and embedder is None:
        raise ValueError(f"mode {mode!r} needs an embedder")
    if needs_lexical and lexical_factory is None:
        raise ValueError(f"mode {mode!r} needs a lexical index")
    if mode == "hybrid+rerank" and reranker is None:
        log.warning("no reranker loaded: hybrid+rerank is scored as plain hybrid")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    ids = list(data.corpus)
    texts = [data.corpus[i].indexed_text() for i in ids]

    started = time.perf_counter()
    cached = False
    vectors: VectorStore | None = None
    if needs_dense and embedder is not None:
        matrix, cached = corpus_embeddings(data, embedder, work, batch_size, progress)
        factory = vector_factory or _faiss_factory
        key = _embedding_key(data, embedder)
        vectors = factory(work / f"dense-{key}", embedder.model_name, embedder.dimension)
        vectors.clear()
        for start in range(0, len(ids), batch_size):
            end = min(start + batch_size, len(ids))
            vectors.upsert(
                [VectorRecord(ids[j], ids[j], COLLECTION, matrix[j]) for j in range(start, end)]
            )
        vectors.flush()
    lexical: LexicalIndex | None = None
    if needs_lexical and lexical_factory is not None:
        lexical = lexical_factory(work / f"bm25-{data.corpus_sha256[:12]}")
        lexical.clear()
        for start in range(0, len(ids), batch_size):
            end = min(start + batch_size, len(ids))
            lexical.upsert(
                [LexicalRecord(ids[j], ids[j], COLLECTION, texts[j]) for j in range(start, end)]
            )
            if progress is not None:
                progress("index", end, len(ids))
        lexical.flush()
    index_s = time.perf_counter() - started

    text_of = dict(zip(ids, texts, strict=True))
    retriever = HybridRetriever(
        embedder if needs_dense else None,
        vectors,
        lexical,
        reranker=reranker if mode == "hybrid+rerank" else None,
        text_lookup=(lambda chunk_ids: {i: text_of[i] for i in chunk_ids if i in text_of}),
        dense_k=DEPTH,
        lexical_k=DEPTH,
        weights=weights,
        rrf_k=rrf_k,
        dedup_threshold=None,  # BEIR judges duplicates separately; suppressing them skews it
    )
    try:
        return _run_queries(
            data, retriever, mode, progress, ignore_identical_ids, index_s, embedder, cached
        )
    finally:
        if vectors is not None:
            vectors.close()
        if lexical is not None:
            lexical.close()


def _run_queries(
    data: BeirDataset,
    retriever: HybridRetriever,
    mode: Mode,
    progress: Progress | None,
    ignore_identical_ids: bool,
    index_s: float,
    embedder: Embedder | None,
    cached: bool,
) -> EvalReport:
    collections = {COLLECTION}
    first = next(iter(data.queries.values()), "")
    retriever.retrieve(first, k=DEPTH, collections=collections, mode=mode)  # warm-up
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    scores: dict[str, list[float]] = {
        "ndcg10": [],
        "recall5": [],
        "recall10": [],
        "recall100": [],
        "mrr10": [],
    }
    total = len(data.queries)
    for n, (qid, query) in enumerate(data.queries.items(), start=1):
        t0 = time.perf_counter()
        result = retriever.retrieve(query, k=DEPTH, collections=collections, mode=mode)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        for name, ms in vars(result.timings).items():
            stages.setdefault(name, []).append(ms)
        ranked = [
            c.document_id for c in result if not (ignore_identical_ids and c.document_id == qid)
        ]
        qrels = data.qrels[qid]
        scores["ndcg10"].append(ndcg_at_k(ranked, qrels, 10))
        scores["recall5"].append(recall_at_k(ranked, qrels, 5))
        scores["recall10"].append(recall_at_k(ranked, qrels, 10))
        scores["recall100"].append(recall_at_k(ranked, qrels, 100))
        scores["mrr10"].append(mrr_at_k(ranked, qrels, 10))
        if progress is not None:
            progress("query", n, total)
    lat = np.asarray(latencies or [0.0])
    return EvalReport(
        mode=mode,
        ndcg10=_mean(scores["ndcg10"]),
        recall5=_mean(scores["recall5"]),
        recall10=_mean(scores["recall10"]),
        recall100=_mean(scores["recall100"]),
        mrr10=_mean(scores["mrr10"]),
        p50_ms=float(np.percentile(lat, 50)),
        p95_ms=float(np.percentile(lat, 95)),
        n_queries=total,
        index_s=index_s,
        dataset=data.name,
        embedding_model=embedder.model_name if embedder is not None else "",
        embeddings_cached=cached,
        reranker=(
            retriever.reranker.model_name
            if mode == "hybrid+rerank" and retriever.reranker is not None
            else ""
        ),
        stage_ms={k: _mean(v) for k, v in stages.items()},
    )


def corpus_embeddings(
    data: BeirDataset,
    embedder: Embedder,
    workdir: Path,
    batch_size: int,
    progress: Progress | None,
) -> tuple[Matrix, bool]:
    """The corpus' vectors in ``data.corpus`` order, from the cache when present; returns
    ``(matrix, came_from_cache)``."""
    ids = list(data.corpus)
    path = workdir / f"embeddings-{_embedding_key(data, embedder)}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            cached_ids = [str(i) for i in z["ids"]]
            matrix = np.ascontiguousarray(z["vectors"], dtype=np.float32)
        if cached_ids == ids and matrix.shape == (len(ids), embedder.dimension):
            log.info("corpus embeddings from cache %s", path)
            return matrix, True
        log.warning("embedding cache %s does not match the corpus; embedding again", path)
    texts = [data.corpus[i].indexed_text() for i in ids]
    parts: list[Matrix] = []
    for start in range(0, len(texts), batch_size):
        parts.append(embedder.embed_documents(texts[start : start + batch_size]))
        if progress is not None:
            progress("embed", min(start + batch_size, len(texts)), len(texts))
    matrix = np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)
    _save_npz(path, ids, matrix)
    return matrix, False


def _embedding_key(data: BeirDataset, embedder: Embedder) -> str:
    slug = re.sub(r"[^a-z0-9._]+", "-", embedder.model_name.lower()).strip("-.") or "model"
    raw = json.dumps([embedder.model_name, embedder.dimension, data.corpus_sha256, TEXT_RECIPE])
    return f"{slug}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


def _save_npz(path: Path, ids: Sequence[str], matrix: Matrix) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, ids=np.asarray(ids, dtype=str), vectors=matrix)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the cache from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _faiss_factory(directory: Path, model: str, dimension: int) -> VectorStore:
    from retrieval.vectorstores.registry import create_vector_store

    return create_vector_store(
        "faiss", directory=directory, embedding_model=model, dimension=dimension
    )


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0
