"""PDF parser on pypdfium2: one ``Page`` per PDF page, text kept verbatim.

pdfium gives the text layer line by line with each line's position and font
size; ``_pdf_layout`` turns that into paragraphs, headings (PDF outline
bookmarks and larger fonts) and section paths.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingestion.detect import PDF_MIME
from ingestion.errors import EmptyDocument, EncryptedDocument, ParseError
from ingestion.parsers._blocks import DocumentBuilder, one_line
from ingestion.parsers._pdf_layout import (
    Bookmark,
    Line,
    SectionTracker,
    drop_running_lines,
    heading_levels,
    split_paragraphs,
)
from ingestion.parsers.base import ParsedDocument

logger = logging.getLogger(__name__)

#: Serialises every pdfium call in the process (see the pypdfium2 docs on threading).
PDFIUM_LOCK = threading.Lock()

_BREAK = r"(?:\r\n|\r(?!\n)|\n)"  # CRLF is one break, never CR + LF
_TOKENS = re.compile(rf"(?P<blank>{_BREAK}(?:[ \t]*{_BREAK})+)|(?P<line>[^\r\n]+)")
_METADATA_KEYS = ("Author", "Subject", "Keywords", "Creator", "Producer")


class PdfParser:
    """Parses PDFs with pypdfium2 (Apache-2.0/BSD; PyMuPDF is AGPL)."""

    mime_types: tuple[str, ...] = (PDF_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        # PDFium is not thread-safe, not even across documents: concurrent calls from
        # two ingestion workers corrupt the heap. Parsing is ~1 ms/page, so one at a time.
        with PDFIUM_LOCK:
            return self._parse(data, filename)

    def _parse(self, data: bytes, filename: str) -> ParsedDocument:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as e:
            password = getattr(e, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD
            if password or "password" in str(e).lower():
                raise EncryptedDocument(
                    "PDF is password-protected; remove the password and upload again"
                ) from e
            raise ParseError(f"{filename} is not a valid PDF file: {e}") from e
        try:
            return self._parse_open(pdf, filename)
        except pdfium.PdfiumError as e:
            raise ParseError(f"{filename} is a damaged PDF file: {e}") from e
        finally:
            pdf.close()

    def _parse_open(self, pdf: pdfium.PdfDocument, filename: str) -> ParsedDocument:
        page_count = len(pdf)
        if page_count == 0:
            raise EmptyDocument(f"{filename}: PDF has no pages")
        pages = drop_running_lines([_page_lines(pdf, index) for index in range(page_count)])
        tracker = SectionTracker(_outline(pdf), heading_levels(pages))
        builder = DocumentBuilder()
        for index, lines in enumerate(pages):
            if index:
                builder.next_page()
            tracker.add_page(builder, index, split_paragraphs(lines))
        if not builder.has_text:
            count = f"{page_count} page{'s' if page_count != 1 else ''}"
            raise EmptyDocument(
                f"PDF has {count} but no extractable text — it is probably scanned; "
                "OCR is not enabled"
            )
        meta = pdf.get_metadata_dict(skip_empty=True)
        metadata = {key.lower(): str(meta[key]) for key in _METADATA_KEYS if meta.get(key)}
        logger.debug("parsed PDF with %d pages", page_count)
        return builder.build(
            mime=PDF_MIME, paginated=True, title=meta.get("Title") or None, metadata=metadata
        )


def _outline(pdf: pdfium.PdfDocument) -> list[Bookmark]:
    """Bookmarks in outline order with their heading trails; damaged outlines are ignored."""
    found: list[Bookmark] = []
    stack: list[str] = []
    try:
        for bookmark in pdf.get_toc():
            title = one_line(bookmark.get_title())
            del stack[bookmark.level :]
            stack.append(title)
            dest = bookmark.get_dest()
            page = dest.get_index() if dest is not None else None
            if title and page is not None:
                found.append(Bookmark(page, title, tuple(t for t in stack if t)))
    except pdfium.PdfiumError:
        logger.info("ignoring an unreadable PDF outline")
    return found


def _page_lines(pdf: pdfium.PdfDocument, index: int) -> list[Line | None]:
    page = pdf.get_page(index)
    try:
        textpage = page.get_textpage()
        try:
            return _read_lines(textpage)
        finally:
            textpage.close()
    finally:
        page.close()


def _read_lines(textpage: pdfium.PdfTextPage) -> list[Line | None]:
    """Lines of the page; ``None`` marks a blank line. Geometry is read only when
    pdfium's text indices match its char indices (true for nearly all PDFs)."""
    raw = textpage.get_text_range()
    geometry = len(raw) == textpage.count_chars()
    x, y = ctypes.c_double(), ctypes.c_double()
    lines: list[Line | None] = []
    for match in _TOKENS.finditer(raw):
        text = match.group("line")
        if text is not None:
            # pdfium marks a hyphen it split a word at as \x02 (or U+FFFE): keep the hyphen.
            text = text.replace("\x02", "-").replace("\ufffe", "-")
        if text is None or not text.strip():
            lines.append(None)
            continue
        if not geometry:
            lines.append(Line(text.strip()))
            continue
        first = match.start() + len(text) - len(text.lstrip())
        ok = pdfium_c.FPDFText_GetCharOrigin(textpage, first, ctypes.byref(x), ctypes.byref(y))
        size = float(pdfium_c.FPDFText_GetFontSize(textpage, first))
        lines.append(Line(text.strip(), y.value if ok else None, size))
    return lines
