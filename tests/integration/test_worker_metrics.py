"""``lantern worker --metrics-port``: Prometheus scrapes each worker, and sees the pages
it ingested (the API processes of a Celery deployment run no jobs, so only the workers
can report them)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.contract.brokers import Broker, redis_broker
from tests.fixtures import docs
from tests.integration.processes import CLI, LOCAL, free_port

TOKEN = "scrape-secret"


@pytest.fixture
def broker() -> Iterator[Broker]:
    yield from redis_broker()


def test_a_worker_serves_its_metrics_with_the_pages_it_ingested(
    tmp_path: Path, broker: Broker
) -> None:
    env = {
        **broker.env(),
        "LANTERN_DATA_DIR": str(tmp_path / "data"),
        "LANTERN_EMBEDDING__KIND": "fake",
        "LANTERN_SERVER__METRICS_TOKEN": TOKEN,
        "HF_HUB_OFFLINE": "1",
    }
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "guide.pdf").write_bytes(
        docs.make_pdf(["Parking is free.", "Badges open doors.", "Printers are on floor 2."])
    )
    (folder / "broken.pdf").write_bytes(docs.corrupt_pdf())
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    cmd = [*CLI, "worker", "--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
    with worker(cmd, url, env, tmp_path / "worker.log"):
        assert httpx.get(url, timeout=5).status_code == 401  # the API's token, here too
        assert pages_ingested(url) == 0

        ingest = subprocess.run(
            [*CLI, "ingest", str(folder), "--no-progress"],
            env={**os.environ, **LOCAL, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ingest.returncode == 1, ingest.stdout + ingest.stderr  # broken.pdf failed

        # The worker counts a job just after the database says it finished.
        deadline = time.monotonic() + 30
        while pages_ingested(url) != 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pages_ingested(url) == 3  # the guide's pages; the broken file adds none
        text = scrape(url)
        assert 'lantern_ingestion_jobs_total{outcome="failed"} 1.0' in text
        assert 'lantern_ingestion_jobs_total{outcome="succeeded"} 1.0' in text


def scrape(url: str) -> str:
    r = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    r.raise_for_status()
    return r.text


def pages_ingested(url: str) -> float | None:
    for line in scrape(url).splitlines():
        if line.startswith("lantern_ingestion_pages_total "):
            return float(line.split()[1])
    return None


@contextmanager
def worker(cmd: list[str], url: str, env: dict[str, str], log: Path) -> Iterator[None]:
    """``lantern worker`` until its metrics answer; SIGTERM at the end, which it obeys."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **LOCAL, **env}
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"lantern worker exited with {proc.returncode}:\n{log.read_text()}")
            try:
                scrape(url)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"no worker metrics at {url}:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
