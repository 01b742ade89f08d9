"""Per-user and per-API-key request budgets (a moving one-minute window), and the
limits on failed log-ins.

In memory, per process by default; with several API processes behind one address,
``LANTERN_SERVER__RATE_LIMIT_STORAGE=redis://...`` counts them in Redis (``limits``'
``RedisStorage``, which this wraps unchanged), so that a user's budget is one budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.errors import TooManyRequests
from app.services.auth import Principal

#: What a question costs against the budget, against 1 for any other request.
QUESTION_COST = 5
#: Before every key Lantern's limits write to a shared storage.
KEY_PREFIX = "lantern-limits"


def shared_storage(url: str) -> Storage:
    """The ``limits`` storage at ``url`` (``redis://host:6379/1``, ``memory://``)."""
    options = {} if url.startswith("memory://") else {"key_prefix": KEY_PREFIX}
    storage = storage_from_string(url, **options)
    if not isinstance(storage, Storage):
        raise ValueError(f"{url} is an asynchronous storage; Lantern's limits need a plain one")
    return storage


class RateLimiter:
    def __init__(self, per_minute: int, storage: Storage | None = None) -> None:
        self.per_minute = per_minute
        self._item = RateLimitItemPerMinute(max(1, per_minute))
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())

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
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())
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
