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

from ingestion.detect import DOCX_MIME
from ingestion.errors import EmptyDocument, ParseError
from ingestion.parsers._blocks import (
    DocumentBuilder,
    HeadingTrail,
    ListItem,
    format_list,
    format_table,
)
from ingestion.parsers.base import ParsedDocument
from ingestion.safety import DEFAULT_MAX_RATIO, DEFAULT_MAX_UNCOMPRESSED, ZipLimits

logger = logging.getLogger(__name__)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


class DocxParser:
    """Parses Word ``.docx`` files; refuses zip bombs before python-docx opens them."""

    mime_types: tuple[str, ...] = (DOCX_MIME,)

    def __init__(
        self,
        *,
        max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
        max_ratio: float = DEFAULT_MAX_RATIO,
    ) -> None:
        self.zip_limits = ZipLimits(max_uncompressed=max_uncompressed, max_ratio=max_ratio)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        self.zip_limits.check(data, filename=filename, kind="DOCX")
        try:
            document = docx.Document(io.BytesIO(data))
            builder, first_heading = _walk(document)
            core_title = document.core_properties.title
        except Exception as e:  # python-docx/lxml raise many types on damaged files
            raise ParseError(f"{filename} is not a valid DOCX file: {e}") from e
        if not builder.has_text:
            raise EmptyDocument(
                f"{filename}: DOCX contains no text (only images or empty paragraphs?); "
                "OCR is not enabled"
            )
        return builder.build(mime=DOCX_MIME, paginated=False, title=core_title or first_heading)


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
        text = block.text
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
            return ListItem(paragraph.text, level, ordered=fmt not in ("bullet", "none"))
    if "List" in name and name != "List Paragraph":
        suffix = name.rsplit(" ", 1)[-1]
        level = int(suffix) - 1 if suffix.isdigit() else 0
        return ListItem(paragraph.text, level, ordered="Number" in name)
    if name == "List Paragraph":
        return ListItem(paragraph.text)
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
    rows = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a horizontally merged cell repeats
                continue
            previous = cell._tc
            cells.append(cell.text)
        rows.append(cells)
    return rows
