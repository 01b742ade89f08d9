"""Canary: a restricted collection's secret never reaches a user without access.

The secret is in a document of a collection granted to no group of the outsider's.
Every path an answer or its traces take is checked for it: search, answers (JSON
and streamed), citations, chat history, error messages, the server log and the
audit log, and the answer cache (the admin asks the very same questions first).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import group_id, upload, wait_ready

SECRET = "NIGHTJAR-7F3E9"
CANARY = (
    f"# Project Nightjar\n\nProject Nightjar is the acquisition of Lumen Optics. Its code "
    f"word is {SECRET}. The acquisition budget is 4.2 million pounds, approved by the board "
    f"on 3 March. Only the board may discuss Project Nightjar.\n"
).encode()
QUESTIONS = [
    "What is Project Nightjar?",
    "What is the code word of the acquisition?",
    "What is the acquisition budget approved by the board?",
]


@pytest.fixture
def restricted(admin: TestClient, member: TestClient) -> str:
    """ "Board" holds the canary and is granted to the group "board" only; "Staff" holds
    an ordinary document granted to "staff"."""
    board = admin.post("/api/v1/groups", json={"name": "board"}).json()["id"]
    secret = admin.post("/api/v1/collections", json={"name": "Board"}).json()["id"]
    admin.put(f"/api/v1/collections/{secret}/access", json={"grants": {board: "read"}})
    upload(admin, secret, {"nightjar.md": CANARY})
    staff = admin.post("/api/v1/collections", json={"name": "Staff"}).json()["id"]
    admin.put(
        f"/api/v1/collections/{staff}/access", json={"grants": {group_id(admin, "staff"): "read"}}
    )
    upload(
        admin,
        staff,
        {"canteen.md": b"# Canteen\n\nThe canteen budget covers lunch from 12:00 to 14:00."},
    )
    assert [d["status"] for d in wait_ready(admin, secret)] == ["ready"]
    assert [d["status"] for d in wait_ready(admin, staff)] == ["ready"]
    # The admin can find it: the canary is really there to leak.
    hits = admin.post("/api/v1/search", json={"query": "Project Nightjar code word"}).json()
    assert SECRET in hits[0]["text"]
    return str(secret)


def test_the_secret_never_reaches_a_member_without_access(
    app: Any,
    restricted: str,
    member: TestClient,
    outsider: TestClient,
    admin: TestClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # The admin asks every question first, each opening a chat and over the OpenAI
    # endpoint, so that its answer, secret and all, is in the answer cache: the very same
    # question from anyone who cannot read "Board" must not be served from it.
    admin_tool = TestClient(
        app,
        headers={
            "Authorization": "Bearer "
            + admin.post("/api/v1/api-keys", json={"name": "admin tool"}).json()["key"]
        },
    )
    cached = []
    for q in QUESTIONS:
        chat = admin.post("/api/v1/chats", json={}).json()
        cached.append(admin.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": q}).text)
        body = {"model": "lantern", "messages": [{"role": "user", "content": q}]}
        cached.append(admin_tool.post("/v1/chat/completions", json=body).text)
    assert any(SECRET in a for a in cached)
    seen: list[str] = []
    for client in (member, outsider):
        for q in QUESTIONS:  # each opening a chat, as the admin asked them
            for stream in (False, True):
                fresh = client.post("/api/v1/chats", json={}).json()
                r = client.post(
                    f"/api/v1/chats/{fresh['id']}/messages",
                    json={"question": q, "stream": stream},
                )
                assert r.status_code == 200
                seen.append(r.text)
        # The collection does not exist for them.
        assert restricted not in str(client.get("/api/v1/collections").json())
        for path in (
            f"/api/v1/collections/{restricted}",
            f"/api/v1/collections/{restricted}/documents",
        ):
            r = client.get(path)
            assert r.status_code == 404
            seen.append(r.text)
        r = client.post(
            "/api/v1/search", json={"query": "Nightjar", "collection_ids": [restricted]}
        )
        assert r.status_code == 404
        seen.append(r.text)
        r = client.post("/api/v1/chats", json={"collection_ids": [restricted]})
        assert r.status_code == 404
        seen.append(r.text)
        chat = client.post("/api/v1/chats", json={}).json()
        for q in QUESTIONS:
            seen.append(client.post("/api/v1/search", json={"query": q}).text)
            r = client.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": q})
            assert r.status_code == 200
            seen.append(r.text)
            r = client.post(
                f"/api/v1/chats/{chat['id']}/messages", json={"question": q, "stream": True}
            )
            seen.append(r.text)
        seen.append(client.get(f"/api/v1/chats/{chat['id']}/messages").text)
        # The OpenAI-compatible endpoint, with the user's own API key.
        key = client.post("/api/v1/api-keys", json={"name": "tool"}).json()["key"]
        tool = TestClient(app, headers={"Authorization": f"Bearer {key}"})
        models = tool.get("/v1/models").json()
        assert "lantern:Board" not in str(models)
        for model in ("lantern", "lantern:Board"):
            for stream in (False, True):
                r = tool.post(
                    "/v1/chat/completions",
                    json={
                        "model": model,
                        "messages": [{"role": "user", "content": QUESTIONS[1]}],
                        "stream": stream,
                    },
                )
                seen.append(r.text)
    seen.append(admin.get("/metrics").text)
    seen.append(caplog.text)
    seen.append(admin.get("/api/v1/audit", params={"limit": 1000}).text)
    leaked = [s for s in seen if SECRET in s or "4.2 million" in s or "Nightjar is" in s]
    assert leaked == []


def test_granting_access_lets_the_member_in_and_revoking_takes_effect_at_once(
    restricted: str, member: TestClient, admin: TestClient
) -> None:
    staff = group_id(admin, "staff")
    admin.put(f"/api/v1/collections/{restricted}/access", json={"grants": {staff: "read"}})
    chat = member.post("/api/v1/chats", json={}).json()
    r = member.post(
        f"/api/v1/chats/{chat['id']}/messages", json={"question": "What is the code word?"}
    )
    assert SECRET in r.json()["message"]["content"]
    admin.put(f"/api/v1/collections/{restricted}/access", json={"grants": {}})
    r = member.post(
        f"/api/v1/chats/{chat['id']}/messages", json={"question": "What is the code word?"}
    )
    assert SECRET not in r.text
    audit = admin.get("/api/v1/audit", params={"action": "collection.access"}).json()
    assert len(audit) >= 3
