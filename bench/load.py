"""Load benchmark: N concurrent streamed chats against one or more Lantern API processes.

    lantern demo --port 8000 &          # or any server with documents in it
    python bench/load.py --url http://127.0.0.1:8000 --n 50 --rounds 2

    # Start the processes itself: for each count, a fresh data dir with the samples and a
    # fresh PostgreSQL database, then that many `lantern serve` processes over them
    # (the first runs the ingestion workers and writes the index files; the others read
    # them as replicas), rate limits shared in Redis, clients spread over the processes.
    python bench/load.py --spawn 1,2 --n 200 --rounds 2 \
        --postgres postgresql://postgres@127.0.0.1:5432/postgres --redis redis://127.0.0.1:6379/11

Logs in as the admin (LANTERN_SERVER__ADMIN_EMAIL / _PASSWORD, or --email and
--password), creates one API key and one chat per simulated client (each key has
its own rate-limit budget, as separate intranet tools would), then every client
asks its questions at the same moment over SSE, ``--rounds`` times, each client on
the next process in turn (as a round-robin load balancer would send them). Prints
time to first token and time to the full answer (p50/p95/p99/max), answers per
second and the errors, and, from the processes' /metrics, the answer cache's hits
and misses during the run. ``--repeat`` asks every client the same questions, each in
a new chat (a repeated-question run, for the cache's hit rate: the first round's
questions all arrive at once, so they all miss; later rounds can hit); otherwise each
client's questions are its own (the question and a client number), asked in one chat
per client, so the cache cannot answer them.
``--serve-env K=V`` passes settings to spawned processes. The keys are revoked at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LANTERN = [sys.executable, "-c", "from app.cli.main import main; main()"]

QUESTIONS = [
    "How many vacation days do new employees get?",
    "What is the deadline for submitting expense claims?",
    "What is the minimum password length?",
    "Which days are office anchor days?",
    "When is a doctor's fit note required for sick leave?",
]


@dataclass
class Result:
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def ask(client: httpx.AsyncClient, chat_id: str | None, question: str, out: Result) -> None:
    """Ask in the chat ``chat_id``, or (None) in a new one, as someone asking it first."""
    if chat_id is None:
        chat_id = (await client.post("/api/v1/chats", json={})).json()["id"]
    start = time.perf_counter()
    first: float | None = None
    events: list[str] = []
    try:
        async with client.stream(
            "POST",
            f"/api/v1/chats/{chat_id}/messages",
            json={"question": question, "stream": True},
        ) as r:
            if r.status_code != 200:
                out.errors.append(f"HTTP {r.status_code}: {(await r.aread())[:200]!r}")
                return
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    events.append(line[6:].strip())
                    if events[-1] == "token" and first is None:
                        first = time.perf_counter() - start
                    if events[-1] == "error":
                        out.errors.append("error event")
    except httpx.HTTPError as e:
        out.errors.append(f"{type(e).__name__}: {e}")
        return
    if not events or events[-1] != "done":
        out.errors.append(f"stream ended without done: {events[-3:]}")
        return
    out.ttft.append(first if first is not None else time.perf_counter() - start)
    out.total.append(time.perf_counter() - start)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


def cache_counts(urls: list[str]) -> dict[str, float]:
    """The answer cache's hits and misses so far, summed over the processes' /metrics."""
    counts: dict[str, float] = {}
    for url in urls:
        try:
            text = httpx.get(f"{url}/metrics", timeout=30).text
        except httpx.HTTPError:
            continue
        for result, value in re.findall(
            r'^lantern_answer_cache_total\{[^}]*result="(\w+)"[^}]*\}\s+([0-9.e+]+)$', text, re.M
        ):
            counts[result] = counts.get(result, 0.0) + float(value)
    return counts


async def run_load(args: argparse.Namespace, urls: list[str]) -> dict[str, object]:
    timeout = httpx.Timeout(300, connect=30)
    limits = httpx.Limits(max_connections=args.n + 10)
    async with httpx.AsyncClient(base_url=urls[0], timeout=timeout) as admin:
        r = await admin.post(
            "/api/v1/auth/login", json={"email": args.email, "password": args.password}
        )
        r.raise_for_status()
        keys = []
        for i in range(args.n):
            made = await admin.post("/api/v1/api-keys", json={"name": f"load-{i}"})
            if made.status_code != 201:  # e.g. 429: the admin's own budget
                raise SystemExit(f"could not create API key {i}: {made.status_code} {made.text}")
            keys.append(made.json())
        clients = [
            httpx.AsyncClient(
                base_url=urls[i % len(urls)],  # keys and chats are in the shared database
                timeout=timeout,
                limits=limits,
                headers={"Authorization": f"Bearer {k['key']}"},
            )
            for i, k in enumerate(keys)
        ]
        try:
            chats = [(await c.post("/api/v1/chats", json={})).json()["id"] for c in clients]
            before = cache_counts(urls)
            result = Result()
            started = time.perf_counter()
            for round_ in range(args.rounds):

                def question(i: int, round_: int = round_) -> str:
                    q = QUESTIONS[(i + round_) % len(QUESTIONS)]
                    return q if args.repeat else f"{q} (client {i}, round {round_})"

                await asyncio.gather(
                    *(
                        ask(c, None if args.repeat else chat, question(i), result)
                        for i, (c, chat) in enumerate(zip(clients, chats, strict=True))
                    )
                )
            wall = time.perf_counter() - started
            after = cache_counts(urls)
        finally:
            for c in clients:
                await c.aclose()
            for k in keys:
                await admin.delete(f"/api/v1/api-keys/{k['id']}")

    done = len(result.total)
    hits = after.get("hit", 0.0) - before.get("hit", 0.0)
    misses = after.get("miss", 0.0) - before.get("miss", 0.0)
    return {
        "processes": len(urls),
        "streams": args.n,
        "rounds": args.rounds,
        "repeat": args.repeat,
        "answers": done,
        "errors": len(result.errors),
        "error_samples": result.errors[:10],
        "ttft_p50_s": round(statistics.median(result.ttft), 3) if done else None,
        "ttft_p95_s": round(pct(result.ttft, 95), 3),
        "ttft_p99_s": round(pct(result.ttft, 99), 3),
        "total_p50_s": round(statistics.median(result.total), 3) if done else None,
        "total_p95_s": round(pct(result.total, 95), 3),
        "total_p99_s": round(pct(result.total, 99), 3),
        "total_max_s": round(max(result.total, default=0.0), 3),
        "answers_per_s": round(done / wall, 2),
        "cache_hits": int(hits),
        "cache_misses": int(misses),
        "cache_hit_rate": round(hits / (hits + misses), 3) if hits + misses else None,
    }


HEADER = (
    "| processes | streams | answers | errors | TTFT p50 | p95 | p99 "
    "| answer p50 | p95 | p99 | answers/s | cache hits |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(n: dict[str, object]) -> str:
    rate = n["cache_hit_rate"]
    cache = "n/a" if rate is None else f"{n['cache_hits']} ({float(str(rate)):.0%})"
    return (
        f"| {n['processes']} | {n['streams']} x {n['rounds']} | {n['answers']} | {n['errors']} "
        f"| {n['ttft_p50_s']} s | {n['ttft_p95_s']} s | {n['ttft_p99_s']} s "
        f"| {n['total_p50_s']} s | {n['total_p95_s']} s | {n['total_p99_s']} s "
        f"| {n['answers_per_s']} | {cache} |"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"lantern_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def spawned(args: argparse.Namespace, count: int) -> Iterator[list[str]]:
    """``count`` `lantern serve` processes over a fresh data dir with the samples."""
    work = Path(tempfile.mkdtemp(prefix="lantern-load-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        env = dict(os.environ, LANTERN_DATA_DIR=str(work / "data"), LANTERN_SERVER__UI="false")
        env.setdefault("HF_HUB_OFFLINE", "1")
        if args.postgres:
            env["LANTERN_DATABASE__URL"] = stack.enter_context(postgres_database(args.postgres))
        if args.redis:
            env["LANTERN_SERVER__RATE_LIMIT_STORAGE_URL"] = args.redis
        for pair in args.serve_env:
            key, _, value = pair.partition("=")
            env[key] = value
        subprocess.run(
            [*LANTERN, "demo", "--no-serve"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        urls, procs = [], []
        for i in range(count):
            port = free_port()
            log = (work / f"serve-{i}.log").open("wb")
            stack.callback(log.close)
            cmd = [*LANTERN, "serve", "--host", "127.0.0.1", "--port", str(port)]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log))
            urls.append(f"http://127.0.0.1:{port}")
            if i == 0:  # the first takes the data dir's lock: it runs the workers
                wait_up(urls[0], procs[0], work)

        def stop() -> None:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()

        stack.callback(stop)
        for url, p in zip(urls, procs, strict=True):
            wait_up(url, p, work)
        yield urls


def wait_up(url: str, proc: subprocess.Popen[bytes], work: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            logs = "\n".join(p.read_text()[-2000:] for p in work.glob("serve-*.log"))
            raise SystemExit(f"a lantern serve process exited:\n{logs}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up in 180 s")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", action="append", help="An API process (repeat for several).")
    ap.add_argument("--spawn", help="Process counts to start and measure in turn, e.g. 1,2.")
    ap.add_argument("--postgres", help="With --spawn: a PostgreSQL admin URL (a fresh database).")
    ap.add_argument("--redis", help="With --spawn: Redis for the shared rate limits.")
    ap.add_argument("--serve-env", action="append", default=[], help="K=V for spawned processes.")
    ap.add_argument("--n", type=int, default=50, help="Concurrent streams.")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeat", action="store_true", help="Every client asks the same questions.")
    ap.add_argument(
        "--email", default=os.environ.get("LANTERN_SERVER__ADMIN_EMAIL", "admin@lantern.local")
    )
    ap.add_argument(
        "--password", default=os.environ.get("LANTERN_SERVER__ADMIN_PASSWORD", "lantern-demo-admin")
    )
    ap.add_argument("--json", help="Also write the numbers to this file.")
    args = ap.parse_args()

    results = []
    if args.spawn:
        for count in (int(c) for c in args.spawn.split(",")):
            with spawned(args, count) as urls:
                results.append(await run_load(args, urls))
    else:
        results.append(await run_load(args, args.url or ["http://127.0.0.1:8000"]))
    print(HEADER)
    for numbers in results:
        print(row(numbers))
    for numbers in results:
        for e in numbers["error_samples"]:  # type: ignore[attr-defined]
            print(f"error ({numbers['processes']} processes):", e)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))  # noqa: ASYNC240


if __name__ == "__main__":
    asyncio.run(main())
