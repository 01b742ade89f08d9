"""Retrieval at scale: search latency, recall, index build time, memory, write-then-search.

    python bench/retrieval_scale.py --sizes 100000,1000000
    python bench/retrieval_scale.py --sizes 100000 --sections faiss --json /tmp/scale.json

Prints one markdown table, a row per backend, size and search mode. Each section is a
function (``SECTIONS``) that returns rows, so another backend (Milvus) or the lexical
index (BM25 write-then-search, search by mode) is one more function and flag value.

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

``scifact``: the real vectors, exact against approximate (threshold forced low):
a recall sanity check on real questions. The corpus is embedded with the bundled
MiniLM once (~10 minutes on 2 cores) and cached under ``--cache``.

Searches run one query at a time, k=10, with a collection filter, on ``--threads``
FAISS threads (1 by default: fastest for single queries); the background build uses
FAISS's default (all cores).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.vectorstores.base import VectorRecord
from retrieval.vectorstores.faiss_store import FaissVectorStore

DIM = 384
MODEL = "bench/synthetic"
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
Row = dict[str, Any]


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


def rss_mb() -> float:
    """Resident memory now, after handing freed heap back to the OS."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return _status("VmRSS")


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakRss:
    """The highest resident memory seen while the block runs (sampled every 0.2 s)."""

    def __enter__(self) -> PeakRss:
        self.peak, self._stop = _status("VmRSS"), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _status("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def percentiles(seconds: list[float]) -> tuple[float, float]:
    if not seconds:
        return float("nan"), float("nan")
    p50, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95])
    return float(p50), float(p95)


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


# -- sections ------------------------------------------------------------------


def faiss_section(args: argparse.Namespace, n: int) -> list[Row]:
    """FAISS at ``n`` vectors: exact, then approximate (built in the background)."""
    directory = Path(tempfile.mkdtemp(prefix="scale-faiss-", dir=args.workdir))
    queries = queries_for(n, args.queries)
    main, others = {"main"}, max(1, n // 100)
    rows: list[Row] = []
    try:
        exact = FaissVectorStore(directory, embedding_model=MODEL, dimension=DIM, ann_threshold=0)
        start = time.perf_counter()
        offset = 0
        for block in synthetic(n, seed=1):
            exact.upsert(_records(block, "main", offset))
            offset += len(block)
        for block in synthetic(n, seed=2, count=others):
            exact.upsert(_records(block, "decoy", 0))
        exact.flush()
        ingest = time.perf_counter() - start
        seconds, truth = timed_search(exact, queries, main)
        writes = write_then_search(exact, n, args.write_rounds, seed=3)
        rows.append(_row("faiss", n, "exact", seconds, 1.0, None, rss_mb(), writes, ingest))
        exact.close()
        del exact
        gc.collect()

        with PeakRss() as peak:
            start = time.perf_counter()
            store = FaissVectorStore(directory, embedding_model=MODEL, dimension=DIM, **_ann(args))
            opened = time.perf_counter() - start
            during, _ = timed_search(store, queries[: args.queries // 2], main)
            built = store.wait_until_built()
            build = time.perf_counter() - start - opened
        assert built, "the build did not finish"
        assert store.approximate_collections() >= main, "no approximate index"
        rows.append(_row("faiss", n, "exact, during build", during, 1.0, None, peak.peak, None))
        seconds, found = timed_search(store, queries, main)
        writes = write_then_search(store, n, args.write_rounds, seed=4)
        rows.append(
            _row("faiss", n, "approximate", seconds, recall(found, truth), build, rss_mb(), writes)
        )
        rows[-1]["open s"] = round(opened, 1)
        store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return rows


def scifact_section(args: argparse.Namespace, n: int) -> list[Row]:
    """Real MiniLM vectors of SciFact: approximate against exact on its 300 questions."""
    docs, questions = scifact_vectors(args.cache)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        stores = {
            "exact": {"ann_threshold": 0},
            "approximate": {**_ann(args), "ann_threshold": 1_000, "background": False},
        }
        truth: list[list[str]] = []
        for mode, options in stores.items():
            store = FaissVectorStore(
                Path(tmp) / mode, embedding_model="minilm", dimension=docs.shape[1], **options
            )
            store.upsert(_records(docs, "scifact", 0))
            seconds, found = timed_search(store, questions, {"scifact"})
            truth = truth or found
            rows.append(_row("faiss (scifact)", len(docs), mode, seconds, recall(found, truth)))
            store.close()
    return rows


SECTIONS: dict[str, Callable[[argparse.Namespace, int], list[Row]]] = {
    "faiss": faiss_section,
    "scifact": scifact_section,  # one size: the corpus
}
PER_SIZE = {"faiss"}


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


def _records(block: np.ndarray, collection: str, offset: int) -> list[VectorRecord]:
    prefix = "c" if collection != "decoy" else "x"
    return [
        VectorRecord(f"{prefix}{offset + i}", f"{prefix}d{(offset + i) // 50}", collection, v)
        for i, v in enumerate(block)
    ]


def _ann(args: argparse.Namespace) -> dict[str, Any]:
    """The store's approximate-search settings the flags name (the rest: its defaults)."""
    options = {
        "ann_threshold": args.ann_threshold,
        "ann_m": args.m,
        "ann_ef_construction": args.ef_construction,
        "ann_ef_search": args.ef_search,
    }
    return {k: v for k, v in options.items() if v is not None}


def _row(
    backend: str,
    n: int,
    mode: str,
    seconds: list[float],
    recall_at_10: float,
    build: float | None = None,
    rss: float | None = None,
    writes: tuple[float, float] | None = None,
    ingest: float | None = None,
) -> Row:
    p50, p95 = percentiles(seconds)
    return {
        "backend": backend,
        "vectors": n,
        "search": mode,
        "p50 ms": round(p50, 2),
        "p95 ms": round(p95, 2),
        "recall@10": round(recall_at_10, 3),
        "build s": None if build is None else round(build, 1),
        "RSS MB": None if rss is None else round(rss),
        "write+search p50/p95 ms": None if writes is None else f"{writes[0]:.1f} / {writes[1]:.1f}",
        "ingest s": None if ingest is None else round(ingest, 1),
    }


def table(rows: list[Row]) -> str:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = ["" if row.get(c) is None else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated vector counts")
    parser.add_argument("--sections", default="faiss,scifact", help=", ".join(SECTIONS))
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("--write-rounds", type=int, default=20, help="upsert-50-then-search")
    parser.add_argument("--threads", type=int, default=1, help="FAISS threads for searches")
    parser.add_argument("--ann-threshold", type=int, default=None, help="(store default)")
    parser.add_argument("--m", type=int, default=None, help="HNSW links (store default)")
    parser.add_argument("--ef-construction", type=int, default=None, help="(store default)")
    parser.add_argument("--ef-search", type=int, default=None, help="(store default)")
    parser.add_argument("--workdir", type=Path, default=None, help="for the temporary indexes")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lantern-bench")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("retrieval._sharded").setLevel(logging.ERROR)  # unflushed bench writes

    import faiss

    faiss.omp_set_num_threads(args.threads)  # this thread's searches; builds keep the default
    rows: list[Row] = []
    for name in args.sections.split(","):
        sizes = [int(s) for s in args.sizes.split(",")] if name in PER_SIZE else [0]
        for n in sizes:
            rows.extend(SECTIONS[name](args, n))
            print(table(rows[-3:]), flush=True)
    load = os.getloadavg()
    print(f"\n{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
