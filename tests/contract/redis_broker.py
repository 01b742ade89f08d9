"""A Celery broker on the local Redis for one test: its own database number and key
prefix, every key removed afterwards. Skips, naming Redis, where it does not answer,
unless ``LANTERN_TEST_REQUIRE_REDIS=1`` (CI) makes that a failure."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REDIS_URL = os.environ.get("LANTERN_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@dataclass(frozen=True)
class Broker:
    url: str
    key_prefix: str
    queue: str

    def env(self) -> dict[str, str]:
        """The settings that point a Lantern process at this broker."""
        return {
            "LANTERN_JOBS__KIND": "celery",
            "LANTERN_JOBS__CELERY__BROKER_URL": self.url,
            "LANTERN_JOBS__CELERY__KEY_PREFIX": self.key_prefix,
            "LANTERN_JOBS__CELERY__QUEUE": self.queue,
        }


def redis_broker() -> Iterator[Broker]:
    redis = pytest.importorskip("redis", reason="needs the celery extra (redis client)")
    pytest.importorskip("celery", reason="needs the celery extra")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        if os.environ.get("LANTERN_TEST_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required here but {REDIS_URL} does not answer: {e}")
        pytest.skip(f"Redis not available at {REDIS_URL} ({e}); start it to run Celery tests")
    tag = uuid.uuid4().hex[:12]
    broker = Broker(REDIS_URL, f"lantern-test-{tag}:", f"lantern-test-{tag}")
    try:
        yield broker
    finally:
        keys = list(client.scan_iter(match=f"{broker.key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
