"""Chunks respect the token budget, pages and headings, and trace back to exact spans."""

from __future__ import annotations

import itertools
import string

import pytest

from ingestion import chunking
from ingestion.chunking import CHARS_PER_TOKEN, Chunker, chunk_id
from ingestion.parsers.base import Element, Page, ParsedDocument


def doc_from_blocks(pages: list[list[tuple[str, str, tuple[str, ...]]]]) -> ParsedDocument:
    """Build a ParsedDocument from (kind, text, section_path) blocks per page."""
    out_pages, elements = [], []
    for number, blocks in enumerate(pages, 1):
        text = ""
        for kind, block, path in blocks:
            if text:
                text += "\n\n"
            start = len(text)
            text += block
            elements.append(Element(kind, number, start, len(text), path))  # type: ignore[arg-type]
        out_pages.append(Page(number, text))
    return ParsedDocument("text/plain", tuple(out_pages), tuple(elements), paginated=True)


@pytest.fixture(scope="module")
def tokenizer(embedder):  # type: ignore[no-untyped-def]
    return embedder.tokenizer


def sentences(n: int, topic: str) -> str:
    return " ".join(f"Sentence {i} explains {topic} policy detail number {i}." for i in range(n))


def test_every_chunk_is_an_exact_span_of_its_page(tokenizer) -> None:  # type: ignore[no-untyped-def]
    doc = doc_from_blocks(
        [
            [("heading", "Leave", ("Leave",)), ("text", sentences(40, "leave"), ("Leave",))],
            [("text", sentences(5, "travel"), ("Travel",))],
        ]
    )
    chunks = Chunker(tokenizer, max_tokens=64, overlap_tokens=8).chunk(doc)
    assert len(chunks) > 3
    for c in chunks:
        assert doc.pages[c.page - 1].text[c.char_start : c.char_end] == c.text
        assert 0 < c.token_count <= 64
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_chunks_do_not_cross_pages_or_sections(tokenizer) -> None:  # type: ignore[no-untyped-def]
    doc = doc_from_blocks(
        [
            [
                ("heading", "Vacation", ("Vacation",)),
                ("text", "You get 25 days.", ("Vacation",)),
                ("heading", "Sick leave", ("Sick leave",)),
                ("text", "Tell your manager by 10am.", ("Sick leave",)),
            ],
            [("text", "Continued on page two.", ("Sick leave",))],
        ]
    )
    chunks = Chunker(tokenizer, max_tokens=200, overlap_tokens=10).chunk(doc)
    assert [(c.page, c.section_path, c.text) for c in chunks] == [
        (1, ("Vacation",), "Vacation\n\nYou get 25 days."),
        (1, ("Sick leave",), "Sick leave\n\nTell your manager by 10am."),
        (2, ("Sick leave",), "Continued on page two."),
    ]


def test_heading_followed_by_subheading_stays_with_its_content(tokenizer) -> None:  # type: ignore[no-untyped-def]
    doc = doc_from_blocks(
        [
            [
                ("heading", "Benefits", ("Benefits",)),
                ("heading", "Health", ("Benefits", "Health")),
                ("text", "The Family plan costs 64 pounds.", ("Benefits", "Health")),
            ]
        ]
    )
    [chunk] = Chunker(tokenizer, max_tokens=100, overlap_tokens=10).chunk(doc)
    assert chunk.text.startswith("Benefits\n\nHealth")
    assert chunk.section_path == ("Benefits", "Health")
    assert chunk.embedding_text("Handbook").startswith("Handbook > Benefits > Health\n\n")


def test_long_paragraph_is_split_at_sentences_with_overlap(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = sentences(60, "expense")
    doc = doc_from_blocks([[("text", text, ())]])
    chunks = Chunker(tokenizer, max_tokens=80, overlap_tokens=16).chunk(doc)
    assert len(chunks) >= 4
    for a, b in itertools.pairwise(chunks):
        assert b.char_start < a.char_end, "neighbours should overlap"
        assert b.char_start > a.char_start
    # Cuts land after a full stop, not mid-word.
    assert all(c.text.rstrip().endswith(".") for c in chunks[:-1])
    assert chunks[-1].char_end == len(text)


def test_chunk_ids_are_deterministic(tokenizer) -> None:  # type: ignore[no-untyped-def]
    doc = doc_from_blocks([[("text", sentences(30, "security"), ())]])
    a = Chunker(tokenizer, max_tokens=64, overlap_tokens=8).chunk(doc)
    b = Chunker(tokenizer, max_tokens=64, overlap_tokens=8).chunk(doc)
    ids_a = [chunk_id("doc1", c.ordinal, c.content_hash) for c in a]
    assert ids_a == [chunk_id("doc1", c.ordinal, c.content_hash) for c in b]
    assert len(set(ids_a)) == len(ids_a)
    assert chunk_id("doc2", 0, a[0].content_hash) != ids_a[0]


def test_chinese_text_is_chunked_within_budget(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "员工每年享有二十五天带薪年假。" * 40
    doc = doc_from_blocks([[("text", text, ("年假",))]])
    chunks = Chunker(tokenizer, max_tokens=64, overlap_tokens=8).chunk(doc)
    assert len(chunks) > 1
    assert all(c.token_count <= 64 for c in chunks)
    assert all(doc.pages[0].text[c.char_start : c.char_end] == c.text for c in chunks)
    # Cut after a full stop (。), never inside a sentence, and about a character a token.
    assert all(c.text.endswith("。") for c in chunks[:-1])
    assert all(len(c.text) >= 32 for c in chunks[:-1])


def one_word(n: int) -> str:
    """``n`` letters and no whitespace: one [UNK] token to the tokenizer, however long."""
    return "".join(itertools.islice(itertools.cycle(string.ascii_lowercase), n))


def test_a_one_megabyte_word_becomes_bounded_chunks_covering_it_exactly(tokenizer) -> None:  # type: ignore[no-untyped-def]
    word = one_word(1_000_000)
    doc = doc_from_blocks([[("text", word, ())]])
    chunker = Chunker(tokenizer, max_tokens=64, overlap_tokens=8)
    chunks = chunker.chunk(doc)
    assert chunker.max_chars == 64 * CHARS_PER_TOKEN
    assert len(chunks) >= 1_000_000 // chunker.max_chars
    assert all(len(c.text) <= chunker.max_chars for c in chunks)
    assert all(doc.pages[0].text[c.char_start : c.char_end] == c.text for c in chunks)
    # Nothing lost, nothing repeated: end to end, the pieces are the word.
    assert chunks[0].char_start == 0
    assert all(a.char_end == b.char_start for a, b in itertools.pairwise(chunks))
    assert "".join(c.text for c in chunks) == word
    assert all(0 < c.token_count <= 64 for c in chunks)


def test_prose_around_a_huge_run_keeps_its_sentences_and_overlap(tokenizer) -> None:  # type: ignore[no-untyped-def]
    before, after = sentences(30, "travel"), sentences(30, "expense")
    text = f"{before} {one_word(50_000)} {after}"
    doc = doc_from_blocks([[("text", text, ("Policy",))]])
    chunker = Chunker(tokenizer, max_tokens=64, overlap_tokens=8)
    chunks = chunker.chunk(doc)
    assert all(len(c.text) <= chunker.max_chars and c.token_count <= 64 for c in chunks)
    assert all(text[c.char_start : c.char_end] == c.text for c in chunks)
    # Every character outside the gaps between chunks is in some chunk; gaps are spaces.
    covered = [False] * len(text)
    for c in chunks:
        covered[c.char_start : c.char_end] = [True] * (c.char_end - c.char_start)
    assert all(ok or text[i].isspace() for i, ok in enumerate(covered))
    prose = [c for c in chunks if c.char_end <= len(before)]
    assert len(prose) >= 2
    assert all(c.text.rstrip().endswith(".") for c in prose[:-1])
    assert all(b.char_start < a.char_end for a, b in itertools.pairwise(prose))


def test_an_element_of_few_tokens_but_many_characters_is_cut(tokenizer) -> None:  # type: ignore[no-untyped-def]
    run = one_word(3000)
    url = "https://intranet.example.com/" + run  # a dozen tokens, 3,029 characters
    doc = doc_from_blocks([[("text", "See the link below.", ()), ("text", url, ())]])
    chunks = Chunker(tokenizer, max_tokens=256, overlap_tokens=16, max_chars=1000).chunk(doc)
    assert [c.text for c in chunks] == [
        "See the link below.\n\nhttps://intranet.example.com/",
        run[:1000],
        run[1000:2000],
        run[2000:],
    ]


class Spy:
    """The real tokenizer, remembering the longest text it was given."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.longest = inner, 0

    def token_spans(self, texts):  # type: ignore[no-untyped-def]
        self.longest = max([self.longest, *map(len, texts)])
        return self.inner.token_spans(texts)


def test_a_long_page_is_tokenized_in_windows_with_the_same_chunks(  # type: ignore[no-untyped-def]
    tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = "\n".join(sentences(12, f"topic {i}") for i in range(40))  # one element, ~25k chars
    doc = doc_from_blocks([[("text", page, ("Handbook",))], [("text", page, ())]])
    whole = Chunker(tokenizer, max_tokens=64, overlap_tokens=8).chunk(doc)
    monkeypatch.setattr(chunking, "TOKENIZE_CHARS", 5000)
    spy = Spy(tokenizer)
    windowed = Chunker(spy, max_tokens=64, overlap_tokens=8)  # type: ignore[arg-type]
    batches = list(windowed.batches(doc, size=50))
    assert len(page) > 5 * 5000
    assert spy.longest <= 5000
    assert [len(b) for b in batches[:-1]] == [50] * (len(batches) - 1)
    assert [c for b in batches for c in b] == whole
