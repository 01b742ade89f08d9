"""A Redis for one answer cache test: the local server, its own database number and key
prefix, every key under it removed afterwards. Skips, naming Redis, where it does not
answer, unless ``LANTERN_TEST_REQUIRE_REDIS=1`` (CI) makes that a failure."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.contract.brokers import _unavailable

REDIS_URL = os.environ.get("LANTERN_TEST_REDIS_CACHE_URL", "redis://127.0.0.1:6379/14")


@dataclass(frozen=True)
class TestRedis:
    __test__ = False  # not a test class, despite its name

    url: str
    key_prefix: str
    client: Any

    def keys(self) -> list[bytes]:
        return list(self.client.scan_iter(match=f"{self.key_prefix}*", count=1000))


def redis_cache() -> Iterator[TestRedis]:
    if os.environ.get("LANTERN_TEST_REQUIRE_REDIS") != "1":
        redis = pytest.importorskip("redis", reason="needs the redis client (lantern[redis])")
    else:
        import redis
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        _unavailable("Redis", REDIS_URL, e)
    found = TestRedis(REDIS_URL, f"lantern-test-{uuid.uuid4().hex[:12]}:", client)
    try:
        yield found
    finally:
        keys = found.keys()
        if keys:
            client.delete(*keys)
        client.close()
