"""Start a server process for a test, wait until it answers, stop it afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

LOCAL = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(
    cmd: Sequence[str],
    *,
    ready_url: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    startup_s: float = 120,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` until ``ready_url`` answers 200; terminate it (then kill) at the end.
    The test fails with the log's tail if it exits or does not come up in time."""
    full_env = {**os.environ, **LOCAL, **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=full_env)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{cmd[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{cmd} did not start in {startup_s}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


CLI = [sys.executable, "-c", "from app.cli.main import main; main()"]


@contextmanager
def lantern_server(
    work: Path, admin: tuple[str, str], settings: Mapping[str, str] | None = None
) -> Iterator[str]:
    """A ``lantern serve`` process on a fresh data dir in ``work``, with its first admin
    made by ``lantern users create-admin`` (and ``settings``, environment variables, on
    top); yields its base URL."""
    env = {
        **(settings or {}),
        "LANTERN_DATA_DIR": str(work / "data"),
        "LANTERN_SERVER__ADMIN_EMAIL": admin[0],
        "LANTERN_SERVER__ADMIN_PASSWORD": admin[1],
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    made = subprocess.run(
        [*CLI, "users", "create-admin", "--password-from-env"],
        env={**os.environ, **LOCAL, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [*CLI, "serve", "--port", str(port)]
    with running(cmd, ready_url=f"{url}/ready", log=work / "serve.log", env=env) as proc:
        yield url
    assert proc.returncode in (0, -15), (work / "serve.log").read_text()[-3000:]
