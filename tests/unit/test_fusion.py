"""Reciprocal-rank fusion and the hybrid retriever (real FAISS, deterministic fakes)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.fusion import rrf
from retrieval.hybrid import HybridRetriever, jaccard, shingles
from retrieval.lexical.base import LexicalHit, LexicalRecord
from retrieval.vectorstores.base import Vector, VectorHit, VectorRecord
from retrieval.vectorstores.faiss_store import FaissVectorStore

DIM = 64
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class FakeEmbedder:
    """Bag of hashed words: texts sharing words are close. Deterministic, instant."""

    model_name = "fake-bow"
    dimension = DIM
    max_tokens = 512
    is_fallback = False
    tokenizer: Any = None
    languages = frozenset({"*"})

    def __init__(self) -> None:
        self.documents_embedded = 0

    def _row(self, text: str) -> Vector:
        v = np.full(DIM, 1e-3, dtype=np.float32)
        for w in words(text):
            v[int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest()) % DIM] += 1
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed_documents(self, texts: Sequence[str], *, progress: object = None) -> Vector:
        self.documents_embedded += len(texts)
        return np.stack([self._row(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def embed_query(self, text: str) -> Vector:
        return self._row(text)[None, :]


class FakeLexical:
    """Term-frequency scoring with the collection filter applied inside the search."""

    def __init__(self) -> None:
        self.records: dict[str, LexicalRecord] = {}
        self.calls: list[Collection[str] | None] = []

    def upsert(self, records: Sequence[LexicalRecord]) -> None:
        self.records.update({r.chunk_id: r for r in records})

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        gone = [c for c, r in self.records.items() if r.document_id in set(document_ids)]
        for c in gone:
            del self.records[c]
        return len(gone)

    def search(
        self, query: str, *, k: int, collections: Collection[str] | None = None
    ) -> list[LexicalHit]:
        self.calls.append(collections)
        terms = set(words(query))
        scored = []
        for r in self.records.values():
            if collections is not None and r.collection_id not in collections:
                continue
            score = sum(1 for w in words(r.text) if w in terms)
            if score:
                scored.append(LexicalHit(r.chunk_id, r.document_id, r.collection_id, float(score)))
        scored.sort(key=lambda h: (-h.score, h.chunk_id))
        return scored[:k]

    def document_ids(self) -> set[str]:
        return {r.document_id for r in self.records.values()}

    def count(self, *, collections: Collection[str] | None = None) -> int:
        return len(self.records)

    def flush(self) -> None: ...

    def clear(self) -> None:
        self.records.clear()

    def close(self) -> None: ...


class SpyStore(FaissVectorStore):
    """The real FAISS store, remembering which collections each search was given."""

    calls: list[Collection[str] | None]

    def search(
        self, query: Vector, *, k: int, collections: Collection[str] | None = None
    ) -> list[VectorHit]:
        self.calls.append(collections)
        return super().search(query, k=k, collections=collections)


# chunk id -> (collection, text)
CORPUS: dict[str, tuple[str, str]] = {
    "hr1": ("hr", "holiday allowance is twenty five days per year"),
    "hr2": ("hr", "parental leave policy for new parents"),
    "hr3": ("hr", "sick leave must be reported before nine"),
    "it1": ("it", "reset your vpn password on the portal"),
    "it2": ("it", "laptops are replaced every three years"),
    # Matches "leave" queries better than anything in hr, but is in another collection.
    "sec1": ("secret", "leave leave leave leave leave policy policy parental sick"),
}


def build(
    tmp_path: Path, corpus: Mapping[str, tuple[str, str]] = CORPUS, **kwargs: object
) -> tuple[HybridRetriever, SpyStore, FakeLexical]:
    embedder = FakeEmbedder()
    store = SpyStore(tmp_path / "faiss", embedding_model=embedder.model_name, dimension=DIM)
    store.calls = []
    ids = list(corpus)
    vectors = embedder.embed_documents([corpus[i][1] for i in ids])
    store.upsert(
        [VectorRecord(i, f"doc-{i}", corpus[i][0], v) for i, v in zip(ids, vectors, strict=True)]
    )
    lexical = FakeLexical()
    lexical.upsert([LexicalRecord(i, f"doc-{i}", c, t) for i, (c, t) in corpus.items()])
    retriever = HybridRetriever(embedder, store, lexical, **kwargs)  # type: ignore[arg-type]
    return retriever, store, lexical


def lookup(corpus: Mapping[str, tuple[str, str]] = CORPUS):  # type: ignore[no-untyped-def]
    return lambda ids: {i: corpus[i][1] for i in ids if i in corpus}


# -- fusion ------------------------------------------------------------------------


def test_rrf_scores_are_weighted_reciprocal_ranks() -> None:
    fused = rrf([["a", "b", "c"], ["c", "a"]], weights=[1.0, 2.0], k=60)
    scores = {f.id: f.score for f in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 2 / 62)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 2 / 61)
    assert [f.id for f in fused] == ["c", "a", "b"]
    assert {f.id: f.ranks for f in fused} == {"a": (1, 2), "b": (2, None), "c": (3, 1)}


def test_rrf_weights_change_who_wins() -> None:
    dense, lexical = ["d1", "d2"], ["l1", "l2"]
    assert rrf([dense, lexical], weights=[1, 1])[0].id == "d1"  # tie: first list wins
    assert rrf([dense, lexical], weights=[1, 1.5])[0].id == "l1"
    assert rrf([dense, lexical], weights=[0, 1])[-1].id == "d2"


def test_rrf_ties_are_broken_deterministically() -> None:
    # Equal scores: better best rank first, then the earlier list, then the id.
    fused = rrf([["x", "b"], ["y", "a"]])
    assert [f.id for f in fused] == ["x", "y", "b", "a"]
    assert [f.id for f in rrf([["b", "a"], ["a", "b"]])] == ["b", "a"]
    assert rrf([["q", "p"], ["p", "q"]]) == rrf([["q", "p"], ["p", "q"]])


def test_rrf_keeps_the_first_rank_of_a_repeated_id() -> None:
    (only,) = rrf([["a", "a", "a"]], k=0)
    assert only.score == 1.0
    assert only.ranks == (1,)


def test_rrf_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="weights"):
        rrf([["a"], ["b"]], weights=[1.0])
    with pytest.raises(ValueError, match="weights"):
        rrf([["a"]], weights=[-1.0])
    with pytest.raises(ValueError, match="k must"):
        rrf([["a"]], k=-1)


# -- hybrid retriever --------------------------------------------------------------


def test_each_mode_ranks_with_its_own_scores(tmp_path: Path) -> None:
    retriever, _, _ = build(tmp_path)
    query = "parental leave policy"
    dense = retriever.retrieve(query, k=3, collections={"hr"}, mode="dense")
    bm25 = retriever.retrieve(query, k=3, collections={"hr"}, mode="bm25")
    hybrid = retriever.retrieve(query, k=3, collections={"hr"}, mode="hybrid")
    assert dense[0].chunk_id == bm25[0].chunk_id == hybrid[0].chunk_id == "hr2"
    assert all(c.lexical_rank is None for c in dense)
    assert all(c.dense_rank is None for c in bm25)
    assert bm25[0].score == 3.0  # BM25 (here: term count) score, not a fused one
    top = hybrid[0]
    assert (top.dense_rank, top.lexical_rank) == (1, 1)
    assert top.score == pytest.approx(2 / 61)
    assert top.document_id == "doc-hr2"
    assert top.collection_id == "hr"


def test_the_collection_filter_goes_into_both_searches(tmp_path: Path) -> None:
    retriever, store, lexical = build(tmp_path, dense_k=2, lexical_k=2)
    result = retriever.retrieve("parental sick leave policy", k=2, collections={"hr"})
    assert store.calls == [{"hr"}]
    assert lexical.calls == [{"hr"}]
    # sec1 matches best but is outside the filter; filtering inside the search means it
    # never took one of the two slots, so both are filled from hr.
    assert [c.collection_id for c in result] == ["hr", "hr"]
    assert "sec1" not in result.chunk_ids


def test_no_collections_means_no_results_and_none_means_all(tmp_path: Path) -> None:
    retriever, store, _ = build(tmp_path)
    assert len(retriever.retrieve("leave", k=5, collections=set())) == 0
    assert store.calls == []
    everything = retriever.retrieve("leave policy", k=10, collections=None)
    assert "sec1" in everything.chunk_ids


def test_near_duplicates_are_suppressed_with_texts(tmp_path: Path) -> None:
    corpus = dict(CORPUS)
    text = "the travel policy clause: " + " ".join(f"rule{i}" for i in range(80))
    corpus["v1"] = ("hr", text)
    corpus["v2"] = ("hr", text.replace("rule9 ", "Rule9!!  ").upper())  # same words
    corpus["v3"] = ("hr", text.replace("rule9 ", "rule99 "))  # one word in 84 changed
    retriever, _, _ = build(tmp_path, corpus, text_lookup=lookup(corpus))
    result = retriever.retrieve("travel policy clause", k=3, collections={"hr"})
    ids = result.chunk_ids
    assert sum(i in ids for i in ("v1", "v2", "v3")) == 1
    assert len(result) == 3  # the window is refilled from lower ranks
    plain, _, _ = build(tmp_path / "plain", corpus)
    plain_ids = plain.retrieve("travel policy clause", k=3, collections={"hr"}).chunk_ids
    assert sum(i in plain_ids for i in ("v1", "v2", "v3")) >= 2  # copies took the slots


def test_overlapping_neighbours_are_not_near_duplicates() -> None:
    body = [f"w{i}" for i in range(300)]
    a = " ".join(body[:256])
    b = " ".join(body[224:])  # 32 words of overlap, as chunking produces
    assert jaccard(shingles(a), shingles(b)) < 0.2
    assert jaccard(shingles("Hello,  World"), shingles("hello world")) == 1.0


def test_chunks_the_text_lookup_does_not_return_are_dropped(tmp_path: Path) -> None:
    visible = {i: v for i, v in CORPUS.items() if i != "hr2"}
    retriever, _, _ = build(tmp_path, text_lookup=lookup(visible))
    result = retriever.retrieve("parental leave policy", k=3, collections={"hr"})
    assert "hr2" not in result.chunk_ids


def test_timings_cover_the_stages_that_ran(tmp_path: Path) -> None:
    retriever, _, _ = build(tmp_path, text_lookup=lookup())
    t = retriever.retrieve("vpn password", k=2, collections=None).timings
    assert t.dense_ms >= t.embed_ms > 0
    assert t.lexical_ms > 0
    assert t.fuse_ms > 0
    assert t.dedup_ms > 0
    assert t.rerank_ms == 0
    assert t.total_ms >= t.dense_ms + t.lexical_ms
    dense = retriever.retrieve("vpn password", k=2, collections=None, mode="dense").timings
    assert dense.lexical_ms == dense.fuse_ms == 0


def test_missing_lexical_index(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    retriever, store, _ = build(tmp_path)
    dense_only = HybridRetriever(retriever.embedder, store, None)
    dense_only.retrieve("vpn", k=2, collections=None, mode="dense")
    assert "dense-only" not in caplog.text  # nothing is missing for a dense search
    hybrid = dense_only.retrieve("vpn", k=2, collections=None)
    dense_only.retrieve("vpn", k=2, collections=None)
    assert caplog.text.count("hybrid retrieval runs dense-only") == 1
    assert hybrid.chunk_ids[0] == "it1"
    assert all(c.lexical_rank is None for c in hybrid)
    with pytest.raises(ValueError, match="lexical index"):
        dense_only.retrieve("vpn", k=2, collections=None, mode="bm25")
    with pytest.raises(ValueError, match="unknown retrieval mode"):
        dense_only.retrieve("vpn", k=2, collections=None, mode="sparse")  # type: ignore[arg-type]
