"""A Celery broker for one test: on the local Redis, its own database number and key
prefix, every key removed afterwards; on the local RabbitMQ, its own queue, deleted
afterwards. Skips, naming the server, where it does not answer, unless
``LANTERN_TEST_REQUIRE_REDIS=1`` (CI) or ``LANTERN_TEST_REQUIRE_RABBITMQ=1`` makes that a
failure."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import pytest

REDIS_URL = os.environ.get("LANTERN_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
RABBITMQ_URL = os.environ.get("LANTERN_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


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
        _unavailable("Redis", REDIS_URL, e)
    tag = uuid.uuid4().hex[:12]
    broker = Broker(REDIS_URL, f"lantern-test-{tag}:", f"lantern-test-{tag}")
    try:
        yield broker
    finally:
        keys = list(client.scan_iter(match=f"{broker.key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def rabbitmq_broker() -> Iterator[Broker]:
    pytest.importorskip("celery", reason="needs the celery extra")
    from kombu import Connection

    broker = Broker(RABBITMQ_URL, "", f"lantern-test-{uuid.uuid4().hex[:12]}")
    try:
        with Connection(RABBITMQ_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as e:
        _unavailable("RabbitMQ", RABBITMQ_URL, e)
    try:
        yield broker
    finally:
        with Connection(RABBITMQ_URL, connect_timeout=2) as conn:
            conn.default_channel.queue_delete(broker.queue)


def _unavailable(server: str, url: str, error: Exception) -> NoReturn:
    if os.environ.get(f"LANTERN_TEST_REQUIRE_{server.upper()}") == "1":
        pytest.fail(f"{server} is required here but {url} does not answer: {error}")
    pytest.skip(f"{server} not available at {url} ({error}); start it to run these Celery tests")
