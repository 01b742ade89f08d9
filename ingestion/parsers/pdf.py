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
from ingestion.ocr import OFF_HINT, Ocr, render_scale
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
_GUTTER_EMS = 0.8  # a gap this many font sizes wide inside a line may be a column gutter
#: A page with fewer characters of text than this and an image is read by OCR: a scan
#: often carries a page number or a scanner's stamp as its only text.
OCR_MAX_CHARS = 20
#: Resolution pages are rendered at for OCR (capped by ``ocr.MAX_SIDE_PX``).
OCR_DPI = 200


class PdfParser:
    """Parses PDFs with pypdfium2 (Apache-2.0/BSD; PyMuPDF is AGPL).

    A page without a text layer (a scan: an image and fewer than ``OCR_MAX_CHARS``
    characters of text) is rendered and read by ``ocr``, page by page, so a mixed PDF
    keeps its text pages as they are. ``ocr=None``: such pages stay empty, and a PDF
    with no text at all fails with ``off_reason``."""

    mime_types: tuple[str, ...] = (PDF_MIME,)

    def __init__(
        self, *, ocr: Ocr | None = None, ocr_dpi: int = OCR_DPI, off_reason: str = OFF_HINT
    ) -> None:
        self.ocr = ocr
        self.ocr_dpi = ocr_dpi
        self.off_reason = off_reason

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        # PDFium is not thread-safe, not even across documents: concurrent calls from
        # two ingestion workers corrupt the heap. Every call holds PDFIUM_LOCK (text is
        # ~1 ms/page); OCR, ~1 s/page, runs outside it. pdfplumber (tables) runs under
        # the lock too: it is pure Python, so threads would wait on the GIL anyway, and
        # pages without ruling lines skip it.
        with PDFIUM_LOCK:
            pdf = _open(data, filename)
        tables = TableFinder(data)
        try:
            return self._parse_open(pdf, filename, tables)
        except pdfium.PdfiumError as e:
            raise ParseError(f"{filename} is a damaged PDF file: {e}") from e
        finally:
            with PDFIUM_LOCK:
                tables.close()
                pdf.close()

    def _parse_open(
        self, pdf: pdfium.PdfDocument, filename: str, tables: TableFinder
    ) -> ParsedDocument:
        with PDFIUM_LOCK:
            page_count = len(pdf)
            if page_count == 0:
                raise EmptyDocument(f"{filename}: PDF has no pages")
            raw = [_page_lines(pdf, index, tables) for index in range(page_count)]
            scans = [i for i, lines in enumerate(raw) if _is_scan(pdf, i, lines)]
            outline = _outline(pdf)
            meta = pdf.get_metadata_dict(skip_empty=True)
        if self.ocr is not None:
            for done, index in enumerate(scans):
                raw[index] = self._read_scan(pdf, index, done=done, total=len(scans))
        ocr_pages = set(scans) if self.ocr is not None else set()
        pages = drop_running_lines(mend_hyphens(raw))
        tracker = SectionTracker(outline, heading_levels(pages))
        builder = DocumentBuilder()
        for index, lines in enumerate(pages):
            if index:
                builder.next_page()
            if index in ocr_pages:
                builder.mark_ocr()
            tracker.add_page(builder, index, split_paragraphs(lines))
        if not builder.has_text:
            count = f"{page_count} page{'s' if page_count != 1 else ''}"
            if self.ocr is None:
                reason = f" — it is probably scanned; {self.off_reason}"
            elif scans:
                reason = " — OCR found no text in its page images"
            else:
                reason = ", and no images for OCR to read"
            raise EmptyDocument(f"PDF has {count} but no extractable text{reason}")
        metadata = {key.lower(): str(meta[key]) for key in _METADATA_KEYS if meta.get(key)}
        logger.debug("parsed PDF with %d pages (%d by OCR)", page_count, len(ocr_pages))
        return builder.build(
            mime=PDF_MIME, paginated=True, title=meta.get("Title") or None, metadata=metadata
        )

    def _read_scan(
        self, pdf: pdfium.PdfDocument, index: int, *, done: int, total: int
    ) -> list[Line | None]:
        """The page as OCR reads it: paragraphs of lines, a blank line between them."""
        assert self.ocr is not None
        with PDFIUM_LOCK:
            page = pdf.get_page(index)
            try:
                width, height = page.get_size()
                scale = render_scale(width, height, dpi=self.ocr_dpi)
                image = page.render(scale=scale, grayscale=True).to_pil()
            finally:
                page.close()
        lines: list[Line | None] = []
        for paragraph in self.ocr.read(image, done=done, total=total, pages=len(pdf)):
            if lines:
                lines.append(None)
            lines.extend(Line(text) for text in paragraph.split("\n") if text.strip())
        return lines


def _open(data: bytes, filename: str) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        password = getattr(e, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD
        if password or "password" in str(e).lower():
            raise EncryptedDocument(
                "PDF is password-protected; remove the password and upload again"
            ) from e
        raise ParseError(f"{filename} is not a valid PDF file: {e}") from e


def _is_scan(pdf: pdfium.PdfDocument, index: int, lines: list[Line | None]) -> bool:
    """A page with (next to) no text layer but an image: a scan or a photograph."""
    chars = sum(len(line.text) for line in lines if line is not None)
    if chars >= OCR_MAX_CHARS:
        return False
    page = pdf.get_page(index)
    try:
        return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
    finally:
        page.close()


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
    geometry = _Geometry(textpage) if len(raw) == textpage.count_chars() else None
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
        if geometry is None:
            lines.append(Line(text.strip()))
            continue
        first = match.start() + len(text) - len(text.lstrip())
        lines.append(geometry.line(text.strip(), first))
    return lines


class _Geometry:
    """Positions of a text page's lines, cut into pieces at gaps wide enough to be a
    column gutter. pdfium's text rectangles (one per text object in a line) give the
    gaps; the character at the far side of a wide gap is where the line is cut."""

    def __init__(self, textpage: pdfium.PdfTextPage) -> None:
        self._page = textpage
        self._a, self._b, self._c, self._d = (ctypes.c_double() for _ in range(4))

    def line(self, text: str, first: int) -> Line:
        baseline, size = self._origin(first)
        rects = [self._rect(i) for i in range(self._count_rects(first, len(text)))]
        if not rects:
            return Line(text, baseline, size)
        x0, x1 = min(r[0] for r in rects), max(r[1] for r in rects)
        wide = _GUTTER_EMS * max(size, 1.0)
        pieces: list[Line] = []
        start, left = 0, x0  # the current piece: where it starts in ``text``, its left edge
        for a, b in itertools.pairwise(rects):
            if b[0] - a[1] < wide:
                continue
            cut = self._char_at(b[0] + 0.5, (b[2] + b[3]) / 2) - first
            if not (start < cut < len(text)) or not text[cut - 1].isspace():
                continue
            piece_y, piece_size = self._origin(first + start)
            pieces.append(Line(text[start:cut].strip(), piece_y, piece_size, left, a[1]))
            start, left = cut, b[0]
        if not pieces:
            return Line(text, baseline, size, x0, x1)
        piece_y, piece_size = self._origin(first + start)
        pieces.append(Line(text[start:].strip(), piece_y, piece_size, left, x1))
        return Line(text, baseline, size, x0, x1, tuple(pieces))

    def _origin(self, index: int) -> tuple[float | None, float]:
        a, b = self._a, self._b
        ok = pdfium_c.FPDFText_GetCharOrigin(self._page, index, ctypes.byref(a), ctypes.byref(b))
        return (b.value if ok else None), float(pdfium_c.FPDFText_GetFontSize(self._page, index))

    def _count_rects(self, first: int, count: int) -> int:
        return int(pdfium_c.FPDFText_CountRects(self._page, first, count))

    def _rect(self, index: int) -> tuple[float, float, float, float]:
        """Left, right, bottom, top of text rectangle ``index``."""
        left, top, right, bottom = self._a, self._b, self._c, self._d
        pdfium_c.FPDFText_GetRect(
            self._page,
            index,
            ctypes.byref(left),
            ctypes.byref(top),
            ctypes.byref(right),
            ctypes.byref(bottom),
        )
        return left.value, right.value, bottom.value, top.value

    def _char_at(self, x: float, y: float) -> int:
        return int(pdfium_c.FPDFText_GetCharIndexAtPos(self._page, x, y, 1.0, 1.0))
