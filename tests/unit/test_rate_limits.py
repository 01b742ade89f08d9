"""Request budgets and log-in limits shared by API processes through Redis: one budget
whichever process answers, and still enforced while Redis is down."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from limits.storage import Storage

from app.errors import LanternError, TooManyRequests
from app.services.auth import Principal
from app.services.ratelimit import LoginThrottle, RateLimiter, limit_storage
from tests.contract.brokers import redis_broker

DOWN_URL = "redis://127.0.0.1:1/0"  # nothing listens there


def who(user: str = "u1") -> Principal:
    return Principal(
        user_id=user, email=f"{user}@example.com", name=user, role="user", via="session"
    )


@pytest.fixture
def shared() -> Iterator[Callable[[], Storage]]:
    """Opens the limits' Redis storage as one more API process would: this test's own
    key prefix on the local Redis, its keys removed afterwards."""
    brokers = redis_broker()
    broker = next(brokers)
    yield lambda: limit_storage(broker.url, key_prefix=f"{broker.key_prefix}limits")
    next(brokers, None)  # removes the keys


def test_two_api_processes_spend_one_budget(shared: Callable[[], Storage]) -> None:
    a, b = (RateLimiter(3, shared()) for _ in range(2))
    a.hit(who())
    b.hit(who())
    a.hit(who())
    with pytest.raises(TooManyRequests, match="3 requests per minute"):
        b.hit(who())
    b.hit(who("u2"))  # another user's budget is their own


def test_failed_log_ins_on_one_process_lock_the_account_on_the_other(
    shared: Callable[[], Storage],
) -> None:
    def throttle() -> LoginThrottle:
        return LoginThrottle(
            per_account=0,
            per_account_address=0,
            per_address=2,
            window_minutes=15,
            known_address=lambda email, ip: False,
            storage=shared(),
        )

    a, b = throttle(), throttle()
    a.failed("eve@example.com", "10.0.0.9")
    b.failed("eve@example.com", "10.0.0.9")
    with pytest.raises(TooManyRequests, match="this address"):
        a.check("bob@example.com", "10.0.0.9")


def test_with_redis_down_limits_hold_in_memory_and_requests_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("redis", reason="needs the redis client (lantern[redis])")
    limiter = RateLimiter(2, limit_storage(DOWN_URL))
    with caplog.at_level(logging.WARNING):
        limiter.hit(who())
        limiter.hit(who())
        with pytest.raises(TooManyRequests):
            limiter.hit(who())
    assert "counting in memory" in caplog.text


def test_an_unknown_storage_address_is_refused_with_the_setting_named() -> None:
    with pytest.raises(LanternError, match="LANTERN_SERVER__RATE_LIMIT_STORAGE_URL"):
        limit_storage("carrier-pigeon://loft")
