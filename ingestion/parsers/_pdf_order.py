"""Reading order of a PDF page's lines: tables in place of their words, columns
one after the other. Plain Python on the geometry pdfium gives (``Line``).

pdfium reads text in content-stream order. Most PDFs write a column at a time,
but some write a row at a time across the columns, and pdfium then joins the
two columns' lines into one line (``Line.pieces`` keeps it cut at the gutter).
``reading_order`` finds a vertical gutter that most lines keep clear of and
lays the page out as bands: full-width lines (titles, wide figures, tables)
separate the bands, and inside a band the left column comes before the right.
Hand-written because the libraries that do this (pdfminer's layout analysis,
pdfplumber's) work on their own character stream, which is slower than pdfium
and would not match pdfium's text.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ingestion.parsers._pdf_layout import Line

_MIN_COLUMN_LINES = 3  # each side of a gutter holds at least this many lines,
_MIN_COLUMN_CHARS = 15  # of a prose-like median length (not a key/value list),
_MIN_FILL = 0.6  # most of them filling the column's width (not indented notes),
_MIN_SHARE = 0.25  # and each side holds at least this share of the text
_MAX_CROSSING = 0.2  # at most this share of the lines may run across the gutter
_MAX_DEPTH = 3  # gutters inside a column (three or four columns)
_TOLERANCE = 1.0  # points


@dataclass(frozen=True)
class Table:
    """A table found on a page: its box in pdfium's page space (y grows upwards)
    and its text (``format_table``: one row a line, cells joined by `` | ``)."""

    x0: float
    bottom: float
    x1: float
    top: float
    text: str

    def holds(self, line: Line) -> bool:
        """Whether the line lies wholly inside the table: one reaching out of it keeps
        its words (some would otherwise be lost), even if it repeats a cell's."""
        if line.x0 is None or line.x1 is None or line.y is None:
            return False
        return (
            self.x0 - _TOLERANCE <= line.x0
            and line.x1 <= self.x1 + _TOLERANCE
            and self.bottom - _TOLERANCE <= line.y <= self.top + _TOLERANCE
        )


def place_tables(lines: Sequence[Line | None], tables: Sequence[Table]) -> list[Line | None]:
    """Put each table where its first line was and drop the lines (or the pieces of
    lines) inside it, so its words are not on the page twice. Without geometry the
    table's lines cannot be told apart, so the page is left as it is."""
    if not tables or any(
        line is not None and (line.x0 is None or line.y is None) for line in lines
    ):
        return list(lines)
    out: list[Line | None] = []
    placed: set[int] = set()
    for line in lines:
        if line is None:
            out.append(line)
            continue
        kept: list[Line] = []
        for piece in line.pieces or (line,):
            owner = next((i for i, t in enumerate(tables) if t.holds(piece)), None)
            if owner is None:
                kept.append(piece)
            elif owner not in placed:
                placed.add(owner)
                out.append(_table_line(tables[owner]))
        if len(kept) == len(line.pieces or (line,)):
            out.append(line)
        else:
            out.extend(kept)
    for index, table in enumerate(tables):
        if index not in placed:  # no text line matched (e.g. cells drawn as paths): by height
            at = next(
                (
                    i
                    for i, line in enumerate(out)
                    if line and line.y is not None and line.y < table.top
                ),
                len(out),
            )
            out.insert(at, _table_line(table))
    return out


def _table_line(table: Table) -> Line:
    return Line(table.text, table.top, 0.0, table.x0, table.x1, table=True)


def reading_order(lines: Sequence[Line | None]) -> list[Line | None]:
    """The page's lines column by column when it has columns; otherwise unchanged.

    ``None`` (a blank line) separates the columns and bands of the result, except
    where a sentence runs on from the foot of one column to the head of the next."""
    segments = [p for line in lines if line is not None for p in line.pieces or (line,)]
    if any(s.x0 is None or s.x1 is None or s.y is None for s in segments):
        return list(lines)
    gutter = _gutter(segments)
    if gutter is None:
        return list(lines)
    out: list[Line | None] = []
    for group in _groups(segments, gutter, 1):
        lines_ = [replace(s, pieces=()) for s in group]
        previous = out[-1] if out else None
        if previous is not None and _runs_on(previous, lines_[0]):
            lines_[0] = replace(lines_[0], continued=True)
        elif out:
            out.append(None)
        out.extend(lines_)
    return out


def _runs_on(previous: Line, line: Line) -> bool:
    """Whether ``line`` goes on with ``previous``'s sentence: no sentence end before,
    a lowercase word after."""
    if previous.table or line.table:
        return False
    end, start = previous.text.rstrip(), line.text.lstrip()
    return bool(end and start) and end[-1] not in ".!?:;" and start[0].islower()


def _groups(segments: list[Line], gutter: float, depth: int) -> list[list[Line]]:
    """Runs of lines in reading order: a band's left column, its right column, and
    the full-width lines between bands."""
    groups: list[list[Line]] = []
    band: list[Line] = []

    def flush() -> None:
        left = [s for s in band if _right(s) <= gutter]
        right = [s for s in band if _left(s) >= gutter]
        for side in (left, right):
            if side:
                inner = _gutter(side) if depth < _MAX_DEPTH else None
                if inner is None:
                    groups.append(side)
                else:
                    groups.extend(_groups(side, inner, depth + 1))
        band.clear()

    crossing_run = False
    for segment in sorted(segments, key=_top_down):
        if _left(segment) < gutter < _right(segment):
            flush()
            if crossing_run:  # consecutive full-width lines: one wrapped title
                groups[-1].append(segment)
            else:
                groups.append([segment])
            crossing_run = True
        else:
            band.append(segment)
            crossing_run = False
    flush()
    return groups


def _gutter(segments: list[Line]) -> float | None:
    """An x position most lines keep clear of, with prose-like columns on both sides."""
    if len(segments) < 2 * _MIN_COLUMN_LINES:
        return None
    left_edge = min(_left(s) for s in segments)
    right_edge = max(_right(s) for s in segments)
    width = right_edge - left_edge
    if width <= 0:
        return None
    best: tuple[int, float] | None = None
    # Candidates: just left of where a line starts, in the middle half of the page.
    for start in sorted({round(_left(s), 1) for s in segments}):
        if not left_edge + 0.25 * width <= start <= left_edge + 0.75 * width:
            continue
        x = start - 0.5
        left = [s for s in segments if _right(s) <= x]
        right = [s for s in segments if _left(s) >= x]
        crossing = len(segments) - len(left) - len(right)
        if crossing > _MAX_CROSSING * len(segments):
            continue
        if not (_prose(left) and _prose(right)):
            continue
        chars = [sum(len(s.text) for s in side) for side in (left, right)]
        if min(chars) < _MIN_SHARE * sum(chars):
            continue
        score = min(len(left), len(right))
        if best is None or score > best[0]:
            best = (score, x)
    return best[1] if best else None


def _prose(lines: list[Line]) -> bool:
    texts = [s for s in lines if not s.table]
    if len(texts) < _MIN_COLUMN_LINES:
        return False
    width = max(_right(s) for s in texts) - min(_left(s) for s in texts)
    return (
        statistics.median(len(s.text) for s in texts) >= _MIN_COLUMN_CHARS
        and statistics.median(_right(s) - _left(s) for s in texts) >= _MIN_FILL * width
    )


def _top_down(line: Line) -> float:
    return -(line.y or 0.0)


def _left(line: Line) -> float:
    return line.x0 if line.x0 is not None else 0.0


def _right(line: Line) -> float:
    return line.x1 if line.x1 is not None else 0.0
