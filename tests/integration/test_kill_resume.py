"""``kill -9`` in the middle of a large ingestion, then run it again: every job
finishes, the chunk count equals a clean run's, and no orphan vectors remain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from tests.fixtures import docs

pytestmark = [pytest.mark.slow]

WORDS = (
    "policy office travel expense leave laptop badge security meeting budget invoice "
    "contract training safety holiday parking printer network backup review"
).split()


def make_folder(root: Path, n_docs: int = 24, pages: int = 8) -> Path:
    root.mkdir(parents=True)
    for d in range(n_docs):
        body = []
        for p in range(pages):
            words = [WORDS[(d * 7 + p * 3 + i) % len(WORDS)] for i in range(160)]
            body.append(f"# Section {p}\n\nDocument {d} page {p}: " + " ".join(words) + ".")
        (root / f"doc-{d:02d}.pdf").write_bytes(docs.make_pdf(body))
    return root


def lantern(env: dict[str, str], *args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from app.cli.main import main; main()", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def env_for(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = dict(os.environ, LANTERN_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    env.pop("LANTERN_DATABASE__URL", None)
    if database_url:
        env["LANTERN_DATABASE__URL"] = database_url
    return env


def ready_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("select count(*) from documents where status='ready'")
            ).scalar_one()
    except SQLAlchemyError:  # not created yet, or locked for a moment
        return 0
    finally:
        engine.dispose()


def docs_json(env: dict[str, str]) -> list[dict[str, Any]]:
    p = lantern(env, "docs", "list", "--json")
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    return json.loads(out[out.index("[") :])


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_kill_9_then_restart_finishes_with_the_same_chunks(
    tmp_path: Path, database_url: str
) -> None:
    folder = make_folder(tmp_path / "corpus")
    pg = database_url if database_url.startswith("postgresql") else None

    clean_env = env_for(tmp_path / "clean", None)
    p = lantern(clean_env, "ingest", str(folder), "--no-progress")
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    clean = docs_json(clean_env)
    assert len(clean) == 24
    clean_chunks = sum(d["chunks"] for d in clean)

    env = env_for(tmp_path / "crash", pg)
    p = lantern(env, "ingest", str(folder), "--no-progress")
    deadline = time.monotonic() + 300
    # Kill once some documents are done and others are mid-flight.
    url = pg or f"sqlite:///{tmp_path / 'crash' / 'lantern.db'}"
    while time.monotonic() < deadline and p.poll() is None:
        if ready_count(url) >= 5:
            break
        time.sleep(0.1)
    assert p.poll() is None, "ingestion finished before it could be killed; make the corpus larger"
    p.send_signal(signal.SIGKILL)
    p.wait()
    partial = docs_json(env)
    assert any(d["status"] != "ready" for d in partial), "nothing was interrupted"

    p = lantern(env, "ingest", str(folder), "--no-progress")
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    assert "resuming" in out
    after = docs_json(env)
    assert [d["status"] for d in after] == ["ready"] * 24
    assert sum(d["chunks"] for d in after) == clean_chunks
    assert sorted((d["name"], d["chunks"]) for d in after) == sorted(
        (d["name"], d["chunks"]) for d in clean
    )

    # No orphan vectors: the index holds exactly the ready documents' chunks.
    check = (
        "from app.container import Container; from app.settings import get_settings; "
        "c = Container(get_settings()); "
        "print(c.vectors.count(), len(c.vectors.document_ids()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(clean_chunks), "24"]
