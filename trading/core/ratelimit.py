"""One rate limiter for every exchange call: a token bucket per endpoint category.

Bitget limits calls per endpoint category (``market_data`` 20/s, ``trade`` 10/s, ``account``
10/s, ``position`` 10/s by default, see ``config/exchanges.yaml``). A bucket of capacity
``rate_per_s`` refills at ``rate_per_s`` tokens per second; a call takes one token. When the
bucket is empty the caller WAITS for the next token — calls are queued in arrival order, never
dropped. In any window of length ``w`` seconds at most ``rate_per_s × (1 + w)`` calls start
(a full bucket plus the refill): with the default capacity equal to the rate, at most
``2 × rate`` calls fit in the first second after a long idle period and ``rate`` per second
afterwards. Set ``burst`` lower to tighten that first second.

This module is pure: time comes from an injectable clock so tests run without sleeping. The
Django side (``trading.ratelimit``) provides a Redis-backed bucket with the same interface so
that several workers share one budget.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_RATES_PER_S: dict[str, float] = {
    "market_data": 20.0,
    "trade": 10.0,
    "account": 10.0,
    "position": 10.0,
}


class UnknownCategory(KeyError):
    def __init__(self, category: str, known: list[str]) -> None:
        super().__init__(f"no rate limit configured for category {category!r} (known: {known})")


@dataclass(slots=True)
class TokenBucket:
    """A token bucket. ``reserve(now)`` returns how long the caller must wait, in seconds.

    Reservation is the queueing discipline: each caller books the next free token slot, even
    if that slot is in the future, then sleeps until it. The bucket may go negative (debt),
    which is what makes waiting callers ordered FIFO and no call lost.
    """

    rate_per_s: float
    burst: float
    tokens: float
    updated_s: float

    @classmethod
    def full(cls, rate_per_s: float, now_s: float, burst: float | None = None) -> TokenBucket:
        if rate_per_s <= 0:
            raise ValueError(f"rate must be positive, got {rate_per_s}")
        cap = rate_per_s if burst is None else burst
        if cap < 1:
            raise ValueError(f"burst must allow at least one call, got {cap}")
        return cls(rate_per_s=rate_per_s, burst=cap, tokens=cap, updated_s=now_s)

    def reserve(self, now_s: float, cost: float = 1.0) -> float:
        """Book ``cost`` tokens; return the wait in seconds before the call may start."""
        elapsed = max(0.0, now_s - self.updated_s)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        self.updated_s = max(self.updated_s, now_s)
        self.tokens -= cost
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate_per_s


class RateLimiter:
    """Buckets per category behind one lock; ``acquire`` (async) / ``acquire_sync`` wait."""

    def __init__(
        self,
        rates_per_s: Mapping[str, float] | None = None,
        *,
        burst: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        rates = dict(rates_per_s or DEFAULT_RATES_PER_S)
        self._buckets = {
            cat: TokenBucket.full(rate, now, (burst or {}).get(cat)) for cat, rate in rates.items()
        }

    @property
    def categories(self) -> list[str]:
        return sorted(self._buckets)

    def reserve(self, category: str) -> float:
        """Book one call in ``category``; return seconds to wait before making it."""
        try:
            bucket = self._buckets[category]
        except KeyError:
            raise UnknownCategory(category, self.categories) from None
        with self._lock:
            return bucket.reserve(self._clock())

    async def acquire(self, category: str) -> None:
        wait_s = self.reserve(category)
        if wait_s > 0:
            await asyncio.sleep(wait_s)

    def acquire_sync(self, category: str) -> None:
        wait_s = self.reserve(category)
        if wait_s > 0:
            time.sleep(wait_s)
