"""DOCX and HTML fidelity: text that Word or a browser shows is indexed once, no
more, no less (merged and nested tables, text boxes, headers and footers, table
layouts, nested lists, undeclared legacy encodings)."""

from __future__ import annotations

import io

import pytest

from ingestion.errors import EmptyDocument
from ingestion.parsers.base import ParsedDocument
from ingestion.parsers.docx import DocxParser
from tests.fixtures import docs
from tests.unit.test_parsers import assert_well_formed, texts

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
