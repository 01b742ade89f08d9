"""The permission matrix: what admins, writers, readers and outsiders may do.

"writer" is in a group with write access to the collection, "reader" in one with
read access, "outsider" in none. A collection one may not read answers 404 (it
does not exist for them); one they may read but not change answers 403.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import login, upload, wait_ready

DOC = b"# Parking\n\nVisitor parking is on level -2 of Lumen House."


@pytest.fixture
def world(app: Any, admin: TestClient) -> dict[str, Any]:
    users = {}
    for role in ("writer", "reader", "outsider"):
        users[role] = admin.post(
            "/api/v1/users",
            json={"email": f"{role}@example.com", "password": f"{role}-password-1"},
        ).json()["id"]
    writers = admin.post("/api/v1/groups", json={"name": "writers"}).json()["id"]
    readers = admin.post("/api/v1/groups", json={"name": "readers"}).json()["id"]
    admin.put(f"/api/v1/groups/{writers}/members", json={"user_ids": [users["writer"]]})
    admin.put(f"/api/v1/groups/{readers}/members", json={"user_ids": [users["reader"]]})
    cid = admin.post("/api/v1/collections", json={"name": "Facilities"}).json()["id"]
    admin.put(
        f"/api/v1/collections/{cid}/access", json={"grants": {writers: "write", readers: "read"}}
    )
    upload(admin, cid, {"parking.md": DOC})
    doc_id = wait_ready(admin, cid)[0]["id"]
    clients = {"admin": admin}
    for role in users:
        clients[role] = TestClient(app)
        login(clients[role], f"{role}@example.com", f"{role}-password-1")
    return {"cid": cid, "doc": doc_id, "clients": clients}


# (what, method, path, body) -> expected status for admin, writer, reader, outsider
MATRIX = [
    ("see the collection", "get", "/api/v1/collections/{cid}", None, (200, 200, 200, 404)),
    (
        "list its documents",
        "get",
        "/api/v1/collections/{cid}/documents",
        None,
        (200, 200, 200, 404),
    ),
    ("get a document", "get", "/api/v1/documents/{doc}", None, (200, 200, 200, 404)),
    (
        "rename it",
        "patch",
        "/api/v1/collections/{cid}",
        {"name": "Facilities"},
        (200, 200, 403, 404),
    ),
    ("reindex a document", "post", "/api/v1/documents/{doc}/reindex", None, (202, 202, 403, 404)),
    ("see its access", "get", "/api/v1/collections/{cid}/access", None, (200, 403, 403, 403)),
    (
        "set its access",
        "put",
        "/api/v1/collections/{cid}/access",
        {"grants": {}},
        (200, 403, 403, 403),
    ),
    ("create a collection", "post", "/api/v1/collections", {"name": "New"}, (201, 403, 403, 403)),
    ("list users", "get", "/api/v1/users", None, (200, 403, 403, 403)),
    ("read the audit log", "get", "/api/v1/audit", None, (200, 403, 403, 403)),
]
ROLES = ("admin", "writer", "reader", "outsider")


@pytest.mark.parametrize(
    ("what", "method", "path", "body", "expected"), MATRIX, ids=[m[0] for m in MATRIX]
)
def test_permission_matrix(
    world: dict[str, Any], what: str, method: str, path: str, body: Any, expected: tuple[int, ...]
) -> None:
    url = path.format(cid=world["cid"], doc=world["doc"])
    got = []
    # Most permissive last, so a successful change does not affect the others' checks.
    for role in ("outsider", "reader", "writer", "admin"):
        kwargs = {"json": body} if body is not None else {}
        got.append((role, getattr(world["clients"][role], method)(url, **kwargs).status_code))
    assert dict(got) == dict(zip(ROLES, expected, strict=True)), what


def test_writers_upload_and_delete_readers_cannot(world: dict[str, Any]) -> None:
    writer, reader = world["clients"]["writer"], world["clients"]["reader"]
    r = reader.post(
        f"/api/v1/collections/{world['cid']}/documents", files=[("files", ("x.md", DOC + b"!"))]
    )
    assert r.status_code == 403
    assert reader.delete(f"/api/v1/documents/{world['doc']}").status_code == 403
    out = upload(
        writer, world["cid"], {"lifts.md": b"# Lifts\n\nThe lifts are serviced on Mondays."}
    )
    assert out[0]["outcome"] == "queued"
    assert writer.delete(f"/api/v1/documents/{world['doc']}").status_code == 204
    names = [d["name"] for d in wait_ready(reader, world["cid"])]
    assert names == ["lifts.md"]


def test_only_admins_delete_collections(world: dict[str, Any]) -> None:
    url = f"/api/v1/collections/{world['cid']}"
    assert world["clients"]["writer"].delete(url).status_code == 403
    assert world["clients"]["admin"].delete(url).status_code == 204
    assert world["clients"]["writer"].get(url).status_code == 404
    assert (
        world["clients"]["admin"].post("/api/v1/search", json={"query": "visitor parking"}).json()
        == []
    )


def test_group_changes_take_effect_at_once(world: dict[str, Any]) -> None:
    admin, reader = world["clients"]["admin"], world["clients"]["reader"]
    readers = next(g for g in admin.get("/api/v1/groups").json() if g["name"] == "readers")
    assert reader.get(f"/api/v1/collections/{world['cid']}").status_code == 200
    assert admin.delete(f"/api/v1/groups/{readers['id']}").status_code == 204
    assert reader.get(f"/api/v1/collections/{world['cid']}").status_code == 404
    assert reader.post("/api/v1/search", json={"query": "visitor parking"}).json() == []
