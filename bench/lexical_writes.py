"""What a write costs the BM25 index at 100k and 300k chunks: write+search, flush, search, memory.

Usage::

    python bench/lexical_writes.py                          # this checkout
    PYTHONPATH=/work/main python bench/lexical_writes.py --reps 5   # another checkout's code
    python bench/lexical_writes.py --sizes 20000 --text scifact

One collection is built once per run, in batches of 1,000 chunks and one flush, and
grown from one size to the next. At each size the script prints:

- ``build``: seconds to upsert the chunks added since the last size and flush, and that
  flush alone (a segmented index merges and writes everything unflushed there: the
  most one flush can cost); ``first search``: the search after it (an index that
  builds a model on the first search pays for it here);
- ``search``: p50/p95 over ``--queries`` queries, no writes in between;
- ``write+search``: p50/p95 over ``--reps`` repetitions of upserting one new 50-chunk
  document and then searching (for a query and a word only the new document holds:
  the write must be visible to that search, and is checked to be); ``flush``:
  the flush after each of those writes, p50/p95/max;
- ``memory``: the growth of the process's RSS during the build per chunk (texts are made
  in batches and dropped, so this is the index), and the bytes of the index's postings
  arrays per chunk where the index exposes them.

Text: ``zipf`` (default) draws ~150 words per chunk from a Zipf-Mandelbrot distribution
over 200,000 generated pseudo-words, so the vocabulary keeps growing with the corpus as
real text does; queries are 4 words of the same distribution past its 20 most frequent
words (which act like stop-words). ``scifact`` makes distinct chunks of real text at
any size, each two windows of consecutive sentences of random SciFact abstracts
(``../shared/data/scifact/corpus.jsonl``, ~160 words), and queries with SciFact's
claims (``_common.SciFactText``). Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import (
    SciFactText,
    ZipfText,
    lexical_batches,
    lexical_writes,
    load_line,
    postings_bytes,
    rss_mb,
    timed,
)
from _common import percentiles as p50_p95

import retrieval.lexical.bm25_index as bm25_module
from retrieval.lexical.bm25_index import Bm25Index


def percentiles(seconds: list[float]) -> str:
    p50, p95 = p50_p95(seconds)
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--text", choices=("zipf", "scifact"), default="zipf")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    text = ZipfText(args.seed) if args.text == "zipf" else SciFactText(args.seed)
    queries = text.queries(args.queries + args.reps)
    print(f"code: {bm25_module.__file__} (format {bm25_module.FORMAT_VERSION}); text: {args.text}")
    with tempfile.TemporaryDirectory(prefix="lexical-writes-") as tmp:
        index = Bm25Index(Path(tmp) / "index")
        index.search("warm up the analyzer", k=10)
        built, baseline = 0, rss_mb()
        for size in args.sizes:
            started, built_before = time.perf_counter(), built
            for batch in lexical_batches(text, built, size, collection="bench"):
                index.upsert(batch)
            final_flush = timed(index.flush)
            build = time.perf_counter() - started
            built = size
            first = timed(lambda: index.search(queries[0], k=10))
            grown = (rss_mb() - baseline) * 2**20
            searches = [timed(lambda q=q: index.search(q, k=10)) for q in queries[: args.queries]]
            writes, flushes = lexical_writes(
                index, text, queries[args.queries :], tag=str(size), collection="bench"
            )
            arrays = postings_bytes(index)
            print(f"\n## {size:,} chunks")
            print(
                f"build {build:.1f} s (upsert {size - built_before:,} chunks in batches of 1,000"
                f" + flush); that flush {final_flush:.2f} s"
            )
            print(f"first search after the build {first * 1000:.1f} ms")
            print(f"search: {percentiles(searches)} ({len(searches)} queries)")
            print(f"write 50 chunks + search: {percentiles(writes)} ({args.reps} reps)")
            slowest = max(flushes) * 1000
            print(f"flush after a 50-chunk write: {percentiles(flushes)}, max {slowest:.1f} ms")
            print(f"memory: RSS +{grown / size:,.0f} B/chunk", end="")
            if arrays is not None:
                print(f"; postings arrays {arrays / index.count():,.0f} B/chunk", end="")
            print()
        index.close()
    print(f"\n{load_line()}")


if __name__ == "__main__":
    main()
