"""Faults survived: a strategy that raises stops alone, database and channel-layer outages are
retried without losing or doubling anything, a candle from the future is refused.

The runtime and the writer are the real ones, on the test database; a fault is injected where
the real one strikes (an ``OperationalError`` inside the batch's transaction, after the kernels
moved; a real SQLite write lock or a terminated PostgreSQL connection; a channel layer that
refuses to send).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import types
from typing import Any

import numpy as np
import pytest
from django.db import OperationalError, connection

from common.events import EventBatch
from radar.health import RadarStatus, health_report, radar_status
from radar.runtime import RadarRuntime
from radar.writer import Backoff, WriterGaveUp
from strategies.services import strategy_resume
from tests.radar.test_radar import entry_of, running_radar, sample_candles
from tests.radar.test_runtime_checkpoint import stored
from tests.radar.test_runtime_group_commit import run_async, wipe
from trading.models import Alert, Candle, TradingSession

SYMBOL = "BTC/USDT:USDT"
FAST = Backoff(first_s=0.01, max_s=0.05)
YEAR_3000_MS = 32_503_680_000_000


@pytest.fixture(autouse=True)
def _no_radar_in_this_process():
    """``/health/`` reads the process-wide radar status: start each test without one."""
    radar_status.reset()
    yield
    radar_status.reset()


def raising_on(entry: Any, open_ms: int, exc: Exception) -> None:
    """Make ``entry``'s kernel raise ``exc`` on the candle opening at ``open_ms``."""
    real = entry.kernel.on_candle

    def on_candle(symbol: str, row: np.ndarray, now_ms: int) -> list[Any]:
        if int(row[0]) == open_ms:
            raise exc
        return real(symbol, row, now_ms)

    entry.kernel.on_candle = on_candle


def last_ms(entry: Any) -> int | None:
    state = entry.kernel._symbols[SYMBOL].last_row
    return None if state is None else int(state[0])


@pytest.mark.django_db(transaction=True)
def test_a_strategy_that_raises_is_errored_alone_and_the_others_keep_trading():
    candles = sample_candles(8)
    runtime = running_radar()
    failing = entry_of(runtime, "vwap_rsi")
    raising_on(failing, int(candles[3][0]), ZeroDivisionError("float division by zero"))
    for row in candles:
        runtime.process_candle(SYMBOL, tuple(row))
    session = TradingSession.objects.get(strategy_name="vwap_rsi")
    assert session.status == TradingSession.Status.ERRORED
    assert "ZeroDivisionError: float division by zero" in session.error_reason
    assert session.errored_at is not None
    alert = Alert.objects.get(source="vwap_rsi", level="error")
    assert "stopped with an error" in alert.message and "Resume" in alert.message
    assert last_ms(failing) == int(candles[2][0])  # took nothing after its failure
    others = [e for e in runtime.arena if e is not failing]
    assert others and all(last_ms(e) == int(candles[-1][0]) for e in others)
    assert Candle.objects.count() == 8
    report, degraded = health_report(staff=True)
    assert not degraded  # the others trade: a restart would not help
    assert "strategy vwap_rsi errored" in report["warnings"]
    assert "ZeroDivisionError" in report["detail"]["errors"]["vwap_rsi"]


@pytest.mark.django_db(transaction=True)
def test_an_errored_strategy_stays_errored_after_a_restart_and_a_resume_catches_it_up():
    candles = sample_candles(10)
    runtime = running_radar()
    raising_on(entry_of(runtime, "vwap_rsi"), int(candles[2][0]), RuntimeError("bug"))
    for row in candles[:5]:
        runtime.process_candle(SYMBOL, tuple(row))
    runtime.checkpoint_all()
    restarted = running_radar()  # a restart: the crash is not repeated
    restarted.catch_up()
    entry = entry_of(restarted, "vwap_rsi")
    assert entry.errored
    restarted.process_candle(SYMBOL, tuple(candles[5]))
    assert last_ms(entry) == int(candles[1][0])
    strategy_resume(name="vwap_rsi", user=None, reason="fixed")
    restarted.process_candle(SYMBOL, tuple(candles[6]))
    entry = entry_of(restarted, "vwap_rsi")
    assert not entry.errored and last_ms(entry) == int(candles[6][0])
    session = TradingSession.objects.get(strategy_name="vwap_rsi")
    assert session.status == TradingSession.Status.ACTIVE and session.error_reason == ""


@pytest.mark.django_db(transaction=True)
def test_a_capital_weight_the_risk_gate_refuses_errors_only_that_strategy():
    """The audit's crash loop: 1000 as momentum_breakout's capital weight made the risk gate
    refuse 500 % risk per trade at its first signal and took the whole radar down, on every
    restart. The admin and the database now refuse it; a row holding it anyway (stored before
    the constraint) stops only that strategy, at the next read of the controls, and a restart
    keeps it stopped; the others trade every candle."""
    candles = sample_candles(1_400)
    runtime = running_radar()
    _store_around_the_constraint("momentum_breakout", capital_weight=1000.0)
    for start in range(0, len(candles), 8):
        runtime.process_candles([(SYMBOL, tuple(row)) for row in candles[start : start + 8]])
    session = TradingSession.objects.get(strategy_name="momentum_breakout")
    assert session.status == TradingSession.Status.ERRORED, session.error_reason
    assert "capital weight 1000.0 is refused" in session.error_reason
    others = [e for e in runtime.arena if e.config.name != "momentum_breakout"]
    assert others and all(last_ms(e) == int(candles[-1][0]) for e in others)
    runtime.checkpoint_all()
    restarted = running_radar()
    restarted.catch_up()
    assert entry_of(restarted, "momentum_breakout").errored


def _store_around_the_constraint(strategy: str, **values: float) -> None:
    """Write a session value the database constraint now refuses, as a row stored before the
    constraint existed (or by raw SQL) would hold it."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA ignore_check_constraints = ON")
        try:
            TradingSession.objects.filter(strategy_name=strategy).update(**values)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA ignore_check_constraints = OFF")
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'trading_tradingsession'::regclass"
            " AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%%capital_weight%%'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE trading_tradingsession DROP CONSTRAINT "{name}"')
    TradingSession.objects.filter(strategy_name=strategy).update(**values)


def _feed(runtime: RadarRuntime, rows: np.ndarray) -> Any:
    async def feed() -> None:
        for row in rows:
            await runtime.on_closed_candle(SYMBOL, tuple(row))

    return feed()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_database_outage_inside_a_batch_is_retried_and_the_record_equals_a_clean_run():
    """The database fails three times in a row inside batches (after the kernels moved); the
    writer rebuilds the kernels from the stored record and commits the same candles again:
    the stored record (candles, signals, positions, sessions) is the uninterrupted run's."""
    candles = sample_candles(1_500)

    def one_run(faults: int) -> tuple[dict[str, object], RadarRuntime]:
        runtime = running_radar()
        runtime.writer.backoff = FAST
        runtime.max_batch = 8
        real = runtime.recorder.save_due
        calls = {"n": 0}

        def save_due(arena: Any) -> None:
            calls["n"] += 1
            if faults and calls["n"] % 97 == 0 and calls["n"] // 97 <= faults:
                raise OperationalError("server closed the connection unexpectedly")
            real(arena)

        runtime.recorder.save_due = save_due  # type: ignore[method-assign]

        async def main() -> None:
            await runtime.feeding(_feed(runtime, candles))

        run_async(main)
        runtime.checkpoint_all()
        return stored(), runtime

    clean, _ = one_run(0)
    wipe()
    faulty, runtime = one_run(3)
    assert runtime.writer.retries == 3 and runtime.rebuilds == 3
    assert faulty == clean
    assert Candle.objects.count() == len(candles)
    messages = list(Alert.objects.filter(source="database").values_list("message", flat=True))
    assert any("outage" in m for m in messages) and any("back after" in m for m in messages)


def _hold_the_database(seconds: float, started: threading.Event, spare_pid: int) -> None:
    """Take the database's write lock (SQLite) or kill the radar's connections (PostgreSQL;
    all but the test's own, ``spare_pid``) from another connection, as the audit did."""
    if connection.vendor == "sqlite":
        name = connection.settings_dict["NAME"]
        uri = str(name).startswith("file:")
        raw = sqlite3.connect(str(name), uri=uri, timeout=5, check_same_thread=False)
        for _ in range(500):  # the writer may hold it right now (shared cache: no busy wait)
            try:
                raw.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:
                time.sleep(0.01)
        raw.execute("INSERT INTO trading_alert (level, message, source, payload, created_at) "
                    "VALUES ('info', 'lock', 'test', '{}', '2026-01-01')")  # fmt: skip
        started.set()
        time.sleep(seconds)
        raw.rollback()
        raw.close()
    else:
        import psycopg

        settings = connection.settings_dict
        with psycopg.connect(
            host=settings["HOST"] or None,
            port=settings["PORT"] or None,
            user=settings["USER"],
            password=settings["PASSWORD"],
            dbname=settings["NAME"],
            autocommit=True,
        ) as other:
            started.set()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:  # every radar connection, as they reconnect
                other.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND pid <> %s",
                    (spare_pid,),
                )
                time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_a_real_database_fault_during_a_replay_is_survived_and_loses_nothing(monkeypatch):
    """SQLite: a write lock held by another connection for 3 s, longer than the busy timeout
    (20 s in production, 0.5 s here for speed); PostgreSQL: every connection of the radar
    terminated for 3 s. The feed goes on; every candle is stored once."""
    if connection.vendor == "sqlite":
        monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.5)
    candles = sample_candles(300)
    runtime = running_radar()
    runtime.writer.backoff = Backoff(first_s=0.05, max_s=0.5)
    runtime.status = RadarStatus()
    started = threading.Event()
    first = 150
    spare_pid = 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            spare_pid = cursor.fetchone()[0]

    async def main() -> None:
        async def feed() -> None:
            for i, row in enumerate(candles):
                if i == first:
                    holder.start()
                    await asyncio.to_thread(started.wait, 10)
                await runtime.on_closed_candle(SYMBOL, tuple(row))
                await asyncio.sleep(0)

        await runtime.feeding(feed())
        await asyncio.to_thread(holder.join, 30)

    holder = threading.Thread(target=_hold_the_database, args=(3.0, started, spare_pid))
    run_async(main)
    assert Candle.objects.filter(symbol=SYMBOL).count() == len(candles)
    assert runtime.writer.retries >= 1
    assert runtime.status.outage is None  # over, and told so
    messages = list(Alert.objects.filter(source="database").values_list("message", flat=True))
    assert any("outage" in m for m in messages) and any("back after" in m for m in messages)


@pytest.mark.django_db(transaction=True)
def test_an_outage_longer_than_the_limit_stops_the_feed_loudly():
    candles = sample_candles(3)
    runtime = running_radar()
    runtime.writer.backoff = FAST
    runtime.writer.max_outage_s = 0.2

    def down(batch: Any) -> Any:
        raise OperationalError("could not connect to server: Connection refused")

    runtime.process_candles = down  # type: ignore[method-assign]

    async def main() -> None:
        with pytest.raises(WriterGaveUp, match="unreachable for"):
            await asyncio.wait_for(runtime.feeding(_feed(runtime, candles)), timeout=10)

    run_async(main)
    assert runtime.writer.retries >= 2


@pytest.mark.django_db(transaction=True)
def test_a_channel_layer_outage_drops_live_updates_not_data_and_is_told(monkeypatch):
    candles = sample_candles(6)
    runtime = running_radar()
    runtime.writer.backoff = FAST
    runtime.status = RadarStatus()
    real = EventBatch.apublish
    failing = {"left": 6}  # two batches' worth of attempts (3 each)

    async def apublish(self: EventBatch) -> None:
        if failing["left"] > 0:
            failing["left"] -= 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        await real(self)

    monkeypatch.setattr(EventBatch, "apublish", apublish)

    async def main() -> None:
        async def feed() -> None:
            for row in candles:
                await runtime.on_closed_candle(SYMBOL, tuple(row))
                await runtime.flush()

        await runtime.feeding(feed())

    run_async(main)
    assert Candle.objects.count() == len(candles)
    alerts = list(Alert.objects.filter(source="channel layer").values_list("message", flat=True))
    assert any("dropped" in a for a in alerts) and any("back" in a for a in alerts)
    assert runtime.status.outage is None


@pytest.mark.django_db(transaction=True)
def test_health_is_degraded_while_the_writer_retries_and_after_the_feed_failed(client):
    radar_status.reset()
    try:
        radar_status.feed_started(source="replay", stats=types.SimpleNamespace(reconnects=0))
        assert client.get("/health/").status_code == 200
        radar_status.outage_changed("database: OperationalError: database is locked")
        response = client.get("/health/")
        assert response.status_code == 503
        assert "writer retrying through a database outage" in response.json()["problems"]
        radar_status.outage_changed(None)
        radar_status.feed_stopped(finished=False, failure="WriterGaveUp: unreachable for 900 s")
        response = client.get("/health/")
        assert response.status_code == 503 and response.json()["feed"]["state"] == "failed"
    finally:
        radar_status.reset()


@pytest.mark.django_db(transaction=True)
def test_a_candle_from_the_future_is_refused_and_later_candles_still_trade():
    """The audit's year-3000 candle made every later candle look already processed. Fed live
    it is refused with an alert; stored (imported before the import refused it) it is never
    read into a kernel."""
    candles = sample_candles(6)
    runtime = running_radar()
    runtime.clock_ms = lambda: int(candles[-1][0]) + 60_000
    runtime.process_candle(SYMBOL, tuple(candles[0]))
    future = (YEAR_3000_MS, *candles[1][1:])
    runtime.process_candle(SYMBOL, tuple(future))
    assert not Candle.objects.filter(open_time_ms=YEAR_3000_MS).exists()
    assert Alert.objects.filter(message__contains="candle from the future").count() == 1
    Candle.objects.create(
        exchange="bitget", symbol=SYMBOL, timeframe="1m", open_time_ms=YEAR_3000_MS,
        open=1.0, high=1.0, low=1.0, close=1.0, volume=1.0,
    )  # fmt: skip
    runtime.checkpoint_all()
    restarted = running_radar()
    restarted.clock_ms = runtime.clock_ms
    restarted.catch_up()
    for row in candles[1:]:
        restarted.process_candle(SYMBOL, tuple(row))
    assert all(last_ms(e) == int(candles[-1][0]) for e in restarted.arena)


@pytest.mark.django_db(transaction=True)
def test_a_poller_survives_an_outage_backs_off_and_tells_its_start_and_end(monkeypatch):
    """The funding poll fails three times (the database is down: its alert cannot be stored
    either), then works: the poller never stops, waits 5, 10, 20 s (capped by its 300 s
    interval) between retries, and stores one "failing" and one "works again" alert once the
    database takes them; /health/ carries the outage while it lasts."""
    from radar import pollers

    outcomes = [OperationalError("connection refused")] * 3 + [None, None]
    waits: list[float] = []
    status = RadarStatus()
    seen_failing: list[str | None] = []
    real_store = pollers._store_poll_alerts
    refused = {"left": 1}

    def store(kind: str, alerts: list[tuple[str, str]]) -> None:
        if refused["left"]:
            refused["left"] -= 1
            raise OperationalError("connection refused")
        real_store(kind, alerts)

    monkeypatch.setattr(pollers, "_store_poll_alerts", store)

    async def poll() -> int:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return 1

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        seen_failing.append(status.pollers.get("funding"))
        if not outcomes:
            raise asyncio.CancelledError

    async def main() -> None:
        with pytest.raises(asyncio.CancelledError):
            await pollers._every("funding", 300.0, poll, sleep, status)

    run_async(main)
    assert waits == [5.0, 10.0, 20.0, 300.0, 300.0]
    assert seen_failing[0] is not None and "OperationalError" in seen_failing[0]
    assert status.pollers["funding"] is None
    messages = list(Alert.objects.filter(source="poller").values_list("message", flat=True))
    assert len(messages) == 2
    assert any("failing" in m for m in messages) and any("works again" in m for m in messages)
