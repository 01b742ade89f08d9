"""Layout heuristics for PDF text, kept apart from pdfium so they are plain Python.

- Paragraphs: a blank line, or a vertical gap between two lines clearly larger
  than the page's usual line spacing (or a jump up the page: a new column).
  A table (a ``Line`` with ``table`` set, see ``_pdf_tables``) is a block of its own.
- Headings: a line that matches a PDF bookmark title on the bookmark's page, or
  a short line set in a font clearly larger than the document's body text.
- Sections: the bookmark trail, with font-size headings nested below it (or,
  without an outline, ranked by size: the largest is the outermost).
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ingestion.parsers._blocks import DocumentBuilder, HeadingTrail, one_line

_HEADING_SIZE_RATIO = 1.15  # a heading's font is at least this much larger than body text
_HEADING_MAX_CHARS = 120
_MAX_HEADING_LEVELS = 6


@dataclass(frozen=True)
class Line:
    """A line of page text; ``y`` is the baseline of its first character (None
    when unknown) and ``size`` that character's font size (0 when unknown).

    ``x0``/``x1`` are its left and right edges. ``pieces`` is the line cut at
    wide horizontal gaps (two columns' lines that pdfium read as one), empty
    when there is no such gap. A ``table`` line holds a whole table, one row a
    line, and its ``y`` is the table's top edge. A ``continued`` line goes on with
    the sentence of the line before it although it sits higher up the page (the
    top of the next column), so no paragraph starts there.
    """

    text: str
    y: float | None = None
    size: float = 0.0
    x0: float | None = None
    x1: float | None = None
    pieces: tuple[Line, ...] = ()
    table: bool = False
    continued: bool = False


@dataclass(frozen=True)
class Bookmark:
    page: int  # 0-based
    title: str
    trail: tuple[str, ...]


def split_paragraphs(lines: Sequence[Line | None]) -> list[list[Line]]:
    """Group a page's lines (``None`` = blank line) into paragraphs."""
    gaps = [
        a.y - b.y
        for a, b in itertools.pairwise(lines)
        if a and b and not (a.table or b.table)
        if a.y is not None and b.y is not None and a.y > b.y
    ]
    usual = statistics.median(gaps) if gaps else 0.0
    blocks: list[list[Line]] = []
    current: list[Line] = []
    previous: Line | None = None
    for line in lines:
        if line is None or (previous is not None and _is_break(previous, line, usual)):
            if current:
                blocks.append(current)
            current = []
        if line is not None:
            current.append(line)
        previous = line
    if current:
        blocks.append(current)
    return blocks


def _is_break(previous: Line, line: Line, usual: float) -> bool:
    if previous.table or line.table:
        return True
    if line.continued:
        return False
    if previous.y is None or line.y is None:
        return False
    gap = previous.y - line.y
    size = max(previous.size, line.size, 1.0)
    if gap < -size:  # jumped up the page: a new column or a text box
        return True
    return gap > 2.2 * size or (usual > 0 and gap > 1.3 * usual and gap > 1.1 * size)


def heading_levels(pages: Sequence[Sequence[Line | None]]) -> dict[float, int]:
    """Font sizes used for headings, mapped to levels (1 = largest)."""
    weights: Counter[float] = Counter()
    for line in itertools.chain.from_iterable(pages):
        if line is not None and line.size > 0 and not line.table:
            weights[round(line.size, 1)] += len(line.text)
    if not weights:
        return {}
    body = weights.most_common(1)[0][0]
    sizes = {
        round(line.size, 1)
        for line in itertools.chain.from_iterable(pages)
        if line is not None and _could_be_heading(line) and line.size >= body * _HEADING_SIZE_RATIO
    }
    ranked = sorted(sizes, reverse=True)[:_MAX_HEADING_LEVELS]
    return {size: level for level, size in enumerate(ranked, start=1)}


def _could_be_heading(line: Line) -> bool:
    text = line.text.strip()
    return (
        len(text) <= _HEADING_MAX_CHARS
        and any(ch.isalpha() for ch in text)
        and not text.endswith((".", ",", ";"))
    )


def _key(text: str) -> str:
    return one_line(text).casefold()


class SectionTracker:
    """Lays pages out into a builder, tracking the section path across pages."""

    def __init__(self, bookmarks: Sequence[Bookmark], levels: dict[float, int]) -> None:
        self._bookmarks = sorted(bookmarks, key=lambda b: b.page)  # stable: outline order
        self._levels = levels
        self._outer: tuple[str, ...] = ()  # the bookmark trail in effect
        self._inner = HeadingTrail()  # font-size headings below it

    @property
    def path(self) -> tuple[str, ...]:
        return self._outer + self._inner.path

    def add_page(self, builder: DocumentBuilder, index: int, blocks: list[list[Line]]) -> None:
        """Add one page's blocks, splitting heading lines out of them."""
        keys = {_key(line.text) for block in blocks for line in block}
        queue = [b for b in self._bookmarks if b.page == index]
        self._skip_unmatched(queue, keys)
        for block in blocks:
            run: list[str] = []
            run_level = 0  # 0: body text, else the heading level of the run
            for line in block:
                if line.table:
                    self._emit(builder, run, run_level)
                    run, run_level = [], 0
                    builder.add("table", line.text, self.path)
                    continue
                if queue and _key(line.text) == _key(queue[0].title):
                    self._emit(builder, run, run_level)
                    run, run_level = [], 0
                    self._enter_bookmark(queue.pop(0))
                    builder.add("heading", line.text, self.path)
                    self._skip_unmatched(queue, keys)
                    continue
                level = self._font_level(line)
                if level != run_level:  # consecutive heading lines are one wrapped heading
                    self._emit(builder, run, run_level)
                    run, run_level = [], level
                run.append(line.text)
            self._emit(builder, run, run_level)
        for bookmark in queue:
            self._enter_bookmark(bookmark)

    def _skip_unmatched(self, queue: list[Bookmark], keys: set[str]) -> None:
        # A bookmark whose title is not on its page takes effect where it falls in order.
        while queue and _key(queue[0].title) not in keys:
            self._enter_bookmark(queue.pop(0))

    def _font_level(self, line: Line) -> int:
        level = self._levels.get(round(line.size, 1), 0)
        return level if level and _could_be_heading(line) else 0

    def _emit(self, builder: DocumentBuilder, lines: list[str], level: int) -> None:
        if not lines:
            return
        text = "\n".join(lines)
        if level:
            self._inner.enter(level, text)
            builder.add("heading", text, self.path)
        else:
            builder.add("text", text, self.path)

    def _enter_bookmark(self, bookmark: Bookmark) -> None:
        self._outer = bookmark.trail
        self._inner = HeadingTrail()


_DIGITS = re.compile(r"\d+")
_EDGE_LINES = 2  # how many lines at the top and bottom of a page may be running text
_NUMBERED_MAX_CHARS = 40


def drop_running_lines(pages: list[list[Line | None]]) -> list[list[Line | None]]:
    """Blank out running headers and footers: lines among the first or last two of a
    page that recur (digits aside: "Page 3 of 10") on at least half of 3+ pages.
    They repeat the same words on every page and would crowd out real passages."""
    if len(pages) < 3:
        return pages

    def key(line: Line) -> str:
        text = " ".join(line.text.split()).lower()
        # Numbers vary in page footers ("Page 3 of 10"): ignore them in short lines only.
        return _DIGITS.sub("#", text) if len(text) <= _NUMBERED_MAX_CHARS else text

    def edges(lines: list[Line | None]) -> list[int]:
        idx = [i for i, line in enumerate(lines) if line is not None]
        return sorted(set(idx[:_EDGE_LINES] + idx[-_EDGE_LINES:]))

    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({key(lines[i]) for i in edges(lines)})  # type: ignore[arg-type]
    running = {k for k, n in counts.items() if n >= max(3, len(pages) / 2)}
    if not running:
        return pages
    out: list[list[Line | None]] = []
    for lines in pages:
        drop = {i for i in edges(lines) if key(lines[i]) in running}  # type: ignore[arg-type]
        if len(drop) == sum(1 for line in lines if line is not None):
            drop = set()  # never blank a whole page
        out.append([None if i in drop else line for i, line in enumerate(lines)])
    return out
