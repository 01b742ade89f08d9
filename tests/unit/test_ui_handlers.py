"""The UI's handlers called as Gradio would, without a browser: a request carries the
session cookie, and the handlers answer or refuse as the user would see it."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from app.api.deps import SESSION_COOKIE
from app.services.audit import AuditQuery
from tests.fixtures.mail import make_eml
from tests.unit.ingest_helpers import ingest, run_jobs
from ui.mount import handlers
from ui.web import AdminUI, ChatUI

HANDBOOK = "# Leave\n\nEmployees get 25 days of paid vacation per year.\n"


@pytest.fixture
def ui(container: Any) -> tuple[ChatUI, AdminUI]:
    return handlers(lambda: container)


def request_for(container: Any, email: str, *, role: str = "member") -> gr.Request:
    """A request from a browser signed in as ``email`` (a new user with ``role``)."""
    user = container.auth.create_user(email, name=email.split("@")[0], password=None, role=role)
    token = container.auth.start_session(user)
    return gr.Request(cookies={SESSION_COOKIE: token}, client={"host": "10.1.2.3", "port": 1})


@pytest.fixture
def admin_request(container: Any) -> gr.Request:
    return request_for(container, "root@example.com", role="admin")


@pytest.fixture
def member_request(container: Any) -> gr.Request:
    return request_for(container, "mia@example.com")


def choices(update: dict[str, Any]) -> list[tuple[str, str]]:
    return [tuple(c) for c in update["choices"]]  # type: ignore[misc]


def test_no_session_is_told_to_sign_in_again(ui: tuple[ChatUI, AdminUI]) -> None:
    chat, _ = ui
    with pytest.raises(gr.Error, match="sign in again"):
        chat.load(gr.Request(cookies={}))
    with pytest.raises(gr.Error, match="log in again"):
        chat.load(gr.Request(cookies={SESSION_COOKIE: "forged"}))  # expired or made up


def test_a_member_cannot_call_an_admin_handler(
    ui: tuple[ChatUI, AdminUI], container: Any, member_request: gr.Request
) -> None:
    chat, admin = ui
    with pytest.raises(gr.Error, match="needs an admin"):
        admin.create_collection("Secret", member_request)
    with pytest.raises(gr.Error, match="needs an admin"):
        admin.create_user("eve@example.com", "Eve", "", "admin", member_request)
    with pytest.raises(gr.Error, match="needs an admin"):
        admin.status.system_status(member_request)
    assert container.collections.list_collections() == []
    assert [u.email for u in container.auth.list_users()] == ["mia@example.com"]
    # On page load a member gets no admin tab and the console stays empty.
    assert chat.load(member_request)[3]["visible"] is False
    assert all(u == gr.update() for u in admin.fill(member_request))


def test_an_admin_creating_a_collection_sees_it_listed(
    ui: tuple[ChatUI, AdminUI], container: Any, admin_request: gr.Request
) -> None:
    chat, admin = ui
    dropdown, cleared = admin.create_collection("HR", admin_request)
    hr = container.collections.get_by_name("HR")
    assert choices(dropdown) == [("HR", hr.id)]
    assert dropdown["value"] == hr.id
    assert cleared == ""
    header, collections, _, admin_tab = chat.load(admin_request)
    assert "(admin)" in header
    assert choices(collections) == [("HR", hr.id)]
    assert admin_tab["visible"] is True
    events = container.audit.query(AuditQuery(action="collection.create"))
    assert [e.target_id for e in events] == [hr.id]
    with pytest.raises(gr.Error, match="exists"):
        admin.create_collection("HR", admin_request)


def test_a_member_sees_only_the_collections_granted_to_a_group_of_theirs(
    ui: tuple[ChatUI, AdminUI], container: Any, admin_request: gr.Request
) -> None:
    chat, admin = ui
    hr, _ = admin.create_collection("HR", admin_request)
    admin.create_collection("Board", admin_request)
    mia = request_for(container, "mia@example.com")
    assert choices(chat.load(mia)[1]) == []
    group, _, _, people = admin.create_group("staff", admin_request)
    assert "**staff**: (empty)" in people
    staff = choices(group)[0][1]
    mia_id = container.auth.user_by_email("mia@example.com").id
    assert "mia@example.com" in admin.add_member(staff, mia_id, admin_request)
    assert "staff (read)" in admin.set_access(hr["value"], staff, "read", admin_request)
    assert choices(chat.load(mia)[1]) == [("HR", hr["value"])]


def ready(container: Any, collection_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(
        d.status not in ("ready", "failed")
        for d in container.documents.list_documents(collection_id=collection_id)
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.fixture
def handbook(
    ui: tuple[ChatUI, AdminUI], container: Any, admin_request: gr.Request, tmp_path: Path
) -> str:
    """A collection "HR" with the handbook uploaded through the admin console, ready."""
    _, admin = ui
    container.ingestion.start(threads=1)
    cid = admin.create_collection("HR", admin_request)[0]["value"]
    path = tmp_path / "handbook.md"
    path.write_text(HANDBOOK, encoding="utf-8")
    outcome, cleared, _ = admin.upload(cid, [str(path)], admin_request)
    assert "handbook.md: queued" in outcome
    assert cleared is None
    ready(container, cid)
    rows = admin.documents_table(cid, admin_request)
    assert [(r[0], r[1]) for r in rows] == [("handbook.md", "ready")]
    return cid


def test_a_chat_streams_an_answer_with_citations(
    ui: tuple[ChatUI, AdminUI], container: Any, admin_request: gr.Request, handbook: str
) -> None:
    chat, _ = ui
    q = "How many days of paid vacation do employees get?"
    # Gradio sends each step as it comes: copy it before the next one updates it.
    steps = [
        copy.deepcopy(step) for step in chat.answer(q, None, [handbook], [], [], admin_request)
    ]
    box, chat_id, history, ids, _, _, _ = steps[0]
    # The question shows at once, before any of the answer.
    assert box == ""
    assert history == [{"role": "user", "content": q}, {"role": "assistant", "content": ""}]
    assert chat_id
    _, _, history, ids, sources, notice, sessions = steps[-1]
    assert "25 days" in history[-1]["content"]
    assert ids[-1] is not None
    (doc,) = container.documents.list_documents(collection_id=handbook)
    assert f"[1] <a href='/api/v1/documents/{doc.id}/file'" in sources
    assert "<mark>Employees get 25 days of paid vacation per year</mark>" in sources
    assert notice == ""
    assert choices(sessions)[0][1] == chat_id
    # Reopening the chat brings back its history and the last answer's sources.
    reopened = chat.open_chat(chat_id, admin_request)
    assert reopened[1] == history
    assert reopened[3] == sources


def test_feedback_goes_on_answers_only(
    ui: tuple[ChatUI, AdminUI], container: Any, admin_request: gr.Request, handbook: str
) -> None:
    chat, _ = ui
    *_, last = chat.answer("How much paid vacation?", None, [handbook], [], [], admin_request)
    ids = last[3]
    question = gr.LikeData(None, {"index": 0, "value": "q", "liked": True})
    with pytest.raises(gr.Error, match="Feedback goes on answers"):
        chat.like(ids, "", question, admin_request)
    answer = gr.LikeData(None, {"index": 1, "value": "a", "liked": False})
    saved, comment = chat.like(ids, "too vague", answer, admin_request)
    assert saved.startswith("Thanks")
    assert comment == ""
    (event,) = container.audit.query(AuditQuery(action="feedback"))
    assert (event.target_id, event.details) == (ids[1], {"rating": -1, "model_version": None})
    # A thumbs-down that carries the right answer is told it will train the model.
    saved, _ = chat.like(ids, "Correction: 25 days a year [1].", answer, admin_request)
    assert "correction was saved for training" in saved


def test_another_users_chat_is_not_theirs_to_open(
    ui: tuple[ChatUI, AdminUI], container: Any, admin_request: gr.Request, handbook: str
) -> None:
    chat, _ = ui
    *_, last = chat.answer("How much paid vacation?", None, [handbook], [], [], admin_request)
    mia = request_for(container, "mia@example.com")
    with pytest.raises(gr.Error):
        chat.open_chat(last[1], mia)
    with pytest.raises(gr.Error):
        chat.rename(last[1], "mine now", mia)


def test_reindexing_and_deleting_from_the_console_are_audited(
    ui: tuple[ChatUI, AdminUI],
    container: Any,
    admin_request: gr.Request,
    member_request: gr.Request,
    handbook: str,
) -> None:
    from app.services.audit import AuditQuery

    _, admin = ui
    [row] = admin.documents_table(handbook, admin_request)
    with pytest.raises(gr.Error):  # a member without access: refused, and on record
        admin.reindex(handbook, row[-1], member_request)
    admin.reindex(handbook, row[-1], admin_request)
    ready(container, handbook)
    events = container.audit.query(AuditQuery(action="document.reindex"))
    assert sorted((e.outcome, e.via, e.ip) for e in events) == [
        ("denied", "session", "10.1.2.3"),
        ("ok", "session", "10.1.2.3"),
    ]
    [new] = admin.documents_table(handbook, admin_request)
    assert new[-1] != row[-1]  # the new version replaced the old one
    admin.delete_document(handbook, new[-1], admin_request)
    [deleted] = container.audit.query(AuditQuery(action="document.delete"))
    assert (deleted.target_id, deleted.outcome, deleted.details["name"]) == (
        new[-1],
        "ok",
        "handbook.md",
    )
    assert admin.documents_table(handbook, admin_request) == []


def test_the_documents_table_names_the_mail_an_attachment_came_with(
    ui: tuple[ChatUI, AdminUI], container: Any, admin_request: gr.Request
) -> None:
    _, admin = ui
    cid = admin.create_collection("Mail", admin_request)[0]["value"]
    mail = make_eml(
        subject="Rota", text="The rota is attached.", attachments=[("rota.md", b"# Rota\n\nAnn.")]
    )
    ingest(container, {"rota.eml": mail}, collection="Mail")
    run_jobs(container)
    rows = {r[0]: r for r in admin.documents_table(cid, admin_request)}
    assert rows["rota.eml/rota.md"][-2] == "rota.eml"
    assert rows["rota.eml"][-2] == ""
