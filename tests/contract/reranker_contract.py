"""Behaviour every ``Reranker`` backend must show.

Use it by subclassing and providing one fixture, ``reranker``. Set ``ranks_by_relevance``
False for a backend whose scores carry no meaning (a cross-encoder with an untrained head,
the only one that exists offline): it still has to keep the rest of the contract.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from retrieval.rerankers.base import Reranker

QUERY = "How many vacation days do employees receive?"
ITEMS = [
    ("cafeteria", "The cafeteria opens at eight and closes at three."),
    ("vacation", "Employees receive 25 vacation days per year."),
    ("vpn", "Reset your VPN password from the self-service portal."),
]


class RerankerContract:
    ranks_by_relevance: ClassVar[bool] = True

    def test_reports_a_name_and_a_positive_depth(self, reranker: Reranker) -> None:
        assert reranker.model_name
        assert reranker.top_n > 0

    def test_every_item_comes_back_once_best_first(self, reranker: Reranker) -> None:
        ranked = reranker.rerank(QUERY, ITEMS)
        assert sorted(i for i, _ in ranked) == sorted(i for i, _ in ITEMS)
        scores = [s for _, s in ranked]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(s, float) for s in scores)

    def test_no_items_give_no_ranking(self, reranker: Reranker) -> None:
        assert reranker.rerank(QUERY, []) == []

    def test_the_same_input_gets_the_same_ranking(self, reranker: Reranker) -> None:
        assert reranker.rerank(QUERY, ITEMS) == reranker.rerank(QUERY, ITEMS)

    def test_equal_passages_keep_their_input_order(self, reranker: Reranker) -> None:
        same = "Employees receive 25 vacation days per year."
        ranked = reranker.rerank(QUERY, [("first", same), ("second", same)])
        assert [i for i, _ in ranked] == ["first", "second"]

    def test_the_passage_that_answers_ranks_first(self, reranker: Reranker) -> None:
        if not self.ranks_by_relevance:
            pytest.skip("this backend's scores carry no meaning")
        assert reranker.rerank(QUERY, ITEMS)[0][0] == "vacation"
