"""Hybrid search in one Milvus call (milvus-lite): the store keeps the chunks' text, the
lexical index is a view of its collection, and ``hybrid_search`` with RRF ranks as the
two searches fused in Python do, filtered by collection inside the call.

Each test builds its own milvus-lite database under ``tmp_path`` and closes it.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from retrieval._milvus import MilvusConnection
from retrieval._milvus_text import FullText
from retrieval.embedders.testing import FakeEmbedder
from retrieval.hybrid import HybridRetriever, RetrievalResult
from retrieval.lexical.base import FusingIndex, LexicalHit, LexicalRecord
from retrieval.lexical.milvus_index import MilvusLexicalIndex
from retrieval.vectorstores.base import VectorRecord
from retrieval.vectorstores.milvus_store import MilvusVectorStore

VOCABULARY = [f"w{i}" for i in range(150)] + ["vacation", "expense", "badge", "password"]
COLLECTIONS = ("hr", "it", "secret")


class TwoCalls:
    """The same lexical index without ``fused_search``: the retriever searches it and the
    store separately and fuses in Python, as for any other pair of backends."""

    def __init__(self, inner: MilvusLexicalIndex) -> None:
        self.inner = inner

    def search(
        self, query: str, *, k: int, collections: Collection[str] | None = None
    ) -> list[LexicalHit]:
        return self.inner.search(query, k=k, collections=collections)

    def __getattr__(self, name: str) -> Any:
        if name in ("fuses_with", "fused_search"):
            raise AttributeError(name)
        return getattr(self.inner, name)


def corpus(n: int = 300, seed: int = 3) -> dict[str, tuple[str, str]]:
    """``chunk id -> (collection, text)``; every text has a length of its own, so no two
    BM25 scores tie (ties are the one place the two fusions may order differently)."""
    rng = random.Random(seed)
    lengths = list(range(6, 6 + n))
    rng.shuffle(lengths)
    return {
        f"c{i:03d}": (COLLECTIONS[i % 3], " ".join(rng.choices(VOCABULARY, k=lengths[i])))
        for i in range(n)
    }


@pytest.fixture(params=["FLAT", "HNSW"])
def indexes(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[MilvusVectorStore, MilvusLexicalIndex]]:
    """FLAT is exact; on HNSW a filtered dense list can miss a close chunk that BM25
    brings in, so the one-call path may not read dense ranks off the cosines alone."""
    conn = MilvusConnection(uri=str(tmp_path / "milvus.db"))
    embedder = FakeEmbedder()
    store = MilvusVectorStore(
        tmp_path / "milvus",
        embedding_model=embedder.model_name,
        dimension=embedder.dimension,
        milvus=conn,
        index_type=request.param,
        full_text=FullText(),
    )
    lexical = MilvusLexicalIndex(tmp_path / "milvus", milvus=conn, vectors=store)
    chunks = corpus()
    ids = list(chunks)
    vectors = embedder.embed_documents([chunks[i][1] for i in ids])
    store.upsert([VectorRecord(i, f"doc-{i}", chunks[i][0], vectors[n]) for n, i in enumerate(ids)])
    lexical.upsert([LexicalRecord(i, f"doc-{i}", c, text) for i, (c, text) in chunks.items()])
    yield store, lexical
    lexical.close()
    store.close()


def retrievers(
    store: MilvusVectorStore, lexical: MilvusLexicalIndex, **options: Any
) -> tuple[HybridRetriever, HybridRetriever]:
    embedder = FakeEmbedder()
    one = HybridRetriever(embedder, store, lexical, dense_k=20, lexical_k=20, **options)
    two = HybridRetriever(embedder, store, TwoCalls(lexical), dense_k=20, lexical_k=20, **options)  # type: ignore[arg-type]
    return one, two


def queries(n: int = 25, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(VOCABULARY, 3)) for _ in range(n)]


def ranking(result: RetrievalResult) -> list[tuple[str, int | None, int | None]]:
    return [(c.chunk_id, c.dense_rank, c.lexical_rank) for c in result]


def test_the_store_and_its_lexical_view_fuse_in_one_call(
    indexes: tuple[MilvusVectorStore, MilvusLexicalIndex], tmp_path: Path
) -> None:
    store, lexical = indexes
    assert isinstance(lexical, FusingIndex)
    assert lexical.fuses_with(store)
    other = MilvusVectorStore(tmp_path / "other", embedding_model="fake", dimension=64)
    try:
        assert not lexical.fuses_with(other)
    finally:
        other.close()


@pytest.mark.parametrize("collections", [None, {"hr", "it"}, {"it"}])
def test_one_call_ranks_as_the_two_searches_fused_in_python(
    indexes: tuple[MilvusVectorStore, MilvusLexicalIndex], collections: set[str] | None
) -> None:
    one, two = retrievers(*indexes, rrf_k=60)
    for query in queries():
        fused = one.retrieve(query, k=10, collections=collections)
        python = two.retrieve(query, k=10, collections=collections)
        assert ranking(fused) == ranking(python), query
        assert [c.score for c in fused] == pytest.approx([c.score for c in python], rel=1e-6)
        assert fused.top_dense_score == pytest.approx(python.top_dense_score, abs=1e-5)
        assert fused.timings.lexical_ms == fused.timings.fuse_ms == 0  # no second call


def test_one_call_takes_the_rrf_constant_and_equal_weights_from_the_settings(
    indexes: tuple[MilvusVectorStore, MilvusLexicalIndex],
) -> None:
    one, two = retrievers(*indexes, rrf_k=5, weights=(2.0, 2.0))
    query = queries()[0]
    fused, python = (
        one.retrieve(query, k=10, collections=None),
        two.retrieve(query, k=10, collections=None),
    )
    assert ranking(fused) == ranking(python)
    top = fused[0]
    expected = sum(2.0 / (5 + r) for r in (top.dense_rank, top.lexical_rank) if r is not None)
    assert top.score == pytest.approx(expected, rel=1e-6)


def test_unequal_weights_are_fused_in_python(
    indexes: tuple[MilvusVectorStore, MilvusLexicalIndex],
) -> None:
    """Milvus's RRF has no weights: with unequal ones the retriever searches twice."""
    one, two = retrievers(*indexes, weights=(1.0, 0.2))
    for query in queries(5):
        fused = one.retrieve(query, k=10, collections=None)
        assert ranking(fused) == ranking(two.retrieve(query, k=10, collections=None))
        assert fused.timings.lexical_ms > 0


def test_a_chunk_of_a_collection_the_user_may_not_read_never_comes_back(
    indexes: tuple[MilvusVectorStore, MilvusLexicalIndex],
) -> None:
    store, lexical = indexes
    embedder = FakeEmbedder()
    # The best match for both searches, in a collection the caller may not read.
    leak = "vacation expense badge password " * 3
    store.upsert([VectorRecord("leak", "doc-leak", "secret", embedder.embed_documents([leak])[0])])
    lexical.upsert([LexicalRecord("leak", "doc-leak", "secret", leak)])
    one, _ = retrievers(store, lexical)
    query = "vacation expense badge password"
    everyone = one.retrieve(query, k=5, collections=None)
    assert everyone[0].chunk_id == "leak"
    assert everyone.top_dense_score == pytest.approx(1.0, abs=1e-5)
    allowed = one.retrieve(query, k=40, collections={"hr", "it"})
    assert "leak" not in allowed.chunk_ids
    assert {c.collection_id for c in allowed} <= {"hr", "it"}
    assert len(allowed) == 40  # the filter ran inside: the secret chunk took no slot
    best_allowed = store.search(embedder.embed_query(query)[0], k=1, collections={"hr", "it"})
    assert allowed.top_dense_score == pytest.approx(best_allowed[0].score, abs=1e-5)
    assert one.retrieve(query, k=5, collections={"nobody's"}).chunk_ids == []


class EnglishOnly(FakeEmbedder):
    languages = frozenset({"en"})


def test_a_query_the_embedder_cannot_read_is_ranked_by_bm25_alone(
    indexes: tuple[MilvusVectorStore, MilvusLexicalIndex],
) -> None:
    store, lexical = indexes
    lexical.upsert([LexicalRecord("zh", "doc-zh", "hr", "员工 每年 享有 二十五天 带薪 年假")])
    store.upsert([VectorRecord("zh", "doc-zh", "hr", FakeEmbedder().embed_query("x")[0])])
    retriever = HybridRetriever(EnglishOnly(), store, lexical)
    hybrid = retriever.retrieve("二十五天 带薪 年假", k=5, collections={"hr"})
    assert not hybrid.dense_voted
    assert hybrid.top_dense_score is None
    assert hybrid.chunk_ids == ["zh"]
    assert (hybrid[0].dense_rank, hybrid[0].lexical_rank) == (None, 1)


def test_dense_and_bm25_modes_search_the_shared_collection_once_each(
    indexes: tuple[MilvusVectorStore, MilvusLexicalIndex],
) -> None:
    store, lexical = indexes
    one, _ = retrievers(store, lexical)
    query = queries()[1]
    dense = one.retrieve(query, k=5, collections={"hr"}, mode="dense")
    bm25 = one.retrieve(query, k=5, collections={"hr"}, mode="bm25")
    qv = FakeEmbedder().embed_query(query)[0]
    assert dense.chunk_ids == [h.chunk_id for h in store.search(qv, k=5, collections={"hr"})]
    assert bm25.chunk_ids == [h.chunk_id for h in lexical.search(query, k=5, collections={"hr"})]
    assert dense.timings.lexical_ms == 0
    assert bm25.top_dense_score is None


def test_a_query_of_stop_words_only_is_a_dense_search(
    indexes: tuple[MilvusVectorStore, MilvusLexicalIndex],
) -> None:
    one, _ = retrievers(*indexes)
    result = one.retrieve("the of and", k=5, collections=None)
    assert len(result) == 5
    assert all(c.lexical_rank is None and c.dense_rank is not None for c in result)
