"""Packing the best chunks into a token budget, merging neighbouring chunks."""

from __future__ import annotations

import pytest

from retrieval.packing import PackCandidate, pack

# One page, one section, three overlapping chunks (as chunking produces) and a far one.
PAGE = (
    "Refunds are possible within 30 days. "  # 0..37
    "Annual plans are refunded pro rata. "  # 37..72
    "Monthly plans are not refunded. "  # 72..104
    "Contact billing for exceptions. "  # 104..136
    "Invoices are sent on the first of the month. "  # 136..181
    "VAT is shown separately."  # 181..205
)
PAGES = {("doc", 1): PAGE, ("doc", 2): "Second page text here.", ("other", 1): PAGE}


def page_text(document_id: str, page: int | None) -> str:
    return PAGES[(document_id, page or 1)]


def cand(
    chunk_id: str,
    start: int,
    end: int,
    *,
    ordinal: int,
    score: float,
    doc: str = "doc",
    page: int = 1,
    section: tuple[str, ...] = ("Billing",),
    tokens: int | None = None,
) -> PackCandidate:
    text = page_text(doc, page)[start:end]
    return PackCandidate(
        chunk_id, doc, ordinal, page, section, text, start, end, tokens or len(text.split()), score
    )


C0 = cand("c0", 0, 72, ordinal=0, score=0.5)  # sentences 1-2
C1 = cand("c1", 37, 136, ordinal=1, score=0.9)  # sentences 2-4 (overlaps c0 by one)
C2 = cand("c2", 104, 181, ordinal=2, score=0.7)  # sentences 4-5 (overlaps c1 by one)
C3 = cand("c3", 181, 205, ordinal=3, score=0.1)


def test_overlapping_neighbours_merge_without_repeating_the_overlap() -> None:
    (source,) = pack([C0, C1], max_tokens=1000)
    assert source.chunk_ids == ("c0", "c1")
    assert source.text == PAGE[0:136]
    assert source.text.count("Annual plans are refunded") == 1
    assert (source.char_start, source.char_end) == (0, 136)
    assert source.score == 0.9


def test_a_chunk_that_bridges_two_sources_joins_them() -> None:
    (source,) = pack([C0, C2, C1], max_tokens=1000, page_text=page_text)
    assert source.chunk_ids == ("c0", "c1", "c2")
    assert source.text == PAGE[0:181]


def test_non_adjacent_chunks_are_not_merged() -> None:
    sources = pack([C0, C2], max_tokens=1000, page_text=page_text)
    assert [s.chunk_ids for s in sources] == [("c2",), ("c0",)]  # best score first


def test_adjacent_ordinals_with_a_gap_merge_only_with_page_text() -> None:
    a = cand("a", 0, 36, ordinal=0, score=1.0)  # ends before the space at 36
    b = cand("b", 37, 72, ordinal=1, score=0.8)
    (merged,) = pack([a, b], max_tokens=1000, page_text=page_text)
    assert merged.text == PAGE[0:72]
    assert merged.chunk_ids == ("a", "b")
    assert len(pack([a, b], max_tokens=1000)) == 2  # no page text: cannot fill the gap


def test_other_sections_pages_and_documents_are_not_merged() -> None:
    other_section = cand("s", 37, 136, ordinal=1, score=0.8, section=("Billing", "VAT"))
    other_page = cand("p", 0, 6, ordinal=1, score=0.7, page=2)
    other_doc = cand("d", 37, 136, ordinal=1, score=0.6, doc="other")
    sources = pack([C0, other_section, other_page, other_doc], max_tokens=1000)
    assert [s.chunk_ids for s in sources] == [("s",), ("p",), ("d",), ("c0",)]


def test_the_budget_is_respected() -> None:
    chunks = [C0, C1, C2, C3]
    for budget in range(0, 60):
        sources = pack(chunks, max_tokens=budget, page_text=page_text)
        assert sum(s.token_count for s in sources) <= budget
        for s in sources:
            assert s.text == PAGE[s.char_start : s.char_end]
    assert pack(chunks, max_tokens=0) == []


def test_best_chunks_first_and_a_smaller_one_fills_the_rest() -> None:
    big = cand("big", 0, 136, ordinal=0, score=0.95, section=("A",), tokens=20)
    best = cand("best", 136, 181, ordinal=5, score=0.99, section=("B",), tokens=9)
    small = cand("small", 181, 205, ordinal=9, score=0.1, section=("C",), tokens=4)
    sources = pack([small, big, best], max_tokens=15)
    assert [s.chunk_ids for s in sources] == [("best",), ("small",)]


def test_an_exact_token_counter_lets_a_merged_neighbour_fit() -> None:
    def count(text: str) -> int:
        return len(text.split())

    c0_alone = count(C0.text)
    merged = count(PAGE[0:136])
    budget = merged  # less than c0 + c1, whose overlap would be counted twice
    assert budget < C0.token_count + C1.token_count
    assert [s.chunk_ids for s in pack([C0, C1], max_tokens=budget)] == [("c1",)]
    (source,) = pack([C0, C1], max_tokens=budget, count_tokens=count)
    assert source.chunk_ids == ("c0", "c1")
    assert source.token_count == merged > c0_alone


def test_page_text_that_does_not_match_the_chunks_is_an_error() -> None:
    def wrong(document_id: str, page: int | None) -> str:
        return "x" * 300

    with pytest.raises(ValueError, match="not the page text"):
        pack([C0, C1], max_tokens=1000, page_text=wrong)


def test_repeated_chunk_ids_count_once() -> None:
    (source,) = pack([C1, C1], max_tokens=1000)
    assert source.chunk_ids == ("c1",)
    assert source.token_count == C1.token_count
