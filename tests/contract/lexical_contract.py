"""Behaviour every ``LexicalIndex`` backend must show (like ``vectorstore_contract`` for vectors).

Use it by subclassing and providing one fixture::

    class TestMyIndex(LexicalIndexContract):
        @pytest.fixture
        def index_factory(self) -> IndexFactory:
            return MyIndex  # (directory) -> LexicalIndex

Tests open indexes through ``make_index``, which defaults the directory to a fresh
``tmp_path`` and closes every index at teardown (so ``close()`` must be idempotent).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Protocol

import pytest

from retrieval.errors import LexicalIndexError
from retrieval.lexical.base import LexicalHit, LexicalIndex, LexicalRecord


class IndexFactory(Protocol):
    def __call__(self, directory: Path) -> LexicalIndex: ...


class MakeIndex(Protocol):
    def __call__(self, directory: Path | None = None) -> LexicalIndex: ...


def rec(chunk_id: str, document_id: str, collection_id: str, text: str) -> LexicalRecord:
    return LexicalRecord(chunk_id, document_id, collection_id, text)


def ids(hits: list[LexicalHit]) -> list[str]:
    return [h.chunk_id for h in hits]


HANDBOOK = [
    rec("vac", "hr", "handbook", "Vacation policy: employees get 25 days of paid leave."),
    rec("exp", "hr", "handbook", "Expense reimbursement needs a receipt and your manager's OK."),
    rec("badge", "sec", "handbook", "Lost your badge? The front desk disables a lost badge."),
    rec("vpn", "it", "handbook", "Reset a VPN password in the portal; password policy applies."),
]
CHINESE = [
    rec("cn-leave", "cn1", "cn", "员工每年享有二十五天带薪年假，需提前两周申请。"),
    rec("cn-expense", "cn2", "cn", "差旅报销需要提供发票并经部门经理审批。"),
    rec("cn-mixed", "cn3", "cn", "Lantern 的年假 policy 说明：VPN密码每90天更换一次。"),
]


class LexicalIndexContract:
    #: False for backends that make every write durable at once (e.g. a database server).
    persists_only_on_flush: ClassVar[bool] = True

    @pytest.fixture
    def index_factory(self) -> IndexFactory:
        raise NotImplementedError("a LexicalIndexContract subclass must provide index_factory")

    @pytest.fixture
    def make_index(self, index_factory: IndexFactory, tmp_path: Path) -> Iterator[MakeIndex]:
        opened: list[LexicalIndex] = []

        def make(directory: Path | None = None) -> LexicalIndex:
            index = index_factory(directory or tmp_path / "index")
            opened.append(index)
            return index

        yield make
        for index in opened:
            index.close()

    @pytest.fixture
    def index(self, make_index: MakeIndex) -> LexicalIndex:
        return make_index()

    @pytest.fixture
    def handbook(self, index: LexicalIndex) -> LexicalIndex:
        index.upsert(HANDBOOK)
        return index

    # -- search ----------------------------------------------------------------

    def test_exact_term_match_ranks_first(self, handbook: LexicalIndex) -> None:
        hits = handbook.search("reimbursement receipt", k=4)
        assert ids(hits) == ["exp"]
        assert hits[0].score > 0

    def test_hits_carry_document_and_collection(self, handbook: LexicalIndex) -> None:
        (hit,) = handbook.search("badge", k=1)
        assert (hit.chunk_id, hit.document_id, hit.collection_id) == ("badge", "sec", "handbook")

    def test_rare_terms_outweigh_common_ones(self, handbook: LexicalIndex) -> None:
        handbook.upsert([rec("pol", "hr", "handbook", "Policy, policy and policy again.")])
        hits = handbook.search("badge policy", k=5)
        assert ids(hits)[0] == "badge"
        assert set(ids(hits)) == {"badge", "pol", "vac", "vpn"}
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    def test_stemming_matches_other_forms_of_a_word(self, handbook: LexicalIndex) -> None:
        assert set(ids(handbook.search("policies", k=5))) == {"vac", "vpn"}
        assert ids(handbook.search("reimbursed receipts", k=5)) == ["exp"]

    def test_search_ignores_case(self, handbook: LexicalIndex) -> None:
        assert ids(handbook.search("VACATION", k=5)) == ids(handbook.search("vacation", k=5))
        assert ids(handbook.search("VACATION", k=5)) == ["vac"]

    def test_stop_words_alone_find_nothing(self, handbook: LexicalIndex) -> None:
        handbook.upsert([rec("stop", "d9", "handbook", "The and of a to in is it.")])
        assert handbook.search("the and of", k=5) == []
        assert handbook.search("   ", k=5) == []

    def test_chunks_without_a_query_term_never_appear(self, handbook: LexicalIndex) -> None:
        hits = handbook.search("badge", k=50)
        assert ids(hits) == ["badge"]
        assert all(h.score > 0 for h in hits)
        assert handbook.search("zeppelin", k=5) == []

    def test_k_bounds_the_number_of_hits(self, handbook: LexicalIndex) -> None:
        assert len(handbook.search("policy password lost badge", k=2)) == 2
        assert handbook.search("badge", k=0) == []
        with pytest.raises(LexicalIndexError):
            handbook.search("badge", k=-1)

    def test_empty_index_returns_no_hits(self, index: LexicalIndex) -> None:
        assert index.search("anything", k=5) == []

    def test_collection_filter_is_applied_inside_the_search(self, index: LexicalIndex) -> None:
        filler = " ".join(["words"] * 5)
        allowed = [
            rec(f"a{i}", "da", "allowed", f"audit {filler * (i + 1)}") for i in range(3)
        ]  # a0 is the shortest, so the best match of the three
        better = [rec(f"x{i}", "dx", "secret", f"audit audit audit {i}") for i in range(20)]
        others = [rec(f"y{i}", "dy", "secret", f"unrelated text {i}") for i in range(200)]
        index.upsert(allowed + better + others)
        assert {h.collection_id for h in index.search("audit", k=3)} == {"secret"}
        hits = index.search("audit", k=3, collections={"allowed"})
        assert ids(hits) == ["a0", "a1", "a2"]
        assert {h.collection_id for h in hits} == {"allowed"}
        both = index.search("audit", k=30, collections=["allowed", "secret", "unknown"])
        assert len(both) == 23
        assert index.search("audit", k=5, collections={"unknown"}) == []

    def test_empty_collection_set_returns_no_hits(self, handbook: LexicalIndex) -> None:
        assert handbook.search("badge", k=3, collections=set()) == []

    # -- Chinese ---------------------------------------------------------------

    def test_chinese_query_finds_chinese_text(self, index: LexicalIndex) -> None:
        index.upsert(CHINESE[:2])
        assert ids(index.search("年假", k=5)) == ["cn-leave"]
        assert ids(index.search("报销发票", k=5)) == ["cn-expense"]
        assert ids(index.search("带薪年假 申请", k=5)) == ["cn-leave"]

    def test_mixed_chinese_and_english_text(self, index: LexicalIndex) -> None:
        index.upsert(CHINESE + HANDBOOK)
        assert ids(index.search("VPN 密码", k=1)) == ["cn-mixed"]
        assert "cn-mixed" in ids(index.search("policies", k=10))
        assert "cn-mixed" in ids(index.search("年假", k=10))

    # -- writes ----------------------------------------------------------------

    def test_upsert_same_chunk_id_replaces_the_text(self, handbook: LexicalIndex) -> None:
        handbook.upsert([rec("exp", "hr", "handbook", "Book travel through the travel desk.")])
        assert handbook.count() == 4
        assert handbook.search("receipt", k=5) == []
        assert ids(handbook.search("travel", k=5)) == ["exp"]

    def test_upsert_moves_a_chunk_to_another_collection(self, handbook: LexicalIndex) -> None:
        handbook.upsert([rec("badge", "sec", "other", "Lost badge procedure.")])
        assert handbook.count(collections={"handbook"}) == 3
        assert handbook.search("badge", k=5, collections={"handbook"}) == []
        (hit,) = handbook.search("badge", k=5, collections={"other"})
        assert (hit.chunk_id, hit.collection_id) == ("badge", "other")

    def test_empty_upsert_changes_nothing(self, handbook: LexicalIndex) -> None:
        handbook.upsert([])
        assert handbook.count() == 4

    def test_delete_documents_removes_exactly_their_chunks(self, handbook: LexicalIndex) -> None:
        handbook.upsert([rec("hr2", "hr-other", "elsewhere", "Vacation planning.")])
        assert handbook.delete_documents(["hr", "nope"]) == 2
        assert ids(handbook.search("vacation receipt", k=10)) == ["hr2"]
        assert handbook.delete_documents(["hr"]) == 0
        assert handbook.count() == 3

    def test_document_ids_and_count(self, handbook: LexicalIndex) -> None:
        handbook.upsert([rec("o1", "d9", "other", "One."), rec("o2", "d9", "other", "Two.")])
        assert handbook.document_ids() == {"hr", "sec", "it", "d9"}
        assert handbook.count() == 6
        assert handbook.count(collections={"handbook"}) == 4
        assert handbook.count(collections={"handbook", "other"}) == 6
        assert handbook.count(collections={"missing"}) == 0
        assert handbook.count(collections=set()) == 0
        handbook.delete_documents(["d9"])
        assert handbook.document_ids() == {"hr", "sec", "it"}

    def test_clear_drops_every_chunk(self, handbook: LexicalIndex) -> None:
        handbook.clear()
        assert handbook.count() == 0
        assert handbook.document_ids() == set()
        assert handbook.search("badge", k=3) == []
        handbook.upsert([rec("n1", "d1", "col", "New badge rules.")])
        assert ids(handbook.search("badge", k=3)) == ["n1"]

    # -- persistence -----------------------------------------------------------

    def test_flushed_state_survives_reopening(self, make_index: MakeIndex, tmp_path: Path) -> None:
        first = make_index(tmp_path / "idx")
        first.upsert(HANDBOOK + CHINESE)
        first.delete_documents(["sec"])
        before = [first.search(q, k=5) for q in ("policy", "年假", "receipt", "badge")]
        first.flush()
        first.close()
        again = make_index(tmp_path / "idx")
        assert again.count() == 6
        assert again.document_ids() == {"hr", "it", "cn1", "cn2", "cn3"}
        assert again.count(collections={"cn"}) == 3
        after = [again.search(q, k=5) for q in ("policy", "年假", "receipt", "badge")]
        assert [ids(hits) for hits in after] == [ids(hits) for hits in before]

    def test_changes_across_several_flushes_survive_reopening(
        self, make_index: MakeIndex, tmp_path: Path
    ) -> None:
        first = make_index(tmp_path / "idx")
        first.upsert([rec(f"c{i}", f"d{i % 3}", "ca", f"topic{i} shared") for i in range(6)])
        first.flush()
        first.upsert([rec("c0", "d0", "ca", "replaced text")])
        first.flush()
        first.upsert([rec("c1", "d1", "cb", "moved topic1")])
        first.delete_documents(["d2"])
        first.flush()
        first.close()
        again = make_index(tmp_path / "idx")
        assert (again.count(collections={"ca"}), again.count(collections={"cb"})) == (3, 1)
        assert ids(again.search("replaced", k=5)) == ["c0"]
        assert ids(again.search("topic1", k=5)) == ["c1"]
        assert again.search("topic1", k=5, collections={"ca"}) == []
        assert set(ids(again.search("shared", k=10))) == {"c3", "c4"}
        assert again.document_ids() == {"d0", "d1"}

    def test_unflushed_changes_are_not_persisted(
        self, make_index: MakeIndex, tmp_path: Path
    ) -> None:
        if not self.persists_only_on_flush:
            pytest.skip("this backend makes every write durable at once")
        first = make_index(tmp_path / "idx")
        first.upsert([rec("kept", "d1", "col", "durable words")])
        first.flush()
        first.upsert([rec("lost", "d2", "col", "fleeting words")])
        first.delete_documents(["d1"])
        first.close()
        again = make_index(tmp_path / "idx")
        assert again.document_ids() == {"d1"}
        assert ids(again.search("words", k=5)) == ["kept"]

    def test_cleared_state_survives_reopening(self, make_index: MakeIndex, tmp_path: Path) -> None:
        first = make_index(tmp_path / "idx")
        first.upsert(HANDBOOK)
        first.flush()
        first.clear()
        first.flush()
        first.close()
        again = make_index(tmp_path / "idx")
        assert again.count() == 0
        assert again.search("badge", k=5) == []

    # -- scale -----------------------------------------------------------------

    def test_a_unique_term_is_found_among_many_chunks(self, index: LexicalIndex) -> None:
        n = 3000
        index.upsert(
            [
                rec(f"c{i}", f"d{i // 10}", f"col{i % 3}", f"common words here item{i} filler")
                for i in range(n)
            ]
        )
        assert index.count() == n
        for i in (0, 1234, 2999):
            assert ids(index.search(f"item{i}", k=5)) == [f"c{i}"]
            inside = index.search(f"common item{i}", k=10, collections={f"col{i % 3}"})
            assert inside[0].chunk_id == f"c{i}"
            assert len(inside) == 10
            assert {h.collection_id for h in inside} == {f"col{i % 3}"}
