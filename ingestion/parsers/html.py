"""HTML parser on selectolax (lexbor). Page chrome (scripts, styles, navigation,
site header/footer) is dropped; h1-h6 build the section path; paragraphs, lists,
``pre`` code, tables, blockquotes and bare text inside containers become blocks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ingestion.detect import HTML_MIME
from ingestion.errors import EmptyDocument
from ingestion.parsers._blocks import (
    DocumentBuilder,
    HeadingTrail,
    ListItem,
    format_list,
    format_table,
    one_line,
)
from ingestion.parsers._decode import decode_text
from ingestion.parsers.base import ParsedDocument

logger = logging.getLogger(__name__)

_DROP = (
    "script", "style", "nav", "noscript", "template", "svg", "iframe", "canvas", "object",
    "head",
)  # fmt: skip
_CHROME = ("header", "footer")  # dropped unless inside the article itself
_CONTAINERS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "center", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
        "header", "hgroup", "main", "section", "summary",
    }
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_LISTS = frozenset({"ul", "ol", "menu"})
_BLOCKS = _CONTAINERS | _HEADINGS.keys() | _LISTS | {"p", "pre", "table", "li", "hr", "dl"}
# Elements whose text ends a line when flattened into a cell, list item or heading.
_LINE_BREAKING = _BLOCKS | {"caption", "tr"}
_CELLS = ("td", "th")
_IN_TABLE = ", ".join(f"table {tag}" for tag in ("table", *_HEADINGS))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_SPACES = re.compile(r"[ \t\r\n\f]+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


class HtmlParser:
    """Parses HTML pages into one page of readable text."""

    mime_types: tuple[str, ...] = (HTML_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        match = _META_CHARSET.search(data[:4096])
        declared = match.group(1).decode("ascii") if match else None
        text = decode_text(data, declared=declared, html=True)
        builder = DocumentBuilder()
        title = add_html(builder, text)
        if not builder.has_text:
            raise EmptyDocument(f"{filename}: the HTML page has no visible text")
        return builder.build(mime=HTML_MIME, paginated=False, title=title)


def add_html(builder: DocumentBuilder, text: str) -> str | None:
    """Add the readable blocks of the HTML ``text`` to ``builder`` (for formats that
    carry HTML, such as an e-mail's body); return the page's ``<title>``, if any."""
    tree = LexborHTMLParser(text)
    title_node = tree.css_first("title")
    title = title_node.text(deep=True) if title_node is not None else None
    add_html_body(builder, tree)
    return title


def add_html_body(
    builder: DocumentBuilder,
    tree: LexborHTMLParser,
    trail: HeadingTrail | None = None,
    *,
    site_chrome: bool = True,
) -> None:
    """Append the blocks of ``tree``'s body to the builder's current page.

    ``trail`` carries headings across calls (EPUB chapters share one trail).
    ``site_chrome`` drops ``header``/``footer`` outside an article (web pages); an
    EPUB chapter's ``<header>`` holds its heading, so EPUB keeps them. Scripts,
    styles and navigation are always dropped. ``tree`` is modified.
    """
    _drop_chrome(tree, site_chrome=site_chrome)
    body = tree.body
    if body is not None:
        _Walker(builder, _layout_tables(body), trail).container(body)


def _drop_chrome(tree: LexborHTMLParser, *, site_chrome: bool) -> None:
    doomed = list(tree.css(", ".join(_DROP)))
    for node in tree.css(", ".join(_CHROME)) if site_chrome else ():
        if not _has_ancestor(node, lambda n: n.tag in ("article", "main")):
            doomed.append(node)
    ids = {node.mem_id for node in doomed}
    # Decompose outermost nodes only: a node inside a decomposed one is already gone.
    for node in doomed:
        if not _has_ancestor(node, lambda n: n.mem_id in ids):
            node.decompose()


def _has_ancestor(node: LexborNode, test: Callable[[LexborNode], bool]) -> bool:
    parent = node.parent
    while parent is not None:
        if test(parent):
            return True
        parent = parent.parent
    return False


def _layout_tables(body: LexborNode) -> set[int]:
    """The ``mem_id`` of every table holding a table or a heading in its cells, found
    with one query over the page rather than one per table."""
    layout: set[int] = set()
    for node in body.css(_IN_TABLE):
        parent = node.parent
        while parent is not None:
            if parent.tag == "table":
                layout.add(parent.mem_id)
            parent = parent.parent
    return layout


def _inline_text(node: LexborNode) -> str:
    """Text of an inline run; ``<br>`` becomes a line break, other whitespace collapses.
    Blocks flattened into a run (``<p>`` in a list item or a cell) end a line, and
    cells are spaced apart, so their sentences do not run together."""
    tag = node.tag
    if tag == "-text":
        return _SPACES.sub(" ", node.text_content or "")
    if tag == "br":
        return "\n"
    if tag in ("img", "-comment"):
        return ""
    text = "".join(_inline_text(child) for child in node.iter(include_text=True))
    if tag in _LINE_BREAKING:
        return f"\n{text}\n"
    if tag in _CELLS:
        return f" {text} "
    return text


def _table_rows(table: LexborNode) -> list[list[LexborNode]]:
    """The cells of the table's own rows (not those of tables nested in its cells)."""
    rows: list[list[LexborNode]] = []
    for child in table.iter():
        groups = [child] if child.tag == "tr" else []
        if child.tag in ("thead", "tbody", "tfoot"):
            groups = [tr for tr in child.iter() if tr.tag == "tr"]
        rows.extend([c for c in tr.iter() if c.tag in _CELLS] for tr in groups)
    return rows


def _tidy(text: str) -> str:
    return "\n".join(line.strip() for line in text.split("\n"))


class _Walker:
    def __init__(
        self, builder: DocumentBuilder, layout: set[int], trail: HeadingTrail | None = None
    ) -> None:
        self.builder = builder
        self.layout = layout
        self.trail = trail if trail is not None else HeadingTrail()

    def container(self, node: LexborNode) -> None:
        """Visit a block container: inline runs between child blocks become text blocks."""
        run: list[str] = []
        for child in node.iter(include_text=True):
            if (child.tag or "") in _BLOCKS:
                self._text("".join(run))
                run = []
                self.block(child)
            else:
                run.append(_inline_text(child))
        self._text("".join(run))

    def block(self, node: LexborNode) -> None:
        tag = node.tag or ""
        if tag in _HEADINGS:
            text = one_line(_inline_text(node))
            if text:
                self.builder.add("heading", text, self.trail.enter(_HEADINGS[tag], text))
        elif tag in _LISTS or tag == "li":
            items: list[ListItem] = []
            self._list_items(node, 0, items)
            self.builder.add("list", format_list(items), self.trail.path)
        elif tag == "pre":
            self.builder.add("code", node.text(deep=True), self.trail.path)
        elif tag == "table":
            self.table(node)
        elif tag != "hr":
            self.container(node)  # ``p`` too: an old page's ``<p>`` may hold a table

    def table(self, table: LexborNode) -> None:
        """A data table becomes ``a | b`` rows. A layout table (one cell, or a table or
        a heading in a cell: how pages were laid out before CSS) is read cell by cell as
        containers, so its paragraphs stay paragraphs and the tables inside it become
        tables, and no text is read twice (in the outer cell and in the inner table)."""
        for caption in table.iter():
            if caption.tag == "caption":
                self._text(_inline_text(caption))
        rows = _table_rows(table)
        cells = [cell for row in rows for cell in row]
        if len(cells) == 1 or table.mem_id in self.layout:
            for cell in cells:
                self.container(cell)
            return
        text = format_table([_inline_text(cell) for cell in row] for row in rows)
        self.builder.add("table", text, self.trail.path)

    def _text(self, text: str) -> None:
        # A blank line (``<br><br>``) parts paragraphs where a page has no ``<p>``.
        for paragraph in _BLANK_LINE.split(_tidy(text)):
            self.builder.add("text", paragraph, self.trail.path)

    def _list_items(self, node: LexborNode, level: int, items: list[ListItem]) -> None:
        if node.tag == "li":
            self._item(node, level, False, items)
            return
        ordered = node.tag == "ol"
        for child in node.iter():
            if child.tag == "li":
                self._item(child, level, ordered, items)
            elif child.tag in _LISTS:
                self._list_items(child, level + 1, items)

    def _item(self, li: LexborNode, level: int, ordered: bool, items: list[ListItem]) -> None:
        own: list[str] = []
        nested: list[LexborNode] = []
        for child in li.iter(include_text=True):
            if child.tag in _LISTS:
                nested.append(child)
            else:
                own.append(_inline_text(child))
        items.append(ListItem("".join(own), level, ordered))
        for sub in nested:
            self._list_items(sub, level + 1, items)
