"""A mail and its attachments through the real pipeline: each attachment is a
document of its own, linked to the mail, with its own job; it goes when the mail goes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db.models import Document, DocumentStatus, JobStatus
from app.services.audit import AuditQuery
from tests.fixtures import docs
from tests.fixtures.mail import make_eml, make_msg
from tests.unit.ingest_helpers import doc, ingest, job_of, run_jobs


def children(container: Any, parent_id: str) -> dict[str, Document]:
    with container.sessions() as s:
        rows = s.scalars(select(Document).where(Document.parent_id == parent_id))
        return {d.name.rsplit("/", 1)[-1]: d for d in rows}


def hit_names(container: Any, query: str, k: int = 3) -> list[str]:
    return [h.document_name for h in container.search.search(query, k=k)]


def a_mail() -> bytes:
    return make_eml(
        subject="Warehouse relocation plan",
        text="The warehouse moves to Rotterdam in March; the forklifts go first.",
        attachments=[
            ("floorplan.pdf", docs.make_pdf(["The loading dock has twelve bays for trucks."])),
            (
                "checklist.docx",
                docs.make_docx(["Label every pallet with its new aisle number."]),
            ),
            ("setup.exe", b"MZ\x90\x00" + bytes(300)),
        ],
    )


def test_a_mail_and_its_attachments_become_linked_searchable_documents(
    container: Any,
) -> None:
    mail = ingest(container, {"relocation.eml": a_mail()})["relocation.eml"]
    run_jobs(container)
    m = doc(container, mail.document_id)
    assert m.status == DocumentStatus.READY, m.error
    assert m.title == "Warehouse relocation plan"
    assert hit_names(container, "where does the warehouse move", k=1) == ["relocation.eml"]

    kids = children(container, m.id)
    assert set(kids) == {"floorplan.pdf", "checklist.docx", "setup.exe"}
    assert {d.collection_id for d in kids.values()} == {m.collection_id}
    for name in ("floorplan.pdf", "checklist.docx"):
        assert kids[name].status == DocumentStatus.READY, (name, kids[name].error)
        assert job_of(container, kids[name].id).status == JobStatus.SUCCEEDED
    [hit] = container.search.search("how many bays does the loading dock have", k=1)
    assert (hit.document_name, hit.document_id) == (
        "relocation.eml/floorplan.pdf",
        kids["floorplan.pdf"].id,
    )
    exe = job_of(container, kids["setup.exe"].id)
    assert exe.status == JobStatus.FAILED
    assert "Windows executable" in (exe.error or "")
    assert "Windows executable" in (kids["setup.exe"].error or "")
    events = container.audit.query(AuditQuery(action="document.attach"))
    assert sorted((e.target_id, e.via, e.details["parent_id"]) for e in events) == sorted(
        (d.id, "system", m.id) for d in kids.values()
    )


def test_a_mail_with_only_an_html_body_is_searchable_by_that_body(container: Any) -> None:
    data = make_eml(
        subject="Fire drill",
        html="<html><body><h1>Drill</h1><p>Assemble at the <b>north car park</b>.</p>"
        "<script>track()</script></body></html>",
    )
    mail = ingest(container, {"drill.eml": data})["drill.eml"]
    assert doc(container, mail.document_id).status == DocumentStatus.READY
    [hit] = container.search.search("where do we assemble during the drill", k=1)
    assert hit.document_name == "drill.eml"
    assert "Assemble at the north car park." in hit.text
    assert "track()" not in hit.text


def test_an_msg_with_an_attachment_is_ingested_likewise(container: Any) -> None:
    data = make_msg(
        subject="Canteen menu",
        body="Soup of the day is served from noon in the canteen.",
        attachments=[("menu.md", b"# Menu\n\nFriday brings grilled fish with lemon.")],
    )
    mail = ingest(container, {"canteen.msg": data})["canteen.msg"]
    run_jobs(container)
    assert doc(container, mail.document_id).status == DocumentStatus.READY
    [menu] = children(container, mail.document_id).values()
    assert menu.status == DocumentStatus.READY, menu.error
    assert hit_names(container, "when is soup served", k=1) == ["canteen.msg"]
    assert hit_names(container, "what is served on friday", k=1) == ["canteen.msg/menu.md"]


def test_deleting_or_replacing_the_mail_takes_its_attachments_along(container: Any) -> None:
    mail = ingest(container, {"relocation.eml": a_mail()})["relocation.eml"]
    run_jobs(container)
    old_kids = children(container, mail.document_id)

    # Reprocessing makes a new version; its attachments replace the old ones.
    again = container.documents.reprocess(mail.document_id)
    run_jobs(container)
    assert doc(container, mail.document_id) is None
    new_kids = children(container, again.document_id)
    assert set(new_kids) == set(old_kids)
    assert all(doc(container, d.id) is None for d in old_kids.values())
    indexed = container.vectors.document_ids()
    assert not indexed & {d.id for d in old_kids.values()}
    assert new_kids["floorplan.pdf"].id in indexed

    container.documents.delete(
        again.document_id, vectors=container.vectors, lexical=container.lexical
    )
    assert all(doc(container, d.id) is None for d in new_kids.values())
    assert container.vectors.document_ids() == set()
    assert container.lexical.document_ids() == set()
    assert container.search.search("how many bays does the loading dock have", k=3) == []
    for d in new_kids.values():
        assert not container.blobs.exists(d.sha256), d.name


def test_a_file_both_uploaded_and_attached_outlives_the_mail(container: Any) -> None:
    floorplan = docs.make_pdf(["The loading dock has twelve bays for trucks."])
    mail = ingest(container, {"relocation.eml": a_mail()})["relocation.eml"]
    run_jobs(container)
    upload = ingest(container, {"floorplan.pdf": floorplan})["floorplan.pdf"]
    assert upload.outcome == "queued"  # not a duplicate of the mail's attachment
    assert ingest(container, {"copy.pdf": floorplan})["copy.pdf"].outcome == "duplicate"
    container.documents.delete(
        mail.document_id, vectors=container.vectors, lexical=container.lexical
    )
    [hit] = container.search.search("how many bays does the loading dock have", k=1)
    assert (hit.document_name, hit.document_id) == ("floorplan.pdf", upload.document_id)
    assert container.blobs.exists(doc(container, upload.document_id).sha256)


def test_mails_nested_in_mails_stop_at_the_depth_limit(container: Any) -> None:
    data = make_eml(subject="level 4", text="The deepest note mentions a lighthouse.")
    for level in (3, 2, 1, 0):
        data = make_eml(
            subject=f"level {level}", text=f"Forwarded at level {level}.", attached_mails=[data]
        )
    top = ingest(container, {"nested.eml": data})["nested.eml"]
    run_jobs(container)
    chain = [doc(container, top.document_id)]
    while kids := list(children(container, chain[-1].id).values()):
        [kid] = kids
        chain.append(kid)
    # Levels 0-3 are read; the mail attached to level 3 is recorded, not ingested.
    assert [d.status for d in chain] == ["ready"] * 4 + ["failed"]
    assert "3 mails deep" in (chain[-1].error or "")
    hits = container.search.search("which note mentions a lighthouse", k=10)
    assert hits
    assert not any("lighthouse" in h.text for h in hits)
