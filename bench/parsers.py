"""Pages per second of the PDF parser on generated PDFs.

    python bench/parsers.py [--pages 50] [--repeat 3]

Three documents, built in memory with fpdf2: ``text`` (prose paragraphs, no
drawing: the table finder never runs), ``tables`` (each page a paragraph and two
ruled tables: pdfplumber reads every page) and ``columns`` (each page two
columns written row by row). Prints a markdown table: the best of ``--repeat``
passes, in CPU seconds of this process (steadier than wall time on a shared
machine; parsing is single-threaded, so they are close on an idle one). To
compare with another checkout, run the same script with ``PYTHONPATH``
pointing at it.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from fpdf import FPDF

from ingestion.parsers.pdf import PdfParser

_WORDS = (
    "policy employee leave days plan premium retrieval document passage citation answer "
    "report quarter revenue team manager office travel expense claim review approval"
).split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 16))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, sentences: int = 5) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def text_pdf(pages: int, rng: random.Random) -> bytes:
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=11)
    for _ in range(pages):
        pdf.add_page()
        while pdf.get_y() < 250:
            pdf.multi_cell(0, 6, _paragraph(rng), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
    return bytes(pdf.output())


def table_pdf(pages: int, rng: random.Random) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for _ in range(pages):
        pdf.add_page()
        for _ in range(2):
            pdf.multi_cell(0, 6, _paragraph(rng, 3), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
            with pdf.table() as table:
                for row in range(10):
                    cells = table.row()
                    for column in range(4):
                        cells.cell(f"{rng.choice(_WORDS)} {row}.{column}")
            pdf.ln(3)
    return bytes(pdf.output())


def columns_pdf(pages: int, rng: random.Random) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for _ in range(pages):
        pdf.add_page()
        columns = [
            pdf.multi_cell(85, 5, _paragraph(rng, 14), dry_run=True, output="LINES")
            for _ in range(2)
        ]
        for row in range(max(len(c) for c in columns)):
            for x, lines in zip((10.0, 105.0), columns, strict=True):
                if row < len(lines):
                    pdf.text(x, 20 + row * 5, lines[row])
    return bytes(pdf.output())


def best(parse: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        parse()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    builders = {"text": text_pdf, "tables": table_pdf, "columns": columns_pdf}
    print("| document | pages | CPU seconds | pages/s |")
    print("|---|---:|---:|---:|")
    for name, build in builders.items():
        data = build(args.pages, random.Random(13))
        seconds = best(lambda d=data: PdfParser().parse(d, filename="bench.pdf"), args.repeat)
        print(f"| {name} | {args.pages} | {seconds:.3f} | {args.pages / seconds:.0f} |")


if __name__ == "__main__":
    main()
