"""The API as users run it: a real ``lantern serve`` process on a port.

The first admin is made with ``lantern users create-admin``; an admin uploads the
sample handbook over HTTP, a member streams an answer over SSE, and an intranet
tool streams one through the official ``openai`` client. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from app.samples import HERE
from tests.integration.processes import lantern_server

ADMIN = ("root@example.com", "a-long-admin-password")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # As behind docker/compose.yaml's nginx: the proxy on this host names the client.
    proxied = {"LANTERN_SERVER__FORWARDED_ALLOW_IPS": "127.0.0.1"}
    with lantern_server(tmp_path_factory.mktemp("serve"), ADMIN, proxied) as url:
        yield url


def _login(url: str, email: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=120)
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return client


@pytest.fixture(scope="module")
def member_key(server: str) -> str:
    url = server
    admin = _login(url, *ADMIN)
    user = admin.post(
        "/api/v1/users", json={"email": "m@example.com", "password": "member-password-1"}
    ).json()
    group = admin.post("/api/v1/groups", json={"name": "staff"}).json()
    admin.put(f"/api/v1/groups/{group['id']}/members", json={"user_ids": [user["id"]]})
    cid = admin.post("/api/v1/collections", json={"name": "HR"}).json()["id"]
    admin.put(f"/api/v1/collections/{cid}/access", json={"grants": {group["id"]: "read"}})
    pdf = (HERE / "employee_handbook.pdf").read_bytes()
    r = admin.post(
        f"/api/v1/collections/{cid}/documents",
        files=[("files", ("employee_handbook.pdf", pdf, "application/pdf"))],
    )
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while True:
        docs = admin.get(f"/api/v1/collections/{cid}/documents").json()
        if docs and docs[0]["status"] == "ready":
            break
        assert docs[0]["status"] != "failed", docs
        assert time.monotonic() < deadline, docs
        time.sleep(0.2)
    member = _login(url, "m@example.com", "member-password-1")
    return str(member.post("/api/v1/api-keys", json={"name": "tool"}).json()["key"])


def test_a_member_streams_a_cited_answer_over_sse(server: str, member_key: str) -> None:
    url = server
    member = _login(url, "m@example.com", "member-password-1")
    chat = member.post("/api/v1/chats", json={}).json()
    events: list[tuple[str, str]] = []
    with member.stream(
        "POST",
        f"/api/v1/chats/{chat['id']}/messages",
        json={"question": "How many vacation days do new employees get?", "stream": True},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                events.append((event, line[5:].strip()))
    text = "".join(json.loads(d)["text"] for e, d in events if e == "token")
    assert "25 days" in text
    assert [e for e, _ in events][-2:] == ["citations", "done"]
    assert json.loads(events[-2][1])[0]["page"] == 4


def test_the_openai_client_streams_an_answer_with_citations(server: str, member_key: str) -> None:
    url = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=member_key, max_retries=0)
    assert [m.id for m in client.models.list()] == ["lantern", "lantern:HR"]
    stream = client.chat.completions.create(
        model="lantern:HR",
        messages=[
            {"role": "user", "content": "What is the deadline for submitting expense claims?"}
        ],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "30 days" in text
    citations = (chunks[-1].model_extra or {})["citations"]
    assert citations[0]["page"] == 6


def test_health_ready_and_metrics_answer(server: str, member_key: str) -> None:
    url = server
    health = httpx.get(f"{url}/health").json()
    assert health["chat_backend"] == "extractive"
    assert httpx.get(f"{url}/ready").json()["status"] == "ready"
    metrics = httpx.get(f"{url}/metrics").text
    assert "lantern_answer_ttft_seconds_count" in metrics


def test_behind_a_trusted_proxy_the_client_address_is_the_one_it_names(server: str) -> None:
    wrong = {"email": ADMIN[0], "password": "not-the-password"}
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    r = httpx.post(f"{server}/api/v1/auth/login", json=wrong, headers=forwarded, timeout=30)
    assert r.status_code == 401
    admin = _login(server, *ADMIN)
    failed = admin.get("/api/v1/audit", params={"action": "login", "outcome": "denied"}).json()
    assert [e["ip"] for e in failed] == ["203.0.113.7"]  # not the proxy's 127.0.0.1
