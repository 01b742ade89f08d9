"""Format detection: content decides, the file name only breaks ties."""

from __future__ import annotations

import io
import zipfile

import pytest

from ingestion.detect import (
    CSV_MIME,
    DOCX_MIME,
    EPUB_MIME,
    HTML_MIME,
    MARKDOWN_MIME,
    ODP_MIME,
    ODS_MIME,
    ODT_MIME,
    PDF_MIME,
    PPTX_MIME,
    RTF_MIME,
    TEXT_MIME,
    TSV_MIME,
    XLSB_MIME,
    XLSM_MIME,
    XLSX_MIME,
    DetectedType,
    detect_type,
)
from ingestion.errors import EmptyDocument, ParseError, UnsupportedFormat
from tests.fixtures import docs


def _zip(names: list[str], *, mimetype: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        if mimetype is not None:
            archive.writestr("mimetype", mimetype)
        for name in names:
            archive.writestr(name, "<x/>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (docs.make_pdf(["Hello"]), "report.pdf", DetectedType(PDF_MIME, ".pdf")),
        (docs.make_docx(["Hello"]), "memo.docx", DetectedType(DOCX_MIME, ".docx")),
        (docs.make_pptx([{"title": "Hi"}]), "deck.pptx", DetectedType(PPTX_MIME, ".pptx")),
        (docs.make_html("<p>Hi</p>"), "page.html", DetectedType(HTML_MIME, ".html")),
        (b"# Title\n\nBody", "notes.md", DetectedType(MARKDOWN_MIME, ".md")),
        (b"# Title\n\nBody", "notes.markdown", DetectedType(MARKDOWN_MIME, ".md")),
        (b"Just some words.\n", "readme.txt", DetectedType(TEXT_MIME, ".txt")),
        (b"Just some words.\n", "README", DetectedType(TEXT_MIME, ".txt")),
        (docs.make_xlsx({"S": [["a"]]}), "budget.xlsx", DetectedType(XLSX_MIME, ".xlsx")),
        (docs.make_ods({"S": [["a"]]}), "budget.ods", DetectedType(ODS_MIME, ".ods")),
        (docs.make_odt(["Hi"]), "memo.odt", DetectedType(ODT_MIME, ".odt")),
        (docs.make_odp([{"title": "Hi"}]), "deck.odp", DetectedType(ODP_MIME, ".odp")),
        (docs.make_epub(["<p>Hi</p>"]), "book.epub", DetectedType(EPUB_MIME, ".epub")),
        (b"{\\rtf1\\ansi Hello\\par}", "letter.rtf", DetectedType(RTF_MIME, ".rtf")),
        (b"a,b\n1,2\n", "data.csv", DetectedType(CSV_MIME, ".csv")),
        (b"a\tb\n1\t2\n", "data.tsv", DetectedType(TSV_MIME, ".tsv")),
    ],
)
def test_detects_supported_formats(data: bytes, filename: str, expected: DetectedType) -> None:
    assert detect_type(data, filename) == expected


def test_content_wins_over_a_misleading_extension() -> None:
    assert detect_type(docs.make_pdf(["Hello"]), "contract.docx").mime == PDF_MIME
    assert detect_type(docs.make_docx(["Hello"]), "memo.pdf").mime == DOCX_MIME
    assert detect_type(docs.make_html("<p>Hi</p>"), "page.md").mime == HTML_MIME


def test_html_by_extension_needs_tags() -> None:
    assert detect_type(b"<p>Fragment without doctype</p>", "frag.htm").mime == HTML_MIME
    assert detect_type(b"no markup here at all", "frag.htm").mime == TEXT_MIME


def test_html_doctype_after_bom_and_whitespace() -> None:
    data = b"\xef\xbb\xbf\n  <!DOCTYPE html><html><body>x</body></html>"
    assert detect_type(data, "download").mime == HTML_MIME


def test_utf16_text_is_text_despite_nul_bytes() -> None:
    data = "Plain text in UTF-16, 中文".encode("utf-16")
    assert detect_type(data, "notes.txt").mime == TEXT_MIME


def test_empty_file() -> None:
    with pytest.raises(EmptyDocument, match="file is empty"):
        detect_type(b"", "empty.pdf")


def test_legacy_ole2_is_refused_with_advice() -> None:
    with pytest.raises(UnsupportedFormat, match=r"legacy .*OLE2.*save as \.docx/\.pptx"):
        detect_type(docs.ole2_doc(), "old.doc")


def test_formats_are_known_by_their_content_whatever_their_name() -> None:
    assert detect_type(docs.make_xlsx({"S": [["a"]]}), "export.bin").mime == XLSX_MIME
    assert detect_type(docs.make_ods({"S": [["a"]]}), "export.zip").mime == ODS_MIME
    assert detect_type(docs.make_odt(["Hi"]), "memo.docx").mime == ODT_MIME
    assert detect_type(docs.make_epub(["<p>Hi</p>"]), "book.zip").mime == EPUB_MIME
    assert detect_type(b"{\\rtf1\\ansi Hello\\par}", "letter.txt").mime == RTF_MIME


def test_macro_and_binary_workbooks() -> None:
    macro = _zip(["[Content_Types].xml", "xl/workbook.xml"])
    assert detect_type(macro, "model.xlsm").mime == XLSM_MIME
    assert detect_type(_zip(["[Content_Types].xml", "xl/workbook.bin"]), "big.xlsb").mime == (
        XLSB_MIME
    )


def test_csv_needs_its_extension_and_text_content() -> None:
    assert detect_type(b"a,b\n1,2\n", "data.txt").mime == TEXT_MIME
    with pytest.raises(UnsupportedFormat, match=r"\.csv extension does not match"):
        detect_type(docs.binary_named_md(), "data.csv")


def test_other_opendocument_kinds_are_refused_by_name() -> None:
    drawing = _zip(["content.xml"], mimetype="application/vnd.oasis.opendocument.graphics")
    with pytest.raises(UnsupportedFormat, match=r"OpenDocument graphics file.*\.odt, \.odp"):
        detect_type(drawing, "sketch.odg")


def test_damaged_workbook_goes_to_the_spreadsheet_parser() -> None:
    data = docs.make_xlsx({"S": [["a"]]})
    assert detect_type(data[: len(data) // 2], "budget.xlsx").mime == XLSX_MIME


def test_plain_zip_is_refused() -> None:
    with pytest.raises(UnsupportedFormat, match="zip archive"):
        detect_type(_zip(["a.txt", "b.txt"]), "bundle.zip")


def test_damaged_docx_goes_to_the_docx_parser() -> None:
    assert detect_type(docs.corrupt_docx(), "memo.docx").mime == DOCX_MIME


def test_damaged_zip_without_a_known_extension() -> None:
    with pytest.raises(ParseError, match="damaged"):
        detect_type(docs.corrupt_docx(), "archive.bin")


def test_binary_named_md_is_refused() -> None:
    with pytest.raises(UnsupportedFormat) as err:
        detect_type(docs.binary_named_md(), "notes.md")
    assert str(err.value) == (
        "notes.md looks like binary data, not text (its .md extension does not match its content)"
    )


def test_known_binary_is_named() -> None:
    mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64)
    with pytest.raises(UnsupportedFormat, match=r"notes\.md looks like an MP3 audio file"):
        detect_type(mp3, "notes.md")


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("TIFF", "image/tiff"),
     ("BMP", "image/bmp"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)  # fmt: skip
def test_images_are_detected_by_content_for_ocr(fmt: str, mime: str) -> None:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, format=fmt)
    assert detect_type(out.getvalue(), "scan.md").mime == mime


def test_text_starting_with_bm_is_not_a_bitmap() -> None:
    assert detect_type(b"BM stands for base model.\n", "notes.txt").mime == TEXT_MIME


def test_text_that_starts_like_a_magic_number_is_still_text() -> None:
    assert detect_type(b"MZ stands for Mark Zbikowski.\n", "trivia.txt").mime == TEXT_MIME


def test_undecodable_text_is_left_to_the_parser() -> None:
    # No control characters, so detection says text; TextParser reports the encoding.
    assert detect_type(docs.undecodable_text(), "legacy.txt").mime == TEXT_MIME


def test_text_mentioning_the_pdf_header_is_not_a_pdf() -> None:
    data = b"# PDF notes\n\nEvery PDF starts with %PDF-1.7 on its first line.\n"
    assert detect_type(data, "notes.md").mime == MARKDOWN_MIME


def test_pdf_header_after_binary_junk() -> None:
    data = b"\x00\x01\x02junk" + docs.make_pdf(["Hello"])
    assert detect_type(data, "mac.pdf").mime == PDF_MIME
