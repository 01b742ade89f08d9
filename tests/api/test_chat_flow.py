"""The employee path: collections, upload, ingestion status, search, chat, feedback."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.db.migrate import head_revision
from app.samples import HERE
from tests.api.conftest import group_id, sse_events, upload, wait_ready
from tests.fixtures.mail import make_eml

QUESTION = "How many vacation days do new employees get?"


@pytest.fixture
def hr(admin: TestClient, member: TestClient) -> str:
    """Collection "HR" with the sample handbook, readable by the group "staff"."""
    cid = admin.post("/api/v1/collections", json={"name": "HR"}).json()["id"]
    r = admin.put(
        f"/api/v1/collections/{cid}/access",
        json={"grants": {group_id(admin, "staff"): "read"}},
    )
    assert r.status_code == 200
    upload(admin, cid, {"employee_handbook.pdf": (HERE / "employee_handbook.pdf").read_bytes()})
    docs = wait_ready(admin, cid)
    assert [(d["status"], d["page_count"]) for d in docs] == [("ready", 10)]
    return str(cid)


def test_member_sees_only_granted_collections(
    hr: str, admin: TestClient, member: TestClient
) -> None:
    admin.post("/api/v1/collections", json={"name": "Board"})
    names = {c["name"]: c["access"] for c in member.get("/api/v1/collections").json()}
    assert names == {"HR": "read"}
    assert {c["name"] for c in admin.get("/api/v1/collections").json()} == {"HR", "Board"}


def test_upload_reports_progress_and_bad_files_fail_with_reasons(
    hr: str, admin: TestClient
) -> None:
    out = upload(
        admin,
        hr,
        {
            "notes.md": b"# Parking\n\nVisitor parking is on level -2 of Lumen House.",
            "broken.pdf": b"%PDF-1.7 this is not really a pdf",
            "empty.txt": b"",
        },
    )
    assert [o["outcome"] for o in out] == ["queued", "queued", "queued"]
    docs = {d["name"]: d for d in wait_ready(admin, hr)}
    assert docs["notes.md"]["status"] == "ready"
    assert docs["notes.md"]["timings"]
    assert docs["broken.pdf"]["status"] == "failed"
    assert docs["broken.pdf"]["error"]
    assert docs["empty.txt"]["status"] == "failed"
    assert "empty" in docs["empty.txt"]["error"].lower()
    # Uploading the same bytes again is recognised.
    again = upload(
        admin, hr, {"notes.md": b"# Parking\n\nVisitor parking is on level -2 of Lumen House."}
    )
    assert again[0]["outcome"] == "duplicate"


def test_member_cannot_upload_to_a_read_only_collection(hr: str, member: TestClient) -> None:
    r = member.post(
        f"/api/v1/collections/{hr}/documents", files=[("files", ("x.md", b"# x\n\nhello there"))]
    )
    assert r.status_code == 403


def test_search_returns_ranked_chunks_with_pages(hr: str, member: TestClient) -> None:
    hits = member.post("/api/v1/search", json={"query": "vacation days carry over", "k": 3}).json()
    assert hits
    assert hits[0]["document_name"] == "employee_handbook.pdf"
    assert hits[0]["page"] == 4
    assert hits[0]["collection"] == "HR"


def test_a_question_gets_a_cited_answer_and_is_kept_in_history(hr: str, member: TestClient) -> None:
    chat = member.post("/api/v1/chats", json={}).json()
    r = member.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert "25 days" in answer["message"]["content"]
    assert not answer["abstained"]
    cited = answer["message"]["citations"][0]
    assert (cited["title"].startswith("Northwind"), cited["page"]) == (True, 4)
    assert "25 days" in cited["quote"]
    history = member.get(f"/api/v1/chats/{chat['id']}/messages").json()
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == QUESTION
    assert history[1]["citations"] == answer["message"]["citations"]
    provenance = history[1]["meta"]["provenance"]
    assert provenance["prompt_version"]
    assert all(r["content_hash"] for r in provenance["retrieved"])
    # The first question names the chat.
    assert member.get(f"/api/v1/chats/{chat['id']}").json()["title"] == QUESTION


def test_the_answer_streams_tokens_then_citations_then_done(hr: str, member: TestClient) -> None:
    chat = member.post("/api/v1/chats", json={"title": "Leave"}).json()
    r = member.post(
        f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION, "stream": True}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    kinds = [e for e, _ in events]
    assert kinds[0] == "token"
    assert kinds[-2:] == ["citations", "done"]
    assert set(kinds[:-2]) == {"token"}
    text = "".join(json.loads(d)["text"] for e, d in events if e == "token")
    assert "25 days" in text
    citations = json.loads(events[-2][1])
    assert citations[0]["page"] == 4
    done = json.loads(events[-1][1])
    stored = member.get(f"/api/v1/chats/{chat['id']}/messages").json()
    assert done["message_id"] == stored[1]["id"]
    assert stored[1]["content"] == text


def test_the_same_question_in_another_chat_comes_from_the_cache_like_any_answer(
    hr: str, member: TestClient, admin: TestClient
) -> None:
    chat = member.post("/api/v1/chats", json={}).json()
    first = member.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION})
    first_message = first.json()["message"]
    assert first_message["meta"]["provenance"]["cache"] == "miss"

    chat = member.post("/api/v1/chats", json={}).json()
    asked = "how many vacation days do NEW employees get"
    r = member.post(
        f"/api/v1/chats/{chat['id']}/messages", json={"question": asked, "stream": True}
    )
    events = sse_events(r.text)
    kinds = [e for e, _ in events]
    # Streamed as tokens, then the same verified citations.
    assert kinds[-2:] == ["citations", "done"]
    assert set(kinds[:-2]) == {"token"}
    assert len(kinds) > 3
    text = "".join(json.loads(d)["text"] for e, d in events if e == "token")
    assert text == first_message["content"]
    assert json.loads(events[-2][1]) == first_message["citations"]
    stored = member.get(f"/api/v1/chats/{chat['id']}/messages").json()
    assert [(m["role"], m["content"]) for m in stored] == [("user", asked), ("assistant", text)]
    assert stored[1]["meta"]["provenance"]["cache"] == "hit"
    assert (
        stored[1]["meta"]["provenance"]["retrieved"]
        == first_message["meta"]["provenance"]["retrieved"]
    )
    vote = member.post(f"/api/v1/messages/{stored[1]['id']}/feedback", json={"rating": 1})
    assert vote.status_code == 200
    metrics = admin.get("/metrics").text
    assert 'lantern_answer_cache_total{result="hit"} 1.0' in metrics
    assert 'lantern_answer_cache_total{result="miss"} 1.0' in metrics


def test_feedback_on_an_answer(hr: str, member: TestClient, admin: TestClient) -> None:
    chat = member.post("/api/v1/chats", json={}).json()
    msg = member.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION}).json()
    mid = msg["message"]["id"]
    r = member.post(f"/api/v1/messages/{mid}/feedback", json={"rating": -1, "comment": "too long"})
    assert r.json()["rating"] == -1
    r = member.post(f"/api/v1/messages/{mid}/feedback", json={"rating": 1})
    assert (r.json()["rating"], r.json()["comment"]) == (1, "")
    # Someone else's answer cannot be rated (it does not exist for them).
    assert admin.post(f"/api/v1/messages/{mid}/feedback", json={"rating": 1}).status_code == 404
    # Questions are not rated.
    qid = msg["question_message_id"]
    assert member.post(f"/api/v1/messages/{qid}/feedback", json={"rating": 1}).status_code == 400


def test_chats_are_private_and_can_be_renamed_and_deleted(
    hr: str, member: TestClient, admin: TestClient
) -> None:
    chat = member.post("/api/v1/chats", json={"title": "Mine"}).json()
    assert admin.get(f"/api/v1/chats/{chat['id']}").status_code == 404
    assert admin.get(f"/api/v1/chats/{chat['id']}/messages").status_code == 404
    assert (
        member.patch(f"/api/v1/chats/{chat['id']}", json={"title": "Renamed"}).json()["title"]
        == "Renamed"
    )
    assert [c["title"] for c in member.get("/api/v1/chats").json()] == ["Renamed"]
    assert member.delete(f"/api/v1/chats/{chat['id']}").status_code == 204
    assert member.get("/api/v1/chats").json() == []


def test_reindex_keeps_the_document_searchable_and_replaces_it(hr: str, admin: TestClient) -> None:
    doc = admin.get(f"/api/v1/collections/{hr}/documents").json()[0]
    r = admin.post(f"/api/v1/documents/{doc['id']}/reindex")
    assert r.status_code == 202
    docs = wait_ready(admin, hr)
    assert [(d["version"], d["status"]) for d in docs] == [(2, "ready")]
    assert admin.get(f"/api/v1/documents/{doc['id']}").status_code == 404


def test_deleting_a_document_removes_it_from_answers(
    hr: str, admin: TestClient, member: TestClient
) -> None:
    doc = admin.get(f"/api/v1/collections/{hr}/documents").json()[0]
    assert admin.delete(f"/api/v1/documents/{doc['id']}").status_code == 204
    assert member.post("/api/v1/search", json={"query": "vacation days"}).json() == []
    audit = admin.get("/api/v1/audit", params={"action": "document.delete"}).json()
    assert audit[0]["target_id"] == doc["id"]


def test_metrics_count_requests_answers_and_ingestion_without_user_text(
    hr: str, member: TestClient, admin: TestClient
) -> None:
    chat = member.post("/api/v1/chats", json={}).json()
    member.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION})
    text = admin.get("/metrics").text
    route = 'route="/api/v1/chats/{chat_id}/messages"'
    assert f'lantern_http_request_seconds_count{{method="POST",{route},status="200"}} 1.0' in text
    assert 'lantern_answers_total{outcome="answered",version="base"} 1.0' in text
    assert 'lantern_answer_ttft_seconds_count{version="base"} 1.0' in text
    assert 'lantern_ingestion_jobs_total{outcome="succeeded"} 1.0' in text
    assert 'lantern_ingestion_stage_seconds_count{stage="embed"} 1.0' in text
    assert 'lantern_ingestion_queue_depth{status="queued"} 0.0' in text
    for private in (chat["id"], "vacation", "member@example.com"):
        assert private not in text


def test_a_chat_can_be_limited_to_some_collections(
    hr: str, admin: TestClient, member: TestClient
) -> None:
    other = admin.post("/api/v1/collections", json={"name": "Other"}).json()["id"]
    admin.put(
        f"/api/v1/collections/{other}/access", json={"grants": {group_id(admin, "staff"): "read"}}
    )
    chat = member.post("/api/v1/chats", json={"collection_ids": [other]}).json()
    r = member.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION}).json()
    assert r["abstained"]  # the handbook is not in "Other"
    assert (
        member.patch(f"/api/v1/chats/{chat['id']}", json={"collection_ids": [hr]}).status_code
        == 200
    )
    r = member.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION}).json()
    assert "25 days" in r["message"]["content"]


def test_documents_filter_by_status_and_ready_reports_the_schema(
    hr: str, admin: TestClient
) -> None:
    upload(admin, hr, {"empty.txt": b""})
    wait_ready(admin, hr)
    failed = admin.get(f"/api/v1/collections/{hr}/documents", params={"status": "failed"}).json()
    assert [d["name"] for d in failed] == ["empty.txt"]
    doc = admin.get(f"/api/v1/documents/{failed[0]['id']}").json()
    assert doc["status"] == "failed"
    assert doc["error"]
    ready = admin.get("/ready").json()
    # The schema the migrations lead to: the newest revision there is.
    assert ready == {"status": "ready", "schema": head_revision()}
    health = admin.get("/health").json()
    assert health["embedding_fallback"] is True  # the bundled MiniLM, offline
    assert "fallback" in health["warnings"][0]


def test_a_mails_attachment_is_listed_with_its_mail_and_readable_like_it(
    hr: str, admin: TestClient, member: TestClient
) -> None:
    mail = make_eml(
        subject="Bike storage",
        text="Bikes are stored in the courtyard shed.",
        attachments=[("shed.md", b"# Shed\n\nThe shed code is changed every quarter.")],
    )
    [up] = upload(admin, hr, {"bikes.eml": mail})
    docs = {d["name"]: d for d in wait_ready(admin, hr)}
    shed = docs["bikes.eml/shed.md"]
    assert (shed["status"], shed["parent_id"]) == ("ready", up["document_id"])
    assert docs["bikes.eml"]["parent_id"] is None
    # The member who may read the mail's collection finds the attachment too.
    hits = member.post("/api/v1/search", json={"query": "how often is the shed code changed"})
    assert hits.json()[0]["document_name"] == "bikes.eml/shed.md"
