"""The watchdog raises each anomaly ONCE as an alert and clears it once (``radar.watchdog``).

Driven through what the radar really exposes: the health registry (``RadarStatus``: feed
started, reconnects, candles processed), the arena's entries, the clocks (wall and market,
passed in as the radar passes the fake exchange's), the real fake Bitget for the REST latency
probe, and a real SQLite write lock for an alert that cannot be stored yet. Alerts are the
stored ``trading.Alert`` rows of source ``watchdog``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import types
from typing import Any

import pytest
from django.db import connection

from notify.models import Notification
from radar.health import RadarStatus
from radar.watchdog import MIN_WALL_SILENCE_S, Watchdog, WatchdogThresholds
from tests.radar.test_radar import entry_of, running_radar
from trading.exchanges.fake import FakeBitget
from trading.models import Alert, TradingSession

SYMBOL = "BTC/USDT:USDT"
T0_MS = 1_750_000_000_000  # market time of the tests' start (2025-06-15 15:06:40 UTC)
pytestmark = pytest.mark.django_db(transaction=True)


class Clocks:
    """A wall clock (monotonic s) and a market clock (epoch ms) moved by the test; the market
    runs ``speed`` times faster than the wall, like the fake exchange's."""

    def __init__(self, speed: float = 1.0) -> None:
        self.wall_s = 1000.0
        self.speed = speed
        self._origin = self.wall_s

    def wall(self) -> float:
        return self.wall_s

    def market_ms(self) -> int:
        return int(T0_MS + (self.wall_s - self._origin) * 1000 * self.speed)

    def at(self, wall_s_from_start: float) -> None:
        self.wall_s = self._origin + wall_s_from_start


def healthy() -> tuple[bool, str]:
    return True, ""


def layer_ok() -> tuple[bool, str, float]:
    return True, "", 1.0


def watchdog(clocks: Clocks, status: RadarStatus, **kwargs: Any) -> Watchdog:
    options: dict[str, Any] = {
        "arena": [],
        "symbols": [],
        "live": True,
        "wall": clocks.wall,
        "market_ms": clocks.market_ms,
        "database": healthy,
        "channel_layer": layer_ok,
        **kwargs,
    }
    return Watchdog(status=status, **options)


def alerts() -> list[tuple[str, str]]:
    return list(
        Alert.objects.filter(source="watchdog").order_by("pk").values_list("level", "message")
    )


def live_status() -> tuple[RadarStatus, types.SimpleNamespace]:
    status = RadarStatus()
    stats = types.SimpleNamespace(reconnects=0)  # the feed's FeedStats counter it reads
    status.feed_started(source="live", stats=stats)
    return status, stats


def test_a_feed_disconnected_longer_than_the_limit_is_raised_once_then_cleared_once():
    """ws_disconnected_s = 30: disconnected at t = 1 s (a reconnect, no message since), told at
    the first check past 31 s and never again while it lasts; a message at t = 44 s clears it
    (disconnected 43 s)."""
    clocks = Clocks()
    status, stats = live_status()
    dog = watchdog(clocks, status, thresholds=WatchdogThresholds(ws_disconnected_s=30))
    dog.check()
    stats.reconnects = 1  # the feed reconnected: in its backoff until a message arrives
    for t in (1, 20, 30, 31.5, 40):
        clocks.at(t)
        dog.check()
    assert alerts() == [("warning", "live feed disconnected for over 30 s")]
    status.heard_from_feed()
    clocks.at(44)
    dog.check()
    clocks.at(50)
    dog.check()
    assert alerts()[1:] == [("info", "cleared after 43 s: live feed disconnected for over 30 s")]


def test_a_replay_feed_is_not_judged_on_connection_candles_or_strategies():
    clocks = Clocks()
    status = RadarStatus()
    status.feed_started(source="replay", stats=types.SimpleNamespace(reconnects=5))
    dog = watchdog(clocks, status, live=False, symbols=[SYMBOL])
    for t in (0, 100, 1000):
        clocks.at(t)
        dog.check()
    assert alerts() == []


def test_candle_silence_counts_market_time_on_the_fake_exchange_with_a_wall_floor():
    """The fake's market runs 60x: 120 market seconds are 2 wall seconds, but silence shorter
    than MIN_WALL_SILENCE_S (10 wall s) is the feed's own timers, not a finding. Last candle
    closed at T0: at wall 3 s the market is 180 s silent (not told: 3 wall s); at 11 s it is
    660 s silent and told; the next candle, at 13 s, clears it (13 s after the last one)."""
    clocks = Clocks(speed=60)
    status, _ = live_status()
    status.candle_processed(SYMBOL, T0_MS - 60_000)  # open time: closed at T0
    dog = watchdog(clocks, status, symbols=[SYMBOL])
    for t in (0, 1, 3, MIN_WALL_SILENCE_S - 1):
        clocks.at(t)
        dog.check()
    assert alerts() == []
    clocks.at(MIN_WALL_SILENCE_S + 1)
    dog.check()
    clocks.at(MIN_WALL_SILENCE_S + 2)
    dog.check()
    assert alerts() == [("warning", f"{SYMBOL}: no closed candle for 660 s")]
    status.candle_processed(SYMBOL, clocks.market_ms() - 60_000)
    clocks.at(MIN_WALL_SILENCE_S + 3)
    dog.check()
    assert alerts()[1:] == [("info", f"cleared after 13 s: {SYMBOL}: no closed candle for 660 s")]


def test_a_restart_long_after_the_last_candle_is_not_a_silence():
    """The stored candles are hours old at start: silence counts from the watchdog's start,
    so at 60 wall seconds (real-time market) nothing is told; at 121 s it is."""
    clocks = Clocks()
    status, _ = live_status()
    status.candle_processed(SYMBOL, T0_MS - 5 * 3_600_000)
    dog = watchdog(clocks, status, symbols=[SYMBOL])
    for t in (0, 60):
        clocks.at(t)
        dog.check()
    assert alerts() == []
    clocks.at(121)
    dog.check()
    assert alerts() == [("warning", f"{SYMBOL}: no closed candle for 121 s")]


def test_an_active_strategy_silent_while_its_candles_flow_is_told_and_cleared_by_a_signal():
    """strategy_silence_minutes = 60: a candle every market minute, one strategy active
    without a signal (told once past 60 minutes), one paused (not told: it is not expected to
    signal, nor when resumed); the silent one's next signal clears it."""
    clocks = Clocks()
    status, _ = live_status()
    runtime = running_radar()
    silent, paused = entry_of(runtime, "vwap_rsi"), entry_of(runtime, "swing_1h")
    for entry in runtime.arena:
        if entry is not silent:
            entry.session.status = TradingSession.Status.PAUSED
    thresholds = WatchdogThresholds(strategy_silence_minutes=60)
    dog = watchdog(clocks, status, arena=runtime.arena, symbols=[SYMBOL], thresholds=thresholds)
    for minute in range(63):
        status.candle_processed(SYMBOL, T0_MS + minute * 60_000)
        clocks.at(minute * 60)
        dog.check()
    told = "vwap_rsi: no signal for 61 min of market time while its candles keep arriving"
    assert alerts() == [("warning", told)]
    assert paused.session.status == TradingSession.Status.PAUSED
    silent.signal_count += 1
    paused.session.status = TradingSession.Status.ACTIVE  # resumed: its pause was no silence
    status.candle_processed(SYMBOL, T0_MS + 63 * 60_000)
    clocks.at(63 * 60)
    dog.check()
    assert [level for level, _ in alerts()] == ["warning", "info"]


def test_a_slow_rest_api_is_told_after_two_slow_answers_and_cleared_by_a_fast_one():
    """api_latency_s = 2: one slow answer is noise, two in a row a finding; a fast one clears."""
    clocks = Clocks()
    status, _ = live_status()
    dog = watchdog(clocks, status, thresholds=WatchdogThresholds(api_latency_s=2.0))
    dog.observe_latency(2.5)
    dog.check()
    assert alerts() == []
    dog.observe_latency(3.1)
    dog.check()
    dog.observe_latency(2.8)
    dog.check()
    assert alerts() == [("warning", "exchange REST API slow: 3.1 s per request (limit 2 s)")]
    dog.observe_latency(0.2)
    dog.check()
    assert [level for level, _ in alerts()] == ["warning", "info"]


async def test_the_latency_probe_times_the_real_exchange_client_and_tells_an_unanswered_api():
    """``fetch_time`` of the real ccxt client against the fake Bitget: answered; then the fake
    answers HTTP 500 twice (told once); then it answers again (cleared)."""
    from asgiref.sync import sync_to_async

    from strategies.config import get_config
    from trading.exchanges.clients import ExchangeSettings, market_data_exchange

    entry = get_config().exchanges.exchanges["bitget"]
    fake = FakeBitget(speed=1)
    await fake.start()
    exchange = market_data_exchange(ExchangeSettings.from_entry(entry, "bitget"),
                                    base_url=fake.base_url)  # fmt: skip
    fake.attach(exchange)
    exchange.timeout_on_exit = 0
    try:
        status, _ = live_status()
        dog = watchdog(Clocks(), status, exchange=exchange)
        await dog.measure_latency()
        assert dog.latency_s is not None and not dog.latency_error
        fake.fail_next("/api/v2/public/time", status=500, times=2)
        for _ in range(3):  # failing, failing, answering
            await dog.measure_latency()
            await sync_to_async(dog.check)()
    finally:
        await exchange.close()
        await fake.stop()
    stored = await sync_to_async(alerts)()
    assert [level for level, _ in stored] == ["warning", "info"], stored
    assert stored[0][1].startswith("exchange REST API not answering: ")
    assert len(fake.requests_to("/api/v2/public/time")) == 4


def _hold_write_lock(seconds: float, started: threading.Event) -> None:
    name = connection.settings_dict["NAME"]
    uri = str(name).startswith("file:")
    raw = sqlite3.connect(str(name), uri=uri, timeout=5, check_same_thread=False)
    raw.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    raw.rollback()
    raw.close()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="an SQLite write lock")
def test_an_outage_over_before_its_alert_could_be_stored_is_stored_as_one_alert(monkeypatch):
    """The database check fails from t = 0 to 5 s while a real write lock (another
    connection) makes every alert write fail; the outage is over before the lock goes: ONE
    alert tells the whole episode, stored once the database takes writes again."""
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.2)
    connection.close()  # reopened with the short busy timeout
    clocks = Clocks()
    status, _ = live_status()
    answers = {"ok": False}

    def database() -> tuple[bool, str]:
        return answers["ok"], "" if answers["ok"] else "OperationalError: gone"

    dog = watchdog(clocks, status, live=False, database=database)
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(1.5, started))
    holder.start()
    started.wait(5)
    dog.check()
    clocks.at(5)
    answers["ok"] = True
    dog.check()
    assert len(dog.pending) == 1  # not stored yet: the lock holds
    holder.join(10)
    clocks.at(6)
    dog.check()
    assert dog.pending == []
    [(level, message)] = alerts()
    assert level == "error"
    assert message.startswith("database unreachable: OperationalError: gone (from ")
    assert message.endswith(" UTC, for 5 s; over)")


def test_a_cleared_line_reaches_the_phone_when_info_alerts_would_not(settings):
    """With alerts_min_level warning (the wiring then sets clear_notice_levels), the raise
    goes to the chats as an alert and its "cleared" line as a watchdog notice: the episode is
    told to its end on the phone, once each."""
    settings.TELEGRAM_BOT_TOKEN = "123456:TEST-TOKEN"
    settings.TELEGRAM_CHAT_IDS = ("111",)
    clocks = Clocks()
    status, stats = live_status()
    thresholds = WatchdogThresholds(ws_disconnected_s=1, clear_notice_levels=frozenset({"warning"}))
    dog = watchdog(clocks, status, thresholds=thresholds)
    dog.check()
    stats.reconnects = 1
    for t in (1, 3, 3.5):
        clocks.at(t)
        dog.check()
    status.heard_from_feed()
    clocks.at(4)
    dog.check()
    sent = list(Notification.objects.order_by("pk").values_list("kind", "level", "text"))
    assert sent == [
        ("alert", "warning", "⚠️ live feed disconnected for over 1 s (watchdog)"),
        ("watchdog", "info", "✅ cleared after 3 s: live feed disconnected for over 1 s"),
    ]


# --- notify.yaml's watchdog keys act through the wiring (scalpradar.serve) ----------------------


def _notify_yaml(tmp_path, settings, **changes: Any) -> None:
    """A copy of config/ whose notify.yaml has ``changes`` (``watchdog.x`` or a top key)."""
    import shutil

    import yaml

    target = tmp_path / "config"
    shutil.copytree(settings.BASE_DIR / "config", target)
    data = yaml.safe_load((target / "notify.yaml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        section, _, name = key.rpartition(".")
        (data[section] if section else data)[name] = value
    (target / "notify.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    settings.CONFIG_DIR = target


def _ws_scenario(dog: Watchdog, clocks: Clocks, status: RadarStatus, stats: Any) -> None:
    """Disconnected for 11 s."""
    dog.check()
    stats.reconnects = 1
    for t in (1, 12):
        clocks.at(t)
        dog.check()


def _latency_scenario(dog: Watchdog, clocks: Clocks, status: RadarStatus, stats: Any) -> None:
    """Two REST answers of 1.5 s."""
    for _ in range(2):
        dog.observe_latency(1.5)
        dog.check()


def _candle_scenario(dog: Watchdog, clocks: Clocks, status: RadarStatus, stats: Any) -> None:
    """No closed candle for 50 s (real-time market)."""
    dog.symbols = [SYMBOL]
    status.candle_processed(SYMBOL, T0_MS - 60_000)
    for t in (0, 50):
        clocks.at(t)
        dog.check()


def _strategy_scenario(dog: Watchdog, clocks: Clocks, status: RadarStatus, stats: Any) -> None:
    """vwap_rsi (alone active) without a signal for 12 minutes of candles."""
    runtime = running_radar()
    for entry in runtime.arena:
        if entry.config.name != "vwap_rsi":
            entry.session.status = TradingSession.Status.PAUSED
    dog.arena, dog.symbols = runtime.arena, [SYMBOL]
    for minute in range(13):
        status.candle_processed(SYMBOL, T0_MS + minute * 60_000)
        clocks.at(minute * 60)
        dog.check()


@pytest.mark.parametrize(
    ("key", "value", "scenario"),
    [
        ("watchdog.ws_disconnected_s", 10, _ws_scenario),
        ("watchdog.api_latency_s", 1.0, _latency_scenario),
        ("watchdog.candle_silence_s", 40, _candle_scenario),
        ("watchdog.strategy_silence_minutes", 10, _strategy_scenario),
    ],
)
def test_each_watchdog_key_of_notify_yaml_moves_its_threshold(
    tmp_path, settings, key, value, scenario
):
    """The shipped thresholds (30 s, 2 s, 120 s, 60 min) stay quiet on each scenario; the key
    lowered below it in notify.yaml makes the same scenario a finding."""
    from scalpradar.serve import watchdog_thresholds

    found = []
    for changes in ({}, {key: value}):
        Alert.objects.filter(source="watchdog").delete()
        _notify_yaml(tmp_path / str(len(found)), settings, **changes)
        clocks = Clocks()
        status, stats = live_status()
        dog = watchdog(clocks, status, thresholds=watchdog_thresholds())
        scenario(dog, clocks, status, stats)
        found.append(len(alerts()))
    assert found == [0, 1]


def test_alerts_min_level_info_sends_the_cleared_line_as_an_alert_not_a_second_notice(
    tmp_path, settings
):
    from scalpradar.serve import watchdog_thresholds

    _notify_yaml(tmp_path, settings)
    assert watchdog_thresholds().clear_notice_levels == frozenset({"warning", "error"})
    _notify_yaml(tmp_path / "info", settings, alerts_min_level="info")
    assert watchdog_thresholds().clear_notice_levels == frozenset()
    _notify_yaml(tmp_path / "error", settings, alerts_min_level="error")
    assert watchdog_thresholds().clear_notice_levels == frozenset({"error"})
