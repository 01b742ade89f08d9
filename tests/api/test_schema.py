"""schemathesis against the OpenAPI schema: no 5xx, no response that breaks the schema.

Every operation is called with generated requests as an admin (API key), over a
database with a collection, a document, a chat with an answer and a group in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from app.api.app import create_app
from app.container import Container
from app.settings import Settings
from tests.api.conftest import ADMIN, login, upload, wait_ready


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[tuple[Any, str]]:
    data = tmp_path_factory.mktemp("schema") / "data"
    c = Container(Settings(data_dir=data, server={"rate_limit_per_minute": 0}))
    c.__dict__["embedder"] = embedder
    app = create_app(container=c)
    c.migrate()
    c.auth.ensure_admin(*ADMIN)
    with TestClient(app) as admin:
        login(admin, *ADMIN)
        cid = admin.post("/api/v1/collections", json={"name": "Docs"}).json()["id"]
        upload(admin, cid, {"a.md": b"# Leave\n\nEmployees get 25 days of paid vacation."})
        wait_ready(admin, cid)
        chat = admin.post("/api/v1/chats", json={}).json()
        admin.post(f"/api/v1/chats/{chat['id']}/messages", json={"question": "How much leave?"})
        admin.post("/api/v1/groups", json={"name": "staff"})
        key = admin.post("/api/v1/api-keys", json={"name": "schemathesis"}).json()["key"]
    try:
        yield app, key
    finally:
        c.close()


def test_the_api_keeps_its_schema(seeded: tuple[Any, str]) -> None:
    app, key = seeded
    api = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    checked = 0
    for result in api.get_all_operations():
        op = result.ok()
        if op.path == "/api/v1/auth/logout" or (
            op.method.upper() == "DELETE" and op.path.startswith("/api/v1/api-keys")
        ):
            continue  # would end the credentials this test runs with

        @given(case=op.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"})

        check()
        checked += 1
    assert checked >= 30


def test_the_schema_documents_every_route(seeded: tuple[Any, str]) -> None:
    app, _ = seeded
    paths = app.openapi()["paths"]
    assert "/v1/chat/completions" in paths
    assert "/api/v1/chats/{chat_id}/messages" in paths
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op.get("description") or op.get("summary"), (method, path)
