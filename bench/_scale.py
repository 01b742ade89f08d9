"""Data, measuring and building for ``retrieval_scale.py`` (its docstring says what and why)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    PeakRss,
    Precomputed,
    Row,
    SciFactText,
    lexical_batches,
    marked_document,
    percentiles,
    rss_mb,
    timed,
)

from retrieval.hybrid import HybridRetriever, Mode
from retrieval.lexical.bm25_index import Bm25Index
from retrieval.vectorstores.base import VectorRecord
from retrieval.vectorstores.faiss_store import FaissVectorStore

DIM = 384
MODEL = "bench/synthetic"
MAIN = {"main"}
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")


# -- data ----------------------------------------------------------------------


def synthetic(n: int, *, seed: int, count: int | None = None, noise: float = 0.5) -> Any:
    """``count`` (default ``n``) unit vectors like a sentence embedder's, in blocks, from
    the space of a corpus of ``n``: a Gaussian mixture of ~n/500 overlapping components
    in 24 latent dimensions mapped linearly into 384, plus isotropic ``noise`` and a
    direction every vector shares (real embeddings' anisotropy)."""
    rng = np.random.default_rng(n)  # the space: the same for documents, writes and queries
    latent, components = 24, max(8, n // 500)
    centres = rng.standard_normal((components, latent)).astype(np.float32)
    spread = (1.5 * rng.uniform(0.5, 1.5, components)).astype(np.float32)
    mapping = rng.standard_normal((latent, DIM)).astype(np.float32) / np.sqrt(latent)
    shared = _unit(rng.standard_normal((1, DIM)))[0]
    rng = np.random.default_rng(seed)
    total = n if count is None else count
    for start in range(0, total, 65_536):
        m = min(total, start + 65_536) - start
        c = rng.integers(0, components, m)
        z = centres[c] + spread[c, None] * rng.standard_normal((m, latent)).astype(np.float32)
        x = _unit(z @ mapping)
        x = _unit(x + noise * rng.standard_normal((m, DIM)).astype(np.float32) / np.sqrt(DIM))
        yield _unit(x + 0.4 * shared)


def queries_for(n: int, count: int) -> Any:
    """Queries from a corpus's space, noisier than its documents (as questions are)."""
    return np.concatenate(list(synthetic(n, seed=7, count=count, noise=0.8)))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# -- measuring -----------------------------------------------------------------


def timed_search(
    store: FaissVectorStore, queries: np.ndarray, collections: set[str], k: int = 10
) -> tuple[list[float], list[list[str]]]:
    seconds, hits = [], []
    for q in queries:
        start = time.perf_counter()
        found = store.search(q, k=k, collections=collections)
        seconds.append(time.perf_counter() - start)
        hits.append([h.chunk_id for h in found])
        assert all(h.collection_id in collections for h in found), "filter leaked"
    return seconds, hits


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(set(f) & set(t)) / max(1, len(t)) for f, t in pairs]))


def write_then_search(store: FaissVectorStore, n: int, rounds: int, seed: int) -> Any:
    """Upsert 50 new vectors and search for one of them, ``rounds`` times; then remove them."""
    (block,) = synthetic(n, seed=seed, count=50 * rounds)
    seconds = []
    for r in range(rounds):
        batch = [
            VectorRecord(f"w{r}-{i}", f"wd{r}", "main", v)
            for i, v in enumerate(block[50 * r : 50 * r + 50])
        ]
        start = time.perf_counter()
        store.upsert(batch)
        (hit,) = store.search(batch[7].vector, k=1, collections={"main"})
        seconds.append(time.perf_counter() - start)
        assert hit.chunk_id == batch[7].chunk_id, "a fresh write was not found"
    store.delete_documents({f"wd{r}" for r in range(rounds)})
    return percentiles(seconds)


def retriever_writes(
    retriever: HybridRetriever,
    text: SciFactText,
    n: int,
    queries: Sequence[str],
    tag: str,
) -> tuple[float, float]:
    """Through the retriever's own store and index: upsert a new 50-chunk document
    (vectors, then texts) and run a hybrid search for it (a claim and the document's
    marker word, embedded as its first chunk's vector), once per query; the document
    must be in the top 10. The documents are removed afterwards."""
    embedder, store, index = retriever.embedder, retriever.vectors, retriever.lexical
    assert isinstance(embedder, Precomputed), "the queries' vectors must be given"
    assert store is not None, "a vector store"
    assert index is not None, "a lexical index"
    (block,) = synthetic(n, seed=5, count=50 * len(queries))
    seconds, documents = [], set()
    for r, query in enumerate(queries):
        records, marker = marked_document(text, f"{tag}{r}", collection="main")
        vectors = [
            VectorRecord(t.chunk_id, t.document_id, t.collection_id, v)
            for t, v in zip(records, block[50 * r : 50 * r + 50], strict=True)
        ]
        asked = f"{query} {marker}"
        embedder.vectors[asked] = vectors[0].vector
        start = time.perf_counter()
        store.upsert(vectors)
        index.upsert(records)
        found = retriever.retrieve(asked, k=10, collections=MAIN)
        seconds.append(time.perf_counter() - start)
        assert records[0].chunk_id in found.chunk_ids, "a fresh write was not found"
        documents.add(records[0].document_id)
    store.delete_documents(documents)
    index.delete_documents(documents)
    return percentiles(seconds)


def timed_modes(
    retriever: HybridRetriever, queries: Sequence[str], modes: Sequence[Mode] = MODES
) -> dict[Mode, list[float]]:
    """Seconds of each query (k=10, one collection) in each mode, after 5 to warm up."""
    for query in queries[:5]:
        retriever.retrieve(query, k=10, collections=MAIN)
    return {
        mode: [
            timed(lambda q=q, m=mode: retriever.retrieve(q, k=10, collections=MAIN, mode=m))
            for q in queries
        ]
        for mode in modes
    }


# -- building ------------------------------------------------------------------


def fill_faiss(directory: Path, n: int) -> tuple[FaissVectorStore, float]:
    """An exact store of ``n`` vectors in ``main`` and n/100 in ``decoy`` (flushed), and
    the seconds that took."""
    store = FaissVectorStore(directory, embedding_model=MODEL, dimension=DIM, ann_threshold=0)
    start = time.perf_counter()
    offset = 0
    for block in synthetic(n, seed=1):
        store.upsert(records(block, "main", offset))
        offset += len(block)
    for block in synthetic(n, seed=2, count=max(1, n // 100)):
        store.upsert(records(block, "decoy", 0))
    store.flush()
    return store, time.perf_counter() - start


def open_approximate(
    directory: Path, args: argparse.Namespace, meanwhile: Callable[[FaissVectorStore], Any]
) -> tuple[FaissVectorStore, float, float, float, Any]:
    """The store reopened with approximate search on (for a collection past the
    threshold: ``approximate(store)`` says), once its graphs are built: the
    store, seconds to open, seconds to build, peak RSS MB, and what ``meanwhile(store)``
    (run during the build) returned."""
    with PeakRss() as peak:
        start = time.perf_counter()
        options = ann_options(args)
        store = FaissVectorStore(directory, embedding_model=MODEL, dimension=DIM, **options)
        opened = time.perf_counter() - start
        during = meanwhile(store)
        built = store.wait_until_built()
        build = time.perf_counter() - start - opened
    assert built, "the build did not finish"
    return store, opened, build, peak.peak, during


@dataclass
class Lexical:
    """A BM25 index of N chunks of SciFact text, built once per size and run."""

    index: Bm25Index
    text: SciFactText
    directory: Path
    ingest: float
    grown_mb: float
    peak_mb: float


def lexical_index(args: argparse.Namespace, n: int) -> Lexical:
    """The bundled BM25 index of ``n`` chunks of real text, built (batches of 1,000 and
    one flush) on first use at this size and kept for the other sections."""
    if n not in args.built:
        directory = Path(tempfile.mkdtemp(prefix="scale-bm25-", dir=args.workdir))
        text = SciFactText(seed=1)
        index = Bm25Index(directory / "index")
        index.search("warm up the analyzer", k=10)
        before = rss_mb()
        with PeakRss() as peak:
            start = time.perf_counter()
            for batch in lexical_batches(text, 0, n, collection="main"):
                index.upsert(batch)
            index.flush()
            ingest = time.perf_counter() - start
        args.built[n] = Lexical(index, text, directory, ingest, rss_mb() - before, peak.peak)
    built: Lexical = args.built[n]
    return built


def release(args: argparse.Namespace, n: int) -> None:
    built = args.built.pop(n, None)
    if built is not None:
        built.index.close()
        shutil.rmtree(built.directory, ignore_errors=True)


def records(block: np.ndarray, collection: str, offset: int) -> list[VectorRecord]:
    prefix = "c" if collection != "decoy" else "x"
    return [
        VectorRecord(f"{prefix}{offset + i}", f"{prefix}d{(offset + i) // 50}", collection, v)
        for i, v in enumerate(block)
    ]


def approximate(store: FaissVectorStore) -> str:
    """How the store searches ``main``: "approximate" (a graph) or "exact" (below the
    store's threshold for a graph)."""
    return "approximate" if store.approximate_collections() >= MAIN else "exact"


def ann_options(args: argparse.Namespace) -> dict[str, Any]:
    """The store's approximate-search settings the flags name (the rest: its defaults)."""
    options = {
        "ann_threshold": args.ann_threshold,
        "ann_m": args.m,
        "ann_ef_construction": args.ef_construction,
        "ann_ef_search": args.ef_search,
    }
    return {k: v for k, v in options.items() if v is not None}


def row(
    backend: str,
    n: int,
    mode: str,
    seconds: list[float],
    recall_at_10: float | None,
    build: float | None = None,
    rss: float | None = None,
    writes: tuple[float, float] | None = None,
    ingest: float | None = None,
) -> Row:
    p50, p95 = percentiles(seconds)
    return {
        "backend": backend,
        "chunks": n,
        "search": mode,
        "p50 ms": round(p50, 2),
        "p95 ms": round(p95, 2),
        "recall@10": None if recall_at_10 is None else round(recall_at_10, 3),
        "build s": None if build is None else round(build, 1),
        "RSS MB": None if rss is None else round(rss),
        "write+search p50/p95 ms": None if writes is None else pair(writes),
        "ingest s": None if ingest is None else round(ingest, 1),
    }


def pair(ms: tuple[float, float]) -> str:
    return f"{ms[0]:.1f} / {ms[1]:.1f}"
