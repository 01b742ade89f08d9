"""OCR: scans, photographs and image-only slides become text on the right page,
marked as read by OCR, and every refusal says why."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from app.db.models import DocumentStatus
from ingestion.errors import EmptyDocument, FileTooLarge, ParseError
from ingestion.ocr import Ocr, OcrBox, RapidOcrEngine, paragraphs, watching
from ingestion.parsers.docx import DocxParser
from ingestion.parsers.image import ImageParser
from ingestion.parsers.pdf import PdfParser
from ingestion.parsers.pptx import PptxParser
from ingestion.parsers.registry import default_registry
from tests.fixtures import docs
from tests.unit.ingest_helpers import doc, ingest, job_of

LEAVE = (
    "# Parental leave\n\n"
    "Employees receive sixteen weeks of paid parental leave.\n"
    "The policy applies to all full-time staff in every office."
)
EXPENSES = "Expense reports are due within thirty days of purchase."
BADGES = "Visitors collect their badges at the north reception desk."


@pytest.fixture(scope="module")
def ocr() -> Ocr:
    return Ocr(RapidOcrEngine())


def words(text: str) -> str:
    return " ".join(text.split()).lower()


def test_a_scanned_pdf_is_read_page_by_page_and_marked(ocr: Ocr) -> None:
    parsed = PdfParser(ocr=ocr).parse(docs.scanned_text_pdf([LEAVE, EXPENSES]), filename="s.pdf")
    assert [p.number for p in parsed.pages] == [1, 2]
    assert all(p.ocr for p in parsed.pages)
    assert "sixteen weeks of paid parental leave" in words(parsed.pages[0].text)
    assert "due within thirty days of purchase" in words(parsed.pages[1].text)
    assert "thirty days" not in words(parsed.pages[0].text)


def test_a_mixed_pdf_keeps_its_text_pages_and_reads_the_scans(ocr: Ocr) -> None:
    pdf = docs.scanned_text_pdf([None, EXPENSES, None])
    with watching() as watch:
        parsed = PdfParser(ocr=ocr).parse(pdf, filename="mixed.pdf")
    assert [p.ocr for p in parsed.pages] == [False, True, False]
    assert parsed.pages[0].text == "This page has a text layer."
    assert "thirty days of purchase" in words(parsed.pages[1].text)
    assert watch.images == 1
    assert watch.seconds > 0


def test_image_files_are_read_and_a_multipage_tiff_keeps_its_pages(ocr: Ocr) -> None:
    parser = ImageParser(ocr)
    for fmt in ("PNG", "JPEG"):
        parsed = parser.parse(docs.text_image(BADGES, fmt), filename=f"photo.{fmt.lower()}")
        assert "north reception desk" in words(parsed.pages[0].text), fmt
        assert parsed.pages[0].ocr
        assert not parsed.paginated  # one picture: citations give no page number
    tiff = parser.parse(docs.multipage_tiff([BADGES, EXPENSES]), filename="fax.tiff")
    assert tiff.paginated
    assert "north reception desk" in words(tiff.pages[0].text)
    assert "thirty days of purchase" in words(tiff.pages[1].text)


def test_a_page_scanned_upside_down_is_turned_over(ocr: Ocr) -> None:
    text = f"{EXPENSES} {BADGES} Receipts over fifty dollars must be attached."
    upside_down = docs.image_bytes(docs.page_image(text).rotate(180))
    parsed = ImageParser(ocr).parse(upside_down, filename="upside-down.png")
    assert "due within thirty days of purchase" in words(parsed.pages[0].text)
    assert "north reception desk" in words(parsed.pages[0].text)


def test_a_slide_of_screenshots_is_read_but_a_slide_with_text_is_not(ocr: Ocr) -> None:
    parsed = PptxParser(ocr=ocr).parse(docs.picture_pptx([None, BADGES]), filename="deck.pptx")
    assert not parsed.pages[0].ocr
    assert "A slide with text" in parsed.pages[0].text
    assert parsed.pages[1].ocr
    assert "north reception desk" in words(parsed.pages[1].text)


def test_a_docx_of_pasted_scans_is_read(ocr: Ocr) -> None:
    parsed = DocxParser(ocr=ocr).parse(docs.picture_docx([EXPENSES]), filename="scan.docx")
    assert parsed.pages[0].ocr
    assert "thirty days of purchase" in words(parsed.pages[0].text)


def test_with_ocr_off_every_picture_format_fails_with_the_setting_to_change() -> None:
    registry = default_registry(ocr=False)
    cases = {
        "scan.pdf": (docs.scanned_text_pdf([EXPENSES]), "application/pdf"),
        "photo.png": (docs.text_image(BADGES), "image/png"),
        "deck.pptx": (
            docs.picture_pptx([BADGES]),
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        "scan.docx": (
            docs.picture_docx([EXPENSES]),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    }
    for name, (data, mime) in cases.items():
        with pytest.raises(EmptyDocument, match="LANTERN_INGESTION__OCR=true") as err:
            registry.get(mime).parse(data, filename=name)
        assert "OCR is turned off" in str(err.value), name


def test_a_missing_engine_is_reported_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # import fails
    registry = default_registry()
    with pytest.raises(EmptyDocument, match=r"OCR is unavailable.*rapidocr-onnxruntime"):
        registry.get("image/png").parse(docs.text_image(BADGES), filename="photo.png")
    # Documents with a text layer are not affected.
    parsed = registry.get("application/pdf").parse(docs.make_pdf(["Plain text."]), filename="a")
    assert parsed.pages[0].text == "Plain text."


def test_a_blank_scan_and_a_broken_image_say_what_is_wrong(ocr: Ocr) -> None:
    from PIL import Image

    blank = docs.image_bytes(Image.new("RGB", (800, 1100), "white"))
    with pytest.raises(EmptyDocument, match="OCR found no text"):
        ImageParser(ocr).parse(blank, filename="blank.png")
    with pytest.raises(ParseError, match="not a valid image file"):
        ImageParser(ocr).parse(docs.text_image(BADGES)[:300], filename="cut.png")


def test_an_image_bomb_is_refused_before_it_is_decoded(ocr: Ocr) -> None:
    from PIL import Image

    # 20,000 x 20,000 pixels of one colour compress to a few hundred KB.
    bomb = docs.image_bytes(Image.new("1", (20_000, 20_000), 1))
    with pytest.raises(FileTooLarge, match=r"too large|million pixels"):
        ImageParser(ocr).parse(bomb, filename="bomb.png")


# -- layout ------------------------------------------------------------------------------


def box(text: str, left: float, top: float, width: float, height: float = 20) -> OcrBox:
    return OcrBox(text, left, top, left + width, top + height, 0.99)


def test_two_columns_are_read_one_after_the_other() -> None:
    left = [box(f"left line {i}", 50, 100 + 30 * i, 400) for i in range(5)]
    right = [box(f"right line {i}", 550, 100 + 30 * i, 400) for i in range(5)]
    title = box("A title across both columns", 50, 40, 900)
    out = paragraphs([title, *right, *left])
    text = "\n".join(out)
    assert text.index("A title") < text.index("left line 0") < text.index("left line 4")
    assert text.index("left line 4") < text.index("right line 0")


def test_a_form_is_read_row_by_row_not_as_columns() -> None:
    rows = [("Invoice", "INV-1001"), ("Total", "$120.00"), ("Due", "2026-12-31")]
    boxes = [
        b
        for i, (k, v) in enumerate(rows)
        for b in (box(k, 50, 100 + 30 * i, 80), box(v, 600, 100 + 30 * i, 120))
    ]
    assert paragraphs(boxes) == ["Invoice INV-1001\nTotal $120.00\nDue 2026-12-31"]


def test_a_gap_starts_a_paragraph_and_a_broken_word_is_joined() -> None:
    boxes = [
        box("Information re-", 50, 100, 300),
        box("trieval works.", 50, 125, 300),
        box("A second paragraph.", 50, 200, 300),
    ]
    assert paragraphs(boxes) == ["Information retrieval works.", "A second paragraph."]


# -- through the service -------------------------------------------------------------------


def test_a_scan_is_searchable_on_its_page_and_its_citation_says_ocr(container: Any) -> None:
    results = ingest(container, {"scan.pdf": docs.scanned_text_pdf([None, EXPENSES])})
    d = doc(container, results["scan.pdf"].document_id)
    assert d is not None
    assert d.status == DocumentStatus.READY, d.error
    job = job_of(container, d.id)
    assert job.timings["ocr"] > 0
    hits = container.search.search("when are expense reports due", k=1)
    assert hits[0].document_id == d.id
    assert hits[0].page == 2
    assert hits[0].ocr
    assert "thirty days" in hits[0].text


def test_the_sources_panel_says_a_quote_was_read_by_ocr() -> None:
    from types import SimpleNamespace

    from ui.web.sources import citations_html

    search: Any = SimpleNamespace(chunk_texts=lambda ids: {"c1": EXPENSES, "c2": BADGES})
    cited = [
        {"n": 1, "chunk_id": "c1", "document_id": "d1", "title": "Scan", "page": 2,
         "quote": "thirty days", "ocr": True},
        {"n": 2, "chunk_id": "c2", "document_id": "d2", "title": "Typed", "page": None,
         "quote": "north reception", "ocr": False},
    ]  # fmt: skip
    html = citations_html(search, cited)
    assert "Scan, page 2 (text read by OCR)" in html
    assert "Typed (text read by OCR)" not in html
    assert "Typed</a>" in html


def test_health_warns_when_ocr_is_on_but_cannot_run(
    container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.api.routes.health import health

    assert not any("OCR" in w for w in health(container).warnings)
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # import fails
    report = health(container)
    assert any("OCR is unavailable" in w and "lantern[ocr]" in w for w in report.warnings)
