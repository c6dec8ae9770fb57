"""The feed worker task: the radar's live assembly under a single-instance lock.

The live exchange is replaced by the replay exchange (``radar.launch.market_data_exchange``
patched), so the real ``probe``, ``build``, feed and runtime run end to end on real candles.
"""

from __future__ import annotations

import os
import threading
import uuid
from functools import cache
from io import StringIO
from typing import Any

import ccxt
import numpy as np
import pytest
import redis
from django.core.management import call_command

from radar import launch as radar
from radar import tasks
from scalpradar.celery import app
from trading.core.candles import read_candles_csv
from trading.feed.simulated import SimulatedExchange
from trading.locks import single_instance_lock
from trading.models import Candle

SYMBOLS = ("BTC", "ETH", "SOL")


@cache
def sample_candles(base: str) -> np.ndarray:
    path = next(p for p in radar.sample_candle_files() if f"_{base}-USDT_1m_" in p.name)
    return read_candles_csv(path)


def replay(minutes: int, speed: float | None = None) -> SimulatedExchange:
    """The first ``minutes`` real 1m candles of every enabled asset of the bundled sample."""
    return SimulatedExchange(
        {f"{b}/USDT:USDT": sample_candles(b)[:minutes] for b in SYMBOLS}, speed=speed
    )


@pytest.fixture
def seeded(db) -> None:
    call_command("load_config", stdout=StringIO())


@pytest.fixture
def eager_retries():
    """Eager retries run in turn inside apply() only when exceptions are not propagated."""
    before = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = before


def feed_lock_holder() -> str | None:
    return single_instance_lock(tasks.feed_lock_name("bitget")).holder()


def patch_exchange(monkeypatch, build) -> list[Any]:
    """``radar.build`` gets ``build()`` instead of ccxt.pro; returns, for each exchange built,
    ``(exchange, holder of the feed lock when it was built)``."""
    created: list[Any] = []

    def market_data_exchange(settings: Any, **_: Any) -> Any:
        assert settings.name == "bitget"
        created.append((build(), feed_lock_holder()))
        return created[-1][0]

    monkeypatch.setattr(radar, "market_data_exchange", market_data_exchange)
    return created


@pytest.mark.django_db(transaction=True)
def test_the_feed_task_runs_the_radar_end_to_end_under_the_lock(seeded, monkeypatch):
    created = patch_exchange(monkeypatch, lambda: replay(30))
    result = tasks.radar_feed.apply(kwargs={"exchange_name": "bitget"}, throw=True).get()
    assert result["status"] == "finished"
    assert result["exchange"] == "bitget"
    assert result["candles"] == result["closed"] == 3 * 30
    assert Candle.objects.filter(exchange="bitget", timeframe="1m").count() == 3 * 30
    ((exchange, holder_during_run),) = created
    assert holder_during_run is not None  # the lock was held while the radar was assembled
    assert exchange.closed
    assert feed_lock_holder() is None  # and released at the end


@pytest.mark.django_db(transaction=True)
def test_a_second_feed_task_refuses_while_the_first_holds_the_lock(seeded, monkeypatch):
    """The first runs 20 replay minutes at 1 200× (50 ms a minute: about 1 s)."""
    running = threading.Event()

    def slow_replay() -> SimulatedExchange:
        running.set()
        return replay(20, speed=1200.0)

    patch_exchange(monkeypatch, slow_replay)
    outcome: dict[str, Any] = {}

    def first_worker() -> None:
        outcome["first"] = tasks.radar_feed_run("bitget")

    first = threading.Thread(target=first_worker)
    first.start()
    assert running.wait(30)
    holder = feed_lock_holder()
    second = tasks.radar_feed.apply(kwargs={"exchange_name": "bitget"}, throw=True).get()
    first.join(60)
    assert second == {"status": "refused", "exchange": "bitget", "holder": holder}
    assert holder is not None
    assert outcome["first"]["status"] == "finished"
    assert outcome["first"]["candles"] == 3 * 20


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_exchange_is_retried_with_a_bound_then_fails_in_one_clear_line(
    seeded, monkeypatch, eager_retries
):
    class Unreachable(SimulatedExchange):
        id = "bitget"

        async def load_markets(self, reload: bool = False) -> dict[str, Any]:
            raise ccxt.ExchangeNotAvailable("bitget GET /api/v2/public/time 503")

    created = patch_exchange(monkeypatch, lambda: Unreachable({"BTC/USDT:USDT": np.zeros((1, 6))}))
    result = tasks.radar_feed.apply(kwargs={"exchange_name": "bitget"}, throw=False)
    assert result.state == "FAILURE"
    with pytest.raises(
        tasks.FeedUnavailable, match=r"cannot reach bitget \(ExchangeNotAvailable\)"
    ):
        result.get()
    assert len(created) == 1 + tasks.radar_feed.max_retries
    assert all(exchange.closed for exchange, _ in created)
    assert feed_lock_holder() is None
    assert not Candle.objects.exists()


def test_the_feed_task_goes_to_the_feed_queue_and_is_acknowledged_on_receipt(monkeypatch):
    """``radar.tasks.*`` routes to ``strategies``; this one task is sent to ``feed``."""
    sent: list[dict[str, Any]] = []

    def send_task(name: str, args: Any, kwargs: Any, **options: Any) -> None:
        sent.append(options)

    monkeypatch.setattr(app, "send_task", send_task)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # send it, as with Redis (Settings has no delattr)
    try:
        tasks.radar_feed.delay("bitget")
    finally:
        app.conf.task_always_eager = eager
    (options,) = sent
    route = app.amqp.router.route(options, tasks.radar_feed.name, ("bitget",), {})
    assert route["queue"].name == "feed"
    task = tasks.radar_feed
    assert task.acks_late is False
    assert task.time_limit is None
    assert task.max_retries == 5


def test_the_feed_task_refuses_an_exchange_the_radar_does_not_run_on():
    with pytest.raises(ValueError, match="runs on 'bitget'"):
        tasks.radar_feed_run("binance")


@pytest.mark.django_db(transaction=True)
def test_a_feed_whose_redis_lock_is_lost_stops_at_once(seeded, monkeypatch, settings):
    """The lock key vanishes mid-run (TTL 0.6 s, renewed every 0.2 s): the heartbeat finds it
    gone and the feed stops with LockLost instead of running beside a new holder."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis server at {url}")
    settings.REDIS_URL = url
    monkeypatch.setattr(tasks, "feed_lock_name", lambda name: f"test:feed:{uuid.uuid4().hex}")
    client = redis.Redis.from_url(url)

    def replay_then_drop_the_lock() -> SimulatedExchange:
        for key in client.scan_iter("scalpradar:lock:test:feed:*"):
            threading.Timer(0.3, client.delete, [key]).start()
        return replay(600, speed=600.0)  # 10 minutes of market a second: 60 s if not stopped

    patch_exchange(monkeypatch, replay_then_drop_the_lock)
    with pytest.raises(tasks.LockLost, match="lost its lock"):
        tasks.radar_feed_run("bitget", lock_ttl_s=0.6)


@pytest.mark.django_db(transaction=True)
def test_the_feed_worker_runs_the_watchdog_with_notify_yaml_thresholds(
    seeded, monkeypatch, settings, tmp_path
):
    """The Celery feed worker watches its own feed like the embedded radar: the wiring hands
    notify.yaml's thresholds over at worker start (``scalpradar.celery``), the task runs the
    watchdog beside the feed on them and stops it with the feed."""
    from radar import watchdog
    from scalpradar.celery import _configure_radar
    from tests.radar.test_watchdog import _notify_yaml

    _notify_yaml(tmp_path, settings, **{"watchdog.ws_disconnected_s": 45})
    monkeypatch.setattr(watchdog, "_configured", watchdog.WatchdogThresholds())
    _configure_radar()
    assert watchdog.configured().ws_disconnected_s == 45
    started: list[tuple[Any, dict[str, Any]]] = []
    real = tasks.start_watchdog

    def recording(thresholds: Any, **kwargs: Any) -> Any:
        task = real(thresholds, **kwargs)
        started.append((thresholds, kwargs, task))
        return task

    monkeypatch.setattr(tasks, "start_watchdog", recording)
    patch_exchange(monkeypatch, lambda: replay(30))
    result = tasks.radar_feed.apply(kwargs={"exchange_name": "bitget"}, throw=True).get()
    assert result["status"] == "finished"
    [(thresholds, kwargs, task)] = started
    assert thresholds.ws_disconnected_s == 45 and kwargs["live"] is True
    assert task.done()  # stopped with the feed
    assert tasks.radar_status.finished and not tasks.radar_status.running
