"""The OpenAI-compatible endpoint, driven by the official ``openai`` client."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from app.samples import HERE
from tests.api.conftest import group_id, upload, wait_ready

QUESTION = "How many vacation days do new employees get?"


@pytest.fixture
def client(app: Any, admin: TestClient, member: TestClient) -> openai.OpenAI:
    """An OpenAI client with the member's API key; the member reads "HR" (the handbook)."""
    cid = admin.post("/api/v1/collections", json={"name": "HR"}).json()["id"]
    admin.put(
        f"/api/v1/collections/{cid}/access", json={"grants": {group_id(admin, "staff"): "read"}}
    )
    admin.post("/api/v1/collections", json={"name": "Board"})
    upload(admin, cid, {"employee_handbook.pdf": (HERE / "employee_handbook.pdf").read_bytes()})
    wait_ready(admin, cid)
    key = member.post("/api/v1/api-keys", json={"name": "openai"}).json()["key"]
    # TestClient is an httpx.Client over the app: the real client code, no network.
    return openai.OpenAI(
        base_url="http://testserver/v1", api_key=key, http_client=TestClient(app), max_retries=0
    )


def test_models_are_the_readable_collections(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["lantern", "lantern:HR"]


def test_a_completion_answers_with_citations(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="lantern:HR", messages=[{"role": "user", "content": QUESTION}]
    )
    assert "25 days" in (r.choices[0].message.content or "")
    assert r.choices[0].finish_reason == "stop"
    citations = (r.model_extra or {})["citations"]
    assert citations[0]["page"] == 4
    assert "25 days" in citations[0]["quote"]


def test_a_streamed_completion_ends_with_its_citations(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="lantern",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": QUESTION},
        ],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert "25 days" in text
    assert len([ch for ch in chunks if ch.choices and ch.choices[0].delta.content]) > 3
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["citations"][0]["page"] == 4


def test_a_collection_the_key_cannot_read_is_not_a_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(
            model="lantern:Board", messages=[{"role": "user", "content": QUESTION}]
        )
    assert "no model" in str(e.value)


def test_a_bad_key_is_refused(app: Any, client: openai.OpenAI) -> None:
    bad = openai.OpenAI(
        base_url="http://testserver/v1",
        api_key="lk_nope",
        http_client=TestClient(app),
        max_retries=0,
    )
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
