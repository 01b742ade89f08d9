"""Answers cached in Redis, shared by every Lantern process that points at it.

Values are JSON strings under ``key_prefix`` + key, with Redis's own expiry. Every
failure (refused, timed out, an error reply) is ``CacheUnavailable``; after one, Redis
is left alone for ``retry_after_s`` so that questions do not each wait out a timeout
while it is down."""

from __future__ import annotations

import threading
import time
from typing import Any

from app.answer_cache.base import CacheUnavailable


class RedisStore:
    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "lantern:answer:",
        timeout_s: float = 0.5,
        retry_after_s: float = 5.0,
    ) -> None:
        try:
            import redis
        except ImportError as e:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                "the Redis answer cache needs the redis client: pip install 'lantern[redis]'"
            ) from e
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._client: Any = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        self.key_prefix = key_prefix
        self.retry_after_s = retry_after_s
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.name = f"redis ({_safe(url)})"

    def get(self, key: str) -> str | None:
        value = self._call(lambda: self._client.get(self.key_prefix + key))
        return None if value is None else bytes(value).decode()

    def set(self, key: str, value: str, *, ttl_s: int) -> None:
        self._call(lambda: self._client.set(self.key_prefix + key, value.encode(), ex=ttl_s))

    def _call(self, op: Any) -> Any:
        with self._lock:
            if time.monotonic() < self._down_until:
                raise CacheUnavailable(f"{self.name} failed recently; not retried yet")
        try:
            return op()
        except self._errors as e:
            with self._lock:
                self._down_until = time.monotonic() + self.retry_after_s
            raise CacheUnavailable(f"{self.name}: {e}") from e

    def close(self) -> None:
        self._client.close()


def _safe(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"
