"""DOCX parser throughput on a big generated document (no model, no database).

Usage::

    python bench/docx_parse.py                 # 20,000 blocks, best of 3
    python bench/docx_parse.py --blocks 50000 --repeat 5

The document is raw WordprocessingML in python-docx's default template, built in
memory and deterministic: in every run of 10 blocks a heading, five paragraphs, a
three-item bulleted list and a 6x4 table, one paragraph in twenty also carrying a
text box (Word's DrawingML box with its VML fallback), and a header and footer.
Prints the size of ``word/document.xml``, the best parse time, MB/s of that XML and
paragraphs/s (``w:p`` elements, table cells' included).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingestion.parsers.docx import DocxParser

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NAMESPACES = (
    f'xmlns:w="{W}" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
    'xmlns:v="urn:schemas-microsoft-com:vml"'
)
WORDS = "the plan covers annual leave claims benefits staff office policy review".split()


def sentence(rng: random.Random, n: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def paragraph(text: str, style: str | None = None, extra: str = "") -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{props}{extra}<w:r><w:t>{text}</w:t></w:r></w:p>"


def text_box(text: str) -> str:
    content = f"<w:txbxContent>{paragraph(text)}</w:txbxContent>"
    return (
        '<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor>'
        "<a:graphic><a:graphicData><wps:wsp><wps:txbx>"
        f"{content}</wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing>"
        f"</mc:Choice><mc:Fallback><w:pict><v:shape><v:textbox>{content}</v:textbox>"
        "</v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r>"
    )


def make_docx(blocks: int, seed: int = 5) -> bytes:
    import docx

    rng = random.Random(seed)
    template = io.BytesIO()
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "Company confidential"
    document.sections[0].footer.paragraphs[0].text = "Internal use only"
    document.save(template)
    body: list[str] = []
    for i in range(blocks // 10):
        body.append(paragraph(f"Section {i}", "Heading1"))
        for k in range(5):
            box = text_box(sentence(rng)) if (i * 5 + k) % 20 == 0 else ""
            body.append(paragraph(sentence(rng), extra=box))
        body.extend(paragraph(sentence(rng, 5), "ListBullet") for _ in range(3))
        rows = "".join(
            "<w:tr>"
            + "".join(f"<w:tc>{paragraph(sentence(rng, 3))}</w:tc>" for _ in range(4))
            + "</w:tr>"
            for _ in range(6)
        )
        body.append(f"<w:tbl>{rows}</w:tbl>")
    src = zipfile.ZipFile(template)
    sect_pr = src.read("word/document.xml").decode()
    sect_pr = sect_pr[sect_pr.index("<w:sectPr") : sect_pr.index("</w:body>")]
    xml = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {NAMESPACES} '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f"<w:body>{''.join(body)}{sect_pr}</w:body></w:document>"
    ).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            data = xml if item.filename == "word/document.xml" else src.read(item.filename)
            z.writestr(item, data)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = make_docx(args.blocks)
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml")
    paragraphs = xml.count(b"<w:p>")
    docx_parser = DocxParser(max_part=1 << 30, max_uncompressed=1 << 31, max_ratio=1e6)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        doc = docx_parser.parse(data, filename="big.docx")
        times.append(time.perf_counter() - start)
    best = min(times)
    mb = len(xml) / 1e6
    print(f"document.xml {mb:.1f} MB, {paragraphs:,} paragraphs, {len(doc.elements):,} blocks")
    rate = f"{mb / best:.1f} MB/s, {paragraphs / best:,.0f} paragraphs/s"
    print(f"best of {args.repeat}: {best:.2f} s, {rate}")


if __name__ == "__main__":
    main()
