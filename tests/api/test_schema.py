"""schemathesis against the OpenAPI schema, with every check it has, on SQLite and on
PostgreSQL: no 5xx, no response, header or server-sent event that breaks the schema,
no schema-valid request refused and no schema-violating one accepted, a correct
``Allow`` on every 405, and the stateful phase (links between operations).

Every operation is called as an admin (API key), over a database with a collection, a
document, a chat with an answer and a group in it. Generation is deterministic (a
fixed seed, derandomized), so a failure here reproduces on the next run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.engine import Status, from_schema
from schemathesis.engine import events as ev

from app.api.app import create_app
from app.container import Container
from app.settings import Settings
from tests.api.conftest import ADMIN, login, upload, wait_ready

#: Examples per operation and generation mode: ~1,000 cases per database, ~1 minute.
MAX_EXAMPLES = 10


@pytest.fixture
def seeded(tmp_path: Path, database_url: str, embedder: Any) -> Iterator[tuple[Any, str]]:
    c = Container(
        Settings(
            data_dir=tmp_path / "data",
            database={"url": database_url},
            server={"rate_limit_per_minute": 0},
        ),
        overrides={"embedder": embedder},
    )
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


def contract_config(key: str) -> Any:
    return schemathesis.Config.from_dict(
        {
            "seed": 20261201,
            "headers": {"Authorization": f"Bearer {key}"},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
            "checks": {"enabled": True},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": 6},
            },
            "operations": [
                {
                    # schemathesis sends the negated `files` items (booleans) as file
                    # parts whose content is "false": on the wire, a valid upload.
                    "include-path": "/api/v1/collections/{collection_id}/documents",
                    "include-method": "POST",
                    "checks": {"negative_data_rejection": {"enabled": False}},
                },
                {
                    # A conversation whose last turn is not a user's question is a 400, as
                    # on OpenAI's own API; JSON Schema cannot say "the last item".
                    "include-path": "/v1/chat/completions",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", 400, 401, 403, 404, 429]
                        }
                    },
                },
            ],
        }
    )


def run_contract(app: Any, key: str) -> tuple[int, set[str], list[str]]:
    """(cases run, operations covered, failures) of a full schemathesis run."""
    schema = schemathesis.openapi.from_asgi(
        "/api/v1/openapi.json", app, config=contract_config(key)
    )
    # These would end the credentials this run uses.
    schema = schema.exclude(path="/api/v1/auth/logout").exclude(
        method="DELETE", path_regex="^/api/v1/api-keys"
    )
    cases, operations, failures = 0, set(), []
    for event in from_schema(schema).execute():
        if isinstance(event, ev.ScenarioFinished):
            cases += len(event.recorder.cases)
            operations.add(event.recorder.label)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        info = check.failure_info
                        failures.append(
                            f"{event.recorder.label} [{check.name}] {info.failure.title} "
                            f"(status {getattr(info.failure, 'status_code', '?')})\n"
                            f"{info.failure.message[:800]}\n{info.code_sample[:800]}"
                        )
        elif isinstance(event, ev.NonFatalError | ev.FatalError):
            failures.append(f"error: {event!r}"[:2000])
    return cases, operations, failures


def test_the_api_keeps_its_contract(seeded: tuple[Any, str]) -> None:
    app, key = seeded
    cases, operations, failures = run_contract(app, key)
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(sorted(set(failures)))
    assert len(operations) >= 30, operations
    assert "Stateful tests" in operations
    assert cases >= 500


def test_the_schema_documents_every_route(seeded: tuple[Any, str]) -> None:
    app, _ = seeded
    paths = app.openapi()["paths"]
    assert "/v1/chat/completions" in paths
    assert "/api/v1/chats/{chat_id}/messages" in paths
    streams = paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/event-stream"} <= streams.keys()
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op.get("description") or op.get("summary"), (method, path)


def test_a_wrong_method_answers_405_with_every_allowed_method(seeded: tuple[Any, str]) -> None:
    app, key = seeded
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        r = client.put("/api/v1/collections")
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, POST"
        assert r.json()["error"]["code"] == "method_not_allowed"
        r = client.post("/api/v1/chats/anything")
        assert r.status_code == 405
        assert r.headers["allow"] == "DELETE, GET, PATCH"
