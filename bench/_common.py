"""What the retrieval benchmarks share: percentiles, memory, a markdown table, texts
(Zipf pseudo-words or real SciFact sentences) and an embedder whose vectors are given.

Run the scripts from the repository root (``python bench/<script>.py``): Python puts
``bench/`` on the path, so they import this module as ``_common``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.lexical.base import LexicalRecord

#: ``shared/data/scifact`` beside the checkout (or beside a folder above it: worktrees).
SCIFACT = next(
    (
        p / "shared" / "data" / "scifact"
        for p in Path(__file__).resolve().parents[1:]
        if (p / "shared" / "data" / "scifact").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact",
)
Row = dict[str, Any]


# -- timing --------------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action()`` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 of ``seconds``, in milliseconds (NaN for none)."""
    if not seconds:
        return float("nan"), float("nan")
    p50, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95])
    return float(p50), float(p95)


def spread(seconds: Sequence[float]) -> str:
    """``"p50 / p95"`` in milliseconds, one decimal."""
    p50, p95 = percentiles(seconds)
    return f"{p50:.1f} / {p95:.1f}"


def load_line() -> str:
    """The CPUs and load average: benchmarks on a shared machine say how shared it was."""
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"


# -- memory --------------------------------------------------------------------


def rss_mb() -> float:
    """Resident memory now, in MB, after collecting garbage and handing freed heap back
    to the OS (glibc), so that what batches and merges freed is not counted."""
    gc.collect()
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


# -- output --------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    """A markdown table, a column per key any row has (empty where a row has none)."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = ["" if row.get(c) is None else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- texts ---------------------------------------------------------------------


class ZipfText:
    """Pseudo-words from a Zipf-Mandelbrot distribution, ``p(rank) ~ 1 / (rank +
    offset) ** exponent`` over ``vocabulary`` words (``rank`` from 0), so the vocabulary
    keeps growing with the corpus as real text does. Deterministic for a seed."""

    def __init__(
        self,
        seed: int,
        *,
        vocabulary: int = 200_000,
        offset: float = 2.7,
        exponent: float = 1.0,
    ) -> None:
        rng = random.Random(seed)
        syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
        words: set[str] = set()
        while len(words) < vocabulary:
            words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
        self.words = np.asarray(sorted(words), dtype=object)
        np.random.default_rng(seed).shuffle(self.words)
        weights = 1.0 / (np.arange(vocabulary) + offset) ** exponent
        self.cdf = np.cumsum(weights / weights.sum())
        self.rng = np.random.default_rng(seed + 1)

    def _draw(self, n: int, floor: int = 0) -> np.ndarray:
        low = self.cdf[floor - 1] if floor else 0.0
        u = low + self.rng.random(n) * (1.0 - low)
        return self.words[np.minimum(np.searchsorted(self.cdf, u), len(self.cdf) - 1)]

    def texts(self, lengths: Sequence[int]) -> list[str]:
        """A text of ``lengths[i]`` words each."""
        drawn, at, out = self._draw(int(sum(lengths))), 0, []
        for length in lengths:
            out.append(" ".join(drawn[at : at + length]))
            at += length
        return out

    def chunks(self, n: int, words: int = 150) -> list[str]:
        return self.texts([words] * n)

    def queries(self, n: int) -> list[str]:
        """4 words each, past the 20 most frequent (which act like stop-words)."""
        return [" ".join(self._draw(4, floor=20)) for _ in range(n)]


_SENTENCE_END = re.compile(r"(?<=[a-z)\]%][.!?])\s*(?=[A-Z])")


class SciFactText:
    """Real text at any size: chunks of SciFact's abstracts (``corpus.jsonl``), queries
    its claims (``queries.jsonl``).

    A chunk is two windows of 2-4 consecutive sentences, each from a random abstract
    (~145 words, a chunk of ~200 tokens). SciFact's 37k sentences make ~94k windows
    and ~8.8 billion ordered pairs of them; chunk ``k`` is pair ``(a k + b) mod W^2``
    with ``a`` prime to ``W^2``, a bijection, so a million chunks are a million distinct
    texts (each sentence read ~200 times over, like documents quoting one another)
    without remembering which pairs were used. Deterministic for a seed."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
            abstracts = [json.loads(line)["text"].strip() for line in fh]
        self.sentences = [_SENTENCE_END.split(a) for a in abstracts if a]
        self.windows = [
            (doc, start, length)
            for doc, sentences in enumerate(self.sentences)
            for length in range(min(2, len(sentences)), min(4, len(sentences)) + 1)
            for start in range(len(sentences) - length + 1)
        ]
        self._pairs = len(self.windows) ** 2
        self._a = rng.randrange(self._pairs // 3, self._pairs)
        while math.gcd(self._a, self._pairs) != 1:
            self._a += 1
        self._b, self._next = rng.randrange(self._pairs), 0
        with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
            self.claims = [json.loads(line)["text"] for line in fh]
        self.rng = rng

    def _window(self, w: int) -> list[str]:
        doc, start, length = self.windows[w]
        return self.sentences[doc][start : start + length]

    def chunks(self, n: int) -> list[str]:
        """The next ``n`` chunks (never one made before)."""
        first, self._next = self._next, self._next + n
        out = []
        for k in range(first, first + n):
            one, two = divmod((self._a * k + self._b) % self._pairs, len(self.windows))
            out.append(" ".join(self._window(one) + self._window(two)))
        return out

    def queries(self, n: int) -> list[str]:
        """``n`` claims in a random order (repeated past SciFact's 300)."""
        order = self.rng.sample(self.claims, len(self.claims))
        return [order[i % len(order)] for i in range(n)]


def lexical_batches(
    text: ZipfText | SciFactText, start: int, stop: int, *, collection: str, size: int = 1000
) -> Iterator[list[LexicalRecord]]:
    """Chunks ``c<start>`` to ``c<stop - 1>`` of ``text`` (documents of 50 chunks), made
    and handed out ``size`` at a time so that the texts never all sit in memory."""
    for first in range(start, stop, size):
        texts = text.chunks(min(size, stop - first))
        yield [
            LexicalRecord(f"c{first + i}", f"cd{(first + i) // 50}", collection, t)
            for i, t in enumerate(texts)
        ]


def marked_document(
    text: ZipfText | SciFactText, tag: str, *, collection: str, chunks: int = 50
) -> tuple[list[LexicalRecord], str]:
    """A new document ``w<tag>`` of ``chunks`` chunks, and a word only its first chunk
    holds, so a search can tell whether it sees it: consonants ending in x, which every
    analyzer keeps as they are (a stemmer would take "qxazbe" for "qxazb")."""
    marker = "qx" + "".join("bcdfghjklm"[int(c)] if c.isdigit() else "z" for c in tag) + "x"
    texts = text.chunks(chunks)
    texts[0] = f"{texts[0]} {marker}"
    document = f"w{tag}"
    return [
        LexicalRecord(f"{document}-{i}", document, collection, t) for i, t in enumerate(texts)
    ], marker


def lexical_writes(
    index: Any, text: ZipfText | SciFactText, queries: Sequence[str], *, tag: str, collection: str
) -> tuple[list[float], list[float]]:
    """Seconds of "upsert a new 50-chunk document, then search", once per query (the
    search asks for the query and the document's marker word, and the write must be
    visible to it), and of the flush after each."""
    writes, flushes = [], []
    for rep, query in enumerate(queries):
        records, marker = marked_document(text, f"{tag}-{rep}", collection=collection)
        started = time.perf_counter()
        index.upsert(records)
        index.search(f"{query} {marker}", k=10, collections={collection})
        writes.append(time.perf_counter() - started)
        (hit,) = index.search(marker, k=1, collections={collection})
        assert hit.chunk_id == records[0].chunk_id, "a fresh write was not found"
        flushes.append(timed(index.flush))
    return writes, flushes


def postings_bytes(index: object) -> int | None:
    """The bytes of a segmented BM25 index's postings arrays (None for another index)."""
    views = getattr(index, "_views", None)
    if views is None:
        return None
    return sum(s.postings.nbytes() for view in views.values() for s in view.segments)


# -- embedding -----------------------------------------------------------------


class Precomputed:
    """An embedder whose query vectors are given (the benchmarks time search, not
    models): ``vectors[query text]`` is the query's vector."""

    model_name = "bench/precomputed"
    max_tokens = 512
    is_fallback = False
    tokenizer: Any = None
    languages = frozenset({"*"})

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.vectors: dict[str, np.ndarray] = {}

    def embed_query(self, text: str) -> np.ndarray:
        return self.vectors[text][None, :]

    def embed_documents(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        raise NotImplementedError
