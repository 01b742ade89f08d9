"""Sheets (spreadsheet tabs, CSV files) as self-contained row lines.

A row of a table means little without its column headers, and the chunker may
put any run of rows in a chunk of its own, so every data row becomes one line
that names its columns: ``Plan: Basic | Premium: $0 | Leave: 10 days``.

The header is the sheet's first non-empty row, unless it does not look like one
(more than half of its cells are numbers or dates, or the sheet has a single
row): then columns are named by their spreadsheet letters (``A: 3 | B: 4``),
which is what a user sees above the grid. Empty rows and columns are skipped;
empty cells are left out of their row's line.

Rows go into ``table`` elements of at most ``MAX_TABLE_ROWS`` rows and about
``MAX_TABLE_CHARS`` characters, so a long sheet is several elements, each one
readable alone, and a chunk only ever needs to be cut between rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from ingestion.parsers._blocks import DocumentBuilder, one_line

MAX_TABLE_ROWS = 50
MAX_TABLE_CHARS = 2000

_NUMERIC = re.compile(
    r"[-+(]?[$€£¥]?\s?\d[\d,.\s]*(?:[eE][-+]?\d+)?\s?[%$€£¥)]?"  # 1,234.5  $10  -3%  (7)
    r"|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?"  # 2024-03-01 [12:00]
)


def cell_text(value: object) -> str:
    """A cell value as a user sees it: ``10`` not ``10.0``, ISO dates, TRUE/FALSE."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"  # 0.1 + 0.2 shows as 0.3, as in Excel
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if value.second else "minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="seconds" if value.second else "minutes")
    text = str(value)
    if text.isprintable() and "  " not in text:
        return text.strip()  # the common case, without one_line's two regex passes
    return one_line(text)


def column_letter(index: int) -> str:
    """0 -> ``A``, 25 -> ``Z``, 26 -> ``AA``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def add_sheet(
    builder: DocumentBuilder,
    rows: Iterable[Sequence[object]],
    section_path: Sequence[str] = (),
    *,
    first_column: int = 0,
) -> int:
    """Append one sheet's rows as table elements; return how many data rows it had.

    ``first_column`` is the 0-based index of ``rows``' first column in the sheet
    (a reader that trims leading empty columns says how many), for column letters.
    """
    grid = [cells for cells in ([cell_text(v) for v in row] for row in rows) if any(cells)]
    if not grid:
        return 0
    width = max(len(cells) for cells in grid)
    used = [c for c in range(width) if any(c < len(cells) and cells[c] for cells in grid)]
    grid = [[cells[c] if c < len(cells) else "" for c in used] for cells in grid]
    letters = [column_letter(first_column + c) for c in used]
    # A title over the table ("Q3 budget" alone in A1) is text, not the header row.
    while len(grid) > 1 and len(used) > 1 and sum(1 for cell in grid[0] if cell) == 1:
        builder.add("text", next(cell for cell in grid[0] if cell), section_path)
        grid = grid[1:]
    if len(grid) == 1:
        builder.add("table", " | ".join(cell for cell in grid[0] if cell), section_path)
        return 1
    if _looks_like_header(grid[0]):
        headers = [name or letter for name, letter in zip(grid[0], letters, strict=True)]
        grid = grid[1:]
    else:
        headers = letters
    lines: list[str] = []
    size = 0
    for cells in grid:
        line = " | ".join(
            f"{name}: {cell}" for name, cell in zip(headers, cells, strict=True) if cell
        )
        if lines and (len(lines) >= MAX_TABLE_ROWS or size + len(line) > MAX_TABLE_CHARS):
            builder.add("table", "\n".join(lines), section_path)
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
    builder.add("table", "\n".join(lines), section_path)
    return len(grid)


def _looks_like_header(cells: Sequence[str]) -> bool:
    filled = [cell for cell in cells if cell]
    numeric = sum(1 for cell in filled if _NUMERIC.fullmatch(cell))
    return numeric * 2 <= len(filled)
