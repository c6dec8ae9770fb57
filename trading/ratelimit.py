"""The process-wide exchange rate limiter; shared through Redis when Redis is configured.

Every call to the exchange goes through :func:`get_rate_limiter` (one instance per process).
Without ``REDIS_URL`` the buckets live in memory (one process: the embedded mode). With Redis,
each category's bucket is a Redis hash updated atomically by a Lua script that performs the
same reservation as :class:`trading.core.ratelimit.TokenBucket`, timed by the Redis server's
clock, so every worker on every machine draws from one budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from functools import cache

from django.conf import settings

from trading.core.ratelimit import DEFAULT_RATES_PER_S, RateLimiter, UnknownCategory

# KEYS[1] bucket hash; ARGV rate_per_s, burst, cost. Returns the wait in microseconds.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
local updated = tonumber(redis.call('HGET', KEYS[1], 'updated'))
if tokens == nil then tokens = burst; updated = now end
local elapsed = now - updated
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
if now > updated then updated = now end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(updated))
redis.call('EXPIRE', KEYS[1], 3600)
if tokens >= 0 then return 0 end
return math.floor((-tokens / rate) * 1000000 + 0.5)
"""


class RedisRateLimiter:
    """Same interface as :class:`RateLimiter`, buckets kept in Redis under ``prefix``."""

    def __init__(
        self,
        redis_url: str,
        rates_per_s: Mapping[str, float] | None = None,
        *,
        prefix: str = "scalpradar:ratelimit",
    ) -> None:
        import redis

        self._rates = dict(rates_per_s or DEFAULT_RATES_PER_S)
        self._client = redis.Redis.from_url(redis_url)
        self._script = self._client.register_script(_RESERVE_LUA)
        self._prefix = prefix

    @property
    def categories(self) -> list[str]:
        return sorted(self._rates)

    def reserve(self, category: str) -> float:
        try:
            rate = self._rates[category]
        except KeyError:
            raise UnknownCategory(category, self.categories) from None
        wait_us = self._script(keys=[f"{self._prefix}:{category}"], args=[rate, rate, 1])
        return int(wait_us) / 1_000_000

    async def acquire(self, category: str) -> None:
        wait_s = await asyncio.to_thread(self.reserve, category)
        if wait_s > 0:
            await asyncio.sleep(wait_s)

    def acquire_sync(self, category: str) -> None:
        wait_s = self.reserve(category)
        if wait_s > 0:
            time.sleep(wait_s)

    def reset(self) -> None:
        for category in self._rates:
            self._client.delete(f"{self._prefix}:{category}")


@cache
def get_rate_limiter(rates_per_s: tuple[tuple[str, float], ...] | None = None):
    """The limiter of this process (Redis-shared when ``REDIS_URL`` is set).

    ``rates_per_s``: ``(category, requests per second)`` pairs; None = ``DEFAULT_RATES_PER_S``.
    Use :func:`configured_rate_limiter` to pass ``exchanges.yaml``'s rates as a mapping."""
    rates = dict(rates_per_s) if rates_per_s else None
    if settings.REDIS_URL:
        return RedisRateLimiter(settings.REDIS_URL, rates)
    return RateLimiter(rates)


def configured_rate_limiter(rates_per_s: Mapping[str, float]):
    """The process limiter with the given rates per category, e.g.
    ``configured_rate_limiter(limiter_rates(settings))`` (``trading.exchanges.clients``)."""
    return get_rate_limiter(tuple(sorted(rates_per_s.items())))
