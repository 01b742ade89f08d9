"""Log-in, sessions, API keys and admin-only endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.app import create_app
from tests.api.conftest import ADMIN, MEMBER, login


def test_login_sets_a_session_cookie_and_logout_ends_it(app: Any, admin: TestClient) -> None:
    me = admin.get("/api/v1/me").json()
    assert (me["email"], me["role"], me["via"]) == (ADMIN[0], "admin", "session")
    cookie = admin.cookies.get("lantern_session")
    assert cookie
    assert admin.post("/api/v1/auth/logout").status_code == 204
    # The old cookie no longer works, even when replayed.
    replay = TestClient(app, cookies={"lantern_session": cookie})
    r = replay.get("/api/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_wrong_password_is_refused_and_audited(app: Any, admin: TestClient) -> None:
    client = TestClient(app)
    r = client.post("/api/v1/auth/login", json={"email": ADMIN[0], "password": "nope-nope-1"})
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "unauthorized", "message": "wrong e-mail or password"}}
    # An unknown e-mail gets exactly the same answer.
    r2 = client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "n"})
    assert r2.json() == r.json()
    denied = admin.get("/api/v1/audit", params={"action": "login", "outcome": "denied"}).json()
    assert len(denied) == 2
    assert "nope" not in str(denied)


def test_members_cannot_use_admin_endpoints(member: TestClient) -> None:
    for method, path in [
        ("get", "/api/v1/users"),
        ("post", "/api/v1/groups"),
        ("get", "/api/v1/audit"),
        ("post", "/api/v1/collections"),
    ]:
        r = getattr(member, method)(path, **({"json": {"name": "x"}} if method == "post" else {}))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "forbidden"


def test_an_api_key_acts_as_its_user_until_revoked(app: Any, member: TestClient) -> None:
    created = member.post("/api/v1/api-keys", json={"name": "intranet widget"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("lk_")
    tool = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    me = tool.get("/api/v1/me").json()
    assert (me["email"], me["via"]) == (MEMBER[0], "api_key")
    listed = member.get("/api/v1/api-keys").json()
    assert [k["name"] for k in listed] == ["intranet widget"]
    assert listed[0]["last_used_at"] is not None
    assert "key" not in listed[0]  # shown once, never again
    assert key not in str(listed)
    assert member.delete(f"/api/v1/api-keys/{listed[0]['id']}").status_code == 204
    r = tool.get("/api/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "invalid or revoked API key"


def test_deactivated_users_lose_their_sessions(
    app: Any, admin: TestClient, member: TestClient
) -> None:
    uid = member.get("/api/v1/me").json()["id"]
    r = admin.patch(f"/api/v1/users/{uid}", json={"is_active": False})
    assert r.json()["is_active"] is False
    assert member.get("/api/v1/me").status_code == 401
    r = TestClient(app).post("/api/v1/auth/login", json={"email": MEMBER[0], "password": MEMBER[1]})
    assert r.status_code == 401


def test_weak_passwords_and_duplicate_users_are_refused(admin: TestClient) -> None:
    r = admin.post("/api/v1/users", json={"email": "w@example.com", "password": "short"})
    assert r.status_code == 422
    assert "password" in r.json()["error"]["message"]
    r = admin.post("/api/v1/users", json={"email": ADMIN[0].upper(), "password": "long-enough-1"})
    assert r.status_code == 409


def test_errors_are_json_without_internals(admin: TestClient) -> None:
    r = admin.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = admin.post("/api/v1/search", json={"k": "many"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_input"
    assert "query" in r.json()["error"]["message"]


def test_request_bodies_over_the_limit_are_refused(admin: TestClient, container: Any) -> None:
    container.settings.server.max_request_mb = 1
    with TestClient(create_app(container=container)) as limited:
        login(limited, *ADMIN)
        cid = limited.post("/api/v1/collections", json={"name": "big"}).json()["id"]
        r = limited.post(
            f"/api/v1/collections/{cid}/documents",
            files=[("files", ("big.txt", b"x" * 1_500_000))],
        )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert "1 MB" in r.json()["error"]["message"]


def test_each_user_and_key_has_a_rate_limit(member: TestClient, rebuilt: Any) -> None:
    from app.api.app import create_app

    key = member.post("/api/v1/api-keys", json={"name": "tool"}).json()["key"]
    app = create_app(container=rebuilt(server={"rate_limit_per_minute": 3}))
    with TestClient(app, cookies=dict(member.cookies)) as member:
        for _ in range(3):
            assert member.get("/api/v1/me").status_code == 200
        r = member.get("/api/v1/me")
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        # The key has a budget of its own.
        tool = TestClient(app, headers={"Authorization": f"Bearer {key}"})
        assert tool.get("/api/v1/me").status_code == 200


def test_admins_list_users_and_promote_a_member(admin: TestClient, member: TestClient) -> None:
    users = {u["email"]: u for u in admin.get("/api/v1/users").json()}
    assert set(users) == {ADMIN[0], MEMBER[0]}
    assert users[MEMBER[0]]["name"] == "Mia"
    assert member.get("/api/v1/users").status_code == 403
    r = admin.patch(f"/api/v1/users/{users[MEMBER[0]]['id']}", json={"role": "admin"})
    assert r.json()["role"] == "admin"
    assert member.get("/api/v1/users").status_code == 200
    events = admin.get("/api/v1/audit", params={"action": "user.update"}).json()
    assert events[0]["details"]["role"] == "admin"


def test_admins_see_and_revoke_everyones_keys(admin: TestClient, member: TestClient) -> None:
    mine = member.post("/api/v1/api-keys", json={"name": "mine"}).json()
    assert member.get("/api/v1/api-keys", params={"all_users": True}).status_code == 403
    every = admin.get("/api/v1/api-keys", params={"all_users": True}).json()
    assert [k["id"] for k in every] == [mine["id"]]
    assert admin.get("/api/v1/api-keys").json() == []
    assert admin.delete(f"/api/v1/api-keys/{mine['id']}").status_code == 204
    assert member.get("/api/v1/api-keys").json()[0]["revoked_at"] is not None


def test_the_default_admin_password_is_refused_outside_dev(container: Any) -> None:
    container.settings.env = "prod"
    with (
        pytest.raises(ValueError, match="ADMIN_PASSWORD is the default"),
        TestClient(create_app(container=container)),
    ):
        pass
    container.settings.server.admin_password = SecretStr("a-real-secret-password")
    with TestClient(create_app(container=container)) as client:
        assert client.get("/ready").json()["status"] == "ready"


def test_cors_allows_only_the_configured_origins(container: Any) -> None:
    container.settings.server.cors_origins = ["https://intranet.example.com"]
    with TestClient(create_app(container=container)) as client:
        ok = client.options(
            "/api/v1/me",
            headers={
                "Origin": "https://intranet.example.com",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert ok.headers["access-control-allow-origin"] == "https://intranet.example.com"
        other = client.options(
            "/api/v1/me",
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in other.headers


def test_the_last_active_admin_cannot_demote_or_deactivate_itself(
    admin: TestClient, container: Any
) -> None:
    me = admin.get("/api/v1/me").json()
    for change in ({"role": "member"}, {"is_active": False}, {"role": "member", "name": "X"}):
        r = admin.patch(f"/api/v1/users/{me['id']}", json=change)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "conflict"
        assert "last active admin" in r.json()["error"]["message"]
    # Nothing changed (not even the name), and the admin can still administer.
    users = {u["email"]: u for u in admin.get("/api/v1/users").json()}
    assert (users[ADMIN[0]]["role"], users[ADMIN[0]]["is_active"]) == ("admin", True)
    assert users[ADMIN[0]]["name"] != "X"
    assert admin.get("/api/v1/users").status_code == 200
    # Harmless changes to the last admin still work.
    assert admin.patch(f"/api/v1/users/{me['id']}", json={"name": "Ada"}).status_code == 200


def test_with_two_admins_one_may_demote_the_other_but_not_leave_none(
    admin: TestClient, member: TestClient
) -> None:
    users = {u["email"]: u for u in admin.get("/api/v1/users").json()}
    me, mia = users[ADMIN[0]]["id"], users[MEMBER[0]]["id"]
    assert admin.patch(f"/api/v1/users/{mia}", json={"role": "admin"}).status_code == 200
    # Mia, now an admin, demotes the first admin: allowed, one admin is left.
    r = member.patch(f"/api/v1/users/{me}", json={"role": "member"})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "member"
    assert member.patch(f"/api/v1/users/{mia}", json={"role": "member"}).status_code == 409
    assert member.patch(f"/api/v1/users/{mia}", json={"is_active": False}).status_code == 409
    # An inactive admin does not count: promoting a deactivated user keeps the rule.
    r = member.patch(f"/api/v1/users/{me}", json={"role": "admin", "is_active": False})
    assert (r.json()["role"], r.json()["is_active"]) == ("admin", False)
    assert member.patch(f"/api/v1/users/{mia}", json={"role": "member"}).status_code == 409


def test_the_last_admin_rule_is_in_the_service(container: Any) -> None:
    from app.errors import Conflict

    first = container.auth.create_user("first@example.com", role="admin")
    second = container.auth.create_user("second@example.com", role="admin")
    member = container.auth.create_user("m@example.com")
    container.auth.update_user(member.id, is_active=False)  # members are not guarded
    container.auth.update_user(first.id, is_active=False)
    with pytest.raises(Conflict, match="last active admin"):
        container.auth.update_user(second.id, role="member")
    with pytest.raises(Conflict, match="last active admin"):
        container.auth.update_user(second.id, is_active=False)
    assert container.auth.get_user(second.id).role == "admin"
    container.auth.update_user(first.id, is_active=True)
    container.auth.update_user(second.id, role="member")
    assert [u.email for u in container.auth.list_users() if u.role == "admin"] == [
        "first@example.com"
    ]
