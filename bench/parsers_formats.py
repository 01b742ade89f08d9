"""Parse speed of the issue-14 parsers on generated input: XLSX, ODS, CSV, ODT, ODP,
EPUB and RTF.

Usage::

    python bench/parsers_formats.py [--rows 10000] [--chapters 200] [--repeat 3]

Each input is built in memory with the test builders (``tests/fixtures/docs.py``):
a workbook of ``--rows`` rows by 6 columns (text, integers, decimals, dates) as
XLSX, ODS and CSV; an EPUB of ``--chapters`` chapters (a heading and 8
paragraphs each); an ODT with as many sections (heading, 8 paragraphs, a list, a
table); an ODP with as many slides (title, bullets, notes); an RTF with as many
sections of escaped text (``\\'e9``, ``\\uN``). Detection plus parsing is timed, the
fastest of ``--repeat`` passes; rows/s (spreadsheets) or units/s (chapters,
sections, slides) and MB/s are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingestion.detect import detect_type  # noqa: E402
from ingestion.parsers.registry import default_registry  # noqa: E402
from tests.fixtures import docs  # noqa: E402

PARAGRAPH = (
    "Employees accrue vacation days monthly and may carry over up to five unused days "
    "into the next year, subject to their manager's approval and local law."
)


def _rows(n: int) -> list[list[object]]:
    header: list[object] = ["Employee", "Office", "Grade", "Salary", "Bonus", "Start"]
    start = dt.date(2015, 1, 1)
    body: list[list[object]] = [
        [
            f"person {i}",
            f"building {i % 17}",
            i % 12,
            40000 + i * 3.25,
            round(0.05 * (i % 7), 2),
            start + dt.timedelta(days=i % 3000),
        ]
        for i in range(n)
    ]
    return [header, *body]


def _csv(rows: list[list[object]]) -> bytes:
    return "\n".join(",".join(str(c) for c in row) for row in rows).encode()


def _epub(chapters: int) -> bytes:
    body = "".join(f"<p>{PARAGRAPH} ({j})</p>" for j in range(8))
    return docs.make_epub([f"<h1>Chapter {i}</h1>{body}" for i in range(chapters)])


def _odt(sections: int) -> bytes:
    blocks: list[docs.DocxBlock] = []
    for i in range(sections):
        blocks.append(("h1", f"Section {i}"))
        blocks.extend(f"{PARAGRAPH} ({j})" for j in range(8))
        blocks.append(("ul", ["first point", ["nested point"], "second point"]))
        blocks.append(("table", [["Plan", "Premium"], ["Basic", "$0"], ["Gold", "$9"]]))
    return docs.make_odt(blocks)


def _odp(slides: int) -> bytes:
    return docs.make_odp(
        [
            {"title": f"Slide {i}", "bullets": [PARAGRAPH, ["detail"]], "notes": PARAGRAPH}
            for i in range(slides)
        ]
    )


def _rtf(sections: int) -> bytes:
    text = PARAGRAPH.replace("e", "\\'e9", 3)
    parts = [rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times New Roman;}}\f0\fs24 "]
    for i in range(sections):
        parts.append(f"{{\\b Section {i}}}\\par\n".encode())
        parts.extend(f"{text} \\u20013? ({j})\\par\n".encode() for j in range(8))
    parts.append(b"}")
    return b"".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--chapters", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rows = _rows(args.rows)
    n, c = args.rows, args.chapters
    inputs: list[tuple[str, str, int, Callable[[], bytes]]] = [
        ("book.xlsx", "rows", n, lambda: docs.make_xlsx({"Staff": rows})),
        ("book.ods", "rows", n, lambda: docs.make_ods({"Staff": rows})),
        ("book.csv", "rows", n, lambda: _csv(rows)),
        ("novel.epub", "chapters", c, lambda: _epub(c)),
        ("handbook.odt", "sections", c, lambda: _odt(c)),
        ("deck.odp", "slides", c, lambda: _odp(c)),
        ("letter.rtf", "sections", c, lambda: _rtf(c)),
    ]
    registry = default_registry()
    print("| input | units | file KB | best s | units/s | MB/s | elements | characters |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, unit, count, build in inputs:
        data = build()
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            doc = registry.get(detect_type(data, name).mime).parse(data, filename=name)
            best = min(best, time.perf_counter() - started)
        mb = len(data) / 1e6
        print(
            f"| {name} | {count:,} {unit} | {mb * 1e3:,.0f} | {best:.3f} | {count / best:,.0f} "
            f"| {mb / best:.2f} | {len(doc.elements):,} | {sum(len(p.text) for p in doc.pages):,} |"
        )


if __name__ == "__main__":
    main()
