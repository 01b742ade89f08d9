"""PDF structure: tables as rows, words broken at a line end, columns in reading order."""

from __future__ import annotations

import logging

import pytest

from ingestion.parsers.base import ParsedDocument
from ingestion.parsers.pdf import PdfParser
from tests.fixtures import docs
from tests.unit.test_parsers import assert_well_formed, element_with, texts

PLANS = [
    ["Plan", "Premium", "Leave"],
    ["Basic", "$0", "10 days"],
    ["Plus", "$40", "15 days"],
    ["Gold", "$90", "20 days"],
]
BEFORE = "Our plans are listed below with their monthly premium and the paid leave they include."
AFTER = "Premiums are deducted from each paycheck."

LEFT = (
    "Retrieval quality depends on how the documents are split into passages. "
    "Short passages keep one idea each, which helps the ranking model decide. "
    "Long passages carry more context but blur the match."
)
RIGHT = (
    "Citations must point at the exact page and the exact words of the source. "
    "A reader who follows a citation expects to find the quoted sentence there. "
    "Anything else erodes trust in the assistant."
)


def parse(data: bytes) -> ParsedDocument:
    doc = PdfParser().parse(data, filename="x.pdf")
    assert_well_formed(doc)
    return doc


# --- tables ------------------------------------------------------------------------------


def test_pdf_table_is_rows_with_their_header_between_the_paragraphs() -> None:
    doc = parse(docs.make_table_pdf(PLANS, before=BEFORE, after=AFTER))
    text = doc.pages[0].text
    assert texts(doc, "table") == [
        "Plan | Premium | Leave\nBasic | $0 | 10 days\nPlus | $40 | 15 days\nGold | $90 | 20 days"
    ]
    assert text.count("Basic | $0 | 10 days") == 1
    assert text.count("10 days") == 1  # the cells are not also loose lines
    assert text.index(BEFORE) < text.index("Plan | Premium | Leave") < text.index(AFTER)


def test_pdf_tables_on_every_page() -> None:
    doc = parse(docs.make_table_pdf(PLANS, before=BEFORE, pages=3))
    for page in doc.pages:
        assert page.text.count("Basic | $0 | 10 days") == 1
    assert len(texts(doc, "table")) == 3


def test_pdf_prose_page_has_no_table() -> None:
    pages = [
        "# Leave\nEveryone gets twenty days of paid leave a year, taken in half days or more.\n\n"
        "Unused days carry over to the next year, up to five days, and the rest lapse."
    ]
    doc = parse(docs.make_pdf(pages))
    assert texts(doc, "table") == []
    assert "twenty days of paid leave" in doc.pages[0].text


def test_pdf_paragraph_in_a_box_is_not_a_table() -> None:
    doc = parse(docs.make_boxed_pdf(BEFORE + " " + AFTER))
    assert texts(doc, "table") == []
    assert "monthly premium" in doc.pages[0].text


def test_pdf_unreadable_table_area_keeps_the_words_as_lines(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pdfplumber.page

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("damaged content stream")

    monkeypatch.setattr(pdfplumber.page.Page, "find_tables", broken)
    with caplog.at_level(logging.INFO, logger="ingestion.parsers._pdf_tables"):
        doc = parse(docs.make_table_pdf(PLANS, before=BEFORE))
    assert texts(doc, "table") == []
    assert "Basic $0 10 days" in doc.pages[0].text
    assert "unreadable table area" in caplog.text


# --- words broken at a line end ----------------------------------------------------------


def test_pdf_word_broken_at_line_end_is_whole() -> None:
    data = docs.make_pdf_lines(
        [
            "Lantern improves information re-",
            "trieval for the whole company and",
            "its answers are state-of-the-",
            "art, self-",
            "contained and easy to check.",
        ]
    )
    text = parse(data).pages[0].text
    assert "information retrieval for the whole" in text
    assert "re-trieval" not in text
    assert "state-of-the-art" in text
    assert "self-contained" in text


def test_pdf_hyphenated_form_used_elsewhere_keeps_its_hyphen() -> None:
    data = docs.make_pdf_lines(
        [
            "The co-pay is due at the visit; a small",
            "pay-",
            "ment is due later, and the pay-",
            "ment is small.",
        ]
    )
    text = parse(data).pages[0].text
    assert "payment is due later" in text
    assert "co-pay" in text


def test_pdf_hyphen_kept_when_the_document_writes_the_word_with_one() -> None:
    data = docs.make_pdf_lines(
        [
            "Our e-mail policy: every e-",
            "mail is archived, and e-mail older than",
            "a year is deleted.",
        ]
    )
    text = parse(data).pages[0].text
    assert "every e-mail is archived" in text
    assert "email" not in text


def test_pdf_hyphen_inside_a_code_is_kept() -> None:
    data = docs.make_pdf_lines(["Times in the log are written YYMMDDhhmm-", "hh and sorted."])
    assert "YYMMDDhhmm-hh and sorted" in parse(data).pages[0].text


# --- columns -----------------------------------------------------------------------------


@pytest.mark.parametrize("row_by_row", [False, True])
def test_pdf_two_columns_read_left_then_right(row_by_row: bool) -> None:
    data = docs.make_two_column_pdf(
        LEFT, RIGHT, title="Passages and citations", row_by_row=row_by_row
    )
    doc = parse(data)
    text = doc.pages[0].text
    assert text.startswith("Passages and citations")
    for paragraph in (LEFT, RIGHT):
        element = element_with(doc, " ".join(paragraph.split()[:3]))
        assert " ".join(doc.element_text(element).split()) == paragraph  # whole, wrapped lines
    assert text.index("erodes") > text.index("blur the match")


@pytest.mark.parametrize("row_by_row", [False, True])
def test_pdf_sentence_running_on_into_the_next_column_stays_whole(row_by_row: bool) -> None:
    left, right = LEFT.split(" which helps ")
    data = docs.make_two_column_pdf(
        left + " which helps the", right.removeprefix("the ") + " " + RIGHT, row_by_row=row_by_row
    )
    doc = parse(data)
    element = element_with(doc, "ranking model")
    assert "Short passages keep one idea each, which helps the ranking model decide." in " ".join(
        doc.element_text(element).split()
    )


def test_pdf_single_column_page_keeps_its_order() -> None:
    pages = ["Short line.\nAnother short line that is a bit longer than the first one.\nEnd."]
    text = parse(docs.make_pdf(pages)).pages[0].text
    assert "Short line.\nAnother short line that is a bit longer than the first one.\nEnd." in text
