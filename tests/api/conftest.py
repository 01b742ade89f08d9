"""Fixtures for API tests: the app in-process over the shared container, and users.

``app`` is the whole web app (API and UI, as ``lantern serve`` runs it); a test of
the API alone can call ``app.api.app.create_app`` itself.

Every API test runs on the FAISS store and BM25 index (on SQLite and PostgreSQL) and
on the Milvus vector store and lexical index (milvus-lite, on SQLite): the whole
product, permission canaries included, must behave the same on both.
``LANTERN_TEST_VECTOR_STORE=faiss`` (or ``milvus``) runs one store only; the Milvus
variant skips where pymilvus or milvus-lite is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import build_app
from tests.conftest import _backends, fresh_database


def _variants() -> list[tuple[str, str]]:
    stores = (
        [os.environ["LANTERN_TEST_VECTOR_STORE"]]
        if os.environ.get("LANTERN_TEST_VECTOR_STORE")
        else ["faiss", "milvus"]
    )
    databases = _backends()
    variants = [(db, "faiss") for db in databases if "faiss" in stores]
    # Milvus on one database: the database and the index are independent of each other.
    if "milvus" in stores:
        variants.append((databases[0], "milvus"))
    return variants


@pytest.fixture(params=_variants(), ids=lambda v: "-".join(v))
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh database, with the vector store of this variant in the environment that
    ``settings`` reads."""
    database, store = request.param
    if store == "milvus" and not all(
        importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite")
    ):
        pytest.skip("pymilvus and milvus-lite are not installed (pip install -e '.[dev]')")
    monkeypatch.setenv("LANTERN_VECTOR_STORE__KIND", store)
    monkeypatch.delenv("LANTERN_LEXICAL__KIND", raising=False)  # auto: follows the store
    yield from fresh_database(database, tmp_path)


ADMIN = ("admin@example.com", "admin-password-1")
MEMBER = ("member@example.com", "member-password-1")
OUTSIDER = ("outsider@example.com", "outsider-password-1")


@pytest.fixture
def app(container: Any) -> Any:
    return build_app(container=container)


@pytest.fixture
def admin(app: Any, container: Any) -> Iterator[TestClient]:
    container.auth.ensure_admin(*ADMIN)
    with TestClient(app) as client:
        login(client, *ADMIN)
        yield client


def login(client: TestClient, email: str, password: str) -> dict[str, Any]:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture
def member(app: Any, admin: TestClient) -> Iterator[TestClient]:
    """A member of the group "staff" (which the ``staffed`` fixture grants read on)."""
    user = admin.post(
        "/api/v1/users", json={"email": MEMBER[0], "password": MEMBER[1], "name": "Mia"}
    ).json()
    group = admin.post("/api/v1/groups", json={"name": "staff"}).json()
    admin.put(f"/api/v1/groups/{group['id']}/members", json={"user_ids": [user["id"]]})
    client = TestClient(app)
    login(client, *MEMBER)
    return client


@pytest.fixture
def outsider(app: Any, admin: TestClient) -> Iterator[TestClient]:
    """A member in no group: may read nothing."""
    admin.post("/api/v1/users", json={"email": OUTSIDER[0], "password": OUTSIDER[1]})
    client = TestClient(app)
    login(client, *OUTSIDER)
    return client


def group_id(admin: TestClient, name: str) -> str:
    return next(g["id"] for g in admin.get("/api/v1/groups").json() if g["name"] == name)


def upload(client: TestClient, collection_id: str, files: dict[str, bytes]) -> list[dict[str, Any]]:
    r = client.post(
        f"/api/v1/collections/{collection_id}/documents",
        files=[("files", (name, data)) for name, data in files.items()],
    )
    assert r.status_code == 202, r.text
    return list(r.json())


def wait_ready(client: TestClient, collection_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Poll the document list, as a user would, until nothing is queued or processing."""
    deadline = time.monotonic() + timeout
    while True:
        docs = client.get(f"/api/v1/collections/{collection_id}/documents").json()
        if all(d["status"] in ("ready", "failed") for d in docs):
            return list(docs)
        assert time.monotonic() < deadline, docs
        time.sleep(0.1)


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            out.append((event, "\n".join(data)))
    return out
