"""Two API processes behind one address count one budget when their limits live in
Redis (``LANTERN_SERVER__RATE_LIMIT_STORAGE_URL``), as docker/compose.yaml runs them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.container import Container
from app.errors import TooManyRequests
from app.services.auth import Principal
from app.settings import Settings
from tests.contract.brokers import REDIS_URL, redis_broker


@pytest.fixture
def tag() -> Iterator[str]:
    for _ in redis_broker():  # skips where Redis does not answer (fails in CI)
        tag = uuid.uuid4().hex[:12]
        yield tag
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"*{tag}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def api_processes(tmp_path: Path, n: int = 2) -> list[Container]:
    settings = Settings(
        data_dir=tmp_path,
        embedding={"kind": "fake"},  # type: ignore[arg-type]
        server={  # type: ignore[arg-type]
            "rate_limit_per_minute": 3,
            "login_failures_per_account_address": 2,
            "rate_limit_storage_url": REDIS_URL,
        },
    )
    return [Container(settings) for _ in range(n)]


def test_a_users_budget_is_one_budget_across_api_processes(tmp_path: Path, tag: str) -> None:
    one, two = api_processes(tmp_path)
    who = Principal(
        user_id=f"user-{tag}", email=f"{tag}@example.com", name="M", role="member", via="session"
    )
    try:
        one.rate_limiter.hit(who)
        two.rate_limiter.hit(who)
        one.rate_limiter.hit(who)
        with pytest.raises(TooManyRequests, match="3 requests per minute"):
            two.rate_limiter.hit(who)  # in memory, this process would still allow 3
    finally:
        one.close()
        two.close()


def test_failed_log_ins_count_across_api_processes(tmp_path: Path, tag: str) -> None:
    one, two = api_processes(tmp_path)
    email, ip = f"{tag}@example.com", f"10.{tag}"
    try:
        one.login_throttle.failed(email, ip)
        two.login_throttle.failed(email, ip)
        with pytest.raises(TooManyRequests, match="too many failed log-ins"):
            one.login_throttle.check(email, ip)
        two.login_throttle.check(email, f"10.other-{tag}")  # another address is not held
    finally:
        one.close()
        two.close()
