"""PDF parser on pypdfium2: one ``Page`` per PDF page, text kept verbatim.

Paragraphs are found from the text layer's line structure: a blank line, or a
vertical gap between two lines clearly larger than the page's usual line
spacing. Headings come from the PDF outline (bookmarks) when it has one: the
bookmark trail sets each block's ``section_path``, and a line on the target
page that matches a bookmark title becomes a heading element.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import re
import statistics
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingestion.detect import PDF_MIME
from ingestion.errors import EmptyDocument, EncryptedDocument, ParseError
from ingestion.parsers._blocks import DocumentBuilder, one_line
from ingestion.parsers.base import ParsedDocument

logger = logging.getLogger(__name__)

_BREAK = r"(?:\r\n|\r(?!\n)|\n)"  # CRLF is one break, never CR + LF
_TOKENS = re.compile(rf"(?P<blank>{_BREAK}(?:[ \t]*{_BREAK})+)|(?P<line>[^\r\n]+)")
_METADATA_KEYS = ("Author", "Subject", "Keywords", "Creator", "Producer")


@dataclass(frozen=True)
class _Line:
    text: str
    y: float | None = None  # baseline of the line's first character
    size: float = 0.0  # font size of that character


@dataclass(frozen=True)
class _Bookmark:
    page: int  # 0-based
    title: str
    trail: tuple[str, ...]


class PdfParser:
    """Parses PDFs with pypdfium2 (Apache-2.0/BSD; PyMuPDF is AGPL)."""

    mime_types: tuple[str, ...] = (PDF_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as e:
            if getattr(e, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
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
        bookmarks = _outline(pdf)
        builder = DocumentBuilder()
        path: tuple[str, ...] = ()
        for index in range(page_count):
            if index:
                builder.next_page()
            blocks = _page_blocks(pdf, index)
            path = _add_page(builder, blocks, [b for b in bookmarks if b.page == index], path)
        if not builder.has_text:
            pages = f"{page_count} page{'s' if page_count != 1 else ''}"
            raise EmptyDocument(
                f"PDF has {pages} but no extractable text — it is probably scanned; "
                "OCR is not enabled"
            )
        meta = pdf.get_metadata_dict(skip_empty=True)
        metadata = {key.lower(): str(meta[key]) for key in _METADATA_KEYS if meta.get(key)}
        logger.debug("parsed PDF with %d pages", page_count)
        return builder.build(
            mime=PDF_MIME, paginated=True, title=meta.get("Title") or None, metadata=metadata
        )


def _add_page(
    builder: DocumentBuilder,
    blocks: list[list[str]],
    bookmarks: list[_Bookmark],
    path: tuple[str, ...],
) -> tuple[str, ...]:
    """Add one page's blocks; a line matching the next bookmark's title becomes a
    heading element. Returns the section path in effect at the end of the page."""
    keys = {_key(line) for block in blocks for line in block}
    queue = list(bookmarks)

    def skip_unmatched(path: tuple[str, ...]) -> tuple[str, ...]:
        # A bookmark whose title is not on the page takes effect where it falls in order.
        while queue and _key(queue[0].title) not in keys:
            path = queue.pop(0).trail
        return path

    path = skip_unmatched(path)
    for block in blocks:
        lines: list[str] = []
        for line in block:
            if queue and _key(line) == _key(queue[0].title):
                builder.add("text", "\n".join(lines), path)
                lines = []
                path = queue.pop(0).trail
                builder.add("heading", line, path)
                path = skip_unmatched(path)
            else:
                lines.append(line)
        builder.add("text", "\n".join(lines), path)
    for bookmark in queue:
        path = bookmark.trail
    return path


def _key(text: str) -> str:
    return one_line(text).casefold()


def _outline(pdf: pdfium.PdfDocument) -> list[_Bookmark]:
    """Bookmarks in outline order with their heading trails; damaged outlines are ignored."""
    found: list[_Bookmark] = []
    stack: list[str] = []
    try:
        for bookmark in pdf.get_toc():
            title = one_line(bookmark.get_title())
            del stack[bookmark.level :]
            stack.append(title)
            dest = bookmark.get_dest()
            page = dest.get_index() if dest is not None else None
            if title and page is not None:
                found.append(_Bookmark(page, title, tuple(t for t in stack if t)))
    except pdfium.PdfiumError:
        logger.info("ignoring an unreadable PDF outline")
    return sorted(found, key=lambda b: b.page)  # stable: outline order within a page


def _page_blocks(pdf: pdfium.PdfDocument, index: int) -> list[list[str]]:
    page = pdf.get_page(index)
    try:
        textpage = page.get_textpage()
        try:
            return _split_paragraphs(_read_lines(textpage))
        finally:
            textpage.close()
    finally:
        page.close()


def _read_lines(textpage: pdfium.PdfTextPage) -> list[_Line | None]:
    """Lines of the page; ``None`` marks a blank line. Geometry is read only when
    pdfium's text indices match its char indices (true for nearly all PDFs)."""
    raw = textpage.get_text_range()
    geometry = len(raw) == textpage.count_chars()
    x, y = ctypes.c_double(), ctypes.c_double()
    lines: list[_Line | None] = []
    for match in _TOKENS.finditer(raw):
        text = match.group("line")
        if text is None or not text.strip():
            lines.append(None)
            continue
        if not geometry:
            lines.append(_Line(text.strip()))
            continue
        first = match.start() + len(text) - len(text.lstrip())
        ok = pdfium_c.FPDFText_GetCharOrigin(textpage, first, ctypes.byref(x), ctypes.byref(y))
        size = float(pdfium_c.FPDFText_GetFontSize(textpage, first))
        lines.append(_Line(text.strip(), y.value if ok else None, size))
    return lines


def _split_paragraphs(lines: list[_Line | None]) -> list[list[str]]:
    gaps = [
        a.y - b.y
        for a, b in itertools.pairwise(lines)
        if a and b and a.y is not None and b.y is not None and a.y > b.y
    ]
    usual = statistics.median(gaps) if gaps else 0.0
    blocks: list[list[str]] = []
    current: list[str] = []
    previous: _Line | None = None
    for line in lines:
        if line is None or (previous is not None and _is_break(previous, line, usual)):
            if current:
                blocks.append(current)
            current = []
        if line is not None:
            current.append(line.text)
        previous = line
    if current:
        blocks.append(current)
    return blocks


def _is_break(previous: _Line, line: _Line, usual: float) -> bool:
    if previous.y is None or line.y is None:
        return False
    gap = previous.y - line.y
    size = max(previous.size, line.size, 1.0)
    if gap < -size:  # jumped up the page: a new column or a text box
        return True
    return gap > 2.2 * size or (usual > 0 and gap > 1.3 * usual and gap > 1.1 * size)
