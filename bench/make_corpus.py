"""Build a benchmark folder of realistic documents for ``bench/ingest.py``.

Usage::

    python bench/make_corpus.py /tmp/corpus              # 40 PDFs + 10 each DOCX/PPTX/HTML/MD
    python bench/make_corpus.py /tmp/corpus --docs 20    # smaller: 10 PDFs + 2-3 of each other
    python bench/make_corpus.py /tmp/corpus --source corpus.jsonl
    python bench/make_corpus.py /tmp/corpus --scans 5    # plus 5 scanned PDFs (OCR)

Text comes from SciFact abstracts (jsonl lines with ``title`` and ``text``) when the
source file exists, otherwise from deterministic generated prose. PDFs are multi-page
(5-20 pages, fpdf2 core font Helvetica, outline bookmarks, running header/footer);
DOCX, PPTX, HTML and Markdown files carry headings, lists and tables. ``--scans``
adds scanned PDFs: report pages rendered at 200 dpi, saved as JPEG and put into a PDF
with no text layer, as a scanner writes them (read by OCR). Output is
deterministic for a given seed and library versions: fixed dates and ZIP timestamps.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import random
import re
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
FIXED_DATE = (2026, 1, 1, 0, 0, 0)
PDF_PAGES = (5, 20)
OURS = re.compile(r"^(?:(pdf|docx|pptx|html|md)-\d{3}\.\1|scan-\d{3}\.pdf)$")  # ours
# PDF core fonts are latin-1 only; map the usual typographic characters before
# replacing whatever else cannot be encoded.
_LATIN1 = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
        "−": "-",
        "…": "...",
        "≤": "<=",
        "≥": ">=",
        "×": "x",
        "\u00a0": " ",
    }
)
# SciFact often glues sentences together ("processes.Looking"): split there too.
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])|(?<=[a-z)\]][.!?])(?=[A-Z])")

Abstract = tuple[str, str]  # (title, text)


# -- text sources ------------------------------------------------------------------


def load_abstracts(source: Path | None, rng: random.Random) -> tuple[list[Abstract], str]:
    """SciFact abstracts from ``source`` (shuffled), or generated prose when it is missing."""
    if source is not None and source.is_file():
        out: list[Abstract] = []
        with source.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                title, text = str(row.get("title", "")).strip(), str(row.get("text", "")).strip()
                if title and text:
                    out.append((title, text))
        if out:
            rng.shuffle(out)
            return out, f"SciFact abstracts from {source}"
    return [_generated(rng) for _ in range(3000)], "generated prose (no source file)"


_WORDS = (
    "system model energy policy sensor network building team customer report review budget "
    "process quality risk data service platform device office project result analysis method "
    "sample control response measure design release contract training support security access"
).split()
_VERBS = "improves reduces requires supports measures affects controls describes replaces".split()
_ADJS = "annual critical shared regional internal measured expected stable secure remote".split()


def _generated(rng: random.Random) -> Abstract:
    def sentence() -> str:
        n = rng.randint(8, 22)
        words = [
            rng.choice(_ADJS) if i % 4 == 1 else rng.choice(_VERBS) if i % 5 == 3 else None
            for i in range(n)
        ]
        text = " ".join(w or rng.choice(_WORDS) for w in words)
        if rng.random() < 0.3:
            text += f" by {rng.randint(2, 95)}% in {rng.randint(2001, 2025)}"
        return text[0].upper() + text[1:] + "."

    title = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 9))).capitalize()
    return title, " ".join(sentence() for _ in range(rng.randint(6, 14)))


class Pool:
    """Hands out abstracts in order, wrapping around when exhausted."""

    def __init__(self, abstracts: list[Abstract]) -> None:
        self._items = abstracts
        self._i = 0

    def take(self) -> Abstract:
        item = self._items[self._i % len(self._items)]
        self._i += 1
        return item


def latin1(text: str) -> str:
    return text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s.strip()]


def short(title: str, limit: int = 70) -> str:
    """A heading that fits on one PDF line, so the parser can match it to its bookmark."""
    if len(title) <= limit:
        return title.rstrip(".")
    return title[:limit].rsplit(" ", 1)[0].rstrip(",;:.")


def _table_rows(rng: random.Random, n: int) -> list[tuple[str, str, str]]:
    return [
        (f"Cohort {chr(65 + i)}", str(rng.randint(20, 2000)), f"{rng.uniform(0.1, 9.9):.2f}")
        for i in range(n)
    ]


# -- writers -------------------------------------------------------------------------


def build_pdf(path: Path, title: str, pool: Pool, rng: random.Random) -> int:
    """A report of 5-20 pages: one bookmarked section per abstract. Returns the page count."""
    from fpdf import FPDF

    class Report(FPDF):
        def header(self) -> None:
            if self.page_no() > 1:
                self.set_font("Helvetica", "I", 8)
                self.cell(0, 6, latin1(short(title, 90)), align="R")
                self.ln(8)

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("Helvetica", "", 8)
            self.cell(0, 6, f"Page {self.page_no()}", align="C")

    nl = {"new_x": "LMARGIN", "new_y": "NEXT"}  # after each block, back to the left margin
    pdf = Report(format="A4")
    pdf.set_creation_date(datetime(*FIXED_DATE, tzinfo=UTC))
    pdf.set_title(latin1(title))
    pdf.set_author("Lantern benchmark")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 8, latin1(title), **nl)
    pdf.ln(4)
    target = rng.randint(PDF_PAGES[0], PDF_PAGES[1] - 1)  # the last section may spill one page
    n = 0
    while pdf.page_no() < target:
        n += 1
        heading, text = pool.take()
        name = latin1(f"{n}. {short(heading)}")
        pdf.start_section(name, level=0)
        pdf.set_font("Helvetica", "B", 12)
        pdf.multi_cell(0, 7, name, **nl)
        pdf.ln(1)
        pdf.set_font("Helvetica", "", 10.5)
        if n % 3 == 0:  # some sections as bullet lists
            for s in sentences(text):
                pdf.multi_cell(0, 5.2, latin1(f"- {s}"), **nl)
        else:
            pdf.multi_cell(0, 5.2, latin1(text), **nl)
        if n % 5 == 0:
            pdf.ln(2)
            pdf.set_font("Helvetica", "", 9)
            with pdf.table(col_widths=(40, 30, 30), width=100, align="LEFT") as table:
                for row in [("Group", "n", "Effect"), *_table_rows(rng, 4)]:
                    table.row(row)
        pdf.ln(4)
    path.write_bytes(bytes(pdf.output()))
    return pdf.page_no()


def build_scan(path: Path, title: str, pool: Pool, rng: random.Random) -> int:
    """A scanned report: ``build_pdf``'s pages as 200 dpi JPEG images in a PDF without a
    text layer, 2-4 pages. Returns the page count."""
    import pypdfium2 as pdfium
    from fpdf import FPDF

    build_pdf(path, title, pool, rng)
    source = pdfium.PdfDocument(path.read_bytes())
    scan = FPDF(format="A4")
    scan.set_creation_date(datetime(*FIXED_DATE, tzinfo=UTC))
    try:
        for index in range(min(len(source), rng.randint(2, 4))):
            image = source[index].render(scale=200 / 72, grayscale=True).to_pil()
            jpeg = io.BytesIO()
            image.save(jpeg, format="JPEG", quality=80)
            scan.add_page()
            scan.image(jpeg, x=0, y=0, w=scan.w, h=scan.h)
    finally:
        source.close()
    path.write_bytes(bytes(scan.output()))
    return scan.page_no()


def build_docx(path: Path, title: str, pool: Pool, rng: random.Random) -> None:
    from docx import Document

    doc = Document()
    doc.add_heading(title, level=0)
    for n in range(1, rng.randint(8, 20) + 1):
        heading, text = pool.take()
        doc.add_heading(short(heading), level=1 if n % 4 else 2)
        if n % 4 == 0:
            for s in sentences(text):
                doc.add_paragraph(s, style="List Bullet")
        else:
            for part in _halves(text):
                doc.add_paragraph(part)
        if n % 5 == 0:
            rows = [("Group", "n", "Effect"), *_table_rows(rng, 4)]
            table = doc.add_table(rows=0, cols=3)
            table.style = "Table Grid"
            for row in rows:
                for cell, value in zip(table.add_row().cells, row, strict=True):
                    cell.text = value
    fixed = datetime(*FIXED_DATE)
    cp = doc.core_properties
    cp.title, cp.author, cp.created, cp.modified, cp.revision = title, "bench", fixed, fixed, 1
    buf = io.BytesIO()
    doc.save(buf)
    path.write_bytes(_fixed_zip(buf.getvalue()))


def build_pptx(path: Path, title: str, pool: Pool, rng: random.Random) -> None:
    from pptx import Presentation

    prs = Presentation()
    cover = prs.slides.add_slide(prs.slide_layouts[0])
    cover.shapes.title.text = title
    cover.placeholders[1].text = "Lantern benchmark deck"
    for _ in range(rng.randint(8, 15)):
        heading, text = pool.take()
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = short(heading, 60)
        parts = sentences(text)
        body = slide.placeholders[1].text_frame
        body.text = parts[0][:200]
        for s in parts[1:5]:
            body.add_paragraph().text = s[:200]
        if len(parts) > 5:
            slide.notes_slide.notes_text_frame.text = " ".join(parts[5:])
    fixed = datetime(*FIXED_DATE)
    cp = prs.core_properties
    cp.title, cp.author, cp.created, cp.modified, cp.revision = title, "bench", fixed, fixed, 1
    buf = io.BytesIO()
    prs.save(buf)
    path.write_bytes(_fixed_zip(buf.getvalue()))


def build_html(path: Path, title: str, pool: Pool, rng: random.Random) -> None:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>',
        "<style>body{font-family:sans-serif}</style>",
        "<script>window.analytics=[];</script></head><body>",
        '<header><nav><a href="/">Home</a> | <a href="/docs">Docs</a></nav></header>',
        f"<main><article><h1>{e(title)}</h1>",
    ]
    for n in range(1, rng.randint(8, 20) + 1):
        heading, text = pool.take()
        out.append(f"<section><h2>{e(short(heading))}</h2>")
        if n % 4 == 0:
            out.append("<ul>" + "".join(f"<li>{e(s)}</li>" for s in sentences(text)) + "</ul>")
        else:
            out.extend(f"<p>{e(part)}</p>" for part in _halves(text))
        if n % 5 == 0:
            rows = _table_rows(rng, 4)
            out.append("<table><tr><th>Group</th><th>n</th><th>Effect</th></tr>")
            out.extend("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
            out.append("</table>")
        out.append("</section>")
    out.append("</article></main><footer>&copy; 2026 Lantern benchmark</footer></body></html>")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def build_markdown(path: Path, title: str, pool: Pool, rng: random.Random) -> None:
    out = ["---", f'title: "{title.replace(chr(34), "")}"', "---", "", f"# {title}", ""]
    for n in range(1, rng.randint(8, 20) + 1):
        heading, text = pool.take()
        out += [f"{'##' if n % 4 else '###'} {short(heading)}", ""]
        if n % 4 == 0:
            out += [f"- {s}" for s in sentences(text)] + [""]
        else:
            for part in _halves(text):
                out += [part, ""]
        if n % 5 == 0:
            out += ["| Group | n | Effect |", "|---|---:|---:|"]
            out += [f"| {a} | {b} | {c} |" for a, b, c in _table_rows(rng, 4)] + [""]
    path.write_text("\n".join(out), encoding="utf-8")


def _halves(text: str) -> list[str]:
    """Two paragraphs from one abstract, split at a sentence end near the middle."""
    parts = sentences(text)
    if len(parts) < 4:
        return [text]
    mid = len(parts) // 2
    return [" ".join(parts[:mid]), " ".join(parts[mid:])]


def _fixed_zip(data: bytes) -> bytes:
    """Re-zip with fixed entry timestamps (python-docx/pptx stamp the current time)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


# -- main ------------------------------------------------------------------------------

WRITERS = {
    "docx": build_docx,
    "pptx": build_pptx,
    "html": build_html,
    "md": build_markdown,
}


def plan(docs: int) -> dict[str, int]:
    """Half PDFs, the rest spread evenly over the other formats (80 -> 40 + 4 x 10)."""
    pdfs = max(1, docs // 2)
    rest = docs - pdfs
    counts = {"pdf": pdfs}
    for i, fmt in enumerate(WRITERS):
        counts[fmt] = rest // len(WRITERS) + (1 if i < rest % len(WRITERS) else 0)
    return counts


def build(out: Path, *, docs: int, source: Path | None, seed: int, scans: int = 0) -> Iterator[str]:
    """Write the corpus into ``out``; yields one progress line per format."""
    rng = random.Random(seed)
    abstracts, origin = load_abstracts(source, rng)
    yield f"text: {origin} ({len(abstracts)} abstracts)"
    pool = Pool(abstracts)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():  # our own files from an earlier, larger run
        if OURS.match(stale.name):
            stale.unlink()
    for fmt, count in plan(docs).items():
        pages = 0
        for i in range(count):
            title = latin1(short(pool.take()[0], 100)) if fmt == "pdf" else short(pool.take()[0])
            path = out / f"{fmt}-{i:03d}.{fmt}"
            if fmt == "pdf":
                pages += build_pdf(path, title, pool, rng)
            else:
                WRITERS[fmt](path, title, pool, rng)
        if count:
            extra = f", {pages} pages" if fmt == "pdf" else ""
            yield f"{fmt}: {count} files{extra}"
    pages = sum(
        build_scan(out / f"scan-{i:03d}.pdf", latin1(short(pool.take()[0], 100)), pool, rng)
        for i in range(scans)
    )
    if scans:
        yield f"scanned pdf: {scans} files, {pages} pages"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="output folder (created if missing)")
    ap.add_argument(
        "--docs", type=int, default=80, help="total documents, half of them PDFs (default 80)"
    )
    ap.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help="jsonl with title/text per line (default: the SciFact corpus beside the repo); "
        "generated prose when missing",
    )
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument(
        "--scans", type=int, default=0, help="scanned PDFs (no text layer) to add (default 0)"
    )
    args = ap.parse_args(argv)
    if args.docs < 1:
        ap.error("--docs must be at least 1")
    if args.dir.is_dir() and any(not OURS.match(p.name) for p in args.dir.iterdir()):
        print(f"warning: {args.dir} holds other files; ingest.py will read them too")
    for line in build(
        args.dir, docs=args.docs, source=args.source, seed=args.seed, scans=args.scans
    ):
        print(line, flush=True)
    print(f"wrote {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
