"""DOCX parser on python-docx: the body in document order, paragraphs and tables
interleaved. Heading styles build the section path, list paragraphs merge into
list blocks, tables become ``a | b`` rows. DOCX has no fixed pages: one page.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import docx
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree

from ingestion.detect import DOCX_MIME
from ingestion.errors import EmptyDocument, ParseError
from ingestion.ocr import OFF_HINT, Ocr, picture
from ingestion.parsers._blocks import (
    DocumentBuilder,
    HeadingTrail,
    ListItem,
    format_list,
    format_table,
)
from ingestion.parsers.base import ParsedDocument
from ingestion.safety import (
    DEFAULT_MAX_PART,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNCOMPRESSED,
    ZipLimits,
)

logger = logging.getLogger(__name__)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# The text python-docx's ``Paragraph.text`` reads (runs, also inside hyperlinks), as one
# compiled XPath: python-docx evaluates two fresh XPath strings per paragraph and run,
# which made table-heavy files cost about 2 s per MB of XML.
_PARAGRAPH_TEXT = etree.XPath(
    "(w:r | w:hyperlink/w:r)/*[self::w:br or self::w:cr or self::w:noBreakHyphen "
    "or self::w:ptab or self::w:t or self::w:tab]",
    namespaces={"w": _W[1:-1]},
)


def _text(p: Any) -> str:
    """The text of a ``w:p`` element, exactly as ``Paragraph.text`` gives it."""
    return "".join(str(e) for e in _PARAGRAPH_TEXT(p))


class DocxParser:
    """Parses Word ``.docx`` files; refuses zip bombs before python-docx opens them."""

    mime_types: tuple[str, ...] = (DOCX_MIME,)

    def __init__(
        self,
        *,
        max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
        max_ratio: float = DEFAULT_MAX_RATIO,
        max_part: int = DEFAULT_MAX_PART,
        ocr: Ocr | None = None,
        off_reason: str = OFF_HINT,
    ) -> None:
        self.zip_limits = ZipLimits(
            max_uncompressed=max_uncompressed, max_ratio=max_ratio, max_part=max_part
        )
        self.ocr = ocr
        self.off_reason = off_reason

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        self.zip_limits.check(data, filename=filename, kind="DOCX")
        try:
            document = docx.Document(io.BytesIO(data))
            builder, first_heading = _walk(document)
            core_title = document.core_properties.title
            pictures = _pictures(document) if self.ocr and not builder.has_text else []
        except Exception as e:  # python-docx/lxml raise many types on damaged files
            raise ParseError(f"{filename} is not a valid DOCX file: {e}") from e
        if pictures and self.ocr is not None:
            # A document of scanned pages pasted in as pictures: their text, by OCR.
            builder.mark_ocr()
            for done, blob in enumerate(pictures):
                image = picture(blob)
                if image is not None:
                    for paragraph in self.ocr.read(image, done=done, total=len(pictures)):
                        builder.add("text", paragraph)
        if not builder.has_text:
            if pictures:
                reason = "OCR found no text in its pictures"
            elif self.ocr is None:
                reason = f"only images or empty paragraphs?; {self.off_reason}"
            else:
                reason = "and no pictures with text"
            raise EmptyDocument(f"{filename}: DOCX contains no text ({reason})")
        return builder.build(mime=DOCX_MIME, paginated=False, title=core_title or first_heading)


_BLIP_IDS = etree.XPath(
    "//a:blip/@r:embed",
    namespaces={
        "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
        "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    },
)


def _pictures(document: Document) -> list[bytes]:
    """The body's pictures in document order, as image bytes."""
    parts = document.part.related_parts
    out = []
    for rid in dict.fromkeys(str(r) for r in _BLIP_IDS(document.element.body)):
        part = parts.get(rid)
        if part is not None and getattr(part, "content_type", "").startswith("image/"):
            out.append(part.blob)
    return out


def _walk(document: Document) -> tuple[DocumentBuilder, str | None]:
    builder = DocumentBuilder()
    trail = HeadingTrail()
    numbering = _numbering_formats(document)
    items: list[ListItem] = []
    first_heading: str | None = None

    def flush_list() -> None:
        if items:
            builder.add("list", format_list(items), trail.path)
            items.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            flush_list()
            builder.add("table", format_table(_table_rows(block)), trail.path)
            continue
        text = _text(block._p)
        level = _heading_level(block)
        if level is not None and text.strip():
            flush_list()
            first_heading = first_heading or text
            builder.add("heading", text, trail.enter(level, text))
            continue
        item = _list_item(block, numbering)
        if item is not None:
            if _starts_new_list(items, item):
                flush_list()
            items.append(item)
            continue
        flush_list()
        builder.add("text", text, trail.path)
    flush_list()
    return builder, first_heading


def _starts_new_list(items: list[ListItem], item: ListItem) -> bool:
    """A numbered list right after a bulleted one (or vice versa) is a new list."""
    if item.level != 0:
        return False
    top = next((i for i in reversed(items) if i.level == 0), None)
    return top is not None and top.ordered != item.ordered


def _style_name(paragraph: Paragraph) -> str:
    style = paragraph.style
    return (style.name or "") if style is not None else ""


def _heading_level(paragraph: Paragraph) -> int | None:
    name = _style_name(paragraph)
    if name == "Title":
        return 0
    if name.startswith("Heading "):
        suffix = name.removeprefix("Heading ")
        if suffix.isdigit():
            return int(suffix)
    return None


def _list_item(paragraph: Paragraph, numbering: dict[tuple[str, int], str]) -> ListItem | None:
    """A list entry if the paragraph is numbered or has a list style, else None."""
    name = _style_name(paragraph)
    num_pr = paragraph._p.find(f"{_W}pPr/{_W}numPr")
    if num_pr is not None:
        num_id = _val(num_pr.find(f"{_W}numId")) or "0"
        if num_id != "0":  # numId 0 switches numbering off
            level = int(_val(num_pr.find(f"{_W}ilvl")) or "0")
            fmt = numbering.get((num_id, level), "bullet")
            return ListItem(_text(paragraph._p), level, ordered=fmt not in ("bullet", "none"))
    if "List" in name and name != "List Paragraph":
        suffix = name.rsplit(" ", 1)[-1]
        level = int(suffix) - 1 if suffix.isdigit() else 0
        return ListItem(_text(paragraph._p), level, ordered="Number" in name)
    if name == "List Paragraph":
        return ListItem(_text(paragraph._p))
    return None


def _val(element: Any) -> str | None:
    if element is None:
        return None
    value = element.get(f"{_W}val")
    return str(value) if value is not None else None


def _numbering_formats(document: Document) -> dict[tuple[str, int], str]:
    """(numId, level) -> numFmt ("bullet", "decimal"...) from the numbering part."""
    try:
        root = document.part.numbering_part.element
    except (KeyError, NotImplementedError, AttributeError):
        return {}
    abstract: dict[str, dict[int, str]] = {}
    for node in root.findall(f"{_W}abstractNum"):
        levels = {}
        for lvl in node.findall(f"{_W}lvl"):
            fmt = _val(lvl.find(f"{_W}numFmt"))
            ilvl = lvl.get(f"{_W}ilvl")
            if fmt and ilvl is not None and ilvl.isdigit():
                levels[int(ilvl)] = fmt
        abstract[node.get(f"{_W}abstractNumId") or ""] = levels
    formats: dict[tuple[str, int], str] = {}
    for num in root.findall(f"{_W}num"):
        num_id = num.get(f"{_W}numId") or ""
        for level, fmt in abstract.get(_val(num.find(f"{_W}abstractNumId")) or "", {}).items():
            formats[(num_id, level)] = fmt
    return formats


def _table_rows(table: Table) -> list[list[str]]:
    """Cell texts row by row, one per ``w:tc`` (a horizontally merged cell once); a
    vertically merged cell repeats the text of its first row, as python-docx's
    ``row.cells`` does. One pass over the XML: ``row.cells`` finds each merged cell's
    first row recursively, an XPath step per row, cubic in the table's height (a
    column merged over 800 rows took 69 s, 1,000 rows overflowed the stack)."""
    rows: list[list[str]] = []
    above: dict[int, str] = {}  # grid column -> text of the previous row's cell there
    for tr in table._tbl.tr_lst:
        cells: list[str] = []
        here: dict[int, str] = {}
        column = tr.grid_before
        for tc in tr.tc_lst:
            if tc.vMerge == "continue":
                text = above.get(column, "")
            else:
                text = "\n".join(_text(p) for p in tc.p_lst)
            cells.append(text)
            span = max(tc.grid_span, 1)
            for k in range(span):
                here[column + k] = text
            column += span
        above = here
        rows.append(cells)
    return rows
