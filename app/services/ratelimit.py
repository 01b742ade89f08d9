"""Per-user and per-API-key request budgets (a moving one-minute window), and the
limits on failed log-ins.

In memory, per process, by default. With several API processes behind one address,
``LANTERN_SERVER__RATE_LIMIT_STORAGE_URL=redis://...`` counts them in Redis (the
``limits`` library's ``RedisStorage``), so a budget is one budget whichever process
answers. If Redis stops answering, the counts go on in this process's memory (a
warning in the log) and go back to Redis once it answers again: a request is never
refused, nor a limit lifted, because the counter's server is down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.errors import LanternError, TooManyRequests
from app.services.auth import Principal

log = logging.getLogger(__name__)

#: The prefix of every key Lantern's limits write in a shared Redis.
KEY_PREFIX = "lantern-limits"
#: How long after a failure Redis is left alone before it is tried again.
RETRY_S = 10.0


def limit_storage(url: str | None, *, key_prefix: str = KEY_PREFIX) -> Storage:
    """The counters' storage: memory without ``url``, else the one it names (redis://,
    rediss://, redis+sentinel://, memcached://), falling back to memory while it fails."""
    if not url:
        return MemoryStorage()
    options = {"key_prefix": key_prefix} if url.startswith("redis") else {}
    try:
        storage = storage_from_string(url, **options)
    except Exception as e:  # a missing client library, or a malformed address
        raise LanternError(f"LANTERN_SERVER__RATE_LIMIT_STORAGE_URL={url!r}: {e}") from e
    if not isinstance(storage, Storage):  # an async-only scheme (async+redis://)
        raise LanternError(f"LANTERN_SERVER__RATE_LIMIT_STORAGE_URL={url!r} is not a sync storage")
    return storage


class _Limiter:
    """A moving-window limiter on ``storage``, on memory while ``storage`` fails."""

    def __init__(self, storage: Storage) -> None:
        self._shared = MovingWindowRateLimiter(storage)
        self._local = (
            self._shared
            if isinstance(storage, MemoryStorage)
            else MovingWindowRateLimiter(MemoryStorage())
        )
        self._down_until = 0.0

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._local is not self._shared and time.monotonic() >= self._down_until:
            try:
                return getattr(self._shared, name)(*args, **kwargs)
            except Exception as e:
                if self._down_until == 0.0 or time.monotonic() >= self._down_until + 60:
                    log.warning("rate-limit storage unreachable (%s); counting in memory", e)
                self._down_until = time.monotonic() + RETRY_S
        return getattr(self._local, name)(*args, **kwargs)

    def hit(self, item: RateLimitItem, key: str, cost: int = 1) -> bool:
        return bool(self._call("hit", item, key, cost=cost))

    def test(self, item: RateLimitItem, key: str) -> bool:
        return bool(self._call("test", item, key))

    def get_window_stats(self, item: RateLimitItem, key: str) -> tuple[float, int]:
        reset, remaining = self._call("get_window_stats", item, key)
        return float(reset), int(remaining)

    def clear(self, item: RateLimitItem, key: str) -> None:
        self._call("clear", item, key)


#: What a question costs against the budget, against 1 for any other request.
QUESTION_COST = 5


class RateLimiter:
    def __init__(self, per_minute: int, storage: Storage | None = None) -> None:
        self.per_minute = per_minute
        self._item = RateLimitItemPerMinute(max(1, per_minute))
        self._limiter = _Limiter(storage or MemoryStorage())

    def hit(self, who: Principal, cost: int = 1) -> None:
        """Spend ``cost`` of ``who``'s budget, or raise ``TooManyRequests``."""
        if self.per_minute <= 0:
            return
        key = f"key:{who.api_key_id}" if who.api_key_id else f"user:{who.user_id}"
        if not self._limiter.hit(self._item, key, cost=cost):
            reset, _ = self._limiter.get_window_stats(self._item, key)
            wait = max(1, math.ceil(reset - time.time()))
            raise TooManyRequests(
                f"rate limit of {self.per_minute} requests per minute reached "
                f"(questions count {QUESTION_COST}); try again in {wait} s",
                retry_after_s=wait,
            )


class LoginThrottle:
    """Failed log-ins, limited per address, per account from one address, and per account.

    The per-account limit stops a guessing attack spread over many addresses, but it
    never locks the real user out: an address this account has logged in from before
    (``known_address``) is held only to its own per-address limits, which an attacker
    elsewhere cannot fill. Every limit is a moving window, so a lock ends by itself.
    """

    def __init__(
        self,
        *,
        per_account: int,
        per_account_address: int,
        per_address: int,
        window_minutes: int,
        known_address: Callable[[str, str], bool],
        storage: Storage | None = None,
    ) -> None:
        per = RateLimitItemPerMinute
        self._limits = {
            "account": per(max(1, per_account), window_minutes) if per_account else None,
            "account_address": (
                per(max(1, per_account_address), window_minutes) if per_account_address else None
            ),
            "address": per(max(1, per_address), window_minutes) if per_address else None,
        }
        self._limiter = _Limiter(storage or MemoryStorage())
        self._known = known_address

    def _keys(self, email: str, ip: str | None) -> dict[str, str]:
        email = email.strip().lower()[:320]
        address = ip or "unknown"
        return {
            "account": f"login:acct:{email}",
            "account_address": f"login:acct-ip:{address}:{email}",
            "address": f"login:ip:{address}",
        }

    def check(self, email: str, ip: str | None) -> None:
        """Raise ``TooManyRequests`` if this attempt must not even be tried."""
        keys = self._keys(email, ip)
        for scope in ("address", "account_address", "account"):
            item = self._limits[scope]
            if item is None or self._limiter.test(item, keys[scope]):
                continue
            if scope == "account" and ip and self._known(email, ip):
                continue
            reset, _ = self._limiter.get_window_stats(item, keys[scope])
            wait = max(1, math.ceil(reset - time.time()))
            whom = "this address" if scope == "address" else "this account"
            raise TooManyRequests(
                f"too many failed log-ins for {whom}; try again in {wait} s",
                retry_after_s=wait,
            )

    def failed(self, email: str, ip: str | None) -> None:
        """Count one failed attempt against every limit."""
        keys = self._keys(email, ip)
        for scope, item in self._limits.items():
            if item is not None:
                self._limiter.hit(item, keys[scope])

    def succeeded(self, email: str, ip: str | None) -> None:
        """The right password from this address clears its own per-account count."""
        item = self._limits["account_address"]
        if item is not None:
            self._limiter.clear(item, self._keys(email, ip)["account_address"])
