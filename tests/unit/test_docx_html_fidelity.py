"""DOCX and HTML fidelity: text that Word or a browser shows is indexed once, no
more, no less (merged and nested tables, text boxes, headers and footers, table
layouts, nested lists, undeclared legacy encodings)."""

from __future__ import annotations

import io
import zipfile

import pytest

from ingestion.errors import EmptyDocument
from ingestion.parsers.base import ParsedDocument
from ingestion.parsers.docx import DocxParser
from ingestion.parsers.html import HtmlParser
from ingestion.parsers.text import TextParser
from tests.fixtures import docs
from tests.unit.test_parsers import assert_well_formed, element_with, texts

# --- DOCX ------------------------------------------------------------------------------


def _row(*cells: str, before: int = 0, after: int = 0) -> str:
    props = (f'<w:gridBefore w:val="{before}"/>' if before else "") + (
        f'<w:gridAfter w:val="{after}"/>' if after else ""
    )
    return f"<w:tr><w:trPr>{props}</w:trPr>{''.join(cells)}</w:tr>"


def _table(*rows: str, columns: int = 3) -> str:
    return f"<w:tbl><w:tblGrid>{'<w:gridCol/>' * columns}</w:tblGrid>{''.join(rows)}</w:tbl>"


def _parse_docx(data: bytes) -> ParsedDocument:
    doc = DocxParser().parse(data, filename="report.docx")
    assert_well_formed(doc)
    return doc


def test_docx_table_with_merged_cells_and_an_irregular_grid() -> None:
    import docx

    cell = docs.docx_cell
    data = docs.docx_with_body(
        _table(
            _row(cell("Region", span=2), cell("Total")),
            _row(cell("North", merge="restart"), cell("Q1"), cell("10")),
            _row(cell("", merge="continue"), cell("Q2"), cell("12")),
            _row(cell("South", span=2), cell("7")),
            # A merge continuing under the middle of a wider cell, after a skipped column.
            _row(cell("", merge="continue"), cell("9"), before=1),
            _row(cell("Notes only"), after=2),  # fewer cells than the grid
        )
    )
    # The file users sent: python-docx's row.cells cannot read this grid.
    rows = docx.Document(io.BytesIO(data)).tables[0].rows
    with pytest.raises(ValueError, match="no `tc` element at grid_offset=1"):
        [list(row.cells) for row in rows]
    doc = _parse_docx(data)
    assert texts(doc) == [
        "Region | Total\nNorth | Q1 | 10\nNorth | Q2 | 12\nSouth | 7\nSouth | 9\nNotes only"
    ]


def test_docx_nested_table_follows_its_table_once() -> None:
    inner = [["Tier", "Copay"], ["Generic", "$5"]]
    data = docs.make_docx(
        [
            ("table", [["Plan", "Drugs"], ["Basic", inner]]),
            "After the table.",
        ]
    )
    doc = _parse_docx(data)
    assert texts(doc) == [
        "Plan | Drugs\nBasic |",
        "Tier | Copay\nGeneric | $5",
        "After the table.",
    ]
    assert [e.kind for e in doc.elements] == ["table", "table", "text"]


def test_docx_text_boxes_once_each() -> None:
    data = docs.docx_with_body(
        docs.docx_paragraph("Before the boxes.")
        + f"<w:p>{docs.docx_text_box('Call-out: claims close on 31 March.')}"
        "<w:r><w:t>Anchor paragraph.</w:t></w:r></w:p>"
        + f"<w:p>{docs.docx_text_box('Legacy VML box.', fallback=False)}</w:p>"
        + _table(f"<w:tr><w:tc><w:p>{docs.docx_text_box('Box in a cell.')}</w:p></w:tc></w:tr>")
    )
    doc = _parse_docx(data)
    page = doc.pages[0].text
    assert texts(doc) == [
        "Before the boxes.",
        "Anchor paragraph.",
        "Call-out: claims close on 31 March.",
        "Legacy VML box.",
        "Box in a cell.",
    ]
    assert page.count("Call-out") == 1
    assert page.count("Box in a cell.") == 1


def test_docx_content_controls_are_read() -> None:
    sdt = "<w:sdt><w:sdtPr/><w:sdtContent>{}</w:sdtContent></w:sdt>"
    cell = docs.docx_cell
    data = docs.docx_with_body(
        sdt.format(docs.docx_paragraph("Contract number 4471."))
        + _table(
            _row(cell("Party"), sdt.format(cell("Acme Ltd"))),
            sdt.format(_row(cell("Signed"), cell("yes"))),
            columns=2,
        )
    )
    assert texts(_parse_docx(data)) == [
        "Contract number 4471.",
        "Party | Acme Ltd\nSigned | yes",
    ]


def test_docx_table_of_contents_does_not_repeat_the_headings() -> None:
    gallery = '<w:docPartObj><w:docPartGallery w:val="Table of Contents"/></w:docPartObj>'
    toc = f"<w:sdt><w:sdtPr>{gallery}</w:sdtPr><w:sdtContent>{{}}</w:sdtContent></w:sdt>"
    heading = '<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Benefits</w:t></w:r></w:p>'
    data = docs.docx_with_body(
        toc.format(docs.docx_paragraph("Benefits\t2")) + heading + docs.docx_paragraph("Dental.")
    )
    assert texts(_parse_docx(data)) == ["Benefits", "Dental."]


def test_docx_runs_word_shows_inside_wrappers() -> None:
    sdt = "<w:sdt><w:sdtPr/><w:sdtContent>{}</w:sdtContent></w:sdt>"
    run = "<w:r><w:t xml:space='preserve'>{}</w:t></w:r>"
    paragraph = (
        "<w:p>"
        + run.format("Signed by ")
        + sdt.format(run.format("Jane Roe"))  # an inline content control (a form field)
        + f"<w:ins w:id='1' w:author='x'>{run.format(' on 3 May')}</w:ins>"
        + "<w:del w:id='2' w:author='x'><w:r><w:delText> on 2 May</w:delText></w:r></w:del>"
        + f"<w:smartTag w:uri='u' w:element='place'>{run.format(' in Leeds')}</w:smartTag>"
        + f"<w:fldSimple w:instr='PAGE'>{run.format(', page 4')}</w:fldSimple>"
        + "</w:p>"
    )
    assert texts(_parse_docx(docs.docx_with_body(paragraph))) == [
        "Signed by Jane Roe on 3 May in Leeds, page 4"
    ]


def test_docx_footnotes_after_the_body() -> None:
    body = (
        "<w:p><w:r><w:t>The policy applies to contractors.</w:t></w:r>"
        '<w:r><w:footnoteReference w:id="1"/></w:r></w:p>'
    )
    data = docs.docx_with_body(body, footnotes=["Except agency staff, see annex B."])
    assert texts(_parse_docx(data)) == [
        "The policy applies to contractors.",
        "Except agency staff, see annex B.",
    ]


def test_docx_with_a_broken_footnotes_part_keeps_its_body() -> None:
    data = docs.docx_with_body(docs.docx_paragraph("Body text."), footnotes=["A note."])
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in source.infolist():
            broken = item.filename == "word/footnotes.xml"
            z.writestr(item, b"<w:footnotes><unclosed" if broken else source.read(item))
    assert texts(_parse_docx(out.getvalue())) == ["Body text."]


def test_docx_header_and_footer_once_around_the_body() -> None:
    data = docs.headed_docx(
        "ACME Confidential", "Page footer: internal use", ["One.", "Two.", "Three."]
    )
    doc = _parse_docx(data)
    page = doc.pages[0].text
    assert texts(doc) == [
        "ACME Confidential",
        "One.",
        "Two.",
        "Three.",
        "Page footer: internal use",
    ]
    assert page.count("ACME Confidential") == 1
    assert doc.elements[0].section_path == ()


def test_docx_with_only_empty_paragraphs_still_says_it_has_no_text() -> None:
    data = docs.docx_with_body("<w:p/>" + _table(f"<w:tr>{docs.docx_cell('')}</w:tr>"))
    with pytest.raises(EmptyDocument, match=r"blank\.docx: DOCX contains no text"):
        DocxParser().parse(data, filename="blank.docx")


# --- HTML ------------------------------------------------------------------------------


def _page_text(data: bytes) -> str:
    doc = HtmlParser().parse(data, filename="page.html")
    assert_well_formed(doc)
    return doc.pages[0].text


def _undeclared(body: str, encoding: str) -> bytes:
    return f"<html><head><title>Menu</title></head><body>{body}</body></html>".encode(encoding)


def test_html_without_charset_in_windows_1252() -> None:
    text = "Le café est très bon. El niño y João comen. He said \u201cyes\u201d \u2013 twice."
    assert _page_text(_undeclared(f"<p>{text}</p>", "cp1252")) == text


def test_html_http_equiv_latin1_is_read_as_windows_1252() -> None:
    # Browsers read a page declaring iso-8859-1 as windows-1252 (smart quotes are 0x93/0x94).
    head = '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">'
    data = f"<html><head>{head}</head><body><p>\u201cNiño\u201d</p></body></html>".encode("cp1252")
    assert _page_text(data) == "\u201cNiño\u201d"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("员工每年享有二十天带薪年假。请在系统中提交申请，经理审批后生效。", "gbk"),
        ("従業員は毎年二十日の有給休暇を取得できます。申請はシステムで。", "shift_jis"),
        ("Сотрудники получают двадцать дней оплачиваемого отпуска каждый год.", "cp1251"),
    ],
)
def test_html_without_charset_in_other_scripts_keeps_the_detected_encoding(
    text: str, encoding: str
) -> None:
    assert _page_text(_undeclared(f"<p>{text}</p>", encoding)) == text


def test_text_file_in_windows_1252_french() -> None:
    # charset-normalizer alone picks cp1257 here: "élčves".
    text = "Le café était très bon, et les élèves étaient là à côté de l'église."
    doc = TextParser().parse(text.encode("cp1252"), filename="note.txt")
    assert doc.pages[0].text == text


LAYOUT_PAGE = """
<table><tr><td><img src="logo.gif"></td><td>
  <table width="435"><tr><td><font size="2">
    <b>How to Start a Startup</b><br><br>You need three things to create a startup.<br><br>
    Most startups that fail do so because they make something nobody wants.
  </font></td></tr></table>
  <table><tr><th>Stage</th><th>Months</th></tr><tr><td>Seed</td><td>6</td></tr></table>
</td></tr></table>
"""


def test_html_table_layout_stores_each_sentence_once() -> None:
    doc = HtmlParser().parse(docs.make_html(LAYOUT_PAGE), filename="essay.html")
    assert_well_formed(doc)
    page = doc.pages[0].text
    for sentence in (
        "How to Start a Startup",
        "You need three things to create a startup.",
        "Most startups that fail do so because they make something nobody wants.",
        "Seed",
    ):
        assert page.count(sentence) == 1, sentence
    assert texts(doc, "text") == [
        "How to Start a Startup",
        "You need three things to create a startup.",
        "Most startups that fail do so because they make something nobody wants.",
    ]
    assert texts(doc, "table") == ["Stage | Months\nSeed | 6"]


NESTED_PAGE = """
<ul>
  <li><p>Book the room.</p><p>Invite the team.</p></li>
  <li>Install it: <pre>pip install lantern</pre></li>
  <li>Prices<table><tr><td>Basic</td><td>$0</td></tr></table></li>
  <li>Travel<ol><li>Flights need approval.</li></ol></li>
</ul>
<dl><dt>PTO</dt><dd>Paid time off.</dd></dl>
<figure><img src="chart.png"><figcaption>Leave taken per year.</figcaption></figure>
<table><caption>Plans offered.</caption><thead><tr><th>Plan</th><th>Notes</th></tr></thead>
<tbody><tr><td>Basic</td><td><p>Free.</p><p>No dental.</p></td></tr></tbody></table>
"""


def test_html_nested_blocks_store_each_sentence_once() -> None:
    doc = HtmlParser().parse(docs.make_html(NESTED_PAGE), filename="guide.html")
    assert_well_formed(doc)
    page = doc.pages[0].text
    for sentence in (
        "Book the room.", "Invite the team.", "pip install lantern", "Flights need approval.",
        "PTO", "Paid time off.", "Leave taken per year.", "Plans offered.", "No dental.",
    ):  # fmt: skip
        assert page.count(sentence) == 1, sentence
    assert texts(doc, "list") == [
        "- Book the room. Invite the team.\n- Install it: pip install lantern\n"
        "- Prices Basic $0\n- Travel\n  1. Flights need approval."
    ]
    assert texts(doc, "table") == ["Plan | Notes\nBasic | Free. No dental."]


def test_html_two_column_layout_keeps_its_headings() -> None:
    body = (
        "<table><tr><td><a href='/'>Home</a></td><td><h1>Expenses</h1>"
        "<p>Claim within 30 days.</p><h2>Travel</h2><p>Book through the portal.</p>"
        "</td></tr></table>"
    )
    doc = HtmlParser().parse(docs.make_html(body), filename="expenses.html")
    assert texts(doc, "heading") == ["Expenses", "Travel"]
    assert element_with(doc, "portal").section_path == ("Expenses", "Travel")
    assert doc.pages[0].text.count("Claim within 30 days.") == 1
