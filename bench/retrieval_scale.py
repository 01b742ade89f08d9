"""Retrieval at scale: search latency, recall, index build time, memory, write-then-search.

    python bench/retrieval_scale.py --sizes 100000,1000000
    python bench/retrieval_scale.py --sizes 100000 --sections lexical,hybrid,milvus
    python bench/retrieval_scale.py --sizes 100000 --sections faiss --json /tmp/scale.json

Prints one markdown table, a row per backend, size and search mode (after each
section its own rows, the time it took and the load average: the machine may be
shared). Each section is a function (``SECTIONS``) that returns rows; ``--sections``
picks them, ``--sizes`` the chunk counts (sizes outer, sections inner).

``faiss``: N synthetic 384-d vectors (MiniLM's size) in one collection, plus a decoy
collection of N/100 more that every search filters out. Uniform random vectors are
a worst case no embedder produces (every point is about as far from every other);
these come from a low-dimensional Gaussian mixture mapped into 384 dimensions, with
the anisotropy of real sentence embeddings, and were calibrated on MiniLM's vectors
of SciFact (5k abstracts, 300 questions): at that size an IVF index of 128 lists
finds the same share of the exact top 10 for both, within 0.02, at 8, 16 and 32 lists
probed. It times exact search, then reopens the store with approximate search on
(the build starts at open, in the background), times the build, searches during it
and after it, and measures recall@10 of the approximate hits against the exact ones,
the process's resident memory, and writes (upsert 50 vectors, then search).

``lexical``: the bundled BM25 index (segmented) over N chunks of real text:
``_common.SciFactText``, each chunk two windows of consecutive sentences of random
SciFact abstracts (~145 words), all N distinct; queries are SciFact's claims. Build
(upsert in batches of 1,000 and one flush; peak RSS), search p50/p95, write+search
(upsert a new 50-chunk document, then search a claim and a word only that document
holds: it must be found) and the flush after each, RSS and its growth per chunk.

``hybrid``: FAISS with the ``faiss`` section's synthetic vectors (the store's default
settings: approximate past its threshold, built at open and waited for) and the BM25
index of ``lexical`` (the same one when both run) under ``HybridRetriever`` with the
app's defaults (dense_k = lexical_k = 50, RRF k = 60), the query vectors precomputed
(``_common.Precomputed``; the dense and lexical lists are unrelated, so this times the
path, not its quality): dense, bm25 and hybrid p50/p95, then write+search through the
retriever (vectors and texts of a 50-chunk document, then a hybrid search that must
return it).

``milvus``: milvus-lite with the vector store and the lexical index in one collection
(what ``LANTERN_VECTOR_STORE__KIND=milvus`` builds): the same vectors and texts, written
in batches of 2,000, reopened (milvus-lite searches fresh rows unindexed), then dense,
bm25 and hybrid (one ``hybrid_search`` call), write+search as above. milvus-lite's
server runs inside the process, so its memory is in the RSS.

``scifact``: the real vectors, exact against approximate (threshold forced low):
a recall sanity check on real questions. The corpus is embedded with the bundled
MiniLM once (~10 minutes on 2 cores) and cached under ``--cache``.

Searches run one query at a time, k=10, with a collection filter, on ``--threads``
FAISS threads (1 by default: fastest for single queries); the background build uses
FAISS's default (all cores).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    SCIFACT,
    Precomputed,
    Row,
    SciFactText,
    lexical_batches,
    lexical_writes,
    load_line,
    percentiles,
    postings_bytes,
    rss_mb,
    table,
    timed,
)
from _scale import (
    DIM,
    MAIN,
    MODEL,
    ann_options,
    approximate,
    fill_faiss,
    lexical_index,
    open_approximate,
    pair,
    queries_for,
    recall,
    records,
    release,
    retriever_writes,
    row,
    synthetic,
    timed_modes,
    timed_search,
    write_then_search,
)

from retrieval.hybrid import HybridRetriever
from retrieval.vectorstores.base import VectorRecord
from retrieval.vectorstores.faiss_store import FaissVectorStore

# -- sections ------------------------------------------------------------------


def faiss_section(args: argparse.Namespace, n: int) -> list[Row]:
    """FAISS at ``n`` vectors: exact, then approximate (built in the background)."""
    directory = Path(tempfile.mkdtemp(prefix="scale-faiss-", dir=args.workdir))
    queries = queries_for(n, args.queries)
    rows: list[Row] = []
    try:
        exact, ingest = fill_faiss(directory, n)
        seconds, truth = timed_search(exact, queries, MAIN)
        writes = write_then_search(exact, n, args.write_rounds, seed=3)
        rows.append(row("faiss", n, "exact", seconds, 1.0, None, rss_mb(), writes, ingest))
        exact.close()
        del exact
        gc.collect()

        half = queries[: args.queries // 2]
        store, opened, build, peak, during = open_approximate(
            directory, args, lambda s: timed_search(s, half, MAIN)[0]
        )
        rows.append(row("faiss", n, "exact, during build", during, 1.0, None, peak, None))
        seconds, found = timed_search(store, queries, MAIN)
        writes = write_then_search(store, n, args.write_rounds, seed=4)
        mode = approximate(store)  # exact below the threshold
        rows.append(row("faiss", n, mode, seconds, recall(found, truth), build, rss_mb(), writes))
        rows[-1]["open s"] = round(opened, 1)
        store.close()
        del store
        gc.collect()

        # Reopened: the graph kept on disk is restored, not built again.
        store, opened, restore, peak, during = open_approximate(
            directory, args, lambda s: timed_search(s, half, MAIN)[0]
        )
        rows.append(row("faiss", n, "exact, during restore", during, 1.0, None, peak, None))
        seconds, found = timed_search(store, queries, MAIN)
        restored = f"{approximate(store)}, restored"
        rows.append(row("faiss", n, restored, seconds, recall(found, truth), restore, rss_mb()))
        rows[-1]["open s"] = round(opened, 1)
        store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return rows


def lexical_section(args: argparse.Namespace, n: int) -> list[Row]:
    """The bundled BM25 index at ``n`` chunks of real text: SciFact claims, then writes."""
    built = lexical_index(args, n)
    index, text = built.index, built.text
    queries = text.queries(args.queries + args.write_rounds)
    asked = queries[: args.queries]
    seconds = [timed(lambda q=q: index.search(q, k=10, collections=MAIN)) for q in asked]
    writes, flushes = lexical_writes(
        index, text, queries[args.queries :], tag="0", collection="main"
    )
    index.delete_documents({d for d in index.document_ids() if d.startswith("w")})
    index.flush()
    out = row("bm25", n, "bm25", seconds, None, None, rss_mb())
    out["write+search p50/p95 ms"] = pair(percentiles(writes))
    out["flush p50/p95 ms"] = pair(percentiles(flushes))
    out["ingest s"] = round(built.ingest, 1)
    out["KB/chunk"] = f"{built.grown_mb * 1024 / n:.2f}"
    arrays = postings_bytes(index)
    if arrays is not None:
        out["KB/chunk"] += f" (postings {arrays / 1024 / n:.2f})"
    out["RSS MB"] = f"{out['RSS MB']} (peak {built.peak_mb:.0f})"
    return [out]


def hybrid_section(args: argparse.Namespace, n: int) -> list[Row]:
    """FAISS (synthetic vectors, approximate as configured by default) and the BM25 index
    (real text) through ``HybridRetriever``: dense, bm25 and hybrid, then writes."""
    built = lexical_index(args, n)
    directory = Path(tempfile.mkdtemp(prefix="scale-hybrid-", dir=args.workdir))
    try:
        exact, ingest = fill_faiss(directory, n)
        exact.close()
        del exact
        gc.collect()
        store, _, build, _, _ = open_approximate(directory, args, lambda s: None)
        embedder = Precomputed(DIM)
        claims = built.text.queries(args.queries + args.write_rounds)
        asked, writing = claims[: args.queries], claims[args.queries :]
        embedder.vectors.update(zip(asked, queries_for(n, len(asked)), strict=True))
        retriever = HybridRetriever(embedder, store, built.index)
        timings = timed_modes(retriever, asked)
        writes = retriever_writes(retriever, built.text, n, writing, tag="1")
        rss = rss_mb()
        rows = [
            row("faiss + bm25", n, mode, seconds, None, build, rss, writes, ingest)
            for mode, seconds in timings.items()
        ]
        rows[0]["search"] = f"dense ({approximate(store)})"
        rows[-1]["ingest s"] = f"{ingest:.1f} + {built.ingest:.1f}"  # FAISS + BM25
        for other in rows[:-1]:  # the build, memory and writes belong to the pair
            other.update({"build s": None, "RSS MB": None, "write+search p50/p95 ms": None})
            other["ingest s"] = None
        store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return rows


def milvus_section(args: argparse.Namespace, n: int) -> list[Row]:
    """milvus-lite, vectors and BM25 in one collection (the configuration when both are
    Milvus): fill, reopen, dense / bm25 / one-call hybrid, writes."""
    from retrieval._milvus import MilvusConnection
    from retrieval._milvus_text import FullText
    from retrieval.lexical.milvus_index import MilvusLexicalIndex
    from retrieval.vectorstores.milvus_store import MilvusVectorStore

    work = Path(tempfile.mkdtemp(prefix="scale-milvus-", dir=args.workdir))
    connection = MilvusConnection(uri=str(work / "milvus.db"))

    shape: dict[str, Any] = {"embedding_model": MODEL, "dimension": DIM}

    def open_both() -> tuple[MilvusVectorStore, MilvusLexicalIndex]:
        store = MilvusVectorStore(work / "index", milvus=connection, full_text=FullText(), **shape)
        return store, MilvusLexicalIndex(work / "index", milvus=connection, vectors=store)

    text = SciFactText(seed=1)
    before = rss_mb()
    store, index = open_both()
    try:
        start = time.perf_counter()
        vectors, pending = synthetic(n, seed=1), np.empty((0, DIM), np.float32)
        for batch in lexical_batches(text, 0, n, collection="main", size=2000):
            while len(pending) < len(batch):
                pending = np.concatenate([pending, next(vectors)])
            store.upsert(
                [
                    VectorRecord(t.chunk_id, t.document_id, t.collection_id, v)
                    for t, v in zip(batch, pending, strict=False)
                ]
            )
            pending = pending[len(batch) :]
            index.upsert(batch)
        ingest = time.perf_counter() - start
        # Reopened, as after a restart: milvus-lite searches what was just written in
        # unindexed growing segments, many times slower.
        index.close()
        store.close()
        start = time.perf_counter()
        store, index = open_both()
        opened = time.perf_counter() - start
        embedder = Precomputed(DIM)
        claims = text.queries(args.queries + args.write_rounds)
        asked, writing = claims[: args.queries], claims[args.queries :]
        embedder.vectors.update(zip(asked, queries_for(n, len(asked)), strict=True))
        retriever = HybridRetriever(embedder, store, index)
        timings = timed_modes(retriever, asked)
        writes = retriever_writes(retriever, text, n, writing, tag="2")
        rss = rss_mb()  # milvus-lite's server runs in this process
    finally:
        index.close()
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        row("milvus-lite", n, mode, seconds, None, None, None, None, None)
        for mode, seconds in timings.items()
    ]
    rows[-1]["search"] = "hybrid (one call)"
    # What this section added (another section's index at this size may still be open).
    rows[-1]["RSS MB"] = f"{rss:.0f} (+{rss - before:.0f})"
    rows[-1]["write+search p50/p95 ms"] = pair(writes)
    rows[-1].update({"ingest s": round(ingest, 1), "open s": round(opened, 1)})
    return rows


def scifact_section(args: argparse.Namespace, n: int) -> list[Row]:
    """Real MiniLM vectors of SciFact: approximate against exact on its 300 questions."""
    docs, questions = scifact_vectors(args.cache)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        stores = {
            "exact": {"ann_threshold": 0},
            "approximate": {**ann_options(args), "ann_threshold": 1_000, "background": False},
        }
        truth: list[list[str]] = []
        for mode, options in stores.items():
            store = FaissVectorStore(
                Path(tmp) / mode, embedding_model="minilm", dimension=docs.shape[1], **options
            )
            store.upsert(records(docs, "scifact", 0))
            seconds, found = timed_search(store, questions, {"scifact"})
            truth = truth or found
            rows.append(row("faiss (scifact)", len(docs), mode, seconds, recall(found, truth)))
            store.close()
    return rows


SECTIONS: dict[str, Callable[[argparse.Namespace, int], list[Row]]] = {
    "faiss": faiss_section,
    "lexical": lexical_section,
    "hybrid": hybrid_section,
    "milvus": milvus_section,
    "scifact": scifact_section,  # one size: the corpus
}
ONCE = {"scifact"}


def scifact_vectors(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """SciFact's abstracts and questions embedded by the bundled MiniLM (cached)."""
    path = cache / "scifact-minilm.npz"
    if not path.exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from retrieval.embedders.registry import create_embedder

        embedder = create_embedder(
            "onnx",
            model="sentence-transformers/all-MiniLM-L6-v2",
            cache_dir=cache / "onnx",
            allow_download=False,
        )
        docs = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").open()]
        questions = [json.loads(line) for line in (SCIFACT / "queries.jsonl").open()]
        vectors = embedder.embed_documents([f"{d['title']}\n{d['text']}" for d in docs])
        asked = np.vstack([embedder.embed_query(q["text"]) for q in questions])
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, docs=np.asarray(vectors, np.float32), queries=np.asarray(asked, np.float32))
    with np.load(path) as data:
        return data["docs"], data["queries"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated chunk counts")
    parser.add_argument("--sections", default="faiss,scifact", help=", ".join(SECTIONS))
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("--write-rounds", type=int, default=20, help="write-50-then-search")
    parser.add_argument("--threads", type=int, default=1, help="FAISS threads for searches")
    parser.add_argument("--ann-threshold", type=int, default=None, help="(store default)")
    parser.add_argument("--m", type=int, default=None, help="HNSW links (store default)")
    parser.add_argument("--ef-construction", type=int, default=None, help="(store default)")
    parser.add_argument("--ef-search", type=int, default=None, help="(store default)")
    parser.add_argument("--workdir", type=Path, default=None, help="for the temporary indexes")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lantern-bench")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    args.built = {}  # size -> the BM25 index the lexical and hybrid sections share
    names = args.sections.split(",")
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("retrieval._sharded").setLevel(logging.ERROR)  # unflushed bench writes
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import faiss

    faiss.omp_set_num_threads(args.threads)  # this thread's searches; builds keep the default
    rows: list[Row] = []
    sizes = [int(size) for size in args.sizes.split(",")]
    runs = [(name, n) for n in sizes for name in names if name not in ONCE]
    runs += [(name, 0) for name in names if name in ONCE]
    try:
        for i, (name, n) in enumerate(runs):
            started = time.perf_counter()
            new = SECTIONS[name](args, n)
            rows.extend(new)
            print(f"\n{name} at {n:,}: {time.perf_counter() - started:.0f} s; {load_line()}")
            print(table(new), flush=True)
            if all(later != n for _, later in runs[i + 1 :]):
                release(args, n)
    finally:
        for n in list(args.built):
            release(args, n)
    print(f"\n{load_line()}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
