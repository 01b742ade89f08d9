"""The documents a company has, as a new user uploads them: one collection with a
file for every case that once failed or came out wrong (scans, pictures, merged
cells, tables, columns, broken words, Windows-1252 pages, spreadsheets, mail, e-books,
OpenDocument, RTF), ingested through the real service and searched. Every file is
made here; none is copied from another project.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.db.models import Document, DocumentStatus
from tests.conftest import fresh_database
from tests.fixtures import docs
from tests.fixtures.mail import make_eml, make_msg
from tests.unit.ingest_helpers import ingest, job_of

FILLER = "This paragraph is ordinary office prose about meetings and kitchens."
COLUMN_LEFT = (
    "The left column explains how the quarterly budget is drafted by each department "
    "and reviewed by finance before the board meets in spring."
)
COLUMN_RIGHT = (
    "The right column says that approved budgets are published on the intranet within "
    "five working days of the board meeting."
)


def _merged_cells_docx() -> bytes:
    cell, p = docs.docx_cell, docs.docx_paragraph
    rows = [
        (cell("Region", span=2), cell("Headcount")),
        (cell("Lisbon", merge="restart"), cell("Engineering"), cell("41")),
        (cell("", merge="continue"), cell("Support"), cell("17")),
    ]
    grid = "<w:tblGrid><w:gridCol/><w:gridCol/><w:gridCol/></w:tblGrid>"
    body = "".join(f"<w:tr>{''.join(r)}</w:tr>" for r in rows)
    return docs.docx_with_body(p("Office headcount") + f"<w:tbl>{grid}{body}</w:tbl>")


def corpus() -> dict[str, bytes]:
    pdf_attachment = docs.make_pdf(["The travel policy allows economy class on flights."])
    return {
        # OCR
        "scanned-contract.pdf": docs.scanned_text_pdf(
            [None, "The supplier guarantees delivery within ten business days."]
        ),
        "screenshots.pptx": docs.picture_pptx(
            [None, "Visitors collect their badges at the north reception desk."]
        ),
        "whiteboard.jpg": docs.text_image(
            "The retrospective agreed to rotate the release captain monthly.", "JPEG"
        ),
        "fax.tiff": docs.multipage_tiff(
            ["Cover sheet for the insurance claim.", "The claim covers water damage."]
        ),
        # Structure
        "headcount.docx": _merged_cells_docx(),
        "plans.pdf": docs.make_table_pdf(
            [["Plan", "Premium", "Leave"], ["Basic", "$0", "10 days"], ["Plus", "$40", "25 days"]],
            before="The benefit plans are listed below.",
        ),
        "budget-columns.pdf": docs.make_two_column_pdf(COLUMN_LEFT, COLUMN_RIGHT, title="Budget"),
        "hyphens.pdf": docs.make_pdf_lines(
            ["Good search depends on re-", "trieval of the right passages every time."]
        ),
        "headed.docx": docs.headed_docx("ACME Confidential", "Page footer", ["Body one."]),
        "cafe.html": (
            "<html><body><p>Le caf\u00e9 est tr\u00e8s bon, dit Jo\u00e3o au ni\u00f1o.</p>"
            "</body></html>"
        ).encode("cp1252"),
        # More formats
        "rates.xlsx": docs.make_xlsx(
            {"Rates": [["Country", "Per diem"], ["Portugal", 95], ["Japan", 160]]}
        ),
        "rooms.csv": b"Room,Floor,Seats\nAtlas,3,12\nBorealis,5,30\n",
        "notice.eml": make_eml(
            subject="Travel policy update",
            text="Please read the attached travel policy before booking.",
            attachments=[("travel-policy.pdf", pdf_attachment)],
        ),
        "minutes.msg": make_msg(
            subject="Board minutes", body="The board approved the new cafeteria supplier."
        ),
        "handbook.epub": docs.make_epub(
            ["<h1>Welcome</h1><p>New staff receive a laptop on their first morning.</p>"],
            title="Staff handbook",
        ),
        "notes.odt": docs.make_odt([("h1", "Notes"), "The archive room opens at eight."]),
        "deck.odp": docs.make_odp([{"title": "Roadmap", "bullets": ["Launch in Osaka in June"]}]),
        "memo.rtf": rb"{\rtf1\ansi\ansicpg1252 The parking garage closes at midnight.\par}",
        # Files that must fail, with their reason
        "locked.pdf": docs.make_pdf(["secret"], password="pw"),
        "blank-scan.png": docs.image_bytes(Image.new("RGB", (600, 800), "white")),
        "legacy.doc": docs.ole2_doc(),
    }


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Any]:
    from app.container import Container
    from app.settings import Settings

    tmp: Path = tmp_path_factory.mktemp("corpus")
    urls = fresh_database("sqlite", tmp)
    settings = Settings(
        data_dir=tmp / "data",
        database={"url": next(urls)},
        ingestion={"max_file_mb": 5, "max_unzipped_mb": 20},
        jobs={"inline": {"workers": 1}},
    )
    container = Container(settings, overrides={"embedder": embedder})
    container.migrate()
    results = ingest(container, corpus())
    try:
        yield container, {name: r.document_id for name, r in results.items()}
    finally:
        container.close()


def find(loaded: Any, query: str, name: str, k: int = 3) -> Any:
    container, ids = loaded
    hits = container.search.search(query, k=k)
    for hit in hits:
        if hit.document_id == ids[name]:
            return hit
    raise AssertionError(f"{name} not in the top {k} for {query!r}: {[h.text for h in hits]}")


def document(loaded: Any, name: str) -> Document:
    container, ids = loaded
    with container.sessions() as s:
        d = s.get(Document, ids[name])
        assert d is not None
        return d


FAILURES = {
    "locked.pdf": "password-protected",
    "blank-scan.png": "OCR found no text",
    "legacy.doc": "legacy",
}


def test_every_document_a_user_expects_to_work_is_ready(loaded: Any) -> None:
    for name in corpus():
        d = document(loaded, name)
        if name in FAILURES:
            assert d.status == DocumentStatus.FAILED, name
            assert FAILURES[name] in (d.error or ""), (name, d.error)
            assert "internal error" not in (d.error or "")
        else:
            assert d.status == DocumentStatus.READY, (name, d.error)


@pytest.mark.parametrize(
    ("name", "query", "page", "needle"),
    [
        ("scanned-contract.pdf", "how fast does the supplier deliver", 2, "ten business days"),
        ("screenshots.pptx", "where do visitors collect badges", 2, "north reception desk"),
        ("whiteboard.jpg", "who is the release captain", None, "release captain"),
        ("fax.tiff", "is water damage covered", 2, "water damage"),
    ],
)
def test_scans_and_pictures_are_found_on_their_page_marked_as_ocr(
    loaded: Any, name: str, query: str, page: int | None, needle: str
) -> None:
    hit = find(loaded, query, name)
    assert hit.page == page
    assert hit.ocr
    assert needle in " ".join(hit.text.split()).lower()


def test_structure_survives(loaded: Any) -> None:
    assert (
        "Lisbon | Support | 17" in find(loaded, "Lisbon support headcount", "headcount.docx").text
    )
    assert "Plus | $40 | 25 days" in find(loaded, "Plus plan premium leave", "plans.pdf").text
    right = find(loaded, COLUMN_RIGHT, "budget-columns.pdf", k=3)
    assert COLUMN_RIGHT in " ".join(right.text.split())
    assert "retrieval of the right passages" in find(loaded, "retrieval", "hyphens.pdf").text
    assert "ACME Confidential" in find(loaded, "ACME Confidential", "headed.docx").text
    cafe = find(loaded, "café très bon", "cafe.html").text
    assert "Le café est très bon, dit João au niño." in cafe
    assert not right.ocr


def test_every_new_format_is_searchable(loaded: Any) -> None:
    assert "Country: Japan | Per diem: 160" in find(loaded, "per diem Japan", "rates.xlsx").text
    assert (
        "Room: Borealis | Floor: 5 | Seats: 30" in find(loaded, "Borealis seats", "rooms.csv").text
    )
    assert "Travel policy update" in find(loaded, "travel policy update mail", "notice.eml").text
    assert "cafeteria supplier" in find(loaded, "board approved cafeteria", "minutes.msg").text
    assert "laptop" in find(loaded, "laptop first morning", "handbook.epub").text
    assert "archive room" in find(loaded, "archive room opening", "notes.odt").text
    assert "Osaka" in find(loaded, "launch Osaka", "deck.odp").text
    assert "parking garage" in find(loaded, "parking garage closes", "memo.rtf").text


def test_a_mails_attachment_is_its_own_document_linked_to_it(loaded: Any) -> None:
    container, ids = loaded
    hits = container.search.search("economy class flights travel policy", k=3)
    attachment = next(h for h in hits if h.document_name.endswith("travel-policy.pdf"))
    with container.sessions() as s:
        d = s.get(Document, attachment.document_id)
        assert d is not None
        assert d.parent_id == ids["notice.eml"]
        assert d.status == DocumentStatus.READY
    assert job_of(container, attachment.document_id).error is None


def test_ocr_time_is_kept_apart_from_parsing(loaded: Any) -> None:
    container, ids = loaded
    job = job_of(container, ids["scanned-contract.pdf"])
    assert job.timings["ocr"] > 0
    assert "ocr" not in job_of(container, ids["plans.pdf"]).timings
