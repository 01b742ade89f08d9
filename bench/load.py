"""Load benchmark: N concurrent streamed chats against a running Lantern server.

    lantern demo --port 8000 &          # or any server with documents in it
    python bench/load.py --url http://127.0.0.1:8000 --n 50 --rounds 2

Logs in as the admin (LANTERN_SERVER__ADMIN_EMAIL / _PASSWORD, or --email and
--password), creates one API key and one chat per simulated client (each key has
its own rate-limit budget, as separate intranet tools would), then every client
asks its questions at the same moment over SSE, ``--rounds`` times. Prints time to
first token and time to the full answer (p50/p95/max), throughput and the errors.
The keys are revoked at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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


async def ask(client: httpx.AsyncClient, chat_id: str, question: str, out: Result) -> None:
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


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--n", type=int, default=50, help="Concurrent streams.")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--email", default=os.environ.get("LANTERN_SERVER__ADMIN_EMAIL", "admin@lantern.local")
    )
    ap.add_argument(
        "--password", default=os.environ.get("LANTERN_SERVER__ADMIN_PASSWORD", "lantern-demo-admin")
    )
    ap.add_argument("--json", help="Also write the numbers to this file.")
    args = ap.parse_args()

    timeout = httpx.Timeout(300, connect=30)
    limits = httpx.Limits(max_connections=args.n + 10)
    async with httpx.AsyncClient(base_url=args.url, timeout=timeout) as admin:
        r = await admin.post(
            "/api/v1/auth/login", json={"email": args.email, "password": args.password}
        )
        r.raise_for_status()
        keys = [
            (await admin.post("/api/v1/api-keys", json={"name": f"load-{i}"})).json()
            for i in range(args.n)
        ]
        clients = [
            httpx.AsyncClient(
                base_url=args.url,
                timeout=timeout,
                limits=limits,
                headers={"Authorization": f"Bearer {k['key']}"},
            )
            for k in keys
        ]
        try:
            chats = [(await c.post("/api/v1/chats", json={})).json()["id"] for c in clients]
            result = Result()
            started = time.perf_counter()
            for round_ in range(args.rounds):
                await asyncio.gather(
                    *(
                        ask(c, chat, QUESTIONS[(i + round_) % len(QUESTIONS)], result)
                        for i, (c, chat) in enumerate(zip(clients, chats, strict=True))
                    )
                )
            wall = time.perf_counter() - started
        finally:
            for c in clients:
                await c.aclose()
            for k in keys:
                await admin.delete(f"/api/v1/api-keys/{k['id']}")

    done = len(result.total)
    numbers = {
        "streams": args.n,
        "rounds": args.rounds,
        "answers": done,
        "errors": len(result.errors),
        "ttft_p50_s": round(statistics.median(result.ttft), 3) if done else None,
        "ttft_p95_s": round(pct(result.ttft, 95), 3),
        "total_p50_s": round(statistics.median(result.total), 3) if done else None,
        "total_p95_s": round(pct(result.total, 95), 3),
        "total_max_s": round(max(result.total, default=0.0), 3),
        "answers_per_s": round(done / wall, 2),
    }
    print(
        "| streams | answers | errors | TTFT p50 | TTFT p95 | answer p50 | answer p95 "
        "| max | answers/s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.n} x {args.rounds} | {done} | {len(result.errors)} | {numbers['ttft_p50_s']} s "
        f"| {numbers['ttft_p95_s']} s | {numbers['total_p50_s']} s | {numbers['total_p95_s']} s "
        f"| {numbers['total_max_s']} s | {numbers['answers_per_s']} |"
    )
    for e in result.errors[:10]:
        print("error:", e)
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2))  # noqa: ASYNC240


if __name__ == "__main__":
    asyncio.run(main())
