"""The segmented BM25 index scores exactly as bm25s built from scratch over the live chunks,
whatever sequence of upserts, replacements, moves, deletions, flushes and reopenings led there."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import bm25s
import pytest

from retrieval._segments import MergePolicy
from retrieval.lexical import _bm25_shards
from retrieval.lexical.analyzer import Analyzer
from retrieval.lexical.bm25_index import Bm25Index
from tests.contract.lexical_contract import rec

ENGLISH = (
    "vacation policy leave paid days employee manager expense receipt travel badge desk "
    "password portal network printer budget report audit security training contract"
).split()
CHINESE = ["年假", "报销", "发票", "员工", "部门经理", "审批", "密码", "安全规定", "差旅", "带薪"]
WORDS = ENGLISH + CHINESE
COLLECTIONS = ("a", "b")
TOLERANCE = 1e-6  # relative: bm25s keeps its scores in float32


def random_text(rng: random.Random) -> str:
    """Mostly a few words of a skewed vocabulary (so terms repeat and lengths differ),
    sometimes Chinese without spaces, sometimes nothing searchable."""
    if rng.random() < 0.05:
        return rng.choice(["", "the of and", "!!!"])
    top = rng.randint(3, len(WORDS))
    words = [
        WORDS[min(int(rng.paretovariate(1.2)) - 1, top - 1)] for _ in range(rng.randint(1, 25))
    ]
    if rng.random() < 0.3:
        return "".join(w if w in CHINESE else rng.choice(CHINESE) for w in words)
    return " ".join(words)


def random_query(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))  # repeats count


def assert_scores_equal_bm25s(
    index: Bm25Index,
    live: dict[str, tuple[str, str, str]],
    queries: list[str],
    params: dict[str, float | str],
) -> None:
    analyzer = Analyzer()
    for collection in COLLECTIONS:
        chunks = sorted(c for c, (_, col, _) in live.items() if col == collection)
        tokens = [analyzer.tokens(live[c][2]) for c in chunks]
        reference = None
        if any(tokens):  # bm25s divides by the mean length
            reference = bm25s.BM25(**params)
            reference.index(tokens, show_progress=False)
        for query in queries:
            expected: dict[str, float] = {}
            known = [t for t in analyzer.tokens(query) if reference and t in reference.vocab_dict]
            if reference is not None and known:
                scores = reference.get_scores(known).tolist()
                expected = {c: s for c, s in zip(chunks, scores, strict=True) if s > 0}
            hits = index.search(query, k=1000, collections={collection})
            got = {h.chunk_id: h.score for h in hits}
            assert set(got) == set(expected), (collection, query)
            for chunk_id, score in got.items():
                assert score == pytest.approx(expected[chunk_id], rel=TOLERANCE)
            # the ranking is bm25s's: each hit scores at least the next one there
            ranked = [expected[h.chunk_id] for h in hits]
            assert all(a >= b * (1 - TOLERANCE) for a, b in itertools.pairwise(ranked))
            best = sorted(expected.values(), reverse=True)[:3]
            top = index.search(query, k=3, collections={collection})
            assert [h.score for h in top] == pytest.approx(best, rel=TOLERANCE)


@pytest.mark.parametrize(
    "params",
    [
        {"method": "lucene", "k1": 1.5, "b": 0.75},
        {"method": "robertson", "k1": 1.2, "b": 0.3},
        {"method": "atire", "k1": 0.9, "b": 1.0},
    ],
    ids=lambda p: str(p["method"]),
)
@pytest.mark.parametrize(
    "policy",
    [MergePolicy(), MergePolicy(max_segments=4, tier_base=2)],
    ids=["default-merges", "tiny-tiers"],  # tiny tiers: many segments, tombstones, caps
)
def test_scores_equal_a_bm25s_index_built_from_scratch(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    params: dict[str, float | str],
    policy: MergePolicy,
) -> None:
    monkeypatch.setattr(_bm25_shards, "POLICY", policy)
    rng = random.Random(f"bm25-{params['method']}-{policy.tier_base}")
    segments_seen = 0
    index = Bm25Index(tmp_path, **params)  # type: ignore[arg-type]
    live: dict[str, tuple[str, str, str]] = {}  # chunk -> document, collection, text
    documents: dict[str, list[str]] = {}
    for step in range(70):
        action = rng.choice(["add", "add", "add", "replace", "delete", "flush", "reopen"])
        if action == "add" or not documents:
            doc = f"doc{step}"
            collection = rng.choice(COLLECTIONS)
            documents[doc] = [f"{doc}-{i}" for i in range(rng.randint(1, 8))]
            batch = [rec(c, doc, collection, random_text(rng)) for c in documents[doc]]
        elif action == "replace":  # new texts for some chunks, maybe in the other collection
            doc = rng.choice(sorted(documents))
            collection = rng.choice(COLLECTIONS)
            chunks = rng.sample(documents[doc], rng.randint(1, len(documents[doc])))
            batch = [rec(c, doc, collection, random_text(rng)) for c in chunks]
        elif action == "delete":
            doc = rng.choice(sorted(documents))
            assert index.delete_documents([doc]) == len(documents.pop(doc))
            live = {c: v for c, v in live.items() if v[0] != doc}
            batch = []
        else:
            index.flush()
            if action == "reopen":
                index.close()
                index = Bm25Index(tmp_path, **params)  # type: ignore[arg-type]
            batch = []
        if batch:
            index.upsert(batch)
            live.update({r.chunk_id: (r.document_id, r.collection_id, r.text) for r in batch})
        assert index.count() == len(live)
        segments_seen = max([segments_seen, *(len(v.segments) for v in index._views.values())])
        assert_scores_equal_bm25s(index, live, [random_query(rng) for _ in range(4)], params)
    assert segments_seen > (2 if policy.tier_base == 2 else 1)
    index.flush()
    index.close()
    again = Bm25Index(tmp_path, **params)  # type: ignore[arg-type]
    assert_scores_equal_bm25s(again, live, [random_query(rng) for _ in range(8)], params)
