"""PDF parser on pypdfium2: one ``Page`` per PDF page, text kept verbatim.

pdfium gives the text layer line by line with each line's position and font
size; ``_pdf_tables`` (pdfplumber) finds ruled tables, ``_pdf_order`` puts
tables and columns in reading order, ``_pdf_hyphens`` mends words broken at a
line end, and ``_pdf_layout`` turns the lines into paragraphs, headings (PDF
outline bookmarks and larger fonts) and section paths.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import re
import threading

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingestion.detect import PDF_MIME
from ingestion.errors import EmptyDocument, EncryptedDocument, ParseError
from ingestion.parsers._blocks import DocumentBuilder, one_line
from ingestion.parsers._pdf_hyphens import HYPHEN_MARK, mend_hyphens
from ingestion.parsers._pdf_layout import (
    Bookmark,
    Line,
    SectionTracker,
    drop_running_lines,
    heading_levels,
    split_paragraphs,
)
from ingestion.parsers._pdf_order import place_tables, reading_order
from ingestion.parsers._pdf_tables import TableFinder, may_have_rules
from ingestion.parsers.base import ParsedDocument

logger = logging.getLogger(__name__)

#: Serialises every pdfium call in the process (see the pypdfium2 docs on threading).
PDFIUM_LOCK = threading.Lock()

_BREAK = r"(?:\r\n|\r(?!\n)|\n)"  # CRLF is one break, never CR + LF
_TOKENS = re.compile(rf"(?P<blank>{_BREAK}(?:[ \t]*{_BREAK})+)|(?P<line>[^\r\n]+)")
_METADATA_KEYS = ("Author", "Subject", "Keywords", "Creator", "Producer")
_SPACES = re.compile(r"\s+")
_GUTTER_EMS = 0.8  # a gap this many font sizes wide inside a line may be a column gutter


class PdfParser:
    """Parses PDFs with pypdfium2 (Apache-2.0/BSD; PyMuPDF is AGPL)."""

    mime_types: tuple[str, ...] = (PDF_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        # PDFium is not thread-safe, not even across documents: concurrent calls from
        # two ingestion workers corrupt the heap. Parsing is ~1 ms/page, so one at a time.
        # pdfplumber (tables) runs under the lock too: it is pure Python, so threads
        # would wait on the GIL anyway, and pages without ruling lines skip it.
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
        tables = TableFinder(data)
        try:
            return self._parse_open(pdf, filename, tables)
        except pdfium.PdfiumError as e:
            raise ParseError(f"{filename} is a damaged PDF file: {e}") from e
        finally:
            tables.close()
            pdf.close()

    def _parse_open(
        self, pdf: pdfium.PdfDocument, filename: str, tables: TableFinder
    ) -> ParsedDocument:
        page_count = len(pdf)
        if page_count == 0:
            raise EmptyDocument(f"{filename}: PDF has no pages")
        pages = [_page_lines(pdf, index, tables) for index in range(page_count)]
        pages = drop_running_lines(mend_hyphens(pages))
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


def _page_lines(pdf: pdfium.PdfDocument, index: int, tables: TableFinder) -> list[Line | None]:
    """The page's lines in reading order, each ruled table as one ``table`` line."""
    page = pdf.get_page(index)
    try:
        textpage = page.get_textpage()
        try:
            lines = _read_lines(textpage)
        finally:
            textpage.close()
        if any(lines) and may_have_rules(page):
            found = tables.find(index, page.get_width(), page.get_height())
            lines = place_tables(lines, found)
        return reading_order(lines)
    finally:
        page.close()


def _read_lines(textpage: pdfium.PdfTextPage) -> list[Line | None]:
    """Lines of the page; ``None`` marks a blank line. Geometry is read only when
    pdfium's text indices match its char indices (true for nearly all PDFs)."""
    raw = textpage.get_text_range()
    geometry = len(raw) == textpage.count_chars()
    lines: list[Line | None] = []
    for match in _TOKENS.finditer(raw):
        text = match.group("line")
        if text is not None:
            # pdfium marks a hyphen where it joined a word broken at a line end as
            # \x02 (or U+FFFE); _pdf_hyphens decides whether the hyphen stays.
            text = text.replace("\x02", HYPHEN_MARK)
        if text is None or not text.strip():
            lines.append(None)
            continue
        if not geometry:
            lines.append(Line(text.strip()))
            continue
        first = match.start() + len(text) - len(text.lstrip())
        lines.append(_geometry(textpage, text.strip(), first))
    return lines


def _geometry(textpage: pdfium.PdfTextPage, text: str, first: int) -> Line:
    """The line with its position, cut into pieces at gaps wide enough to be a gutter.

    pdfium's text rectangles (one per text object in the line) are cheap; only a line
    whose rectangles leave a wide gap is measured character by character."""
    x, y = ctypes.c_double(), ctypes.c_double()
    ok = pdfium_c.FPDFText_GetCharOrigin(textpage, first, ctypes.byref(x), ctypes.byref(y))
    size = float(pdfium_c.FPDFText_GetFontSize(textpage, first))
    baseline = y.value if ok else None
    boxes = [
        _rect(textpage, i) for i in range(pdfium_c.FPDFText_CountRects(textpage, first, len(text)))
    ]
    if not boxes:
        return Line(text, baseline, size)
    x0, x1 = min(b[0] for b in boxes), max(b[1] for b in boxes)
    wide = _GUTTER_EMS * max(size, 1.0)
    if all(b[0] - a[1] < wide for a, b in itertools.pairwise(boxes)):
        return Line(text, baseline, size, x0, x1)
    pieces: list[Line] = []
    start = 0  # of the current piece, in ``text``
    for space in _SPACES.finditer(text):
        before = _char_box(textpage, first + space.start() - 1)
        after = _char_box(textpage, first + space.end())
        if after[0] - before[1] >= wide:
            left = x0 if not pieces else _char_box(textpage, first + start)[0]
            pieces.append(
                _piece(textpage, text[start : space.start()], first + start, left, before[1])
            )
            start = space.end()
    if not pieces:
        return Line(text, baseline, size, x0, x1)
    left = _char_box(textpage, first + start)[0]
    pieces.append(_piece(textpage, text[start:], first + start, left, x1))
    return Line(text, baseline, size, x0, x1, tuple(pieces))


def _piece(textpage: pdfium.PdfTextPage, text: str, index: int, x0: float, x1: float) -> Line:
    x, y = ctypes.c_double(), ctypes.c_double()
    ok = pdfium_c.FPDFText_GetCharOrigin(textpage, index, ctypes.byref(x), ctypes.byref(y))
    size = float(pdfium_c.FPDFText_GetFontSize(textpage, index))
    return Line(text, y.value if ok else None, size, x0, x1)


def _rect(textpage: pdfium.PdfTextPage, index: int) -> tuple[float, float]:
    left, top, right, bottom = (ctypes.c_double() for _ in range(4))
    pdfium_c.FPDFText_GetRect(
        textpage,
        index,
        ctypes.byref(left),
        ctypes.byref(top),
        ctypes.byref(right),
        ctypes.byref(bottom),
    )
    return left.value, right.value


def _char_box(textpage: pdfium.PdfTextPage, index: int) -> tuple[float, float]:
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    pdfium_c.FPDFText_GetCharBox(
        textpage,
        index,
        ctypes.byref(left),
        ctypes.byref(right),
        ctypes.byref(bottom),
        ctypes.byref(top),
    )
    return left.value, right.value
