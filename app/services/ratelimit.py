"""Per-user and per-API-key request budgets (a moving one-minute window).

In memory, per process: with several API processes behind a load balancer, point
``limits`` at Redis instead (its ``RedisStorage``), which this wraps unchanged.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from app.errors import TooManyRequests
from app.services.auth import Principal

#: What a question costs against the budget, against 1 for any other request.
QUESTION_COST = 5


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
