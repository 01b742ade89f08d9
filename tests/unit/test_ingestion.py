"""Documents in, searchable cited chunks out: the whole pipeline on real files."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from app.db.models import DocumentStatus, JobStatus
from tests.fixtures import docs
from tests.unit.ingest_helpers import add_files, chunk_rows, doc, ingest, job_of, run_jobs

FILLER = (
    "This paragraph is ordinary handbook prose about office life, meetings, "
    "kitchens and the shared calendar, and it says nothing in particular."
)


def mixed_folder() -> dict[str, bytes]:
    return {
        "handbook.pdf": docs.make_pdf(
            [
                f"# Welcome\n\n{FILLER}",
                f"# Time off\n\n{FILLER}\n\nNew employees receive twenty-five vacation days "
                "per year, accrued monthly.",
                f"# Expenses\n\n{FILLER}\n\nSubmit expense claims within thirty days of purchase.",
            ],
            title="Employee Handbook",
        ),
        "policy.docx": docs.make_docx(
            [
                ("h1", "Passwords"),
                "Passwords must be at least fourteen characters long.",
                ("table", [["Account", "Rotation"], ["Admin", "90 days"]]),
            ],
            title="IT Policy",
        ),
        "kickoff.pptx": docs.make_pptx(
            [{"title": "Quarterly kickoff", "bullets": ["The offsite is held in Lisbon in May"]}]
        ),
        "wiki.html": docs.make_html(
            "<h1>Parking</h1><p>Visitors park in bay C behind the warehouse.</p>", title="Wiki"
        ),
        "onboarding.md": docs.make_markdown(
            "# Onboarding\n\n## First day\n\nCollect your badge from reception at nine."
        ),
    }


def top(container: Any, query: str, k: int = 1) -> list[Any]:
    return container.search.search(query, k=k)


def test_every_format_becomes_searchable(container: Any) -> None:
    results = ingest(container, mixed_folder())
    for name, r in results.items():
        d = doc(container, r.document_id)
        assert d is not None
        assert d.status == DocumentStatus.READY, (name, d.error)
        assert d.chunk_count > 0
        assert set(d.timings) == {"parse", "chunk", "embed", "index"}
        job = job_of(container, r.document_id)
        assert (job.status, job.stage, job.progress) == (JobStatus.SUCCEEDED, "done", 1.0)
    expectations = {
        "How many vacation days do new employees get?": ("handbook.pdf", 2),
        "deadline for expense claims": ("handbook.pdf", 3),
        "minimum password length": ("policy.docx", None),
        "Where is the offsite?": ("kickoff.pptx", 1),
        "where do visitors park": ("wiki.html", None),
        "where do I collect my badge": ("onboarding.md", None),
    }
    for query, (name, page) in expectations.items():
        [hit] = top(container, query)
        assert (hit.document_name, hit.page) == (name, page), query


def test_a_sentence_from_page_n_is_found_with_page_n(container: Any) -> None:
    pages = [
        f"{FILLER}\n\nFact {i}: the meeting room on floor {i} is named after a river."
        for i in range(1, 8)
    ]
    pages[4] = f"{FILLER}\n\nThe fire assembly point is the north car park by the oak tree."
    ingest(container, {"long.pdf": docs.make_pdf(pages)})
    [hit] = top(container, "Where is the fire assembly point?")
    assert hit.page == 5
    assert "north car park" in hit.text
    # The citation span is verifiable against the stored page text.
    with container.sessions() as s:
        from app.db.models import Page

        page = s.get(Page, (hit.document_id, 5))
    assert page.text[hit.char_start : hit.char_end] == hit.text


BAD_INPUTS = {
    "encrypted.pdf": (lambda: docs.make_pdf(["secret"], password="pw"), "password"),
    "corrupt.pdf": (docs.corrupt_pdf, "PDF"),
    "corrupt.docx": (docs.corrupt_docx, "DOCX"),
    "corrupt.pptx": (docs.corrupt_pptx, "PPTX"),
    "empty.txt": (lambda: b"", "empty"),
    "scan.pdf": (docs.scanned_pdf, "text"),
    "bomb.docx": (lambda: docs.zip_bomb_docx(40), "zip bomb"),
    "binary.md": (docs.binary_named_md, "binary"),
    "garbled.txt": (docs.undecodable_text, "encoding"),
    "legacy.doc": (docs.ole2_doc, "legacy"),
    "image.png": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(200), "not a valid image"),
}


def test_bad_inputs_fail_with_reasons_and_the_rest_ingests(container: Any) -> None:
    files = {name: make() for name, (make, _) in BAD_INPUTS.items()}
    files["big.txt"] = b"word " * (6 * 1024 * 1024 // 5)  # over the 5 MB test limit
    files["good.md"] = docs.make_markdown("# Fine\n\nThis one is perfectly fine to ingest.")
    results = ingest(container, files)
    for name, (_, needle) in {**BAD_INPUTS, "big.txt": (None, "limit")}.items():
        d = doc(container, results[name].document_id)
        job = job_of(container, d.id)
        assert d.status == DocumentStatus.FAILED, name
        assert job.status == JobStatus.FAILED, name
        assert needle.lower() in (d.error or "").lower(), (name, d.error)
        assert job.error == d.error
        assert "Traceback" not in d.error, (name, d.error)
        assert "internal error" not in d.error, (name, d.error)
        assert chunk_rows(container, d.id) == 0, name
        assert d.id not in container.vectors.document_ids(), name
        assert d.id not in container.lexical.document_ids(), name
    good = doc(container, results["good.md"].document_id)
    assert good.status == DocumentStatus.READY
    assert container.vectors.document_ids() == {good.id}
    assert container.lexical.document_ids() == {good.id}


def test_a_document_is_stored_in_batches_and_published_at_once(
    container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rooms = [f"# Room {i}\n\nRoom {i} is on floor {i + 1}, next to kitchen {i}." for i in range(10)]
    chunker = container.chunker
    monkeypatch.setattr(
        chunker, "batches", functools.partial(type(chunker).batches, chunker, size=4)
    )
    embedded: list[int] = []
    searched_meanwhile: list[list[Any]] = []
    original = container.embedder.embed_documents

    def spy(texts: Any, **kw: Any) -> Any:
        embedded.append(len(texts))
        if len(embedded) == 2:  # the first batch is stored and indexed by now
            searched_meanwhile.append(top(container, "which floor is room 0 on", k=5))
        return original(texts, **kw)

    monkeypatch.setattr(container.embedder, "embed_documents", spy)
    r = ingest(container, {"rooms.md": docs.make_markdown("\n\n".join(rooms))})["rooms.md"]
    assert embedded == [4, 4, 2]
    assert searched_meanwhile == [[]]  # never half-visible
    d = doc(container, r.document_id)
    assert (d.status, d.chunk_count) == (DocumentStatus.READY, 10)
    hits = top(container, "which floor is room 0 on", k=10)
    assert len(hits) == 10
    assert "Room 0 is on floor 1" in hits[0].text


def test_same_content_is_not_embedded_twice(container: Any) -> None:
    data = docs.make_markdown("# Canteen\n\nLunch is served from noon.")
    first = ingest(container, {"canteen.md": data})["canteen.md"]
    again = add_files(container, {"copy-of-canteen.md": data})["copy-of-canteen.md"]
    assert again.outcome == "duplicate"
    assert again.document_id == first.document_id
    assert run_jobs(container) == 0
    # Another collection is another knowledge base: it gets its own copy.
    other = ingest(container, {"canteen.md": data}, collection="other")["canteen.md"]
    assert other.outcome == "queued"
    assert doc(container, other.document_id).status == DocumentStatus.READY


def test_new_version_replaces_the_old_one(container: Any) -> None:
    v1 = ingest(container, {"hours.md": docs.make_markdown("Office opens at eight.")})["hours.md"]
    [hit] = top(container, "when does the office open")
    assert "eight" in hit.text
    v2 = add_files(container, {"hours.md": docs.make_markdown("Office opens at ten.")})["hours.md"]
    assert v2.outcome == "new_version"
    # Until v2 is ready, v1 keeps answering.
    [hit] = top(container, "when does the office open")
    assert "eight" in hit.text
    run_jobs(container)
    assert doc(container, v1.document_id) is None
    d2 = doc(container, v2.document_id)
    assert (d2.status, d2.version) == (DocumentStatus.READY, 2)
    hits = top(container, "when does the office open", k=5)
    assert [h.text for h in hits] == ["Office opens at ten."]
    assert container.vectors.document_ids() == {v2.document_id}
    assert container.lexical.document_ids() == {v2.document_id}


def test_delete_removes_rows_vectors_and_blob(container: Any) -> None:
    data = docs.make_markdown("# Bikes\n\nBikes go in the basement racks.")
    r = ingest(container, {"bikes.md": data})["bikes.md"]
    sha = doc(container, r.document_id).sha256
    assert container.blobs.exists(sha)
    container.documents.delete(r.document_id, vectors=container.vectors, lexical=container.lexical)
    assert doc(container, r.document_id) is None
    assert chunk_rows(container, r.document_id) == 0
    assert r.document_id not in container.vectors.document_ids()
    assert r.document_id not in container.lexical.document_ids()
    assert not container.blobs.exists(sha)
    assert top(container, "where do bikes go") == []


def test_deleting_during_ingestion_leaves_nothing(container: Any) -> None:
    r = add_files(container, {"x.md": docs.make_markdown("Temporary note about parking.")})["x.md"]
    job_id = container.job_store.claim_next()
    container.documents.delete(r.document_id, vectors=container.vectors, lexical=container.lexical)
    container.runner.run(job_id)  # notices the document is gone and stops
    assert container.vectors.document_ids() == set()
    assert chunk_rows(container, r.document_id) == 0


def test_interrupted_job_resumes_and_orphan_vectors_are_removed(container: Any) -> None:
    files = {"a.md": docs.make_markdown("Alpha team sits on floor three.")}
    r = add_files(container, files)["a.md"]
    # Simulate a worker killed mid-index: the job is claimed ("running"), chunks and
    # vectors were written, but the document was never published.
    job_id = container.job_store.claim_next()
    spec = container.job_store.load(job_id)
    prepared = container.pipeline.prepare(files["a.md"], filename="a.md", progress=lambda *_: None)
    from ingestion.chunking import chunk_id
    from retrieval.vectorstores.base import VectorRecord

    ids = [chunk_id(spec.document_id, c.ordinal, c.content_hash) for c in prepared.chunks]
    container.job_store.save_pages(spec, mime=prepared.mime, parsed=prepared.parsed)
    container.job_store.add_chunks(spec, chunks=prepared.chunks, chunk_ids=ids)
    container.vectors.upsert(
        [
            VectorRecord(i, spec.document_id, spec.collection_id, prepared.vectors[n])
            for n, i in enumerate(ids)
        ]
    )
    container.vectors.upsert(
        [VectorRecord("ghost", "deleted-doc", spec.collection_id, prepared.vectors[0])]
    )
    container.vectors.flush()
    assert top(container, "where does the alpha team sit") == []  # never half-visible

    # "Restart": the new process owns the data dir, so every running job is dead.
    assert container.ingestion.start(threads=1)
    assert "deleted-doc" not in container.vectors.document_ids()
    container.ingestion.stop()  # stop the pool; finish the resumed job deterministically below
    run_jobs(container)
    d = doc(container, r.document_id)
    assert d.status == DocumentStatus.READY
    job = job_of(container, r.document_id)
    assert job.attempts == 2
    [hit] = top(container, "where does the alpha team sit")
    assert hit.document_id == r.document_id


def test_transient_errors_are_retried_then_fail(
    container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    original = container.embedder.embed_documents

    def flaky(texts: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA hiccup")
        return original(texts, **kw)

    monkeypatch.setattr(container.embedder, "embed_documents", flaky)
    r = ingest(container, {"f.md": docs.make_markdown("Flaky but fine in the end.")})["f.md"]
    assert doc(container, r.document_id).status == DocumentStatus.READY
    assert job_of(container, r.document_id).attempts == 2


def test_worker_pool_survives_bad_files_and_ingests_the_rest(container: Any) -> None:
    files = {
        f"note-{i}.md": docs.make_markdown(f"Note {i} mentions locker {i * 7}.") for i in range(6)
    }
    files["broken.pdf"] = docs.corrupt_pdf()
    files["bomb.docx"] = docs.zip_bomb_docx(40)
    results = add_files(container, files)
    assert container.ingestion.start(threads=2)
    import time

    deadline = time.monotonic() + 60
    ids = [r.job_id for r in results.values()]
    while time.monotonic() < deadline:
        counts = container.documents.job_counts(ids)
        if sum(counts.get(s, 0) for s in (JobStatus.SUCCEEDED, JobStatus.FAILED)) == len(ids):
            break
        time.sleep(0.1)
    assert container.documents.job_counts(ids) == {JobStatus.SUCCEEDED: 6, JobStatus.FAILED: 2}
    assert container.documents.chunk_count() == 6
    # The pool is still alive: a file queued afterwards is picked up.
    late = add_files(container, {"late.md": docs.make_markdown("Late note about the lift.")})
    container.ingestion.wake()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if doc(container, late["late.md"].document_id).status == DocumentStatus.READY:
            break
        time.sleep(0.1)
    assert doc(container, late["late.md"].document_id).status == DocumentStatus.READY
    # A ready document is in the BM25 index at once: nothing is built on the first search.
    hits = container.lexical.search("lift", k=5)
    assert [h.document_id for h in hits] == [late["late.md"].document_id]


def test_the_idle_hook_runs_once_each_time_the_queue_drains() -> None:
    import threading

    from ingestion.queues.inline import InlineJobQueue

    queue = ["a", "b"]
    ran: list[str] = []
    idle = threading.Event()
    calls: list[int] = []
    lock = threading.Lock()

    def claim() -> str | None:
        with lock:
            return queue.pop(0) if queue else None

    def on_idle() -> None:
        calls.append(len(ran))
        idle.set()

    pool = InlineJobQueue(claim, ran.append, workers=2, poll_seconds=0.05, on_idle=on_idle)
    pool.start()
    try:
        assert idle.wait(10)
        idle.clear()
        with lock:
            queue.append("c")
        pool.wake()
        assert idle.wait(10)
        import time

        time.sleep(0.3)  # idle polls that find nothing new do not call it again
    finally:
        pool.stop()
    assert sorted(ran) == ["a", "b", "c"]
    assert calls == [2, 3]
