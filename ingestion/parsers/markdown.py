"""Markdown parser on markdown-it-py (CommonMark + tables), reading the token stream.

The page is readable plain text: emphasis markers and link URLs are dropped
(link text kept), lists are ``- item`` lines, tables ``a | b`` rows, fenced
code kept verbatim. YAML front matter is skipped; its ``title:`` (or the first
H1) is the title.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token
from selectolax.lexbor import LexborHTMLParser

from ingestion.detect import MARKDOWN_MIME
from ingestion.errors import EmptyDocument
from ingestion.parsers._blocks import (
    DocumentBuilder,
    HeadingTrail,
    ListItem,
    format_list,
    format_table,
    normalize_newlines,
    one_line,
)
from ingestion.parsers._decode import decode_text
from ingestion.parsers.base import ParsedDocument

logger = logging.getLogger(__name__)

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)


class MarkdownParser:
    """Parses Markdown into one page of plain text."""

    mime_types: tuple[str, ...] = (MARKDOWN_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        source = normalize_newlines(decode_text(data))
        title: str | None = None
        front = _FRONT_MATTER.match(source)
        if front:
            found = _FRONT_TITLE.search(front.group(1))
            title = found.group(1).strip("'\"") if found else None
            source = source[front.end() :]
        tokens = MarkdownIt("commonmark").enable("table").parse(source)
        walker = _Walker()
        walker.walk(tokens)
        if not walker.builder.has_text:
            raise EmptyDocument(f"{filename}: the Markdown file has no text")
        return walker.builder.build(
            mime=MARKDOWN_MIME, paginated=False, title=title or walker.first_h1
        )


def _inline(token: Token) -> str:
    """Plain text of an inline token: text, code and image alt kept, markup dropped."""
    parts = []
    for child in token.children or ():
        if child.type in ("text", "code_inline", "image"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
    return "".join(parts)


def _html_text(html: str) -> str:
    body = LexborHTMLParser(html).body
    return one_line(body.text(deep=True, separator=" ")) if body is not None else ""


@dataclass
class _OpenList:
    ordered: bool
    start: int | None  # consumed by the first item


@dataclass
class _OpenItem:
    level: int
    ordered: bool
    number: int | None
    parts: list[str] = field(default_factory=list)


class _Walker:
    def __init__(self) -> None:
        self.builder = DocumentBuilder()
        self.trail = HeadingTrail()
        self.first_h1: str | None = None
        self._lists: list[_OpenList] = []
        self._items: list[_OpenItem] = []  # items of the outermost open list, in order
        self._open: list[_OpenItem] = []  # stack of items being filled

    def walk(self, tokens: Sequence[Token]) -> None:
        i = 0
        while i < len(tokens):
            token = tokens[i]
            kind = token.type
            if kind == "heading_open":
                self._heading(int(token.tag[1:]), _inline(tokens[i + 1]))
                i += 2
            elif kind in ("bullet_list_open", "ordered_list_open"):
                start = token.attrGet("start")
                number = int(start) if isinstance(start, (int, str)) and start else None
                self._lists.append(_OpenList(kind == "ordered_list_open", number))
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self._lists.pop()
                if not self._lists:
                    self._flush_list()
            elif kind == "list_item_open":
                current = self._lists[-1]
                item = _OpenItem(len(self._lists) - 1, current.ordered, current.start)
                current.start = None
                self._items.append(item)
                self._open.append(item)
            elif kind == "list_item_close":
                self._open.pop()
            elif kind == "table_open":
                i = self._table(tokens, i)
            else:
                self._leaf(token)
            i += 1

    def _leaf(self, token: Token) -> None:
        if token.type == "inline":
            text = _inline(token)
        elif token.type in ("fence", "code_block"):
            text = token.content
        elif token.type == "html_block":
            text = _html_text(token.content)
        else:
            return
        if self._open:
            self._open[-1].parts.append(text)
        elif token.type in ("inline", "html_block"):
            self.builder.add("text", text, self.trail.path)
        else:
            self.builder.add("code", text, self.trail.path)

    def _heading(self, level: int, text: str) -> None:
        if self._open:  # a heading inside a list item ("- # Title") is item text
            self._open[-1].parts.append(text)
            return
        if not text.strip():
            return
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text
        self.builder.add("heading", text, self.trail.enter(level, text))

    def _table(self, tokens: Sequence[Token], i: int) -> int:
        rows: list[list[str]] = []
        while tokens[i].type != "table_close":
            token = tokens[i]
            if token.type == "tr_open":
                rows.append([])
            elif token.type == "inline" and rows:
                rows[-1].append(_inline(token))
            i += 1
        text = format_table(rows)
        if self._open:
            self._open[-1].parts.append(text)
        else:
            self.builder.add("table", text, self.trail.path)
        return i

    def _flush_list(self) -> None:
        if self._items:
            items = [
                ListItem(" ".join(it.parts), it.level, it.ordered, it.number) for it in self._items
            ]
            self.builder.add("list", format_list(items), self.trail.path)
        self._items = []
        self._open = []
        self._lists = []
