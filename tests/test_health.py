"""``/health/``: 200 when the radar does its job, 503 when degraded (``radar.health``)."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError

from radar import health
from strategies.config import get_config
from trading.feed.feed import FeedStats
from trading.models import Candle, TradingSession

MINUTE_MS = 60_000


@pytest.fixture(autouse=True)
def no_radar_in_process():
    health.radar_status.reset()
    yield
    health.radar_status.reset()


def store_candles(closed_s_ago: float) -> None:
    """One 1m candle per enabled symbol that closed ``closed_s_ago`` seconds ago."""
    open_ms = int(time.time() * 1000 - closed_s_ago * 1000) - MINUTE_MS
    for symbol in get_config().enabled_symbols:
        Candle.objects.create(
            exchange="bitget", symbol=symbol, timeframe="1m", open_time_ms=open_ms,
            open=1.0, high=1.0, low=1.0, close=1.0, volume=1.0,
        )  # fmt: skip


def live_feed_running() -> FeedStats:
    stats = FeedStats()
    health.radar_status.feed_started(source="live", stats=stats)
    return stats


@pytest.mark.django_db
def test_health_is_ok_with_a_connected_live_feed_and_fresh_candles(client):
    store_candles(closed_s_ago=20)
    TradingSession.objects.create(strategy_name="vwap_rsi", realised_net_pnl=-123.45)
    live_feed_running()
    response = client.get("/health/")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok" and body["problems"] == []
    assert body["database"]["ok"] and body["channel_layer"]["ok"]
    assert body["feed"] == {
        "state": "connected",
        "source": "live",
        "in_process": True,
        "writer": "ok",
    }
    for candle in body["candles"].values():
        assert candle["source"] == "database" and 19 <= candle["age_s"] <= 60
    assert body["strategies"] == [
        {"name": "vwap_rsi", "status": "active", "kill_switch_tripped": False}
    ]
    assert body["open_positions"] == {"paper": 0, "shadow": 0}
    assert "-123.45" not in response.content.decode()  # no P&L for the public
    assert "detail" not in body


@pytest.mark.django_db
def test_health_prefers_the_running_runtimes_last_candle_over_the_database(client):
    live_feed_running()
    now_ms = int(time.time() * 1000)
    for symbol in get_config().enabled_symbols:
        health.radar_status.candle_processed(symbol, now_ms - 90_000)  # closed 30 s ago
    body = client.get("/health/").json()
    assert body["status"] == "ok"
    assert {c["source"] for c in body["candles"].values()} == {"runtime"}


@pytest.mark.django_db
def test_health_is_503_when_the_database_is_down(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection to 10.0.0.5 refused")

    monkeypatch.setattr(health.connection, "cursor", refuse)
    response = client.get("/health/")
    body = response.json()
    assert response.status_code == 503
    assert "database unreachable" in body["problems"]
    assert body["database"]["ok"] is False and body["strategies"] == []
    assert "refused" not in response.content.decode()  # error texts are for staff only


@pytest.mark.django_db
def test_health_is_503_when_the_channel_layer_fails_its_round_trip(client, monkeypatch):
    class BrokenLayer:
        async def new_channel(self) -> str:
            raise ConnectionError("redis down")

    monkeypatch.setattr(health, "get_channel_layer", lambda: BrokenLayer())
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["problems"] == ["channel layer unreachable"]


@pytest.mark.django_db
def test_health_is_503_when_a_live_feeds_newest_candle_is_stale(client):
    store_candles(closed_s_ago=health.STALE_AFTER_S + 60)
    live_feed_running()
    response = client.get("/health/")
    assert response.status_code == 503
    problems = response.json()["problems"]
    assert len(problems) == len(get_config().enabled_symbols)
    assert all("no closed candle for over 180 s" in p for p in problems)


@pytest.mark.django_db
def test_health_is_503_while_the_live_feed_is_disconnected_and_ok_once_it_hears_again(client):
    store_candles(closed_s_ago=10)
    stats = live_feed_running()
    stats.reconnects += 1  # the feed lost its websocket and is in its backoff
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["feed"]["state"] == "disconnected"
    health.radar_status.heard_from_feed()
    assert client.get("/health/").status_code == 200


@pytest.mark.django_db
def test_a_finished_replay_with_old_candles_is_not_degraded(client):
    store_candles(closed_s_ago=86_400 * 365)
    health.radar_status.feed_started(source="replay", stats=FeedStats())
    health.radar_status.feed_stopped(finished=True)
    response = client.get("/health/")
    assert response.status_code == 200, response.json()
    assert response.json()["feed"]["state"] == "finished"


@pytest.mark.django_db
def test_staff_get_the_detail_section_with_kill_switch_reasons(client, django_user_model):
    TradingSession.objects.create(
        strategy_name="momentum_breakout", status="killed", kill_switch_tripped=True,
        kill_switch_reason="session loss 31.2 USDT over 30 USDT",
    )  # fmt: skip
    staff = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(staff)
    body = client.get("/health/").json()
    assert body["strategies"][0]["kill_switch_tripped"] is True
    assert body["detail"]["kill_switch_reasons"] == {
        "momentum_breakout": "session loss 31.2 USDT over 30 USDT"
    }


@pytest.mark.django_db(transaction=True)
def test_health_after_a_headless_replay_reports_the_finished_replay(client, tmp_path):
    from tests.radar.test_radar import slice_sample

    path = slice_sample(tmp_path, "BTC", 0, 30)
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless", stdout=StringIO())
    body = client.get("/health/").json()
    assert body["feed"] == {
        "state": "finished",
        "source": "replay",
        "in_process": True,
        "writer": "ok",
    }
    assert body["candles"]["BTC/USDT:USDT"]["source"] == "runtime"
    assert body["status"] == "ok"


@pytest.mark.django_db
def test_candle_ages_on_the_fake_exchange_are_measured_on_its_market_clock(client):
    """The fake runs market time ``speed``× faster, in 2025: against the wall clock its newest
    candle looks months old and a healthy fake-exchange radar read as degraded."""
    market_now = 1_750_000_000_000  # 2025-06-15
    health.radar_status.feed_started(source="live", stats=FeedStats(), market_ms=lambda: market_now)
    for symbol in get_config().enabled_symbols:
        health.radar_status.candle_processed(symbol, market_now - 90_000)  # closed 30 s ago
    body = client.get("/health/").json()
    assert body["status"] == "ok", body
    assert {c["age_s"] for c in body["candles"].values()} == {30.0}
    # The same candles against the wall clock (no market clock) are stale.
    health.radar_status.market_ms = None
    assert client.get("/health/").status_code == 503


@pytest.mark.django_db
def test_a_degraded_health_is_logged_once_per_change_not_per_probe(client, caplog, monkeypatch):
    from scalpradar import views

    monkeypatch.setattr(views, "_last_problems", ())  # healthy before this test
    live_feed_running()  # no candle at all: degraded
    with caplog.at_level("INFO"):
        for _ in range(5):
            assert client.get("/health/").status_code == 503
    degraded = [r for r in caplog.records if r.name == "scalpradar.health"]
    assert len(degraded) == 1 and "no closed candle" in degraded[0].getMessage()
    assert not [r for r in caplog.records if r.name == "django.request"]
