"""Helpers shared by the parsers: assembling pages from blocks, heading trails,
and the plain-text forms of tables and lists.

Every parser collects *blocks* (a kind, some text, a section path) and lets
``DocumentBuilder`` lay them out: blocks on a page are joined by a blank line
and each becomes an ``Element`` whose offsets slice exactly its text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ingestion.parsers.base import Element, ElementKind, Page, ParsedDocument

BLOCK_SEPARATOR = "\n\n"

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffe\uffff]")
_LINE_BREAKS = re.compile(r"\r\n|[\r\v\f\u2028\u2029\x85]")
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_WHITESPACE = re.compile(r"\s+")


def normalize_newlines(text: str) -> str:
    """Turn every line-break convention (CRLF, CR, vertical tab...) into ``\\n``."""
    return _LINE_BREAKS.sub("\n", text)


def clean_block(text: str, *, keep_blank_lines: bool = False) -> str:
    """Normalise one block: ``\\n`` line breaks, no control characters, no
    trailing spaces and (unless ``keep_blank_lines``, used for code) no blank
    lines inside, so a blank line always means a block boundary."""
    text = _CONTROL.sub("", normalize_newlines(text)).replace("\xa0", " ")
    text = _TRAILING_SPACE.sub("\n", text)
    if keep_blank_lines:
        return text.strip("\n").rstrip()
    return _BLANK_LINES.sub("\n", text).strip()


def one_line(text: str) -> str:
    """Collapse all whitespace (line breaks included) to single spaces."""
    return _WHITESPACE.sub(" ", _CONTROL.sub("", text)).strip()


class DocumentBuilder:
    """Accumulates blocks page by page and builds a ``ParsedDocument``.

    Page 1 is open from the start; ``next_page()`` closes the current page
    (even when it is empty, so page numbers stay aligned with the source).
    """

    def __init__(self) -> None:
        self._pages: list[Page] = []
        self._elements: list[Element] = []
        self._parts: list[str] = []
        self._length = 0
        self._ocr = False

    @property
    def page_number(self) -> int:
        return len(self._pages) + 1

    @property
    def has_text(self) -> bool:
        return bool(self._elements)

    def add(self, kind: ElementKind, text: str, section_path: Sequence[str] = ()) -> None:
        """Append a block to the current page; blocks empty after cleaning are dropped."""
        text = clean_block(text, keep_blank_lines=kind == "code")
        if not text:
            return
        if self._parts:
            self._parts.append(BLOCK_SEPARATOR)
            self._length += len(BLOCK_SEPARATOR)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        path = tuple(one_line(p) for p in section_path)
        self._elements.append(Element(kind, self.page_number, start, self._length, path))

    def mark_ocr(self) -> None:
        """The current page's text is read by OCR from an image of it."""
        self._ocr = True

    def next_page(self) -> None:
        self._pages.append(Page(self.page_number, "".join(self._parts), self._ocr))
        self._parts = []
        self._length = 0
        self._ocr = False

    def build(
        self,
        *,
        mime: str,
        paginated: bool,
        title: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ParsedDocument:
        """Close the current page and return the document."""
        self.next_page()
        title = one_line(title) if title else None
        return ParsedDocument(
            mime=mime,
            pages=tuple(self._pages),
            elements=tuple(self._elements),
            paginated=paginated,
            title=title or None,
            metadata=dict(metadata or {}),
        )


class HeadingTrail:
    """The stack of headings in effect; ``enter`` returns the new section path."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._stack)

    def enter(self, level: int, title: str) -> tuple[str, ...]:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, one_line(title)))
        return self.path


@dataclass(frozen=True)
class ListItem:
    """One list entry; ``level`` 0 is the outermost. ``number`` overrides the
    running count of an ordered list (e.g. a Markdown list starting at 3)."""

    text: str
    level: int = 0
    ordered: bool = False
    number: int | None = None


def format_list(items: Iterable[ListItem]) -> str:
    """One item per line, ``- `` or ``1. `` prefixed, nested items indented."""
    lines: list[str] = []
    counters: dict[int, int] = {}
    for item in items:
        text = one_line(item.text)
        if not text:
            continue
        level = max(item.level, 0)
        for deeper in [lvl for lvl in counters if lvl > level]:
            del counters[deeper]
        if item.ordered:
            counters[level] = item.number if item.number is not None else counters.get(level, 0) + 1
            marker = f"{counters[level]}. "
        else:
            marker = "- "
        lines.append("  " * level + marker + text)
    return "\n".join(lines)


def format_table(rows: Iterable[Sequence[str]]) -> str:
    """One row per line, cells joined with `` | ``; rows with no text are dropped."""
    lines = []
    for row in rows:
        cells = [one_line(cell) for cell in row]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)
