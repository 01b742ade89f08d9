"""ODT and ODP parser (OpenDocument text and presentations), read with zipfile and
lxml from ``content.xml`` (odfpy is unmaintained since 2020; see ``_odf``).

ODT: ``text:h`` headings (their outline level) build the section path,
paragraphs become text blocks, ``text:list`` (nested) list blocks, tables
``a | b`` rows; one page (an ODT reflows, like DOCX). The table of contents is
skipped: it repeats the headings. ODP: one page per slide (``draw:page``), the
title frame as heading and section path, text boxes, tables, and the speaker
notes as ``Notes: ...``, frames read top to bottom then left to right; footers,
dates and slide numbers are skipped.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from typing import Any

from lxml import etree

from ingestion.detect import ODP_MIME, ODT_MIME
from ingestion.errors import EmptyDocument, EncryptedDocument, ParseError
from ingestion.parsers._blocks import (
    DocumentBuilder,
    HeadingTrail,
    ListItem,
    format_list,
    format_table,
)
from ingestion.parsers._odf import NS, inline_text, meta_title, odf_encrypted, parse_xml, tag
from ingestion.parsers.base import ParsedDocument
from ingestion.safety import ZipGuarded

logger = logging.getLogger(__name__)

_H, _P, _LIST = tag("text", "h"), tag("text", "p"), tag("text", "list")
_TABLE, _ROW, _CELL = tag("table", "table"), tag("table", "table-row"), tag("table", "table-cell")
_ROW_GROUPS = frozenset(
    tag("table", name) for name in ("table-header-rows", "table-rows", "table-row-group")
)
_CONTAINERS = frozenset(
    {tag("text", "section"), tag("text", "index-body"), tag("office", "text")}
    | {tag("draw", "text-box"), tag("draw", "g"), tag("draw", "custom-shape"), tag("draw", "rect")}
)
_FRAME = tag("draw", "frame")
_CLASS = tag("presentation", "class")
_SLIDE_CHROME = frozenset({"footer", "header", "date-time", "page-number"})
_STYLE_NAME = tag("text", "style-name")
_MAX_REPEAT = 100
_X, _Y = tag("svg", "x"), tag("svg", "y")
_LENGTH = re.compile(r"\s*([-+]?[0-9]*\.?[0-9]+)\s*(cm|mm|in|pt|pc|px)?")
_CM_PER = {"cm": 1.0, "mm": 0.1, "in": 2.54, "pt": 2.54 / 72, "pc": 2.54 / 6, "px": 2.54 / 96}


class OpenDocumentParser(ZipGuarded):
    """Parses ``.odt`` and ``.odp``; refuses zip bombs and encrypted files before reading XML."""

    mime_types: tuple[str, ...] = (ODT_MIME, ODP_MIME)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        self.zip_limits.check(data, filename=filename, kind="OpenDocument")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if odf_encrypted(archive):
                    raise EncryptedDocument(
                        f"{filename} is password-protected; save it without a password "
                        "(File > Save As, untick 'Save with password') and upload again"
                    )
                content = parse_xml(archive.read("content.xml"))
                styles = _styles(archive)
                title = meta_title(archive)
        except EncryptedDocument:
            raise
        except KeyError as e:
            raise ParseError(f"{filename} is not a valid OpenDocument file: no content.xml") from e
        except (etree.XMLSyntaxError, zipfile.BadZipFile, EOFError, OSError) as e:
            raise ParseError(f"{filename} is not a valid OpenDocument file: {e}") from e
        body = content.find("office:body", NS)
        text = body.find("office:text", NS) if body is not None else None
        slides = body.find("office:presentation", NS) if body is not None else None
        builder = DocumentBuilder()
        ordered = _ordered_list_styles([content, styles])
        if text is not None:
            mime, paginated = ODT_MIME, False
            _Walker(builder, HeadingTrail(), ordered).container(text)
        elif slides is not None:
            mime, paginated = ODP_MIME, True
            count = _add_slides(builder, slides, ordered)
        else:
            raise ParseError(
                f"{filename}: not an OpenDocument text or presentation (no office:text "
                "or office:presentation body)"
            )
        if not builder.has_text:
            what = "document" if mime == ODT_MIME else f"presentation ({count} slides)"
            raise EmptyDocument(f"{filename}: the {what} contains no text (only images?)")
        return builder.build(mime=mime, paginated=paginated, title=title)


def _styles(archive: zipfile.ZipFile) -> Any:
    """``styles.xml`` (named list styles live there), or None if absent or broken."""
    try:
        return parse_xml(archive.read("styles.xml"))
    except (KeyError, etree.XMLSyntaxError):
        return None


def _ordered_list_styles(roots: list[Any]) -> set[tuple[str, int]]:
    """(list style name, level) pairs that number their items; level 1 is outermost."""
    ordered: set[tuple[str, int]] = set()
    for root in roots:
        if root is None:
            continue
        for style in root.iter(tag("text", "list-style")):
            name = style.get(tag("style", "name")) or ""
            for level in style.iter(tag("text", "list-level-style-number")):
                ordered.add((name, _int(level.get(tag("text", "level")), 1)))
    return ordered


class _Walker:
    """Adds the blocks of an ODT body (or of a slide's text box) to the builder."""

    def __init__(
        self, builder: DocumentBuilder, trail: HeadingTrail, ordered: set[tuple[str, int]]
    ) -> None:
        self.builder = builder
        self.trail = trail
        self.ordered = ordered

    def container(self, element: Any) -> None:
        for child in element:
            self.block(child)

    def block(self, element: Any) -> None:
        kind = element.tag
        if kind == _H:
            text = inline_text(element)
            level = _int(element.get(tag("text", "outline-level")), 1)
            if text.strip():
                self.builder.add("heading", text, self.trail.enter(level, text))
        elif kind == _P:
            self.builder.add("text", inline_text(element), self.trail.path)
        elif kind == _LIST and element.find(".//text:h", NS) is not None:
            # Outline numbering wraps headings in a list: they are headings all the same.
            for child in element.iter(_H, _P):
                self.block(child)
        elif kind == _LIST:
            items: list[ListItem] = []
            self._list(element, 1, element.get(_STYLE_NAME) or "", items)
            self.builder.add("list", format_list(items), self.trail.path)
        elif kind == _TABLE:
            self.builder.add("table", format_table(_rows(element)), self.trail.path)
        elif kind in _CONTAINERS or kind == _FRAME:
            self.container(element)

    def _list(self, element: Any, level: int, style: str, items: list[ListItem]) -> None:
        style = element.get(_STYLE_NAME) or style
        ordered = (style, level) in self.ordered
        for item in element:
            for child in item:
                if child.tag == _LIST:
                    self._list(child, level + 1, style, items)
                elif child.tag in (_P, _H):
                    items.append(ListItem(inline_text(child), level - 1, ordered))


def _rows(table: Any) -> list[list[str]]:
    rows: list[list[str]] = []
    for child in table:
        if child.tag in _ROW_GROUPS:
            rows.extend(_rows(child))
        elif child.tag == _ROW:
            cells: list[str] = []
            for cell in child:
                if cell.tag != _CELL:
                    continue  # covered (merged-away) cells hold no text
                text = " ".join(inline_text(p) for p in cell.iter(_P, _H))
                repeat = _int(cell.get(tag("table", "number-columns-repeated")), 1)
                cells.extend([text] * (min(repeat, _MAX_REPEAT) if text.strip() else 1))
            rows.append(cells)
    return rows


def _add_slides(builder: DocumentBuilder, presentation: Any, ordered: set[tuple[str, int]]) -> int:
    pages = presentation.findall("draw:page", NS)
    for number, page in enumerate(pages, start=1):
        if number > 1:
            builder.next_page()
        trail = HeadingTrail()
        frames = [child for child in page if child.tag != tag("presentation", "notes")]
        title_frame = next((f for f in frames if f.get(_CLASS) == "title"), None)
        if title_frame is not None:
            title = " ".join(inline_text(p) for p in title_frame.iter(_P, _H)).strip()
            if title:
                builder.add("heading", title, trail.enter(0, title))
        walker = _Walker(builder, trail, ordered)
        # Reading order: top to bottom, then left to right (as for PPTX).
        frames.sort(key=lambda f: (_length(f.get(_Y)), _length(f.get(_X))))
        for frame in frames:
            if frame is not title_frame and frame.get(_CLASS) not in _SLIDE_CHROME:
                walker.block(frame)
        notes = page.find("presentation:notes", NS)
        if notes is not None:
            text = "\n".join(
                inline_text(p)
                for frame in notes.iter(_FRAME)
                if frame.get(_CLASS) == "notes"
                for p in frame.iter(_P, _H)
            ).strip()
            if text:
                builder.add("text", f"Notes: {text}", trail.path)
    return len(pages)


def _length(value: str | None) -> float:
    """An ODF length (``2.5cm``, ``1in``) in centimetres; 0 when absent or unreadable."""
    match = _LENGTH.match(value or "")
    if match is None:
        return 0.0
    return float(match.group(1)) * _CM_PER[match.group(2) or "cm"]


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default
