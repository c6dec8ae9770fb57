"""The token bucket queues calls and never exceeds its budget."""

from __future__ import annotations

import asyncio

import pytest

from trading.core.ratelimit import RateLimiter, TokenBucket, UnknownCategory


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_burst_calls_through_then_queues_the_next():
    """Rate 10/s, burst 10: calls 1..10 wait 0 s, call 11 waits 0.1 s, call 12 waits 0.2 s."""
    bucket = TokenBucket.full(10.0, now_s=0.0)
    waits = [bucket.reserve(0.0) for _ in range(12)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(0.1)
    assert waits[11] == pytest.approx(0.2)


def test_tokens_refill_at_the_rate_and_cap_at_the_burst():
    bucket = TokenBucket.full(20.0, now_s=0.0)
    for _ in range(20):
        bucket.reserve(0.0)
    assert bucket.reserve(0.5) == 0.0  # 0.5 s refilled 10 tokens, this takes one
    bucket_idle = TokenBucket.full(20.0, now_s=0.0)
    bucket_idle.reserve(100.0)
    assert bucket_idle.tokens == pytest.approx(19.0)  # capped at 20 before taking one


def test_an_unknown_category_is_refused_with_the_known_ones():
    limiter = RateLimiter({"trade": 10.0})
    with pytest.raises(UnknownCategory, match="known: \\['trade'\\]"):
        limiter.reserve("withdraw")


def test_every_queued_call_gets_a_distinct_slot_and_none_is_lost():
    clock = FakeClock()
    limiter = RateLimiter({"market_data": 20.0}, clock=clock)
    waits = [limiter.reserve("market_data") for _ in range(100)]
    starts = sorted(clock.now + w for w in waits)
    assert len(starts) == 100
    # Any window [t, t + 1 s) holds at most burst + rate = 40 starts.
    for i, start in enumerate(starts):
        in_window = sum(1 for s in starts[i:] if s < start + 1.0)
        assert in_window <= 40
    # After the burst of 20, starts are spaced exactly 1/20 s apart.
    assert starts[-1] - starts[19] == pytest.approx(80 / 20.0)


async def test_concurrent_async_callers_respect_the_budget():
    """50 coroutines at 100/s with burst 10: ≥ 0.4 s total, each start recorded once."""
    loop = asyncio.get_running_loop()
    limiter = RateLimiter({"trade": 100.0}, burst={"trade": 10.0})
    started: list[float] = []

    async def call(i: int) -> int:
        await limiter.acquire("trade")
        started.append(loop.time())
        return i

    t0 = loop.time()
    results = await asyncio.gather(*(call(i) for i in range(50)))
    assert sorted(results) == list(range(50))
    assert len(started) == 50
    assert max(started) - t0 >= 0.39
    starts = sorted(started)
    for i, start in enumerate(starts):
        # window of 0.1 s: burst 10 + 0.1 × 100 refill = 20, plus scheduling slack of 1
        assert sum(1 for s in starts[i:] if s < start + 0.1) <= 21
