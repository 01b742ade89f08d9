"""The answer cache's store from its settings: Redis when a URL is given, else memory."""

from __future__ import annotations

from app.answer_cache.base import CacheStore
from app.answer_cache.memory import MemoryStore


def create_store(
    url: str | None, *, max_entries: int, key_prefix: str, timeout_s: float
) -> CacheStore:
    """``redis://`` / ``rediss://`` / ``unix://`` URLs are Redis; no URL is memory."""
    if not url:
        return MemoryStore(max_entries=max_entries)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"the answer cache URL must be redis://... (got {url.split(':')[0]}:)")
    from app.answer_cache.redis_store import RedisStore

    return RedisStore(url, key_prefix=key_prefix, timeout_s=timeout_s)
