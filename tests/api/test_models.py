"""The model registry's admin endpoints: admins list, promote, share, roll back and
retire versions; members are refused (403) and the refusal is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.api.app import create_app
from app.services.actor import Actor
from tests.model_runs import RecordingDeployer, make_run

BASE = "/api/v1/admin/models"


def register(container: Any, tmp_path: Path, name: str, **kw: Any) -> None:
    run = make_run(tmp_path, name, seed=sum(map(ord, name)), **kw)
    container.model_registry.register(Actor.cli(), run, name)


def status(client: TestClient, name: str) -> str:
    return str(next(v["status"] for v in client.get(BASE).json() if v["name"] == name))


def test_an_admin_promotes_shares_rolls_back_and_retires(
    rebuilt: Any, admin: TestClient, tmp_path: Path
) -> None:
    deployer = RecordingDeployer()
    c = rebuilt(overrides={"model_deployer": deployer})
    register(c, tmp_path, "v1", collections=("col-hr",))
    register(c, tmp_path, "v2")
    with TestClient(create_app(container=c), cookies=dict(admin.cookies)) as client:
        r = client.get(BASE)
        assert r.status_code == 200, r.text
        [first, second] = r.json()
        assert {first["name"], second["name"]} == {"v1", "v2"}
        assert first["metrics"]["gate"]["passed"] is True

        r = client.post(f"{BASE}/v1/promote")
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["collection_ids"]) == ("active", ["col-hr"])
        r = client.put(f"{BASE}/v2/share", json={"share": 0.2})
        assert r.status_code == 200, r.text
        assert r.json()["traffic_share"] == 0.2
        assert [v.name for v in c.model_registry.serving()] == ["v1", "v2"]
        assert client.put(f"{BASE}/v2/share", json={"share": 1.5}).status_code == 422

        r = client.post(f"{BASE}/v2/promote")
        assert r.status_code == 200, r.text
        assert r.json()["previous_active"] == "v1"
        r = client.post(f"{BASE}/rollback")
        assert r.status_code == 200, r.text
        assert (r.json()["retired"]["name"], r.json()["active"]["name"]) == ("v2", "v1")
        r = client.post(f"{BASE}/v1/retire")
        assert r.status_code == 200
        assert status(client, "v1") == "retired"
        r = client.post(f"{BASE}/rollback")
        assert r.status_code == 409
        assert "no version is active" in r.json()["error"]["message"]
        assert client.post(f"{BASE}/nope/promote").status_code == 404
    assert deployer.calls[:3] == [("deploy", "v1"), ("deploy", "v2"), ("deploy", "v2")]


def test_on_the_extractive_backend_nothing_can_be_promoted(
    container: Any, admin: TestClient, tmp_path: Path
) -> None:
    register(container, tmp_path, "v1")
    r = admin.post(f"{BASE}/v1/promote")
    assert r.status_code == 409
    assert "'extractive', which has no language model" in r.json()["error"]["message"]
    assert status(admin, "v1") == "candidate"


def test_a_member_is_refused_and_audited(
    container: Any, admin: TestClient, member: TestClient, tmp_path: Path
) -> None:
    register(container, tmp_path, "v1")
    calls = [
        member.get(BASE),
        member.post(f"{BASE}/v1/promote", params={"force": "true"}),
        member.put(f"{BASE}/v1/share", json={"share": 0.5}),
        member.post(f"{BASE}/v1/retire"),
        member.post(f"{BASE}/rollback"),
    ]
    assert [r.status_code for r in calls] == [403] * 5
    assert status(admin, "v1") == "candidate"
    denied = admin.get("/api/v1/audit", params={"outcome": "denied", "limit": 100}).json()
    actions = {e["action"] for e in denied if e["action"].startswith("model.")}
    assert actions == {
        "model.list",
        "model.promote",
        "model.share",
        "model.retire",
        "model.rollback",
    }
