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
  document and then searching (the write must be visible to that search); ``flush``:
  the flush after each of those writes, p50/p95/max;
- ``memory``: the growth of the process's RSS during the build per chunk (texts are made
  in batches and dropped, so this is the index), and the bytes of the index's postings
  arrays per chunk where the index exposes them.

Text: ``zipf`` (default) draws ~150 words per chunk from a Zipf-Mandelbrot distribution
over 200,000 generated pseudo-words, so the vocabulary keeps growing with the corpus as
real text does; queries are 4 words of the same distribution past its 20 most frequent
words (which act like stop-words). ``scifact`` cuts SciFact abstracts
(``../shared/data/scifact/corpus.jsonl``) into ~150-word chunks, shuffled and repeated
to the size, and queries with SciFact's claims. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

import retrieval.lexical.bm25_index as bm25_module
from retrieval.lexical.base import LexicalRecord
from retrieval.lexical.bm25_index import Bm25Index

WORDS_PER_CHUNK = 150
SCIFACT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"


class ZipfText:
    def __init__(self, seed: int, vocabulary: int = 200_000) -> None:
        rng = random.Random(seed)
        syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
        words: set[str] = set()
        while len(words) < vocabulary:
            words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
        self.words = np.asarray(sorted(words), dtype=object)
        np.random.default_rng(seed).shuffle(self.words)
        weights = 1.0 / (np.arange(vocabulary) + 2.7)
        self.cdf = np.cumsum(weights / weights.sum())
        self.rng = np.random.default_rng(seed + 1)

    def _draw(self, n: int, floor: int = 0) -> np.ndarray:
        low = self.cdf[floor - 1] if floor else 0.0
        u = low + self.rng.random(n) * (1.0 - low)
        return self.words[np.minimum(np.searchsorted(self.cdf, u), len(self.cdf) - 1)]

    def chunks(self, n: int) -> list[str]:
        drawn = self._draw(n * WORDS_PER_CHUNK).reshape(n, WORDS_PER_CHUNK)
        return [" ".join(row) for row in drawn]

    def queries(self, n: int) -> list[str]:
        return [" ".join(self._draw(4, floor=20)) for _ in range(n)]


class SciFactText:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        words: list[str] = []
        with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                words.extend(f"{doc['title']} {doc['text']}".split())
        self.pieces = [
            " ".join(words[i : i + WORDS_PER_CHUNK]) for i in range(0, len(words), WORDS_PER_CHUNK)
        ]
        with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
            self.claims = [json.loads(line)["text"] for line in fh]

    def chunks(self, n: int) -> list[str]:
        return self.rng.choices(self.pieces, k=n)

    def queries(self, n: int) -> list[str]:
        return self.rng.sample(self.claims, n)


def rss() -> int:
    """Resident bytes, after handing freed heap memory back (glibc), so that what
    merges and batches freed is not counted."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def postings_bytes(index: Bm25Index) -> int | None:
    """The postings arrays' bytes, for an index made of segments (None for another)."""
    views = getattr(index, "_views", None)
    if views is None:
        return None
    return sum(s.postings.nbytes() for view in views.values() for s in view.segments)


def batches(text: ZipfText | SciFactText, start: int, stop: int) -> Iterator[list[LexicalRecord]]:
    for first in range(start, stop, 1000):
        texts = text.chunks(min(1000, stop - first))
        yield [
            LexicalRecord(f"c{first + i}", f"d{(first + i) // 50}", "bench", t)
            for i, t in enumerate(texts)
        ]


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
        built, baseline = 0, rss()
        for size in args.sizes:
            started, built_before = time.perf_counter(), built
            for batch in batches(text, built, size):
                index.upsert(batch)
            final_flush = timed(index.flush)
            build = time.perf_counter() - started
            built = size
            first = timed(lambda: index.search(queries[0], k=10))
            grown = rss() - baseline
            searches = [timed(lambda q=q: index.search(q, k=10)) for q in queries[: args.queries]]
            writes, flushes = [], []
            for rep in range(args.reps):
                doc = [
                    LexicalRecord(f"new{size}-{rep}-{i}", f"new{size}-{rep}", "bench", t)
                    for i, t in enumerate(text.chunks(50))
                ]
                query = queries[args.queries + rep]

                def write_then_search(doc: list[LexicalRecord] = doc, query: str = query) -> None:
                    index.upsert(doc)
                    index.search(query, k=10)

                writes.append(timed(write_then_search))
                flushes.append(timed(index.flush))
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


if __name__ == "__main__":
    main()
