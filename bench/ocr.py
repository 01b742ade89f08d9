"""OCR speed and accuracy on pages rendered from known text.

English pages: paragraphs of SciFact abstracts (``../shared/data/scifact``, else a
built-in text) drawn by fpdf2 in Helvetica 11 pt, rendered by pdfium at ``--dpi``,
saved as PNG and as JPEG (quality 85, as a phone or a cheap scanner would), and put
into an image-only PDF that goes through Lantern's PDF parser like any scan. Chinese
pages: CMRC 2018 contexts (``../shared/data/cmrc2018-trial``) drawn with a Noto CJK
font when one is installed (``fonts-noto-cjk``), else skipped.

Character accuracy is 1 - CER: the Levenshtein distance between what OCR read and the
page's text, both with whitespace removed (line breaks differ by layout), over the
text's length. Word accuracy is the share of the page's words found, in order, among
the words read (spaces matter for search).

    python bench/ocr.py --pages 10
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)
FALLBACK = (
    "Employees receive sixteen weeks of paid parental leave after one year of service. "
    "Expense reports are due within thirty days of purchase, and receipts over fifty "
    "dollars must be attached. Visitors collect their badges at the north reception desk."
)


def english_texts(n: int) -> list[str]:
    path = SHARED / "scifact" / "corpus.jsonl"
    if not path.exists():
        return [FALLBACK * 3] * n
    out = []
    with path.open() as f:
        for line in f:
            text = json.loads(line)["text"]
            if len(text) > 1200 and text.isascii():
                out.append(text[:1800])
            if len(out) == n:
                break
    return out


def chinese_texts(n: int) -> list[str]:
    path = SHARED / "cmrc2018-trial"
    files = sorted(path.glob("*.json")) if path.exists() else []
    if not files:
        return []
    data = json.loads(files[0].read_text())["data"]
    out = []
    for article in data:
        for para in article["paragraphs"]:
            if len(para["context"]) > 400:
                out.append(para["context"][:600])
            if len(out) == n:
                return out
    return out


def english_pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, text.encode("latin-1", "replace").decode("latin-1"))
    return bytes(pdf.output())


def chinese_image(text: str, font: str, dpi: int) -> Any:
    from PIL import Image, ImageDraw, ImageFont

    scale = dpi / 72
    width, height = round(595 * scale), round(842 * scale)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    face = ImageFont.truetype(font, round(12 * scale))
    per_line = int((width - 2 * 60 * scale) / (12 * scale))
    y = 60 * scale
    for line in textwrap.wrap(text, per_line):
        draw.text((60 * scale, y), line, fill="black", font=face)
        y += 20 * scale
    return image


def render(pdf_bytes: bytes, dpi: int) -> Any:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(pdf_bytes)
    try:
        return pdf[0].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        pdf.close()


def image_pdf(images: list[bytes]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    for data in images:
        pdf.add_page()
        pdf.image(io.BytesIO(data), x=0, y=0, w=pdf.w, h=pdf.h)
    return bytes(pdf.output())


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_accuracy(truth: str, read: str) -> float:
    t, r = "".join(truth.split()), "".join(read.split())
    return max(0.0, 1 - levenshtein(t, r) / max(len(t), 1))


def word_accuracy(truth: str, read: str) -> float:
    import difflib

    t, r = truth.lower().split(), read.lower().split()
    matcher = difflib.SequenceMatcher(a=t, b=r, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(len(t), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=10, help="pages per language and format")
    ap.add_argument("--dpi", type=int, default=200)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from ingestion.ocr import Ocr, RapidOcrEngine, watching
    from ingestion.parsers.pdf import PdfParser

    ocr = Ocr(RapidOcrEngine())
    started = time.perf_counter()
    ocr.read(render(english_pdf(FALLBACK), 72))  # loads the models
    load_s = time.perf_counter() - started
    rows = []

    english = english_texts(args.pages)
    pages = [render(english_pdf(t), args.dpi) for t in english]
    for fmt, options in (("PNG", {}), ("JPEG", {"quality": 85})):
        files = []
        for image in pages:
            out = io.BytesIO()
            image.save(out, format=fmt, **options)
            files.append(out.getvalue())
        started = time.perf_counter()
        with watching() as watch:
            parsed = PdfParser(ocr=ocr).parse(image_pdf(files), filename="scan.pdf")
        wall = time.perf_counter() - started
        rows.append(
            (f"English, {fmt} in an image-only PDF", parsed.ocr_pages, wall, watch.seconds,
             [p.text for p in parsed.pages], english)
        )  # fmt: skip

    chinese = chinese_texts(args.pages)
    font = next((f for f in CJK_FONTS if Path(f).exists()), None)
    if chinese and font:
        images = [chinese_image(t, font, args.dpi) for t in chinese]
        started = time.perf_counter()
        read = [" ".join(ocr.read(image)) for image in images]
        wall = time.perf_counter() - started
        rows.append(("Chinese, PNG image", len(images), wall, wall, read, chinese))

    cpus = len(os.sched_getaffinity(0))
    print(f"## OCR benchmark (RapidOCR PP-OCRv4, {args.dpi} dpi, {cpus} CPUs)\n")
    print(f"models loaded in {load_s:.1f} s (not below)\n")
    print("| pages | count | seconds | pages/s | OCR s | char accuracy | word accuracy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, count, wall, ocr_s, read, truth in rows:
        chars = sum(char_accuracy(t, r) for t, r in zip(truth, read, strict=True)) / len(truth)
        words = sum(word_accuracy(t, r) for t, r in zip(truth, read, strict=True)) / len(truth)
        words_cell = f"{100 * words:.1f}%" if "Chinese" not in label else "-"
        print(
            f"| {label} | {count} | {wall:.1f} | {count / wall:.2f} | {ocr_s:.1f} "
            f"| {100 * chars:.1f}% | {words_cell} |"
        )
    if not (chinese and font):
        print("\n(Chinese skipped: no CMRC data or no Noto CJK font)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
