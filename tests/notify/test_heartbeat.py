"""The heartbeat: its "alive" text from the sessions as the Session page reads them, its
cadence (``heartbeat_minutes``, 0 = off), and the radar's run row (``RadarBeat``) — through
the real notify service against the fake Bot API where it is sent."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async

from notify.config import NotifyConfig, get_notify_config
from notify.heartbeat import (
    heartbeat_enqueue,
    heartbeat_loop,
    heartbeat_text,
    new_run_id,
    radar_beat_start,
    radar_beat_stop,
    radar_beat_stopped,
    radar_beat_touch,
)
from notify.models import Notification, RadarBeat
from notify.service import NotifyService
from tests.notify.conftest import OWNER
from trading.models import LivePosition, TradingSession
from trading.services import session_start

pytestmark = pytest.mark.django_db(transaction=True)
NOON = datetime(2026, 6, 12, 12, 0, tzinfo=UTC)


def _sessions() -> None:
    """Two paper strategies and one closed live trade:
    vwap_rsi gross +120, fees 40, net +80, 5 trades, 3 wins;
    swing_1h gross -30, fees 10, net -40, 2 trades, 0 wins  -> paper +90 / 50 / +40, 7, 3;
    live: one trade of vwap_rsi, gross +12.5, fees 2.5, net +10, a win."""
    for name, gross, fees, trades, wins in (
        ("vwap_rsi", 120, 40, 5, 3),
        ("swing_1h", -30, 10, 2, 0),
    ):
        session = session_start(strategy_name=name, mode="paper", initial_capital_usdt=10_000)
        TradingSession.objects.filter(pk=session.pk).update(
            realised_gross_pnl=gross, fees_usdt=fees, realised_net_pnl=gross - fees,
            trades_count=trades, wins_count=wins,
        )  # fmt: skip
    now_ms = int(time.time() * 1000)
    LivePosition.objects.create(
        strategy_name="vwap_rsi", symbol="BTC/USDT:USDT", side="long", status="closed", qty=0.01,
        entry_price=100_000, opened_ms=now_ms - 60_000, closed_ms=now_ms, exit_price=101_250,
        gross_pnl=12.5, fees_usdt=2.5, funding_usdt=0.0, net_pnl=10.0,
    )  # fmt: skip


def test_the_heartbeat_says_alive_with_each_modes_pnl_trades_and_wins():
    _sessions()
    text = heartbeat_text(NOON)
    assert text.splitlines() == [
        "💓 Scalp Radar alive · 2026-06-12 12:00 UTC",
        "Paper: gross +90.00 · fees 50.00 · net +40.00 USDT · 7 trades, 3 wins · open +0.00",
        "Live: gross +12.50 · fees 2.50 · net +10.00 USDT · 1 trades, 1 wins · 0 open",
    ]


def test_a_tripped_kill_switch_is_named_in_the_heartbeat():
    _sessions()
    TradingSession.objects.filter(strategy_name="swing_1h").update(kill_switch_tripped=True)
    assert heartbeat_text(NOON).splitlines()[-1] == "Kill switch tripped: swing_1h"


def test_apart_from_the_radar_the_heartbeat_says_what_its_dead_man_found():
    """The telegram_bot process is alive whatever the radar does: it says /health/'s state."""
    assert heartbeat_text(NOON, radar_state="down").splitlines()[1] == "Radar /health/: DOWN"


def test_without_sessions_the_heartbeat_still_says_alive():
    assert heartbeat_text(NOON).splitlines() == [
        "💓 Scalp Radar alive · 2026-06-12 12:00 UTC",
        "No running session yet.",
    ]


def test_heartbeat_minutes_zero_queues_nothing_and_otherwise_one_row_per_chat(settings):
    from common.notices import Notice
    from notify import outbox

    settings.TELEGRAM_BOT_TOKEN = "123456:TEST-TOKEN"
    settings.TELEGRAM_CHAT_IDS = ("111", "222")
    assert [row.chat_id for row in heartbeat_enqueue()] == ["111", "222"]
    assert set(Notification.objects.values_list("kind", flat=True)) == {"heartbeat"}
    off = replace(get_notify_config(), heartbeat_minutes=0)
    assert outbox.enqueue(Notice(kind="heartbeat", text="alive"), config=off) == []


async def test_the_loop_sends_every_interval_until_stopped_and_never_when_zero():
    """every_s = 0.1: a send one interval after the start, then one per interval; stopped
    after the third."""
    calls: list[float] = []
    stop = asyncio.Event()
    started = time.monotonic()

    def send() -> None:
        calls.append(time.monotonic() - started)
        if len(calls) == 3:
            stop.set()

    assert await asyncio.wait_for(heartbeat_loop(stop, every_s=0.1, send=send), 10) == 3
    assert calls[0] >= 0.1  # not at once: the start notice said the radar runs
    assert all(b - a >= 0.1 for a, b in itertools.pairwise(calls))
    assert await heartbeat_loop(asyncio.Event(), every_s=0, send=send) == 0


def test_the_radar_run_row_beats_and_says_when_it_stopped_cleanly():
    run_id = new_run_id()
    beat = radar_beat_start(run_id=run_id, mode="replay")
    assert not radar_beat_stopped(pid=beat.pid)
    RadarBeat.objects.filter(pk=beat.pk).update(beat_at=NOON)
    assert radar_beat_touch(run_id=run_id) == 1
    assert RadarBeat.objects.get(pk=beat.pk).beat_at > NOON
    assert radar_beat_stop(run_id=run_id) == 1
    assert radar_beat_stopped(pid=beat.pid)
    assert radar_beat_touch(run_id=run_id) == 0  # a stopped run beats no more


async def test_the_service_in_the_radar_sends_heartbeats_on_cadence_and_marks_its_run(
    fake_telegram,
):
    """heartbeat_minutes 0.01 (0.6 s): the real service (sender, command bot, heartbeat, run
    row) against the fake Bot API; two heartbeats arrive, then the stop marks the run."""
    config: NotifyConfig = replace(get_notify_config(), heartbeat_minutes=0.01,
                                   coalesce_window_s=0.0)  # fmt: skip
    service = NotifyService(commands=True, radar_mode="replay", config=config)
    await service.start()
    try:
        first = await fake_telegram.wait_sent(lambda m: "Scalp Radar alive" in m.text, 10)
        await fake_telegram.wait_sent(
            lambda m: "Scalp Radar alive" in m.text and m.message_id != first.message_id, 10
        )
        beat = await sync_to_async(RadarBeat.objects.get)(run_id=service.run_id)
        assert beat.stopped_at is None and beat.mode == "replay"
    finally:
        await service.stop(drain_timeout_s=5)
    assert first.chat_id == OWNER
    beat = await sync_to_async(RadarBeat.objects.get)(run_id=service.run_id)
    assert beat.stopped_at is not None
    heartbeats = [m for m in fake_telegram.sent if "Scalp Radar alive" in m.text]
    assert len(heartbeats) >= 2
    assert heartbeats[1].at - heartbeats[0].at >= 0.5
