"""The audit log records what really happened, whichever entry point it came through:
a refused question is ``denied``, not asked; a member trying an admin action is
``denied``; a streamed answer the caller abandons is ``cancelled``."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import MEMBER, upload, wait_ready

QUESTION = "How many vacation days do new employees get?"
ROOT = Path(__file__).resolve().parents[2]


def events(admin: TestClient, **query: str) -> list[dict[str, Any]]:
    r = admin.get("/api/v1/audit", params={"limit": 1000, **query})
    assert r.status_code == 200, r.text
    return list(r.json())


def test_a_question_in_someone_elses_chat_is_audited_as_denied(
    admin: TestClient, member: TestClient
) -> None:
    chat = admin.post("/api/v1/chats", json={}).json()
    r = member.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION})
    assert r.status_code == 404
    [event] = events(admin, action="question")
    assert event["outcome"] == "denied"
    assert event["details"]["error"] == "not_found"
    assert event["details"]["chars"] == len(QUESTION)
    assert QUESTION not in str(event)  # the length, never the text


def test_a_question_over_the_rate_limit_is_denied_and_an_answered_one_ok(
    rebuilt: Any, admin: TestClient, member: TestClient
) -> None:
    from app.api.app import create_app

    # 12 a minute: a chat (1) and two questions (5 each) fit; a third question does not.
    app = create_app(container=rebuilt(server={"rate_limit_per_minute": 12}))
    with TestClient(app, cookies=dict(member.cookies)) as member:
        chat = member.post("/api/v1/chats", json={}).json()
        codes = [
            member.post(
                f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION}
            ).status_code
            for _ in range(3)
        ]
        assert codes[0] == 200
        assert 429 in codes
        outcomes = [e["outcome"] for e in reversed(events(admin, action="question"))]
        assert outcomes[0] == "ok"
        assert "denied" in outcomes
        assert len(outcomes) == len(codes)


def test_an_answered_question_records_how_it_ended(
    container: Any, admin: TestClient, member: TestClient
) -> None:
    cid = admin.post("/api/v1/collections", json={"name": "Notes"}).json()["id"]
    upload(admin, cid, {"leave.md": b"# Leave\n\nNew employees get 25 vacation days a year.\n"})
    wait_ready(admin, cid)
    chat = admin.post("/api/v1/chats", json={}).json()
    r = admin.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": QUESTION})
    assert r.status_code == 200
    [event] = events(admin, action="question")
    assert (event["outcome"], event["target_type"], event["target_id"]) == (
        "ok",
        "chat",
        chat["id"],
    )
    assert event["details"]["api"] == "chat"
    assert event["details"]["finish_reason"] == "stop"
    assert event["details"]["provenance"]["retrieved"]


def test_a_completion_for_an_unreadable_collection_is_audited_as_denied(
    admin: TestClient, member: TestClient
) -> None:
    admin.post("/api/v1/collections", json={"name": "Board"})
    r = member.post(
        "/v1/chat/completions",
        json={"model": "lantern:Board", "messages": [{"role": "user", "content": QUESTION}]},
    )
    assert r.status_code == 404
    [event] = events(admin, action="question")
    assert (event["outcome"], event["details"]["api"]) == ("denied", "openai")


def test_a_member_trying_admin_actions_is_refused_and_audited(
    admin: TestClient, member: TestClient
) -> None:
    me = member.get("/api/v1/me").json()
    r = member.post("/api/v1/users", json={"email": "eve@example.com", "password": "x" * 12})
    assert r.status_code == 403
    assert member.post("/api/v1/collections", json={"name": "Mine"}).status_code == 403
    denied = events(admin, outcome="denied", actor_id=me["id"])
    assert {e["action"] for e in denied} == {"user.create", "collection.create"}
    assert all(e["details"]["error"] == "forbidden" for e in denied)
    emails = [u["email"] for u in admin.get("/api/v1/users").json()]
    assert "eve@example.com" not in emails
    assert MEMBER[0] in emails


def test_an_upload_without_write_access_is_audited_as_denied(
    admin: TestClient, member: TestClient
) -> None:
    cid = admin.post("/api/v1/collections", json={"name": "Board"}).json()["id"]
    r = member.post(
        f"/api/v1/collections/{cid}/documents", files=[("files", ("a.md", b"# A\n\nText.\n"))]
    )
    assert r.status_code == 404
    [event] = events(admin, action="document.upload")
    assert (event["outcome"], event["target_id"]) == ("denied", cid)


def test_no_entry_point_writes_the_audit_log_itself() -> None:
    """Routes, UI and CLI parse, call a service and present: the audit record is the
    service's, so every entry point writes the same one."""
    offenders = []
    for folder in ("app/api", "app/cli", "ui"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in ("record", "event"):
                    owner = node.value
                    if isinstance(owner, ast.Attribute) and "audit" in owner.attr:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.ImportFrom) and node.module == "app.services.audit":
                    names = {a.name for a in node.names}
                    if names - {"AuditQuery"}:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
