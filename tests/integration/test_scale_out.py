"""The scale-out topology on one machine, as processes: PostgreSQL, Redis (the Celery
broker), two ``lantern worker`` and two ``lantern serve`` processes on their own ports,
over one data dir of FAISS and BM25 files. One worker writes the index files and the
other stands by; both API processes read them as replicas that follow the writer.

A user uploads through one API, watches the job's stage and progress and asks through
the other (logged in once: the session is in the database), the writing worker is
killed with SIGKILL mid-ingestion, and every document still ends ready with the chunks
of a clean run, each once in each index, and nothing orphaned. A document deleted
through an API process (which never writes the files) leaves the indexes too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.container import Container
from app.db.models import Chunk, Document, IngestionJob
from app.services.actor import Actor
from app.settings import get_settings
from tests.conftest import fresh_database
from tests.contract.brokers import redis_broker
from tests.contract.test_job_queue_contract import SETTINGS, text

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL"),
]

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 180.0
ADMIN = ("ops@example.com", "scale-out-password-1")
LANTERN = "from app.cli.main import main; main()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Topology:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            p = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = (p, log)
        return p

    def log(self, name: str) -> str:
        return self.procs[name][1].read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.procs)

    def eventually(self, check: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                if result := check():
                    return result
            except httpx.TransportError:
                pass
            for name, (p, _) in self.procs.items():
                if p.poll() is not None and name.startswith("api"):
                    pytest.fail(f"{name} exited ({p.returncode}):\n{self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"gave up waiting for {what}; output:\n{self.logs()}")
            time.sleep(0.1)

    def stop(self) -> None:
        for p, _ in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in self.procs.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def topology(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Topology]:
    databases = fresh_database("postgresql", tmp_path)
    url = next(databases)
    brokers = redis_broker()
    broker = next(brokers)
    env = dict(
        SETTINGS,
        **broker.env(),
        # The answer cache both APIs share, on the broker's Redis under its own prefix.
        LANTERN_CACHE__URL=broker.url,
        LANTERN_CACHE__KEY_PREFIX=f"{broker.key_prefix}cache:",
        LANTERN_DATABASE__URL=url,
        LANTERN_DATA_DIR=str(tmp_path / "data"),
        LANTERN_SERVER__UI="false",
        LANTERN_LLM__KIND="extractive",
        LANTERN_RETRIEVAL__REPLICA_REFRESH_SECONDS="0.2",
        HF_HUB_OFFLINE="1",
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    c = Container(get_settings())
    c.migrate()
    c.identity.ensure_admin(Actor.cli(), ADMIN[0], ADMIN[1], name="Ops")
    c.close()
    t = Topology(tmp_path, {**os.environ, **env})
    try:
        yield t
    finally:
        t.stop()
        next(brokers, None)
        next(databases, None)


def test_two_workers_and_two_api_processes_survive_a_killed_worker(topology: Topology) -> None:
    t = topology
    for n in (1, 2):  # the first takes the data dir's lock and writes; the second stands by
        t.start(f"worker{n}", "-m", "tests.contract.queue_worker", "celery")
        if n == 1:
            t.eventually(lambda: "ready" in t.log("worker1"), "the first worker")
    ports = {name: free_port() for name in ("api1", "api2")}
    for name, port in ports.items():
        t.start(name, "-c", LANTERN, "serve", "--host", "127.0.0.1", "--port", str(port))
    a = httpx.Client(base_url=f"http://127.0.0.1:{ports['api1']}", timeout=30)
    b = httpx.Client(base_url=f"http://127.0.0.1:{ports['api2']}", timeout=30)
    for client in (a, b):
        t.eventually(lambda c=client: c.get("/health").status_code == 200, "the APIs")
    r = a.post("/api/v1/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 200, r.text
    b.cookies = a.cookies  # one log-in: the session lives in the database

    col = a.post("/api/v1/collections", json={"name": "Handbooks"})
    assert col.status_code == 201, col.text
    cid = col.json()["id"]
    files = {
        "slow-handbook.md": text().encode(),
        "travel.md": b"# Travel\n\nTrain tickets above 300 euros need a director's approval.",
        "badges.md": b"# Badges\n\nA lost badge is blocked within one hour of a call.",
    }
    up = a.post(
        f"/api/v1/collections/{cid}/documents",
        files=[("files", (n, body)) for n, body in files.items()],
    )
    assert up.status_code == 202, up.text

    def docs() -> dict[str, dict[str, Any]]:
        r = b.get(f"/api/v1/collections/{cid}/documents")
        assert r.status_code == 200, r.text
        return {d["name"]: d for d in r.json()}

    def half_embedded() -> bool:  # seen through the other API process
        d = docs().get("slow-handbook.md", {})
        return d.get("stage") == "embed" and d.get("progress", 0) > 0.3 and d.get("eta_s")

    t.eventually(half_embedded, "the slow document to be half embedded (seen through api2)")
    writer = t.procs["worker1"][0]
    writer.send_signal(signal.SIGKILL)
    writer.wait()

    done = t.eventually(
        lambda: (d := docs()) and all(x["status"] in ("ready", "failed") for x in d.values()) and d,
        "every document to finish after the kill",
    )
    assert {n: d["status"] for n, d in done.items()} == dict.fromkeys(files, "ready"), done
    assert "ready" in t.log("worker2")  # the standby took over

    # Asked through the other API: its replica found what the worker wrote.
    def found() -> list[dict[str, Any]]:
        r = b.post("/api/v1/search", json={"query": "lost badge blocked"})
        assert r.status_code == 200, r.text
        return [h for h in r.json() if h["document_name"] == "badges.md"]

    assert "one hour" in t.eventually(found, "api2 to find the new document")[0]["text"]
    chat = b.post("/api/v1/chats", json={"title": "travel"}).json()["id"]
    answer = b.post(
        f"/api/v1/chats/{chat}/messages",
        json={"question": "Who must approve train tickets above 300 euros?", "stream": False},
    )
    assert answer.status_code == 200, answer.text
    message = answer.json()["message"]
    assert "director" in message["content"].lower()
    travel = done["travel.md"]["id"]
    assert any(c["document_id"] == travel for c in message["citations"])
    assert message["meta"]["provenance"]["cache"] == "miss"
    # The same question through the other process: answered from the shared cache.
    other = a.post("/api/v1/chats", json={"title": "again"}).json()["id"]
    again = a.post(
        f"/api/v1/chats/{other}/messages",
        json={"question": "who must approve train tickets above 300 euros", "stream": False},
    ).json()["message"]
    assert again["meta"]["provenance"]["cache"] == "hit"
    assert again["content"] == message["content"]
    assert again["citations"] == message["citations"]

    # A clean run of the killed document: the same chunks, no duplicates.
    clean = a.post("/api/v1/collections", json={"name": "Clean"}).json()["id"]
    a.post(
        f"/api/v1/collections/{clean}/documents",
        files=[("files", ("clean-handbook.md", files["slow-handbook.md"]))],
    )
    clean_doc = t.eventually(
        lambda: [
            d
            for d in a.get(f"/api/v1/collections/{clean}/documents").json()
            if d["status"] == "ready"
        ],
        "the clean run",
    )[0]
    killed = done["slow-handbook.md"]
    assert killed["chunk_count"] == clean_doc["chunk_count"] > 8

    # Deleted through an API process, which never writes the index files: the writer
    # sweeps its entries, and the replicas follow.
    gone = done["badges.md"]["id"]
    assert b.delete(f"/api/v1/documents/{gone}").status_code in (200, 204)
    assert not found()  # searches drop it at once
    follower = Container(get_settings())
    follower.ingestion.replica = True  # this process reads the files, as the APIs do
    try:
        for index in (follower.vectors, follower.lexical):
            t.eventually(
                lambda i=index: i.refresh() is not None and gone not in i.document_ids(),
                f"the writer to sweep the deleted document from {type(index).__name__}",
            )
    finally:
        follower.close()

    t.stop()  # every process is down: this one may open the files as their writer
    c = Container(get_settings())
    try:
        with c.sessions() as s:
            ready = set(s.scalars(select(Document.id).where(Document.status == "ready")))
            chunks = s.scalar(select(func.count()).select_from(Chunk)) or 0
            ids = s.scalars(select(Chunk.id).where(Chunk.document_id == killed["id"])).all()
            attempts = s.scalar(
                select(IngestionJob.attempts).where(IngestionJob.document_id == killed["id"])
            )
        assert attempts == 2  # killed mid-job, then run again by the standby
        assert gone not in ready
        assert len(ready) == 3
        assert len(ids) == len(set(ids)) == killed["chunk_count"]
        for index in (c.vectors, c.lexical):
            assert index.document_ids() == ready, type(index).__name__
            assert index.count() == chunks  # each chunk once, nothing orphaned
    finally:
        c.close()
