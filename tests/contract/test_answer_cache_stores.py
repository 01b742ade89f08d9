"""Both answer cache stores keep a value for its time to live, and say when they cannot
be reached rather than fail the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from app.answer_cache.base import CacheStore, CacheUnavailable
from app.answer_cache.memory import MemoryStore
from app.answer_cache.registry import create_store
from tests.contract.redis_cache import TestRedis, redis_cache


class StoreContract:
    @pytest.fixture
    def store(self) -> CacheStore:
        raise NotImplementedError

    def test_a_value_comes_back_under_its_key(self, store: CacheStore) -> None:
        value = json.dumps({"text": "Twenty-five days [1].", "quote": "vingt-cinq jours ✓"})
        store.set("k1", value, ttl_s=60)
        assert store.get("k1") == value
        assert store.get("k2") is None

    def test_a_later_value_replaces_the_earlier(self, store: CacheStore) -> None:
        store.set("k1", "old", ttl_s=60)
        store.set("k1", "new", ttl_s=60)
        assert store.get("k1") == "new"


class TestMemory(StoreContract):
    @pytest.fixture
    def store(self) -> CacheStore:
        return MemoryStore(max_entries=10)

    def test_the_least_recently_used_entry_goes_first(self) -> None:
        store = MemoryStore(max_entries=2)
        store.set("a", "1", ttl_s=60)
        store.set("b", "2", ttl_s=60)
        assert store.get("a") == "1"  # now b is the least recently used
        store.set("c", "3", ttl_s=60)
        assert (store.get("a"), store.get("b"), store.get("c")) == ("1", None, "3")
        assert len(store) == 2

    def test_an_entry_expires_after_its_time_to_live(self, monkeypatch: pytest.MonkeyPatch) -> None:
        now = [1000.0]
        monkeypatch.setattr("app.answer_cache.memory.time.monotonic", lambda: now[0])
        store = MemoryStore()
        store.set("k", "v", ttl_s=30)
        now[0] += 29
        assert store.get("k") == "v"
        now[0] += 2
        assert store.get("k") is None
        assert len(store) == 0


class TestRedisStore(StoreContract):
    @pytest.fixture
    def redis(self) -> Iterator[TestRedis]:
        yield from redis_cache()

    @pytest.fixture
    def store(self, redis: TestRedis) -> Iterator[CacheStore]:
        store = create_store(redis.url, max_entries=10, key_prefix=redis.key_prefix, timeout_s=2)
        yield store
        store.close()

    def test_values_live_under_the_prefix_with_redis_expiry(
        self, store: CacheStore, redis: TestRedis
    ) -> None:
        store.set("k1", "v", ttl_s=120)
        [key] = redis.keys()
        assert key == f"{redis.key_prefix}k1".encode()
        assert 0 < redis.client.ttl(key) <= 120

    def test_a_server_that_does_not_answer_is_unavailable_not_an_error(self) -> None:
        pytest.importorskip("redis", reason="needs the redis client (lantern[redis])")
        store = create_store("redis://127.0.0.1:1/0", max_entries=1, key_prefix="x:", timeout_s=1)
        with pytest.raises(CacheUnavailable):
            store.get("k")
        with pytest.raises(CacheUnavailable):
            store.set("k", "v", ttl_s=1)
        assert "127.0.0.1:1" in store.name


def test_a_url_with_a_password_is_not_shown() -> None:
    pytest.importorskip("redis", reason="needs the redis client (lantern[redis])")
    store = create_store(
        "redis://cache:s3cret@10.0.0.9:6379/2", max_entries=1, key_prefix="x:", timeout_s=1
    )
    assert "s3cret" not in store.name
    assert "10.0.0.9:6379/2" in store.name
