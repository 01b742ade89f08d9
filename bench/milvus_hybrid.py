"""Hybrid search on milvus-lite: two calls fused in Python against one ``hybrid_search``.

    python bench/milvus_hybrid.py --n 100000 --queries 200

N synthetic chunks (384-d unit vectors, MiniLM's size; texts of 40-120 words drawn
from a Zipf vocabulary of 20k pseudo-words, ``p(rank) ~ 1 / rank ** 1.1``) in 10
collections, written to three layouts in one milvus-lite database:

- ``separate``: the store and the lexical index in a collection each (what Lantern
  did before: two searches, fused by ``retrieval.fusion.rrf``);
- ``shared, two calls``: one collection holding vectors and text, searched twice;
- ``shared, one call``: the same collection, one ``hybrid_search`` with RRF.

Each query is a stored chunk's vector plus noise and three of its words, searched
through ``HybridRetriever`` (dense_k = lexical_k = 50, k = 10, no dedup, no rerank,
the embedding precomputed) once over all collections and once filtered to one.
Prints p50/p95 milliseconds per layout and filter, and how often the one-call top 10
equals the shared two-call top 10 (exactly, and as a set).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
from _common import Precomputed, ZipfText, load_line, spread

from retrieval._milvus import MilvusConnection
from retrieval._milvus_text import FullText
from retrieval.hybrid import HybridRetriever
from retrieval.lexical.base import LexicalHit, LexicalRecord
from retrieval.lexical.milvus_index import MilvusLexicalIndex
from retrieval.vectorstores.base import VectorRecord
from retrieval.vectorstores.milvus_store import MilvusVectorStore

DIM = 384
COLLECTIONS = [f"col{i}" for i in range(10)]
BATCH = 2000


class TwoCalls:
    """The lexical index without ``fused_search``: searched apart from the store."""

    def __init__(self, inner: MilvusLexicalIndex) -> None:
        self.inner = inner

    def search(
        self, query: str, *, k: int, collections: Collection[str] | None = None
    ) -> list[LexicalHit]:
        return self.inner.search(query, k=k, collections=collections)


def corpus(n: int, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = ZipfText(seed, vocabulary=20_000, offset=1.0, exponent=1.1)
    texts = words.texts(rng.integers(40, 121, size=n).tolist())
    cols = [COLLECTIONS[i % len(COLLECTIONS)] for i in range(n)]
    return vectors, texts, cols


def fill(store: MilvusVectorStore, lexical: MilvusLexicalIndex, data: Any) -> float:
    vectors, texts, cols = data
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        end = min(start + BATCH, len(texts))
        store.upsert(
            [VectorRecord(f"c{i}", f"d{i // 10}", cols[i], vectors[i]) for i in range(start, end)]
        )
        lexical.upsert(
            [LexicalRecord(f"c{i}", f"d{i // 10}", cols[i], texts[i]) for i in range(start, end)]
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="chunks")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="work dir (default: a temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.dir or tempfile.mkdtemp(prefix="milvus-hybrid-bench-"))
    shutil.rmtree(work, ignore_errors=True)
    conn = MilvusConnection(uri=str(work / "milvus.db"))
    data = corpus(args.n, args.seed)
    embedder = Precomputed(DIM)
    model = embedder.model_name

    def open_all() -> tuple[Any, ...]:
        plain = MilvusVectorStore(
            work / "separate", embedding_model=model, dimension=DIM, milvus=conn
        )
        apart = MilvusLexicalIndex(work / "separate", milvus=conn)
        shared = MilvusVectorStore(
            work / "shared", embedding_model=model, dimension=DIM, milvus=conn, full_text=FullText()
        )
        return (
            plain,
            apart,
            shared,
            MilvusLexicalIndex(work / "shared", milvus=conn, vectors=shared),
        )

    plain, apart, shared, view = open_all()
    print(f"indexing {args.n} chunks: separate {fill(plain, apart, data):.0f}s, ", end="")
    print(f"shared {fill(shared, view, data):.0f}s", flush=True)
    # Reopened, as after a restart: milvus-lite searches what was just written in its
    # unindexed growing segments, many times slower (~0.5 s at 5k chunks).
    for index in (view, shared, apart, plain):
        index.close()
    plain, apart, shared, view = open_all()
    try:
        rng = np.random.default_rng(args.seed + 1)
        vectors, texts, cols = data
        queries = []
        for i in rng.choice(args.n, size=args.queries, replace=False).tolist():
            q = vectors[i] + 0.8 * rng.standard_normal(DIM).astype(np.float32) / np.sqrt(DIM)
            text = " ".join(rng.choice(texts[i].split(), size=3, replace=False))
            embedder.vectors[text] = q / np.linalg.norm(q)
            queries.append((text, cols[i]))
        options: dict[str, Any] = {"dense_k": 50, "lexical_k": 50, "dedup_threshold": None}
        layouts = {
            "separate, two calls": HybridRetriever(embedder, plain, apart, **options),
            "shared, two calls": HybridRetriever(embedder, shared, TwoCalls(view), **options),  # type: ignore[arg-type]
            "shared, one call": HybridRetriever(embedder, shared, view, **options),
        }
        print("\n| layout | filter | p50 / p95 ms |\n|---|---|---|")
        tops: dict[tuple[str, str], list[list[str]]] = {}
        for scope in ("all collections", "one collection"):
            for name, retriever in layouts.items():
                for text, _col in queries[:10]:  # warm up
                    retriever.retrieve(text, k=10, collections=None)
                seconds, top = [], []
                for text, col in queries:
                    where = None if scope == "all collections" else {col}
                    t0 = time.perf_counter()
                    result = retriever.retrieve(text, k=10, collections=where)
                    seconds.append(time.perf_counter() - t0)
                    top.append(result.chunk_ids)
                tops[name, scope] = top
                print(f"| {name} | {scope} | {spread(seconds)} |", flush=True)
        for scope in ("all collections", "one collection"):
            one, two = tops["shared, one call", scope], tops["shared, two calls", scope]
            same = sum(a == b for a, b in zip(one, two, strict=True))
            sets = sum(set(a) == set(b) for a, b in zip(one, two, strict=True))
            print(
                f"\n{scope}: one call = two calls for {same}/{len(one)} top-10 lists "
                f"({sets}/{len(one)} as sets)"
            )
        print(f"\n{load_line()}")
    finally:
        for index in (view, shared, apart, plain):
            index.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
