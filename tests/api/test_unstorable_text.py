"""Text no database can store (NUL, lone surrogates) gets the same clear 422 on SQLite
and PostgreSQL, wherever it comes in: every string field of every request body, path
and query parameters, upload file names; a log-in with such an e-mail is a 401 like
any wrong e-mail. Every test runs on both databases (the ``container`` fixture)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN

BAD = {"nul": "a\x00b", "surrogate": "a\ud800b"}
SAYS = {"nul": "NUL character (U+0000)", "surrogate": "lone surrogate (U+D800)"}


def post_raw(client: TestClient, method: str, path: str, body: Any) -> Any:
    # json.dumps escapes a lone surrogate as \ud800: valid JSON, which the server decodes
    # back to the surrogate (httpx's own encoder cannot encode it at all).
    return client.request(
        method, path, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def string_fields(app: Any) -> list[tuple[str, str, str, bool]]:
    """(method, path, field, is a list) for every string property of every JSON body."""
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ref = (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("$ref")
            )
            if not ref:
                continue
            model = schemas[ref.rsplit("/", 1)[-1]]
            for field, prop in model.get("properties", {}).items():
                kinds = [prop, *prop.get("anyOf", [])]
                if any(k.get("type") == "string" for k in kinds):
                    out.append((method, path, field, False))
                elif any(k.get("items", {}).get("type") == "string" for k in kinds):
                    out.append((method, path, field, True))
                elif any(k.get("additionalProperties") for k in kinds):  # a map: keys are text
                    out.append((method, path, field, False))
    return out


@pytest.mark.parametrize("kind", sorted(BAD))
def test_every_string_field_of_every_body_refuses_unstorable_text(
    app: Any, admin: TestClient, kind: str
) -> None:
    fields = string_fields(app)
    assert len(fields) >= 25  # the walk finds the schema's fields
    assert ("post", "/v1/chat/completions", "model", False) in fields
    for method, path, field, is_list in fields:
        if path == "/api/v1/auth/login":
            continue  # 401, see below
        url = path.replace("{", "").replace("}", "")  # any id: the body is refused first
        value: Any = [BAD[kind]] if is_list else BAD[kind]
        if field == "grants":
            value = {BAD[kind]: "read"}
        r = post_raw(admin, method.upper(), url, {field: value})
        assert r.status_code == 422, (method, path, field, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid_input"
        assert field in error["message"], error
        assert SAYS[kind] in error["message"], error


@pytest.mark.parametrize("kind", sorted(BAD))
def test_nested_text_in_an_openai_request_is_refused(admin: TestClient, kind: str) -> None:
    body = {
        "model": "lantern",
        "messages": [
            {"role": "user", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": BAD[kind]}]},
        ],
    }
    r = post_raw(admin, "POST", "/v1/chat/completions", body)
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "messages.1.content" in message, message
    assert "text: must not contain a " + SAYS[kind] in message, message


def test_path_and_query_parameters_refuse_nul(admin: TestClient) -> None:
    for url in [
        "/api/v1/chats/a%00b",
        "/api/v1/chats/a%00b/messages",
        "/api/v1/documents/a%00b/file",
        "/api/v1/collections/x/documents?status=re%00dy",
        "/api/v1/audit?action=log%00in",
        "/api/v1/audit?outcome=%00",
    ]:
        r = admin.get(url)
        assert r.status_code == 422, (url, r.text)
        assert SAYS["nul"] in r.json()["error"]["message"]


def multipart(files: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    # Built by hand: httpx percent-escapes control characters in file names.
    boundary = "lantern-boundary"
    body = b""
    for name, data in files:
        body += (
            f"--{boundary}\r\n".encode()
            + b'Content-Disposition: form-data; name="files"; filename="'
            + name
            + b'"\r\nContent-Type: text/markdown\r\n\r\n'
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_an_upload_with_a_nul_in_a_file_name_queues_nothing(admin: TestClient) -> None:
    cid = admin.post("/api/v1/collections", json={"name": "Docs"}).json()["id"]
    body, ctype = multipart([(b"fine.md", b"# Fine\n\nText."), (b"ba\x00d.md", b"# Bad")])
    r = admin.post(
        f"/api/v1/collections/{cid}/documents", content=body, headers={"Content-Type": ctype}
    )
    assert r.status_code == 422, r.text
    assert "file name" in r.json()["error"]["message"]
    assert admin.get(f"/api/v1/collections/{cid}/documents").json() == []


def test_log_in_with_unstorable_text_is_a_wrong_password(app: Any, admin: TestClient) -> None:
    attempts = [
        (email, ADMIN[1])
        for email in ["ad\x00min@example.com", "admin@exa\x00mple.com", "admin@\ud800.com", "\x00"]
    ]
    attempts += [(ADMIN[0], "x\ud800"), (ADMIN[0], ADMIN[1] + "\x00")]
    with TestClient(app) as anonymous:
        wrong = anonymous.post(
            "/api/v1/auth/login", json={"email": ADMIN[0], "password": "not the password"}
        )
        assert wrong.status_code == 401
        for email, password in attempts:
            body = {"email": email, "password": password}
            r = post_raw(anonymous, "POST", "/api/v1/auth/login", body)
            assert (r.status_code, r.json()) == (401, wrong.json()), (email, password)
    # The refused log-ins are audited, and the audit log still reads back.
    r = admin.get("/api/v1/audit", params={"action": "login", "outcome": "denied"})
    assert r.status_code == 200, r.text
    assert len(r.json()) == 1 + len(attempts)


def test_other_unusual_text_is_kept(admin: TestClient) -> None:
    # Only what a database cannot store is refused; the rest is the user's text.
    title = "🐍 中文 \ufffd \U0001d11e"
    chat = admin.post("/api/v1/chats", json={"title": title})
    assert chat.status_code == 201, chat.text
    assert admin.get(f"/api/v1/chats/{chat.json()['id']}").json()["title"] == title
