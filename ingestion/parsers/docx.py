"""DOCX parser on python-docx: the body in document order, paragraphs and tables
interleaved. Heading styles build the section path, list paragraphs merge into
list blocks, tables become ``a | b`` rows. DOCX has no fixed pages: one page.

What Word shows but ``document.iter_inner_content()`` does not reach is read from
the XML as well: content controls (``w:sdt``; not the table of contents, a copy of
the headings), text boxes (``w:txbxContent``, one copy of each: Word writes a
DrawingML box and a VML fallback of the same text) after the paragraph that
anchors them, tables nested in table cells (each its own table block, right after
the table that holds it), footnotes and endnotes (after the body) and headers and
footers (each block once, before the body and at the very end).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import docx
from docx.document import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.part import XmlPart
from docx.oxml.parser import parse_xml
from lxml import etree

from ingestion.detect import DOCX_MIME
from ingestion.errors import EmptyDocument, ParseError
from ingestion.ocr import OFF_HINT, Ocr, no_text_reason, read_pictures
from ingestion.parsers._blocks import (
    DocumentBuilder,
    HeadingTrail,
    ListItem,
    clean_block,
    format_list,
    format_table,
)
from ingestion.parsers.base import ElementKind, ParsedDocument
from ingestion.safety import (
    DEFAULT_MAX_PART,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_UNCOMPRESSED,
    ZipGuarded,
)

logger = logging.getLogger(__name__)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_P, _TBL, _TR, _TC = f"{_W}p", f"{_W}tbl", f"{_W}tr", f"{_W}tc"
_SDT, _SDT_CONTENT, _CUSTOM_XML = f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml"
_TXBX = f"{_W}txbxContent"
_TOC_GALLERY = f"{_W}sdtPr/{_W}docPartObj/{_W}docPartGallery"
_FALLBACK, _CHOICE = f"{_MC}Fallback", f"{_MC}Choice"
# First-page header before the default one, even-page last: the order a reader meets them.
_HEADER_TYPES = {"first": 0, "default": 1, "even": 2}
_REFERENCES = {f"{_W}headerReference": "header", f"{_W}footerReference": "footer"}
# The text of a paragraph's runs, as python-docx's ``Paragraph.text`` reads each run,
# as one compiled XPath: python-docx evaluates two fresh XPath strings per paragraph
# and run, which made table-heavy files cost about 2 s per MB of XML. python-docx reads
# only runs that are children of the paragraph or of a hyperlink; Word also shows runs
# in inline content controls, tracked insertions, simple fields, smart tags... (up to
# two wrappers deep here), but not deleted or moved-away runs, not the VML fallback
# copy of a run, and not runs inside a run (those of a text box, read on their own).
_NOT_RUN = "*[not(self::w:r)]"
_PARAGRAPH_TEXT = etree.XPath(
    f"(w:r | {_NOT_RUN}/w:r | {_NOT_RUN}/{_NOT_RUN}/w:r)"
    "[not(parent::w:del or parent::w:moveFrom or parent::mc:Fallback)]"
    "/*[self::w:br or self::w:cr or self::w:noBreakHyphen "
    "or self::w:ptab or self::w:t or self::w:tab]",
    namespaces={"w": _W[1:-1], "mc": _MC[1:-1]},
)


def _text(p: Any) -> str:
    """The text of a ``w:p`` element: what ``Paragraph.text`` gives, plus the runs
    Word shows that python-docx skips (see ``_PARAGRAPH_TEXT``)."""
    return "".join(str(e) for e in _PARAGRAPH_TEXT(p))


class DocxParser(ZipGuarded):
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
        super().__init__(max_uncompressed=max_uncompressed, max_ratio=max_ratio, max_part=max_part)
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
            read_pictures(self.ocr, builder, pictures, done=0, total=len(pictures))
        if not builder.has_text:
            reason = no_text_reason(
                pictures=len(pictures), ocr=self.ocr, off_reason=self.off_reason, what="pictures"
            )
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
    """Headers, then the body, then footers, into one builder."""
    builder = DocumentBuilder()
    numbering = _numbering_formats(document)
    styles = _paragraph_styles(document)
    body = document.element.body
    headers, footers = _header_footer_parts(document, body)
    # Each header and footer block once: sections usually repeat the same text.
    seen: set[tuple[str, str]] = set()
    for root in headers:
        _Walker(builder, numbering, styles, seen=seen).story(root)
    walker = _Walker(builder, numbering, styles)
    walker.story(body)
    for note in _notes(document):
        _Walker(builder, numbering, styles).story(note)
    for root in footers:
        _Walker(builder, numbering, styles, seen=seen).story(root)
    return builder, walker.first_heading


class _Walker:
    """Turns one story (the body, a header, a footer) into blocks."""

    def __init__(
        self,
        builder: DocumentBuilder,
        numbering: dict[tuple[str, int], str],
        styles: tuple[dict[str, str], str],
        *,
        seen: set[tuple[str, str]] | None = None,
    ) -> None:
        self.builder = builder
        self.numbering = numbering
        self.styles = styles
        self.seen = seen
        self.trail = HeadingTrail()
        self.items: list[ListItem] = []
        self.first_heading: str | None = None

    def story(self, root: Any) -> None:
        self.blocks(root)
        self.flush_list()

    def blocks(self, parent: Any) -> None:
        for child in _unwrap(parent):
            if child.tag == _P:
                self.paragraph(child)
            elif child.tag == _TBL:
                self.table(child)

    def add(self, kind: ElementKind, text: str) -> None:
        if self.seen is not None:
            key = (kind, clean_block(text))
            if key in self.seen:
                return
            self.seen.add(key)
        self.builder.add(kind, text, self.trail.path)

    def flush_list(self) -> None:
        if self.items:
            self.add("list", format_list(self.items))
            self.items.clear()

    def paragraph(self, p: Any) -> None:
        text = _text(p)
        style = self.style_name(p)
        level = _heading_level(style)
        if level is not None and text.strip():
            self.flush_list()
            if self.seen is None:
                self.first_heading = self.first_heading or text
            self.trail.enter(level, text)
            self.add("heading", text)
        else:
            item = _list_item(p, text, style, self.numbering)
            if item is not None:
                if _starts_new_list(self.items, item):
                    self.flush_list()
                self.items.append(item)
            else:
                self.flush_list()
                self.add("text", text)
        for box in _text_boxes(p):
            self.blocks(box)

    def table(self, tbl: Any) -> None:
        self.flush_list()
        nested: list[Any] = []
        self.add("table", format_table(_table_rows(tbl, nested)))
        for element in nested:
            if element.tag == _TBL:
                self.table(element)
            else:  # a text box in a cell
                self.blocks(element)
        self.flush_list()

    def style_name(self, p: Any) -> str:
        names, default = self.styles
        style_id = _val(p.find(f"{_W}pPr/{_W}pStyle"))
        return names.get(style_id, default) if style_id is not None else default


def _unwrap(parent: Any) -> Iterator[Any]:
    """The children of ``parent``, looking through content controls and custom XML,
    which wrap paragraphs, tables, rows and cells alike. Word's table of contents (a
    content control) is skipped: it repeats the headings, with page numbers."""
    for child in parent:
        if child.tag == _SDT:
            content = child.find(_SDT_CONTENT)
            if content is not None and _val(child.find(_TOC_GALLERY)) != "Table of Contents":
                yield from _unwrap(content)
        elif child.tag == _CUSTOM_XML:
            yield from _unwrap(child)
        else:
            yield child


def _text_boxes(p: Any) -> list[Any]:
    """The text boxes anchored in paragraph ``p`` (not those of a paragraph inside
    one of them), skipping the VML ``mc:Fallback`` copy of a box Word also wrote as
    the ``mc:Choice``."""
    boxes = []
    for box in p.iter(_TXBX):
        node = box.getparent()
        while node is not p:
            if node.tag == _P:
                break
            if node.tag == _FALLBACK and node.getparent().find(_CHOICE) is not None:
                break
            node = node.getparent()
        else:
            boxes.append(box)
    return boxes


def _table_rows(tbl: Any, nested: list[Any]) -> list[list[str]]:
    """Cell texts row by row, one per ``w:tc`` (a horizontally merged cell once); a
    vertically merged cell repeats the text of the cell above it in its grid column.

    Read from the XML in one pass rather than python-docx's ``row.cells``, which finds
    each merged cell's first row recursively (cubic in the table's height: a column
    merged over 800 rows took 69 s, 1,000 rows overflowed the stack) and raises
    "no `tc` element at grid_offset=N" on irregular grids (a merge below a wider cell,
    ``gridBefore``), which Word opens fine. Tables nested in cells and text boxes in
    cell paragraphs are appended to ``nested``, in document order, not to the cell.
    """
    rows: list[list[str]] = []
    above: dict[int, str] = {}  # grid column -> text of the previous row's cell there
    for tr in _unwrap(tbl):
        if tr.tag != _TR:
            continue
        cells: list[str] = []
        here: dict[int, str] = {}
        column = _int_val(tr.find(f"{_W}trPr/{_W}gridBefore"))
        for tc in _unwrap(tr):
            if tc.tag != _TC:
                continue
            text = _cell_text(tc, nested)
            merge = tc.find(f"{_W}tcPr/{_W}vMerge")
            if merge is not None and _val(merge) in (None, "continue"):
                text = above.get(column, text)
            cells.append(text)
            span = max(_int_val(tc.find(f"{_W}tcPr/{_W}gridSpan")), 1)
            for k in range(span):
                here[column + k] = text
            column += span
        above = here
        rows.append(cells)
    return rows


def _cell_text(tc: Any, nested: list[Any]) -> str:
    lines = []
    for child in _unwrap(tc):
        if child.tag == _P:
            lines.append(_text(child))
            nested.extend(_text_boxes(child))
        elif child.tag == _TBL:
            nested.append(child)
    return "\n".join(lines)


def _header_footer_parts(document: Document, body: Any) -> tuple[list[Any], list[Any]]:
    """The root elements of the header and footer parts, in section order, each once."""
    related = document.part.related_parts
    found: dict[str, list[tuple[int, int, Any]]] = {"header": [], "footer": []}
    seen: set[str] = set()
    for number, sect_pr in enumerate(body.iter(f"{_W}sectPr")):
        for ref in sect_pr:
            kind = _REFERENCES.get(ref.tag)
            r_id = ref.get(_R_ID)
            if kind is None or r_id is None or r_id in seen or r_id not in related:
                continue
            seen.add(r_id)
            root = _part_root(related[r_id])
            if root is not None:
                order = _HEADER_TYPES.get(ref.get(f"{_W}type") or "default", 1)
                found[kind].append((number, order, root))
    return (
        [root for *_, root in sorted(found["header"], key=lambda f: f[:2])],
        [root for *_, root in sorted(found["footer"], key=lambda f: f[:2])],
    )


def _notes(document: Document) -> list[Any]:
    """The footnotes, then the endnotes (``w:footnote``/``w:endnote`` elements) in the
    order of their parts, without Word's separator pseudo-notes. python-docx has no
    notes API: their parts are plain parts, parsed here with its XML parser."""
    notes: list[Any] = []
    for reltype, tag in ((RT.FOOTNOTES, f"{_W}footnote"), (RT.ENDNOTES, f"{_W}endnote")):
        for rel in document.part.rels.values():
            if rel.reltype != reltype or rel.is_external:
                continue
            root = _part_root(rel.target_part)
            if root is not None:
                notes.extend(
                    n for n in root.iterchildren(tag) if n.get(f"{_W}type") in (None, "normal")
                )
    return notes


def _part_root(part: Any) -> Any:
    """The root element of a part python-docx may not have parsed (it loads notes as
    plain parts); None, logged, when the XML is broken: the body still counts."""
    if isinstance(part, XmlPart):
        return part.element
    try:
        return parse_xml(part.blob)
    except etree.XMLSyntaxError as e:
        logger.warning("skipping unreadable DOCX part %s: %s", part.partname, e)
        return None


def _starts_new_list(items: list[ListItem], item: ListItem) -> bool:
    """A numbered list right after a bulleted one (or vice versa) is a new list."""
    if item.level != 0:
        return False
    top = next((i for i in reversed(items) if i.level == 0), None)
    return top is not None and top.ordered != item.ordered


def _paragraph_styles(document: Document) -> tuple[dict[str, str], str]:
    """Paragraph style id -> name, and the default style's name (what python-docx's
    ``paragraph.style`` gives for a missing or unknown id), read once: looking each
    paragraph's style up walks the styles part."""
    styles = document.styles
    names = {s.style_id: s.name or "" for s in styles if s.type == WD_STYLE_TYPE.PARAGRAPH}
    default = styles.default(WD_STYLE_TYPE.PARAGRAPH)
    return names, (default.name or "") if default is not None else ""


def _heading_level(name: str) -> int | None:
    if name == "Title":
        return 0
    if name.startswith("Heading "):
        suffix = name.removeprefix("Heading ")
        if suffix.isdigit():
            return int(suffix)
    return None


def _list_item(
    p: Any, text: str, name: str, numbering: dict[tuple[str, int], str]
) -> ListItem | None:
    """A list entry if the paragraph is numbered or has a list style, else None."""
    num_pr = p.find(f"{_W}pPr/{_W}numPr")
    if num_pr is not None:
        num_id = _val(num_pr.find(f"{_W}numId")) or "0"
        if num_id != "0":  # numId 0 switches numbering off
            level = _int_val(num_pr.find(f"{_W}ilvl"))
            fmt = numbering.get((num_id, level), "bullet")
            return ListItem(text, level, ordered=fmt not in ("bullet", "none"))
    if "List" in name and name != "List Paragraph":
        suffix = name.rsplit(" ", 1)[-1]
        level = int(suffix) - 1 if suffix.isdigit() else 0
        return ListItem(text, level, ordered="Number" in name)
    if name == "List Paragraph":
        return ListItem(text)
    return None


def _val(element: Any) -> str | None:
    if element is None:
        return None
    value = element.get(f"{_W}val")
    return str(value) if value is not None else None


def _int_val(element: Any) -> int:
    """An element's ``w:val`` as a count, 0 when absent or not a number."""
    value = _val(element)
    return int(value) if value is not None and value.isdigit() else 0


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
