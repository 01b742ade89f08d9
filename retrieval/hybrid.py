"""Hybrid retrieval: dense and BM25 searches, fused by weighted RRF, de-duplicated and
optionally reranked by a cross-encoder.

The collection filter goes *into* both searches (``collections=``), never onto their
results: a chunk outside the caller's collections cannot take a slot or leak a score.

Where the lexical index shares its storage with the vector store and can fuse both
searches in one call (``FusingIndex``: Milvus's ``hybrid_search``), a hybrid search is
that one call, as long as the weights are equal (Milvus's RRF is unweighted); its
ranking is the one ``rrf`` would give for the same two lists.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar, overload

from retrieval.embedders.base import Embedder
from retrieval.errors import RerankError
from retrieval.fusion import DEFAULT_RRF_K, rrf
from retrieval.language import reads
from retrieval.lexical.base import FusingIndex, LexicalIndex
from retrieval.rerankers.base import Reranker
from retrieval.vectorstores.base import Vector, VectorStore

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25", "hybrid+rerank"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid", "hybrid+rerank")
TextLookup = Callable[[Sequence[str]], Mapping[str, str]]
"""``chunk ids -> {chunk id: text}``. Ids it does not return are dropped from the result
(a chunk whose document is being deleted), so the app can apply its status check here."""

#: Two chunks whose word-3-shingle sets have a Jaccard similarity at or above this are
#: near-duplicates and only the better-ranked one is kept. 0.9 catches the same passage
#: uploaded twice or re-saved with a changed date, number or typo (a few differing words
#: in a 256-token chunk), while neighbouring chunks of one section, which overlap by at
#: most 32 tokens (Jaccard ~0.1), are never suppressed: packing merges those instead.
DEFAULT_NEAR_DUPLICATE_JACCARD = 0.9
SHINGLE_WORDS = 3


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: str
    document_id: str
    collection_id: str
    #: The final ordering score: cosine (dense), BM25 (bm25), RRF (hybrid) or the
    #: cross-encoder's score (hybrid+rerank). Comparable only within one result.
    score: float
    #: 1-based rank in the dense / BM25 list; None where that search did not return it.
    dense_rank: int | None
    lexical_rank: int | None


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds per stage; 0 for a stage that did not run. ``dense_ms`` includes
    embedding the query (``embed_ms``); ``dedup_ms`` includes fetching the texts."""

    embed_ms: float = 0.0
    #: In a one-call hybrid search: that call (both searches and the fusion).
    dense_ms: float = 0.0
    lexical_ms: float = 0.0
    fuse_ms: float = 0.0
    dedup_ms: float = 0.0
    rerank_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True)
class RetrievalResult(Sequence[RetrievedChunk]):
    """The chunks, best first (a sequence of ``RetrievedChunk``), with stage timings."""

    chunks: tuple[RetrievedChunk, ...]
    timings: StageTimings = field(default_factory=StageTimings)
    mode: Mode = "hybrid"
    #: True when ``hybrid+rerank`` was asked for but no reranker is loaded or it failed.
    rerank_skipped: bool = False
    #: Cosine of the closest chunk in the allowed collections (None without a dense
    #: search): an evidence signal callers can abstain on without searching again.
    top_dense_score: float | None = None
    #: False when the embedder does not read the query's language (``retrieval.language``):
    #: then a hybrid search ranked by BM25 alone, without a dense search.
    dense_voted: bool = True

    def __len__(self) -> int:
        return len(self.chunks)

    @overload
    def __getitem__(self, index: int) -> RetrievedChunk: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[RetrievedChunk]: ...
    def __getitem__(self, index: int | slice) -> RetrievedChunk | Sequence[RetrievedChunk]:
        return self.chunks[index]

    def __iter__(self) -> Iterator[RetrievedChunk]:
        return iter(self.chunks)

    @property
    def chunk_ids(self) -> list[str]:
        return [c.chunk_id for c in self.chunks]


@dataclass
class _Candidate:
    chunk_id: str
    document_id: str
    collection_id: str
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None

    def frozen(self) -> RetrievedChunk:
        return RetrievedChunk(
            self.chunk_id,
            self.document_id,
            self.collection_id,
            self.score,
            self.dense_rank,
            self.lexical_rank,
        )


class HybridRetriever:
    """Dense + BM25 retrieval with RRF fusion, near-duplicate suppression and reranking.

    ``dense_k``/``lexical_k`` are how deep each search goes before fusion (at least the
    ``k`` asked for). ``weights`` are the RRF weights of (dense, lexical). Without a
    ``text_lookup`` there is no near-duplicate suppression and no reranking (both need
    the chunks' texts); ``dedup_threshold=None`` turns suppression off. ``embedder`` and
    ``vectors`` may be None only for a BM25-only retriever, ``lexical`` None makes
    ``hybrid`` dense-only (with a warning on first use).
    """

    def __init__(
        self,
        embedder: Embedder | None,
        vectors: VectorStore | None,
        lexical: LexicalIndex | None,
        *,
        reranker: Reranker | None = None,
        text_lookup: TextLookup | None = None,
        dense_k: int = 50,
        lexical_k: int = 50,
        weights: tuple[float, float] = (1.0, 1.0),
        rrf_k: float = DEFAULT_RRF_K,
        dedup_threshold: float | None = DEFAULT_NEAR_DUPLICATE_JACCARD,
    ) -> None:
        if dense_k <= 0 or lexical_k <= 0:
            raise ValueError("dense_k and lexical_k must be positive")
        if reranker is not None and text_lookup is None:
            raise ValueError("reranking needs a text_lookup to fetch the chunks' texts")
        rrf([[], []], weights=weights, k=rrf_k)  # validate early, not on the first query
        self.embedder = embedder
        self.vectors = vectors
        self.lexical = lexical
        self.reranker = reranker
        self.text_lookup = text_lookup
        self.dense_k = dense_k
        self.lexical_k = lexical_k
        self.weights = weights
        self.rrf_k = rrf_k
        if dedup_threshold is not None and not 0.0 < dedup_threshold <= 1.0:
            raise ValueError(f"dedup_threshold must be in (0, 1], got {dedup_threshold}")
        self.dedup_threshold = dedup_threshold if text_lookup is not None else None
        if (embedder is None) != (vectors is None):
            raise ValueError("dense retrieval needs both an embedder and a vector store")
        if embedder is None and lexical is None:
            raise ValueError("a retriever needs a vector store, a lexical index or both")
        self._warned_dense_only = False
        self._fusing = (
            lexical
            if isinstance(lexical, FusingIndex)
            and lexical.fuses_with(vectors)
            and weights[0] == weights[1] > 0
            else None
        )

    def retrieve(
        self,
        query: str,
        *,
        k: int,
        collections: Collection[str] | None,
        mode: Mode = "hybrid",
    ) -> RetrievalResult:
        """The ``k`` best chunks for ``query`` within ``collections`` (None: all; empty:
        none). ``hybrid+rerank`` without a loaded reranker returns the hybrid ranking
        with ``rerank_skipped`` set; ``bm25`` without a lexical index is a ValueError."""
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode == "bm25" and self.lexical is None:
            raise ValueError("bm25 retrieval needs a lexical index, and none is configured")
        if mode != "bm25" and (self.embedder is None or self.vectors is None):
            raise ValueError(f"{mode} retrieval needs an embedder and a vector store")
        if mode != "dense" and self.lexical is None and not self._warned_dense_only:
            self._warned_dense_only = True
            log.warning("no lexical index configured: %s retrieval runs dense-only", mode)
        started = time.perf_counter()
        if not query.strip() or k <= 0 or (collections is not None and not collections):
            return RetrievalResult((), mode=mode)
        voted = True
        hybrid = mode in ("hybrid", "hybrid+rerank")
        if hybrid and self.lexical is not None and self.embedder is not None:
            # An embedder that does not know the query's language returns noise that
            # would outvote BM25.
            voted = reads(query, self.embedder.languages)
        t: dict[str, float] = {}
        qv: Vector | None = None
        if voted and mode != "bm25" and self.embedder is not None:
            t0 = time.perf_counter()
            qv = self.embedder.embed_query(query)[0]
            t["embed_ms"] = _ms(t0)
        one_call = None
        if hybrid and qv is not None and self._fusing is not None:
            t0 = time.perf_counter()
            one_call = self._fusing.fused_search(
                qv,
                query,
                dense_k=max(self.dense_k, k),
                lexical_k=max(self.lexical_k, k),
                rrf_k=self.rrf_k,
                collections=collections,
            )
            t["dense_ms"] = t.get("embed_ms", 0.0) + _ms(t0)
        if one_call is not None:
            w = self.weights[0]
            ranked = [
                _Candidate(
                    h.chunk_id,
                    h.document_id,
                    h.collection_id,
                    h.score * w,
                    dense_rank=h.dense_rank,
                    lexical_rank=h.lexical_rank,
                )
                for h in one_call.hits
            ]
            top_dense: float | None = one_call.top_dense_score
        else:
            ranked, top_dense = self._search_separately(query, qv, k, collections, mode, t)

        reranker = self.reranker if mode == "hybrid+rerank" else None
        window = max(k, reranker.top_n) if reranker is not None else k
        texts: Mapping[str, str] = {}
        if self.text_lookup is not None and (
            self.dedup_threshold is not None or reranker is not None
        ):
            # Every candidate (at most dense_k + lexical_k) in one lookup, so dropping
            # duplicates can never leave the window short.
            t0 = time.perf_counter()
            texts = self.text_lookup([c.chunk_id for c in ranked])
            ranked = [c for c in ranked if c.chunk_id in texts]
            if self.dedup_threshold is not None:
                ranked = suppress_near_duplicates(
                    ranked,
                    [texts[c.chunk_id] for c in ranked],
                    threshold=self.dedup_threshold,
                    limit=window,
                )
            t["dedup_ms"] = _ms(t0)
        reranked = False
        if reranker is not None:
            t0 = time.perf_counter()
            head = {c.chunk_id: c for c in ranked[:window]}
            try:
                scored = reranker.rerank(query, [(i, texts[i]) for i in head])
            except RerankError as e:
                # An answer from the fused ranking beats no answer.
                log.warning("%s; returning the unreranked ranking", e)
            else:
                ranked = []
                for chunk_id, score in scored:
                    head[chunk_id].score = score
                    ranked.append(head[chunk_id])
                reranked = True
            t["rerank_ms"] = _ms(t0)
        timings = StageTimings(**t, total_ms=_ms(started))
        return RetrievalResult(
            tuple(c.frozen() for c in ranked[:k]),
            timings,
            mode,
            rerank_skipped=mode == "hybrid+rerank" and not reranked,
            top_dense_score=top_dense,
            dense_voted=voted,
        )

    def _search_separately(
        self,
        query: str,
        qv: Vector | None,
        k: int,
        collections: Collection[str] | None,
        mode: Mode,
        t: dict[str, float],
    ) -> tuple[list[_Candidate], float | None]:
        """The dense search (with ``qv``), the BM25 one and their fusion (as ``mode``
        asks), recording their timings in ``t``; also the top dense score."""
        candidates: dict[str, _Candidate] = {}
        dense_ids: list[str] = []
        lexical_ids: list[str] = []
        seen_lexical: set[str] = set()
        top_dense: float | None = None

        if qv is not None and self.vectors is not None:
            t0 = time.perf_counter()
            hits = self.vectors.search(qv, k=max(self.dense_k, k), collections=collections)
            top_dense = hits[0].score if hits else 0.0
            t["dense_ms"] = t.get("embed_ms", 0.0) + _ms(t0)
            for rank, h in enumerate(hits, start=1):
                if h.chunk_id in candidates:
                    continue
                candidates[h.chunk_id] = _Candidate(
                    h.chunk_id, h.document_id, h.collection_id, h.score, dense_rank=rank
                )
                dense_ids.append(h.chunk_id)
        if mode != "dense" and self.lexical is not None:
            t0 = time.perf_counter()
            lhits = self.lexical.search(query, k=max(self.lexical_k, k), collections=collections)
            t["lexical_ms"] = _ms(t0)
            for rank, lh in enumerate(lhits, start=1):
                if lh.chunk_id in seen_lexical:
                    continue
                seen_lexical.add(lh.chunk_id)
                c = candidates.get(lh.chunk_id)
                if c is None:
                    c = candidates[lh.chunk_id] = _Candidate(
                        lh.chunk_id, lh.document_id, lh.collection_id, lh.score
                    )
                c.lexical_rank = rank
                lexical_ids.append(lh.chunk_id)

        if mode in ("dense", "bm25"):
            return [
                candidates[i] for i in (dense_ids if mode == "dense" else lexical_ids)
            ], top_dense
        t0 = time.perf_counter()
        fused = rrf([dense_ids, lexical_ids], weights=self.weights, k=self.rrf_k)
        ranked = []
        for f in fused:
            c = candidates[f.id]
            c.score = f.score
            ranked.append(c)
        t["fuse_ms"] = _ms(t0)
        return ranked, top_dense


T = TypeVar("T")


def suppress_near_duplicates(
    items: Sequence[T], texts: Sequence[str], *, threshold: float, limit: int | None = None
) -> list[T]:
    """``items`` (best first) without those whose text is a near-duplicate (shingle
    Jaccard >= ``threshold``) of a better-ranked kept one; stops after ``limit`` kept."""
    kept: list[T] = []
    kept_shingles: list[frozenset[str]] = []
    for item, text in zip(items, texts, strict=True):
        if limit is not None and len(kept) >= limit:
            break
        s = shingles(text)
        if any(jaccard(s, other) >= threshold for other in kept_shingles):
            continue
        kept.append(item)
        kept_shingles.append(s)
    return kept


_WORD = re.compile(r"\w+")


def shingles(text: str) -> frozenset[str]:
    """Word ``SHINGLE_WORDS``-grams of the text, normalised (NFKC, case-folded, words
    only), so whitespace, punctuation and case differences do not count."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    if len(words) <= SHINGLE_WORDS:
        return frozenset([" ".join(words)])
    return frozenset(
        " ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)
    )


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if not large:
        return 1.0
    inter = len(small & large)
    return inter / (len(a) + len(b) - inter)


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0
