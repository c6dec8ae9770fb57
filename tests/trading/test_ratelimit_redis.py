"""Several workers share one budget through Redis (real Redis server)."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import redis

from trading.ratelimit import RedisRateLimiter

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis server at {REDIS_URL}")
    return REDIS_URL


def test_four_workers_never_exceed_the_shared_budget_and_lose_no_call(redis_url):
    """4 limiter instances (as 4 workers) × 25 calls at 50/s, burst 50: all 100 calls start,
    and any 1 s window holds at most burst + rate = 100 starts; the last start comes ≥ 1 s after
    the first because the burst covers 50 calls and the other 50 need 1 s of refill."""
    prefix = f"test:ratelimit:{uuid.uuid4().hex}"
    limiters = [RedisRateLimiter(redis_url, {"trade": 50.0}, prefix=prefix) for _ in range(4)]
    starts: list[float] = []
    lock = threading.Lock()

    def worker(limiter: RedisRateLimiter) -> None:
        for _ in range(25):
            limiter.acquire_sync("trade")
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(lim,)) for lim in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    limiters[0].reset()

    assert len(starts) == 100
    starts.sort()
    assert starts[-1] - starts[0] >= 0.95
    for i, start in enumerate(starts):
        # 0.5 s window: burst 50 + 25 refill = 75 (plus slack for thread scheduling)
        assert sum(1 for s in starts[i:] if s < start + 0.5) <= 77
