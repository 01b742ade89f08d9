"""Parsers: what a user would notice in the extracted pages, sections and errors."""

from __future__ import annotations

import importlib.util
import io
from typing import Any

import pytest

from ingestion.detect import (
    DOCX_MIME,
    HTML_MIME,
    MARKDOWN_MIME,
    PDF_MIME,
    PPTX_MIME,
    TEXT_MIME,
)
from ingestion.errors import (
    EmptyDocument,
    EncryptedDocument,
    FileTooLarge,
    ParseError,
    UnsupportedFormat,
)
from ingestion.parsers import docx as docx_module
from ingestion.parsers.base import ParsedDocument
from ingestion.parsers.docx import DocxParser
from ingestion.parsers.html import HtmlParser
from ingestion.parsers.markdown import MarkdownParser
from ingestion.parsers.pdf import PdfParser
from ingestion.parsers.pptx import PptxParser
from ingestion.parsers.registry import ParserRegistry, default_registry
from ingestion.parsers.text import TextParser
from ingestion.parsers.unstructured import UnstructuredParser
from ingestion.safety import check_zip
from tests.fixtures import docs

MB = 1024 * 1024
CHINESE = "员工每年享有二十天带薪年假。"


def assert_well_formed(doc: ParsedDocument) -> None:
    """Offsets slice exactly each block, and blocks are all a page holds, blank-line separated."""
    assert doc.elements
    for page_number, page in enumerate(doc.pages, start=1):
        assert page.number == page_number
        blocks = [e for e in doc.elements if e.page == page_number]
        assert "\n\n".join(doc.element_text(e) for e in blocks) == page.text
        for element in blocks:
            text = doc.element_text(element)
            assert text
            assert text == text.strip()
            if element.kind != "code":
                assert "\n\n" not in text


def texts(doc: ParsedDocument, kind: str | None = None) -> list[str]:
    return [doc.element_text(e) for e in doc.elements if kind is None or e.kind == kind]


def element_with(doc: ParsedDocument, needle: str) -> Any:
    return next(e for e in doc.elements if needle in doc.element_text(e))


# --- PDF -------------------------------------------------------------------------------


def test_pdf_sentence_on_page_two_is_on_page_two() -> None:
    data = docs.make_pdf(["Page one text.", "The deductible is $1,500.", "Page three."])
    doc = PdfParser().parse(data, filename="plan.pdf")
    assert_well_formed(doc)
    assert doc.mime == PDF_MIME
    assert doc.paginated
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert "The deductible is $1,500." in doc.pages[1].text
    assert "deductible" not in doc.pages[0].text + doc.pages[2].text
    assert element_with(doc, "deductible").page == 2


def test_pdf_paragraphs_title_and_outline_sections() -> None:
    pages = [
        "# Benefits\nIntro paragraph.\n\nA second paragraph that is long enough to wrap onto "
        "another line of the page, because it just keeps on going and going.\n## Dental\n"
        "Cleanings are covered twice a year.",
        "Orthodontics is not covered.",
    ]
    doc = PdfParser().parse(docs.make_pdf(pages, title="Handbook"), filename="h.pdf")
    assert_well_formed(doc)
    assert doc.title == "Handbook"
    assert texts(doc, "heading") == ["Benefits", "Dental"]
    assert element_with(doc, "Intro").section_path == ("Benefits",)
    wrapped = element_with(doc, "second paragraph")
    assert "keeps on going" in doc.element_text(wrapped)  # one paragraph despite the wrap
    assert element_with(doc, "Cleanings").section_path == ("Benefits", "Dental")
    assert element_with(doc, "Orthodontics").section_path == ("Benefits", "Dental")


def test_pdf_headings_from_font_size_without_outline() -> None:
    pages = [
        "# Benefits\nEveryone is covered.\n## Dental\nCleanings twice a year.",
        "## Vision\nOne pair of glasses a year.",
    ]
    doc = PdfParser().parse(docs.make_pdf(pages, outline=False), filename="h.pdf")
    assert_well_formed(doc)
    assert texts(doc, "heading") == ["Benefits", "Dental", "Vision"]
    assert element_with(doc, "Cleanings").section_path == ("Benefits", "Dental")
    assert element_with(doc, "glasses").section_path == ("Benefits", "Vision")


def test_pdf_running_headers_and_footers_are_dropped() -> None:
    topics = ["vacation", "expenses", "security", "parking"]
    pages = [
        f"Northwind Handbook 2026\n\nThis page covers {t}.\n\nPage {n} of 4"
        for n, t in enumerate(topics, 1)
    ]
    doc = PdfParser().parse(docs.make_pdf(pages, outline=False), filename="h.pdf")
    for page, topic in zip(doc.pages, topics, strict=True):
        assert f"This page covers {topic}." in page.text
        assert "Northwind Handbook" not in page.text
        assert "of 4" not in page.text


def test_pdf_line_breaks_are_plain_newlines() -> None:
    doc = PdfParser().parse(docs.make_pdf(["Line one\nLine two"]), filename="a.pdf")
    assert "\r" not in doc.pages[0].text
    assert "Line one\nLine two" in doc.pages[0].text


def test_encrypted_pdf() -> None:
    data = docs.make_pdf(["Secret salaries."], password="hunter2")
    with pytest.raises(EncryptedDocument) as err:
        PdfParser().parse(data, filename="salaries.pdf")
    assert str(err.value) == "PDF is password-protected; remove the password and upload again"


def test_corrupt_pdf() -> None:
    with pytest.raises(ParseError, match=r"broken\.pdf is not a valid PDF"):
        PdfParser().parse(docs.corrupt_pdf(), filename="broken.pdf")


def test_scanned_pdf_says_why_it_is_empty() -> None:
    with pytest.raises(EmptyDocument) as err:
        PdfParser().parse(docs.scanned_pdf(pages=3), filename="scan.pdf")
    assert "3 pages" in str(err.value)
    assert "scanned" in str(err.value)
    assert "OCR" in str(err.value)


# --- DOCX ------------------------------------------------------------------------------

HANDBOOK_DOCX = [
    ("h1", "Benefits"),
    "Everyone is covered from day one.",
    ("h2", "Health plans"),
    ("table", [["Plan", "Deductible", "Premium"], ["Basic", "$1,500", "$0"]]),
    ("ul", ["Dental", "Vision"]),
    ("ol", ["Enroll", "Confirm"]),
    ("h1", "Leave"),
    CHINESE,
]


def test_docx_sections_tables_and_lists() -> None:
    doc = DocxParser().parse(docs.make_docx(HANDBOOK_DOCX), filename="handbook.docx")
    assert_well_formed(doc)
    assert doc.mime == DOCX_MIME
    assert not doc.paginated
    assert len(doc.pages) == 1
    assert doc.title == "Benefits"  # no core title: the first heading
    table = element_with(doc, "Deductible")
    assert table.kind == "table"
    assert doc.element_text(table) == "Plan | Deductible | Premium\nBasic | $1,500 | $0"
    assert table.section_path == ("Benefits", "Health plans")
    assert texts(doc, "list") == ["- Dental\n- Vision", "1. Enroll\n2. Confirm"]
    heading = element_with(doc, "Health plans")
    assert heading.kind == "heading"
    assert heading.section_path == ("Benefits", "Health plans")
    chinese = element_with(doc, CHINESE)
    assert chinese.section_path == ("Leave",)
    assert doc.element_text(chinese) == CHINESE


def test_docx_tall_table_with_a_vertically_merged_column() -> None:
    # python-docx's row.cells looked up each merged cell's first row recursively: cubic
    # in the height (800 rows took 69 s) and a RecursionError from 1,000 rows.
    doc = DocxParser().parse(docs.tall_merged_table_docx(3000), filename="stock.docx")
    [table] = doc.elements
    rows = doc.element_text(table).split("\n")
    assert len(rows) == 3000
    assert rows[0] == "Warehouse 7 | item 0 | in stock"
    assert rows[2999] == "Warehouse 7 | item 2999 | in stock"


def test_docx_paragraph_text_matches_python_docx() -> None:
    import docx

    blocks = [*HANDBOOK_DOCX, "Tab\there and a\nline break", ("ul", ["a\tb"])]
    document = docx.Document(io.BytesIO(docs.make_docx(blocks)))
    paragraphs = [
        *document.paragraphs,
        *(p for t in document.tables for c in t._cells for p in c.paragraphs),
    ]
    assert any("\t" in p.text for p in paragraphs)
    assert [docx_module._text(p._p) for p in paragraphs] == [p.text for p in paragraphs]


def test_docx_with_one_huge_part_is_refused_before_parsing() -> None:
    data = docs.tall_merged_table_docx(3000)
    with pytest.raises(FileTooLarge, match=r"stock.docx: its part word/document.xml expands to"):
        DocxParser(max_part=MB // 8).parse(data, filename="stock.docx")


def test_docx_title_from_core_properties() -> None:
    data = docs.make_docx(["Body text."], title="Employee Handbook")
    assert DocxParser().parse(data, filename="h.docx").title == "Employee Handbook"


def test_corrupt_docx() -> None:
    with pytest.raises(ParseError, match=r"memo.docx is not a valid DOCX file: "):
        DocxParser().parse(docs.corrupt_docx(), filename="memo.docx")


def test_docx_without_text() -> None:
    with pytest.raises(EmptyDocument, match="no text"):
        DocxParser().parse(docs.make_docx([]), filename="blank.docx")


def test_docx_zip_bomb_refused_before_python_docx_opens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def must_not_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("python-docx opened a zip bomb")

    monkeypatch.setattr(docx_module.docx, "Document", must_not_open)
    parser = DocxParser(max_uncompressed=8 * MB)
    with pytest.raises(FileTooLarge, match=r"expands to 10 MB \(limit 8 MB\).*zip bomb"):
        parser.parse(docs.zip_bomb_docx(uncompressed_mb=10), filename="bomb.docx")


def test_zip_bomb_refused_by_ratio_under_the_size_limit() -> None:
    data = docs.zip_bomb_docx(uncompressed_mb=20)
    assert len(data) < MB  # the fixture stays small
    with pytest.raises(FileTooLarge, match="ratio"):
        PptxParser(max_uncompressed=512 * MB, max_ratio=200).parse(data, filename="x.pptx")


def test_check_zip_accepts_real_documents() -> None:
    check_zip(docs.make_docx(HANDBOOK_DOCX), max_uncompressed=MB, max_ratio=100)


def test_check_zip_limits_member_count() -> None:
    with pytest.raises(FileTooLarge, match="entries"):
        check_zip(docs.make_docx(["x"]), max_uncompressed=MB, max_members=3)


# --- PPTX ------------------------------------------------------------------------------


def test_pptx_slides_are_pages() -> None:
    slides = [
        {"title": "Q3 results", "bullets": ["Revenue up 12%", ("EMEA led", 1)]},
        {
            "title": "Plans",
            "table": [["Plan", "Premium"], ["Basic", "$0"]],
            "notes": "Mention the new dental plan.",
        },
        {"text": "A slide without a title."},
    ]
    doc = PptxParser().parse(docs.make_pptx(slides), filename="deck.pptx")
    assert_well_formed(doc)
    assert doc.mime == PPTX_MIME
    assert doc.paginated
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert doc.title == "Q3 results"
    title = doc.elements[0]
    assert (title.kind, doc.element_text(title), title.section_path) == (
        "heading",
        "Q3 results",
        ("Q3 results",),
    )
    bullets = element_with(doc, "Revenue")
    assert doc.element_text(bullets) == "- Revenue up 12%\n  - EMEA led"
    assert bullets.kind == "list"
    table = element_with(doc, "Premium")
    assert (table.page, table.kind) == (2, "table")
    assert doc.element_text(table) == "Plan | Premium\nBasic | $0"
    notes = [e for e in doc.elements if e.page == 2][-1]
    assert doc.element_text(notes) == "Notes: Mention the new dental plan."
    assert notes.section_path == ("Plans",)
    untitled = element_with(doc, "without a title")
    assert (untitled.page, untitled.section_path) == (3, ())


def test_corrupt_pptx() -> None:
    with pytest.raises(ParseError, match=r"deck\.pptx is not a valid PPTX file"):
        PptxParser().parse(docs.corrupt_pptx(), filename="deck.pptx")


def test_pptx_without_text() -> None:
    with pytest.raises(EmptyDocument, match="2 slides but no text"):
        PptxParser().parse(docs.make_pptx([{}, {}]), filename="pictures.pptx")


# --- HTML ------------------------------------------------------------------------------

HTML_BODY = """
<main>
  <h1>Leave policy</h1>
  <p>Employees get <b>twenty</b> days.<br>Unused days expire.</p>
  <div>Bare text in a div <a href="/x">with a link</a>.
    <h2>Parental leave</h2>
    <ul><li>Sixteen weeks<ul><li>paid</li></ul></li><li>Either parent</li></ul>
    <pre>code  line 1
code  line 2</pre>
    <table><tr><th>Plan</th><th>Days</th></tr><tr><td>Basic</td><td>20</td></tr></table>
    <blockquote>Quoted guidance.</blockquote>
  </div>
</main>
"""


def test_html_blocks_sections_and_chrome() -> None:
    doc = HtmlParser().parse(docs.make_html(HTML_BODY, title="HR"), filename="leave.html")
    assert_well_formed(doc)
    assert doc.mime == HTML_MIME
    assert doc.title == "HR"
    assert "CHROME" not in doc.pages[0].text
    assert texts(doc, "heading") == ["Leave policy", "Parental leave"]
    assert "Employees get twenty days.\nUnused days expire." in texts(doc, "text")
    assert "Bare text in a div with a link." in texts(doc, "text")
    lists = texts(doc, "list")
    assert lists == ["- Sixteen weeks\n  - paid\n- Either parent"]
    assert element_with(doc, "Sixteen").section_path == ("Leave policy", "Parental leave")
    assert texts(doc, "code") == ["code  line 1\ncode  line 2"]
    assert texts(doc, "table") == ["Plan | Days\nBasic | 20"]
    assert "Quoted guidance." in texts(doc)


def test_html_declared_charset_and_chinese() -> None:
    data = docs.make_html(f"<h1>年假</h1><p>{CHINESE}</p>", title="政策", charset="gb18030")
    doc = HtmlParser().parse(data, filename="policy.html")
    assert doc.title == "政策"
    assert element_with(doc, CHINESE).section_path == ("年假",)


def test_html_without_visible_text() -> None:
    with pytest.raises(EmptyDocument):
        HtmlParser().parse(docs.make_html("<img src='a.png'>"), filename="pic.html")


# --- Markdown --------------------------------------------------------------------------

MARKDOWN = f"""# Leave *policy*

Employees get **twenty** days, see [the portal](https://intranet/leave).

## Parental leave

- Sixteen weeks
  - paid
- Either parent

3. Apply
4. Wait

| Plan | Days |
|------|------|
| Basic | 20 |

```python
print("hello")

print("bye")
```

{CHINESE}
"""


def test_markdown_plain_text_sections_and_front_matter() -> None:
    data = docs.make_markdown(MARKDOWN, front_matter={"title": "HR handbook", "tags": "hr"})
    doc = MarkdownParser().parse(data, filename="leave.md")
    assert_well_formed(doc)
    assert doc.mime == MARKDOWN_MIME
    assert doc.title == "HR handbook"
    text = doc.pages[0].text
    assert "tags" not in text
    assert "**" not in text
    assert "https://" not in text
    assert "Employees get twenty days, see the portal." in texts(doc, "text")
    assert texts(doc, "heading") == ["Leave policy", "Parental leave"]
    assert texts(doc, "list") == ["- Sixteen weeks\n  - paid\n- Either parent", "3. Apply\n4. Wait"]
    assert texts(doc, "table") == ["Plan | Days\nBasic | 20"]
    assert texts(doc, "code") == ['print("hello")\n\nprint("bye")']
    chinese = element_with(doc, CHINESE)
    assert chinese.section_path == ("Leave policy", "Parental leave")


def test_markdown_title_falls_back_to_first_h1() -> None:
    doc = MarkdownParser().parse(b"Intro.\n\n# Handbook\n\nBody.", filename="a.md")
    assert doc.title == "Handbook"


# --- Plain text ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030"])
def test_text_paragraphs_and_encodings(encoding: str) -> None:
    data = f"First paragraph\nstill first.\r\n\r\n\n{CHINESE}\n".encode(encoding)
    doc = TextParser().parse(data, filename="notes.txt")
    assert_well_formed(doc)
    assert doc.mime == TEXT_MIME
    assert texts(doc) == ["First paragraph\nstill first.", CHINESE]


def test_text_in_a_legacy_western_encoding() -> None:
    data = "Grüße aus Köln, schöne Straße und Bäcker.".encode("cp1252")
    doc = TextParser().parse(data, filename="note.txt")
    assert doc.pages[0].text == "Grüße aus Köln, schöne Straße und Bäcker."


def test_undecodable_text() -> None:
    with pytest.raises(ParseError, match="could not detect the text encoding"):
        TextParser().parse(docs.undecodable_text(), filename="legacy.txt")


def test_whitespace_only_text() -> None:
    with pytest.raises(EmptyDocument):
        TextParser().parse(b" \n\n\t\n", filename="blank.txt")


# --- Registry and the optional unstructured backend ------------------------------------


def test_default_registry_covers_every_format() -> None:
    registry = default_registry()
    for mime in (PDF_MIME, DOCX_MIME, PPTX_MIME, HTML_MIME, MARKDOWN_MIME, TEXT_MIME):
        assert mime in registry.get(mime).mime_types


def test_registry_names_supported_types_for_unknown_mime() -> None:
    with pytest.raises(UnsupportedFormat, match=r"video/mp4.*supported types:.*application/pdf"):
        default_registry().get("video/mp4")
    with pytest.raises(UnsupportedFormat, match="supported types: none"):
        ParserRegistry().get("text/plain")


@pytest.mark.skipif(
    importlib.util.find_spec("unstructured") is not None, reason="unstructured is installed"
)
def test_unstructured_backend_says_how_to_install_it() -> None:
    parser = UnstructuredParser([PDF_MIME])
    with pytest.raises(UnsupportedFormat, match=r"pip install 'lantern\[unstructured\]'"):
        parser.parse(docs.make_pdf(["x"]), filename="a.pdf")


def test_unstructured_backend_refuses_silent_empty_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingestion.parsers import unstructured as module

    monkeypatch.setattr(module, "_load_partition", lambda: lambda **kwargs: [])
    with pytest.raises(EmptyDocument, match="unstructured found no text"):
        UnstructuredParser([PDF_MIME]).parse(docs.make_pdf(["x"]), filename="a.pdf")


def test_pdfs_parse_safely_from_several_worker_threads() -> None:
    # PDFium corrupts the heap if two threads call it at once; ingestion runs workers
    # in threads, so the parser must serialise its pdfium calls.
    from concurrent.futures import ThreadPoolExecutor

    pdfs = [docs.make_pdf([f"Document {i} page {p} text." for p in range(8)]) for i in range(8)]
    serial = [PdfParser().parse(d, filename="x.pdf") for d in pdfs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            threaded = list(pool.map(lambda d: PdfParser().parse(d, filename="x.pdf"), pdfs))
            assert [p.pages for p in threaded] == [p.pages for p in serial]
