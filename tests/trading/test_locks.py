"""Single-instance locks: in-process, and in a real Redis server (skipped when none runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from trading.locks import (
    LocalLock,
    LockHeld,
    RedisLock,
    single_instance_lock,
)

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis server at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def name() -> str:
    return f"test:{uuid.uuid4().hex}"


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# --- in-process ---------------------------------------------------------------------------------


def test_a_local_lock_has_one_holder_at_a_time(name):
    first, second = LocalLock(name), LocalLock(name)
    assert first.acquire(blocking=False)
    assert not second.acquire(blocking=False)
    assert second.holder() == first.holder_id
    first.release()
    assert second.acquire(blocking=False)
    assert second.held and not first.held
    second.release()
    assert first.holder() is None


def test_a_local_lock_held_elsewhere_raises_lock_held_naming_the_holder(name):
    with LocalLock(name, holder_id="worker-a") as held:
        with pytest.raises(LockHeld, match="held by worker-a") as caught, LocalLock(name):
            pass
        assert caught.value.holder == "worker-a"
        assert held.held
    assert LocalLock(name).acquire()


def test_a_local_lock_is_shared_by_threads_and_a_blocking_acquire_waits(name):
    first = LocalLock(name)
    first.acquire()
    threading.Timer(0.2, first.release).start()
    started = time.monotonic()
    assert LocalLock(name).acquire(blocking=True, timeout_s=3)
    assert time.monotonic() - started >= 0.15


def test_without_redis_the_factory_gives_an_in_process_lock(settings, name):
    settings.REDIS_URL = ""
    assert isinstance(single_instance_lock(name), LocalLock)


# --- Redis --------------------------------------------------------------------------------------


def test_two_redis_holders_cannot_hold_the_lock_at_once(redis_url, name):
    first = RedisLock(name, redis_url=redis_url, ttl_s=5, holder_id="host-a:1:x")
    second = RedisLock(name, redis_url=redis_url, ttl_s=5)
    try:
        assert first.acquire(blocking=False)
        assert not second.acquire(blocking=False)
        with pytest.raises(LockHeld, match="held by host-a:1:x"), second:
            pass
    finally:
        first.release()


def test_releasing_a_redis_lock_lets_another_take_it(redis_url, name):
    first = RedisLock(name, redis_url=redis_url, ttl_s=5)
    second = RedisLock(name, redis_url=redis_url, ttl_s=5)
    assert first.acquire()
    first.release()
    assert first.holder() is None
    assert second.acquire()
    assert second.holder() == second.holder_id
    second.release()


def test_the_heartbeat_keeps_a_held_redis_lock_beyond_its_ttl(redis_url, name):
    """TTL 0.6 s renewed every 0.2 s: after 1.5 s (2.5 TTLs) it is still held."""
    first = RedisLock(name, redis_url=redis_url, ttl_s=0.6)
    assert first.acquire()
    try:
        time.sleep(1.5)
        assert first.held
        assert not RedisLock(name, redis_url=redis_url).acquire()
    finally:
        first.release()


def test_a_redis_lock_whose_holder_stops_renewing_expires_after_its_ttl(redis_url, name):
    frozen = RedisLock(name, redis_url=redis_url, ttl_s=0.5)
    assert frozen.acquire()
    frozen.stop_renewing()
    other = RedisLock(name, redis_url=redis_url, ttl_s=5)
    assert not other.acquire()
    assert other.acquire(blocking=True, timeout_s=2)
    frozen.release()  # too late: must not delete the new holder's key
    assert other.holder() == other.holder_id
    other.release()


def test_a_redis_lock_of_a_killed_process_expires_after_its_ttl(redis_url, name):
    """A holder process killed with SIGKILL releases nothing; its 1 s TTL frees the lock."""
    script = (
        "import sys, time\n"
        "from trading.locks import RedisLock\n"
        f"lock = RedisLock({name!r}, redis_url={redis_url!r}, ttl_s=1.0, holder_id='victim')\n"
        "assert lock.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        other = RedisLock(name, redis_url=redis_url, ttl_s=5)
        time.sleep(1.5)  # beyond one TTL: the victim's heartbeat keeps it
        assert other.holder() == "victim"
        assert not other.acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=5)
        killed_at = time.monotonic()
        assert other.acquire(blocking=True, timeout_s=3)
        assert time.monotonic() - killed_at <= 1.3
        other.release()
    finally:
        holder.kill()
        holder.wait(timeout=5)


def test_a_holder_whose_redis_lock_was_taken_learns_it_lost_it(redis_url, name):
    """The key is gone (e.g. Redis restarted without persistence) and another took it."""
    lost = threading.Event()
    first = RedisLock(name, redis_url=redis_url, ttl_s=0.6, on_lost=lost.set)
    assert first.acquire()
    client = redis.Redis.from_url(redis_url)
    client.delete(first.key)
    second = RedisLock(name, redis_url=redis_url, ttl_s=5)
    assert second.acquire()
    assert lost.wait(2)
    assert first.lost and not first.held
    first.release()
    assert second.holder() == second.holder_id
    second.release()


def test_with_redis_the_factory_gives_a_redis_lock(settings, redis_url, name):
    settings.REDIS_URL = redis_url
    lock = single_instance_lock(name, ttl_s=2)
    assert isinstance(lock, RedisLock)
    with lock:
        assert wait_for(lambda: lock.holder() == lock.holder_id, 1)
