"""The parsers of issue 14 (spreadsheets, CSV, ODT/ODP, EPUB, RTF): what a user would
notice in the extracted text, sections and errors."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from ingestion.chunking import Chunker
from ingestion.detect import (
    CSV_MIME,
    EPUB_MIME,
    ODP_MIME,
    ODS_MIME,
    ODT_MIME,
    RTF_MIME,
    TSV_MIME,
    XLS_MIME,
    XLSX_MIME,
    detect_type,
)
from ingestion.errors import EmptyDocument, EncryptedDocument, FileTooLarge, ParseError
from ingestion.parsers._sheets import MAX_TABLE_ROWS
from ingestion.parsers.base import ParsedDocument
from ingestion.parsers.delimited import DelimitedParser
from ingestion.parsers.epub import EpubParser
from ingestion.parsers.opendocument import OpenDocumentParser
from ingestion.parsers.registry import default_registry
from ingestion.parsers.rtf import RtfParser
from ingestion.parsers.spreadsheet import SpreadsheetParser
from tests.fixtures import docs
from tests.fixtures.ole import make_ole
from tests.unit.test_parsers import assert_well_formed, texts

MB = 1024 * 1024

PLANS = [
    ["Plan", "Premium", None, "Leave", "Start"],
    ["Basic", "$0", None, 10, dt.date(2024, 3, 1)],
    [None, None, None, None, None],
    ["Premium", ("=B2*2", 20.5), None, 0.1 + 0.2, dt.datetime(2024, 3, 1, 14, 30)],
]


def parse(data: bytes, filename: str) -> ParsedDocument:
    """Detect and parse the way ingestion does."""
    return default_registry().get(detect_type(data, filename).mime).parse(data, filename=filename)


def section_of(doc: ParsedDocument, needle: str) -> tuple[str, ...]:
    return next(e.section_path for e in doc.elements if needle in doc.element_text(e))


# --- spreadsheets ---------------------------------------------------------------------


def test_xlsx_rows_carry_their_headers_and_the_sheet_is_a_section() -> None:
    data = docs.make_xlsx({"Plans": PLANS, "Notes": [["Ask HR"]]}, title="Benefits 2024")
    doc = parse(data, "benefits.xlsx")
    assert_well_formed(doc)
    assert (doc.mime, doc.title) == (XLSX_MIME, "Benefits 2024")
    assert not doc.paginated
    text = doc.pages[0].text
    # 10 not 10.0, an ISO date, 0.3 not 0.30000000000000004, the empty column and row skipped
    assert "Plan: Basic | Premium: $0 | Leave: 10 | Start: 2024-03-01" in text
    # a formula gives the value Excel saved; a time of day is kept
    assert "Plan: Premium | Premium: 20.5 | Leave: 0.3 | Start: 2024-03-01 14:30" in text
    assert texts(doc, "heading") == ["Plans", "Notes"]
    assert section_of(doc, "Plan: Basic") == ("Plans",)
    assert section_of(doc, "Ask HR") == ("Notes",)


def test_xlsx_named_bin_is_still_a_workbook() -> None:
    doc = parse(docs.make_xlsx({"Plans": PLANS}), "export.bin")
    assert "Plan: Basic | Premium: $0" in doc.pages[0].text


def test_long_sheet_is_cut_into_self_contained_tables() -> None:
    rows = [["Employee", "Office"]] + [[f"person {i}", f"room {i}"] for i in range(120)]
    doc = parse(docs.make_xlsx({"Staff": rows}), "staff.xlsx")
    tables = texts(doc, "table")
    assert len(tables) == 3
    for table in tables:
        lines = table.split("\n")
        assert len(lines) <= MAX_TABLE_ROWS
        assert all(
            line.startswith("Employee: person ") and "| Office: room " in line for line in lines
        )
    assert "Employee: person 119 | Office: room 119" in tables[-1]


def test_chunks_of_a_long_sheet_never_cut_a_row(embedder: Any) -> None:
    rows = [["Employee", "Office", "Phone"]] + [
        [f"person {i}", f"building {i % 7} room {i}", f"+1 555 {i:04d}"] for i in range(400)
    ]
    doc = parse(docs.make_xlsx({"Staff": rows}), "staff.xlsx")
    chunks = Chunker(embedder.tokenizer, max_tokens=64, overlap_tokens=16).chunk(doc)
    assert len(chunks) > 10
    for chunk in chunks:
        lines = [line for line in chunk.text.split("\n") if line and line != "Staff"]
        assert lines
        for line in lines:
            assert line.startswith("Employee: person ")
            assert "| Phone: +1 555 " in line


def test_sheet_without_a_header_row_names_columns_by_letter() -> None:
    # The numbers start in column C, as a user sees them in Excel.
    rows = [[None, None, 2023, 100, 5.5], [None, None, 2024, 120, 6]]
    doc = parse(docs.make_xlsx({"Sales": rows}), "sales.xlsx")
    assert "C: 2023 | D: 100 | E: 5.5\nC: 2024 | D: 120 | E: 6" in doc.pages[0].text


def test_a_title_above_the_table_is_text_not_the_header() -> None:
    rows = [["Benefits 2024"], ["Plan", "Premium"], ["Basic", "$0"]]
    doc = parse(docs.make_xlsx({"Plans": rows}), "plans.xlsx")
    assert texts(doc, "text") == ["Benefits 2024"]
    assert texts(doc, "table") == ["Plan: Basic | Premium: $0"]


def test_hidden_sheets_are_not_read() -> None:
    data = docs.make_xlsx({"Plans": PLANS, "Lookup": [["secret rate"]]}, hidden=["Lookup"])
    doc = parse(data, "plans.xlsx")
    assert "secret rate" not in doc.pages[0].text
    assert "Lookup" not in texts(doc, "heading")


def test_workbook_without_cell_text_is_empty() -> None:
    with pytest.raises(EmptyDocument, match=r"budget\.xlsx: the workbook's 2 sheets contain no"):
        parse(docs.make_xlsx({"One": [], "Two": [[None]]}), "budget.xlsx")


def test_workbook_with_text_only_in_hidden_sheets_says_so() -> None:
    data = docs.make_xlsx({"Front": [], "Data": [["x"]]}, hidden=["Data"])
    with pytest.raises(EmptyDocument, match=r"1 hidden sheet is not read"):
        parse(data, "budget.xlsx")


def test_corrupt_workbook() -> None:
    data = docs.make_xlsx({"Plans": PLANS})
    with pytest.raises(ParseError, match=r"budget\.xlsx is not a valid spreadsheet file"):
        parse(data[: len(data) // 2], "budget.xlsx")


def test_workbook_zip_of_garbage_is_a_parse_error() -> None:
    data = docs.corrupt_pptx()  # a zip whose parts are not XML
    with pytest.raises(ParseError, match=r"budget\.xlsx is not a valid Excel workbook"):
        SpreadsheetParser().parse(data, filename="budget.xlsx")


def test_password_protected_workbook_is_encrypted() -> None:
    # Excel encrypts a protected .xlsx into an OLE2 file with EncryptionInfo and
    # EncryptedPackage streams. Detection refuses it; the parser does too, should one
    # reach it under the legacy Excel type the OLE2 branch routes to it.
    ole2 = make_ole({"EncryptionInfo": bytes(700), "EncryptedPackage": bytes(700)})
    with pytest.raises(EncryptedDocument, match="password-protected"):
        parse(ole2, "salaries.xlsx")
    parser = SpreadsheetParser()
    assert XLS_MIME in parser.mime_types
    with pytest.raises(EncryptedDocument, match=r"salaries\.xlsx is an encrypted.*remove the"):
        parser.parse(ole2, filename="salaries.xlsx")


def test_legacy_workbooks_that_are_garbage() -> None:
    # OLE2 files with a Workbook stream are routed here as .xls.
    with pytest.raises(EmptyDocument, match=r"old\.xls: the workbook has no worksheets"):
        parse(make_ole({"Workbook": bytes(700)}), "old.xls")
    with pytest.raises(ParseError, match=r"old\.xls is not a valid Excel 97-2003 workbook"):
        SpreadsheetParser().parse(docs.ole2_doc(), filename="old.xls")


def test_workbook_zip_bomb_is_refused() -> None:
    parser = SpreadsheetParser(max_uncompressed=1 * MB)
    with pytest.raises(FileTooLarge, match="zip bomb"):
        parser.parse(docs.zip_bomb_docx(uncompressed_mb=2), filename="bomb.xlsx")


def test_sheet_stretched_by_a_stray_cell_is_refused_before_calamine_reads_it() -> None:
    # calamine would allocate a dense 1,000,001 x 2,001 grid (64 GB) and abort the worker.
    data = docs.make_xlsx({"S": [["a"]], "Far": [["b"]]}, far_cell=("Far", 1_000_000, 2000))
    with pytest.raises(FileTooLarge, match=r"sparse\.xlsx: a sheet spans 1,000,001 rows by 2,001"):
        parse(data, "sparse.xlsx")


def test_far_row_of_cells_without_references_is_refused() -> None:
    # Cells may omit r="B7": they take the next column of their row, here row 1,000,000.
    far_row = b'<row r="1000000">' + b'<c t="inlineStr"><is><t>x</t></is></c>' * 20 + b"</row>"
    data = _patch_zip(
        docs.make_xlsx({"S": [["a", "b"]]}),
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"</sheetData>", far_row + b"</sheetData>"),
    )
    with pytest.raises(FileTooLarge, match=r"a sheet spans 1,000,000 rows by 22 columns"):
        parse(data, "far.xlsx")


def test_xlsb_whose_dimension_spans_past_the_limit_is_refused() -> None:
    # BrtBeginSheet, then BrtWsDim (type 148, 16 bytes): rows 0..999,999, columns 0..99.
    dimension = b"\x81\x01\x00" + b"\x94\x01\x10" + struct.pack("<4I", 0, 999_999, 0, 99)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.bin", b"\x83\x01\x00")
        archive.writestr("xl/worksheets/sheet1.bin", dimension)
    with pytest.raises(FileTooLarge, match=r"big\.xlsb: a sheet spans 1,000,000 rows by 100"):
        parse(out.getvalue(), "big.xlsb")


def _patch_zip(data: bytes, member: str, change: Callable[[bytes], bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            content = source.read(info)
            archive.writestr(info, change(content) if info.filename == member else content)
    return out.getvalue()


def test_ods_cell_repeated_ten_million_times_is_refused() -> None:
    # LibreOffice repeats empty rows to the end of the sheet: those are fine...
    tail = (
        '<table:table-row table:number-rows-repeated="1048570">'
        '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
    )
    plain = '<table:table-row><table:table-cell office:value-type="string"><text:p>Plan'
    plain += "</text:p></table:table-cell></table:table-row>"
    fine = docs.odf_zip(
        "spreadsheet", f'<table:table table:name="S">{plain}{plain}{tail}</table:table>'
    )
    assert "Plan" in parse(fine, "fine.ods").pages[0].text
    # ...but one value repeated over 10,000 rows by 1,000 columns is a 1 KB bomb.
    bomb = (
        '<table:table table:name="S"><table:table-row table:number-rows-repeated="10000">'
        '<table:table-cell office:value-type="float" office:value="7" '
        'table:number-columns-repeated="1000"><text:p>7</text:p></table:table-cell>'
        "</table:table-row></table:table>"
    )
    with pytest.raises(FileTooLarge, match=r"bomb\.ods: a sheet spans 10,000 rows by 1,000"):
        parse(docs.odf_zip("spreadsheet", bomb), "bomb.ods")


def test_ods_rows_and_dates() -> None:
    rows = [["Plan", "Premium", "Start"], ["Basic", 10, dt.date(2024, 3, 1)]]
    doc = parse(docs.make_ods({"Plans": rows}), "plans.ods")
    assert doc.mime == ODS_MIME
    assert "Plan: Basic | Premium: 10 | Start: 2024-03-01" in doc.pages[0].text
    assert section_of(doc, "Plan: Basic") == ("Plans",)


def test_encrypted_ods() -> None:
    data = docs.odf_zip("spreadsheet", "<table:table/>", encrypted=True)
    with pytest.raises(EncryptedDocument, match="password-protected OpenDocument spreadsheet"):
        parse(data, "plans.ods")


# --- CSV / TSV ------------------------------------------------------------------------


def test_csv_rows_carry_their_headers() -> None:
    data = b'Plan,Premium,Note\nBasic,$0,"dental, vision"\n,,\nGold,$5,\n'
    doc = parse(data, "plans.csv")
    assert_well_formed(doc)
    assert doc.mime == CSV_MIME
    assert doc.pages[0].text == (
        "Plan: Basic | Premium: $0 | Note: dental, vision\nPlan: Gold | Premium: $5"
    )


def test_csv_delimiter_is_sniffed_and_legacy_encodings_decoded() -> None:
    data = "Nom;Congé;Ville\nAnne;25 jours;Orléans\nBob;20 jours;Nîmes\n".encode("cp1252")
    doc = parse(data, "conges.csv")
    assert "Nom: Anne | Congé: 25 jours | Ville: Orléans" in doc.pages[0].text


def test_tsv() -> None:
    doc = parse(b"Plan\tPremium\nBasic\t$0\n", "plans.tsv")
    assert doc.mime == TSV_MIME
    assert doc.pages[0].text == "Plan: Basic | Premium: $0"


def test_csv_with_a_giant_cell_says_so() -> None:
    data = b'a,b\n1,"' + b"x" * 200_000 + b'"\n'
    with pytest.raises(ParseError, match=r"big\.csv: a cell is longer than 131,072 characters"):
        DelimitedParser().parse(data, filename="big.csv")


def test_csv_without_cells_is_empty() -> None:
    with pytest.raises(EmptyDocument, match=r"blank\.csv: the table has no cell text"):
        DelimitedParser().parse(b",,\n , ,\n", filename="blank.csv")


# --- ODT / ODP ------------------------------------------------------------------------


def test_odt_headings_lists_and_tables() -> None:
    data = docs.make_odt(
        [
            ("h1", "Benefits"),
            "Everyone is covered.",
            ("h2", "Leave"),
            ("ul", ["Vacation", ["Carry-over", "Payout"], "Sick leave"]),
            ("ol", ["Ask", "Wait"]),
            ("table", [["Plan", "Premium"], ["Basic", "$0"]]),
            ("h1", "Travel"),
            "Book early.",
        ],
        title="Handbook",
    )
    doc = parse(data, "handbook.odt")
    assert_well_formed(doc)
    assert (doc.mime, doc.title, doc.paginated) == (ODT_MIME, "Handbook", False)
    assert texts(doc, "list") == [
        "- Vacation\n  - Carry-over\n  - Payout\n- Sick leave",
        "1. Ask\n2. Wait",
    ]
    assert texts(doc, "table") == ["Plan | Premium\nBasic | $0"]
    assert section_of(doc, "Carry-over") == ("Benefits", "Leave")
    assert section_of(doc, "Book early") == ("Travel",)


def test_odt_numbered_headings_inside_a_list_are_still_headings() -> None:
    numbered = (
        '<text:list><text:list-item><text:h text:outline-level="1">Benefits</text:h>'
        '<text:list><text:list-item><text:h text:outline-level="2">Leave</text:h>'
        "</text:list-item></text:list></text:list-item></text:list>"
    )
    doc = parse(docs.make_odt([("xml", numbered), "Twenty days."]), "memo.odt")
    assert texts(doc, "heading") == ["Benefits", "Leave"]
    assert section_of(doc, "Twenty days") == ("Benefits", "Leave")


def test_odt_spaces_tabs_and_line_breaks_keep_words_apart() -> None:
    paragraph = (
        '<text:p>one<text:s/>two<text:s text:c="3"/>three<text:tab/>four<text:line-break/>'
        '<text:span>five</text:span> <text:a xlink:href="x">six</text:a>'
        "<text:note><text:note-body><text:p>a footnote</text:p></text:note-body></text:note>"
        "</text:p>"
    ).replace("xlink:href", "text:href")
    doc = parse(docs.make_odt([("xml", paragraph)]), "memo.odt")
    assert doc.pages[0].text == "one two   three\tfour\nfive six"


def test_odt_table_of_contents_is_skipped() -> None:
    toc = (
        "<text:table-of-content><text:index-body><text:p>Benefits 1</text:p>"
        "</text:index-body></text:table-of-content>"
    )
    doc = parse(docs.make_odt([("xml", toc), ("h1", "Benefits"), "Body."]), "memo.odt")
    assert doc.pages[0].text == "Benefits\n\nBody."


def test_encrypted_odt() -> None:
    data = docs.odf_zip("text", "<text:p>secret</text:p>", encrypted=True)
    with pytest.raises(EncryptedDocument, match=r"memo\.odt is password-protected"):
        parse(data, "memo.odt")


def test_odt_without_text_and_without_content() -> None:
    with pytest.raises(EmptyDocument, match=r"memo\.odt: the document contains no text"):
        parse(docs.make_odt([("xml", "<text:p> </text:p>")]), "memo.odt")
    broken = docs.odf_zip("text", "<text:p>x</text:p>")
    broken = broken.replace(b"content.xml", b"content.xmX")
    with pytest.raises(ParseError, match=r"memo\.odt is not a valid OpenDocument file"):
        OpenDocumentParser().parse(broken, filename="memo.odt")


def test_odt_zip_bomb_is_refused() -> None:
    parser = OpenDocumentParser(max_uncompressed=1 * MB)
    with pytest.raises(FileTooLarge, match="zip bomb"):
        parser.parse(docs.zip_bomb_docx(uncompressed_mb=2), filename="bomb.odt")


def test_odp_one_page_per_slide_with_titles_and_notes() -> None:
    data = docs.make_odp(
        [
            {"title": "Q3 results", "bullets": ["Revenue up", ["in Europe"]], "notes": "Thank"},
            {"title": "Plans", "table": [["Plan", "Premium"], ["Basic", "$0"]], "footer": "ACME"},
        ]
    )
    doc = parse(data, "deck.odp")
    assert_well_formed(doc)
    assert (doc.mime, doc.paginated, len(doc.pages)) == (ODP_MIME, True, 2)
    assert doc.pages[0].text == "Q3 results\n\n- Revenue up\n  - in Europe\n\nNotes: Thank"
    assert doc.pages[1].text == "Plans\n\nPlan | Premium\nBasic | $0"  # no footer
    assert section_of(doc, "Basic") == ("Plans",)


def test_odp_frames_are_read_top_to_bottom() -> None:
    data = docs.make_odp([{"bullets": ["Second"], "text": "First", "text_on_top": True}])
    assert parse(data, "deck.odp").pages[0].text == "First\n\n- Second"


# --- EPUB -----------------------------------------------------------------------------


def test_epub_chapters_in_spine_order_with_their_headings_as_sections() -> None:
    data = docs.make_epub(
        [
            "<section><header><h1>Chapter 1</h1></header><p>It begins.</p></section>",
            "<h1>Chapter 2</h1><h2>The storm</h2><p>Rain.</p><ul><li>wind</li></ul>",
            "<h1>Chapter 3</h1><p>It ends.</p><script>var x = 1;</script>",
        ],
        title="The Novel",
    )
    doc = parse(data, "novel.epub")
    assert_well_formed(doc)
    assert (doc.mime, doc.title, doc.paginated) == (EPUB_MIME, "The Novel", False)
    assert texts(doc, "heading") == ["Chapter 1", "Chapter 2", "The storm", "Chapter 3"]
    assert section_of(doc, "It begins") == ("Chapter 1",)
    assert section_of(doc, "wind") == ("Chapter 2", "The storm")
    assert section_of(doc, "It ends") == ("Chapter 3",)
    assert "var x" not in doc.pages[0].text
    assert "color: red" not in doc.pages[0].text


def test_drm_epub_is_encrypted_but_font_obfuscation_is_not() -> None:
    with pytest.raises(EncryptedDocument, match=r"book\.epub is DRM-protected \(2 of its 2"):
        parse(docs.make_epub(["<p>a</p>", "<p>b</p>"], drm=True), "book.epub")
    doc = parse(docs.make_epub(["<p>Readable.</p>"], obfuscated_font=True), "book.epub")
    assert doc.pages[0].text == "Readable."


def test_epub_chapter_without_headings_is_not_filed_under_the_previous_one() -> None:
    data = docs.make_epub(["<h1>Chapter 1</h1><p>One.</p>", "<p>Untitled interlude.</p>"])
    assert section_of(parse(data, "book.epub"), "Untitled interlude") == ()


def test_epub_without_text_or_without_a_package() -> None:
    with pytest.raises(EmptyDocument, match=r"book\.epub: the book's 1 chapters contain no text"):
        parse(docs.make_epub(["<img src='cover.jpg'/>"]), "book.epub")
    broken = docs.make_epub(["<p>a</p>"]).replace(
        b"META-INF/container.xml", b"META-INF/containeX.xml"
    )
    with pytest.raises(ParseError, match=r"book\.epub is not a valid EPUB file: .*container\.xml"):
        EpubParser().parse(broken, filename="book.epub")


def test_epub_zip_bomb_is_refused() -> None:
    with pytest.raises(FileTooLarge, match="zip bomb"):
        EpubParser(max_uncompressed=1 * MB).parse(docs.zip_bomb_docx(2), filename="bomb.epub")


# --- RTF ------------------------------------------------------------------------------


def test_rtf_code_page_unicode_escapes_and_paragraphs() -> None:
    rtf = (
        rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times New Roman;}}"
        rb"{\info{\title Caf\'e9 menu}}"
        rb"\f0\fs24 Le caf\'e9 est ouvert.\par\par "
        b"\n"
        rb"Line one\line line two.\par "
        rb"Chinese: \u20013?\u25991? ok.\par}"
    )
    doc = parse(rtf, "menu.rtf")
    assert_well_formed(doc)
    assert (doc.mime, doc.title) == (RTF_MIME, "Café menu")
    assert texts(doc) == ["Le café est ouvert.", "Line one\nline two.", "Chinese: 中文 ok."]


def test_rtf_cyrillic_code_page() -> None:
    rtf = (
        rb"{\rtf1\ansi\ansicpg1251{\fonttbl{\f0 Arial;}}"
        rb"\f0 \'cf\'f0\'e8\'e2\'e5\'f2, \'ec\'e8\'f0!\par}"
    )
    assert RtfParser().parse(rtf, filename="hi.rtf").pages[0].text == "Привет, мир!"


def test_rtf_pictures_are_skipped() -> None:
    picture = "\r\n".join(["89504e470d0a1a0a" * 16] * 40).encode()  # 5 KB of PNG hex
    rtf = rb"{\rtf1\ansi Before.\par {\pict\pngblip " + picture + rb"}\par After.\par}"
    assert RtfParser().parse(rtf, filename="pic.rtf").pages[0].text == "Before.\n\nAfter."


def test_rtf_without_text_is_empty() -> None:
    with pytest.raises(EmptyDocument, match=r"pic\.rtf: the RTF document contains no text"):
        parse(rb"{\rtf1\ansi{\fonttbl{\f0 Arial;}}{\pict\pngblip 89504e47}\par}", "pic.rtf")


def test_default_registry_reads_every_new_format() -> None:
    registry = default_registry()
    for mime in (XLSX_MIME, XLS_MIME, ODS_MIME, CSV_MIME, TSV_MIME, ODT_MIME, ODP_MIME):
        assert mime in registry
    assert EPUB_MIME in registry
    assert RTF_MIME in registry


# --- through the pipeline -------------------------------------------------------------


def test_new_formats_ingest_and_are_found(container: Any) -> None:
    from app.db.models import DocumentStatus
    from tests.unit.ingest_helpers import doc, ingest

    staff = [["Employee", "Office", "Desk phone"]] + [
        [f"person {i}", f"building {i % 5}", f"+1 555 {i:04d}"] for i in range(300)
    ]
    staff[124][1] = "the glasshouse annex"  # row 124: person 123
    files = {
        "staff.xlsx": docs.make_xlsx({"Directory": staff}),
        "plans.csv": b"Plan,Dental cover\nBasic,none\nGold,orthodontics included\n",
        "memo.odt": docs.make_odt([("h1", "Parking"), "Visitors park in bay C by the silo."]),
        "deck.odp": docs.make_odp([{"title": "Kickoff", "bullets": ["The offsite is in Porto"]}]),
        "novel.epub": docs.make_epub(["<h1>Storm</h1><p>The lighthouse keeper rang the bell.</p>"]),
        "menu.rtf": rb"{\rtf1\ansi The canteen serves cr\'e8me br\'fbl\'e9e on Fridays.\par}",
    }
    results = ingest(container, files)
    for name, result in results.items():
        d = doc(container, result.document_id)
        assert d.status == DocumentStatus.READY, (name, d.error)
    expectations = {
        "Who works in the glasshouse annex?": (
            "staff.xlsx",
            "Employee: person 123 | Office: the glasshouse annex | Desk phone: +1 555 0123",
        ),
        "Which plan includes orthodontics?": ("plans.csv", "Plan: Gold | Dental cover"),
        "where do visitors park": ("memo.odt", "bay C"),
        "Where is the offsite?": ("deck.odp", "Porto"),
        "Who rang the bell?": ("novel.epub", "lighthouse keeper"),
        "What does the canteen serve on Fridays?": ("menu.rtf", "crème brûlée"),
    }
    for query, (name, snippet) in expectations.items():
        hits = container.search.search(query, k=3)
        assert any(h.document_name == name and snippet in h.text for h in hits), (query, hits)
    [slide] = [h for h in container.search.search("Where is the offsite?", k=3) if h.page]
    assert (slide.document_name, slide.page) == ("deck.odp", 1)
