"""Protections a browser or an attacker would notice: security headers, cross-origin
writes refused, failed log-ins limited, /metrics behind a token, stored files that
cannot run script."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.api.conftest import ADMIN, MEMBER, login, upload

WRONG = "not-the-password-1"


def limit_logins(rebuilt: Any, **limits: int) -> Any:
    """An app whose log-in limits are ``limits``."""
    from app.api.app import create_app

    return create_app(container=rebuilt(server=limits))


def attempt(app: Any, email: str, password: str, ip: str) -> Any:
    with TestClient(app, client=(ip, 50000)) as client:
        return client.post("/api/v1/auth/login", json={"email": email, "password": password})


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/docs", "/health", "/ui/", "/nowhere"])
def test_every_response_carries_the_security_headers(admin: TestClient, path: str) -> None:
    r = admin.get(path, follow_redirects=False)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_the_login_page_has_a_strict_content_security_policy(admin: TestClient) -> None:
    r = admin.get("/login")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'sha256-" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


def test_a_write_from_another_origin_is_refused(admin: TestClient) -> None:
    evil = [
        {"Origin": "http://127.0.0.1:9999", "Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},  # a browser that sends no Sec-Fetch-Site
        {"Origin": "null"},
    ]
    for headers in evil:
        r = admin.post("/api/v1/collections", json={"name": "Evil"}, headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["error"]["code"] == "cross_origin"
        assert "CORS_ORIGINS" in r.json()["error"]["message"]
    assert "Evil" not in admin.get("/api/v1/collections").text
    # The UI's own requests, reads from anywhere and tools without a browser still work.
    same = admin.post(
        "/api/v1/collections",
        json={"name": "Mine"},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 201, same.text
    assert admin.post("/api/v1/collections", json={"name": "Tool"}).status_code == 201
    read = admin.get("/api/v1/collections", headers={"Sec-Fetch-Site": "cross-site"})
    assert read.status_code == 200


def test_an_allowed_cors_origin_may_write(container: Any) -> None:
    from app.api.app import create_app

    container.settings.server.cors_origins = ["https://intranet.example"]
    container.auth.ensure_admin(*ADMIN)
    with TestClient(create_app(container=container)) as client:
        login(client, *ADMIN)
        r = client.post(
            "/api/v1/collections",
            json={"name": "From the intranet"},
            headers={"Origin": "https://intranet.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert r.status_code == 201, r.text


def test_failed_logins_are_limited_per_account_and_address(app: Any, admin: TestClient) -> None:
    limit = admin.app.state.container.settings.server.login_failures_per_account_address
    for _ in range(limit):
        assert attempt(app, ADMIN[0], WRONG, "10.0.0.1").status_code == 401
    # Now even the right password is not tried from that address, and it says when to retry.
    r = attempt(app, ADMIN[0], ADMIN[1], "10.0.0.1")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert "failed log-ins" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) > 0
    # The attacker's address does not lock the real user out elsewhere.
    assert attempt(app, ADMIN[0], ADMIN[1], "10.0.0.2").status_code == 200
    throttled = admin.get("/api/v1/audit", params={"action": "login", "outcome": "throttled"})
    assert len(throttled.json()) == 1


def test_one_address_guessing_many_accounts_is_limited(rebuilt: Any, admin: TestClient) -> None:
    app = limit_logins(rebuilt, login_failures_per_address=5)
    for i in range(5):
        assert attempt(app, f"user{i}@example.com", WRONG, "10.0.0.3").status_code == 401
    assert attempt(app, "user9@example.com", WRONG, "10.0.0.3").status_code == 429
    assert attempt(app, ADMIN[0], ADMIN[1], "10.0.0.4").status_code == 200


def test_a_distributed_attack_cannot_lock_the_user_out(rebuilt: Any, admin: TestClient) -> None:
    app = limit_logins(rebuilt, login_failures_per_account=6)
    assert attempt(app, MEMBER[0], WRONG, "10.0.1.1").status_code == 401  # no such user yet
    admin.post("/api/v1/users", json={"email": MEMBER[0], "password": MEMBER[1]})
    assert attempt(app, MEMBER[0], MEMBER[1], "10.9.9.9").status_code == 200  # the user's desk
    for i in range(2, 7):
        assert attempt(app, MEMBER[0], WRONG, f"10.0.1.{i}").status_code == 401
    # The account has had its share of failures: new addresses are refused...
    assert attempt(app, MEMBER[0], MEMBER[1], "10.0.2.1").status_code == 429
    # ...but the user's own address, known from an earlier log-in, still gets in.
    assert attempt(app, MEMBER[0], MEMBER[1], "10.9.9.9").status_code == 200


def test_metrics_can_require_a_bearer_token(admin: TestClient, container: Any) -> None:
    assert admin.get("/metrics").status_code == 200  # open by default, as documented
    container.settings.server.metrics_token = SecretStr("scrape-secret")
    anonymous = admin.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert "lantern_" not in anonymous.text
    wrong = admin.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    r = admin.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert r.status_code == 200
    assert "lantern_" in r.text


def test_stored_files_never_run_as_pages(admin: TestClient) -> None:
    cid = admin.post("/api/v1/collections", json={"name": "Files"}).json()["id"]
    page = b"<html><body><script>alert(document.cookie)</script><p>Leave policy</p></body></html>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    docs = upload(admin, cid, {"leave.html": page, "logo.svg": svg, "年假.txt": "十五天".encode()})
    by_name = {d["name"]: d["document_id"] for d in docs}
    for name in by_name:
        r = admin.get(f"/api/v1/documents/{by_name[name]}/file")
        assert r.status_code == 200, (name, r.text)
        content_type = r.headers["content-type"]
        assert not content_type.startswith(("text/html", "image/svg")), name
        assert "sandbox" in r.headers["content-security-policy"], name
        assert r.headers["x-content-type-options"] == "nosniff"
    # Before ingestion has read it, its type is unknown: a download; after, plain text.
    svg_file = admin.get(f"/api/v1/documents/{by_name['logo.svg']}/file")
    assert svg_file.headers["content-disposition"].startswith("attachment") or svg_file.headers[
        "content-type"
    ].startswith("text/plain")
    zh = admin.get(f"/api/v1/documents/{by_name['年假.txt']}/file")
    assert zh.text == "十五天"
    assert "filename*=UTF-8''%E5%B9%B4%E5%81%87.txt" in zh.headers["content-disposition"]
