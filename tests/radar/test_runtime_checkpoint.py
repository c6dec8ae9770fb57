"""Checkpoints: a kernel's state is saved with its events, not with every candle; a restart
from an older checkpoint replays the stored candles since (``RadarRuntime.catch_up``) and ends
exactly where an uninterrupted run is."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from radar.runtime import RadarRuntime, build_arena, last_candle_ms
from strategies.config import get_config
from strategies.kernel_config import kernel_config_from
from strategies.models import Signal, StrategyConfig
from tests.radar.test_radar import sample_candles
from trading.models import Candle, Position, TradingSession

SYMBOL = "BTC/USDT:USDT"


def radar(checkpoint_every_s: float) -> RadarRuntime:
    if not StrategyConfig.objects.exists():
        call_command("load_config", stdout=StringIO())
    arena = build_arena(
        StrategyConfig.objects.filter(enabled=True),
        [SYMBOL],
        kernel_config_from(get_config()),
        exchange="bitget",
    )
    runtime = RadarRuntime(
        arena, exchange="bitget", selector_every=0, checkpoint_every_s=checkpoint_every_s
    )
    runtime.catch_up()
    return runtime


def stored() -> dict[str, object]:
    sessions = TradingSession.objects.order_by("strategy_name").values_list(
        "strategy_name", "trades_count", "realised_net_pnl", "equity_usdt", "ledger_state"
    )
    return {
        "sessions": [(*s[:-1], json.dumps(s[-1], sort_keys=True)) for s in sessions],
        "positions": list(
            Position.objects.order_by("strategy_name", "ledger_id").values_list(
                "strategy_name", "ledger_id", "status", "entry_time_ms", "exit_time_ms", "net_pnl"
            )
        ),
        "signals": list(
            Signal.objects.order_by("strategy__name", "candle_open_time_ms").values_list(
                "strategy__name", "candle_open_time_ms", "status", "shadow"
            )
        ),
    }


def feed(runtime: RadarRuntime, rows) -> None:
    for row in rows:
        runtime.process_candle(SYMBOL, tuple(row))


@pytest.mark.django_db(transaction=True)
def test_a_quiet_kernel_is_not_saved_with_every_candle():
    """The first candle of a symbol is a checkpoint; the next quiet ones are not."""
    candles = sample_candles(5)
    runtime = radar(checkpoint_every_s=3600)
    feed(runtime, candles)
    swing = TradingSession.objects.get(strategy_name="swing_1h")
    assert swing.ledger_state["symbols"][SYMBOL]["last_row"][0] == candles[0][0]
    runtime.checkpoint_all()
    swing.refresh_from_db()
    assert swing.ledger_state["symbols"][SYMBOL]["last_row"][0] == candles[4][0]


@pytest.mark.django_db(transaction=True)
def test_a_restart_between_checkpoints_replays_the_stored_candles_to_the_same_end():
    """2 days of BTC through a radar that checkpoints only on events (momentum trades), killed
    at candle 1,700 — i.e. its last checkpoints are older, its candles stored — restarted, fed
    the rest: every row equals that of a radar that ran through and saved every candle."""
    candles = sample_candles(2 * 1440)
    cut = 1700

    uninterrupted = radar(checkpoint_every_s=0)
    feed(uninterrupted, candles)
    expected = stored()
    with transaction.atomic():  # a fresh database for the second radar
        Position.objects.all().delete()
        TradingSession.objects.all().delete()
        Signal.objects.all().delete()
        Candle.objects.all().delete()

    crashed = radar(checkpoint_every_s=3600)
    feed(crashed, candles[:cut])
    behind = [
        e.config.name
        for e in crashed.arena
        if TradingSession.objects.get(pk=e.session.pk).ledger_state["symbols"][SYMBOL]["last_row"][
            0
        ]
        < candles[cut - 1][0]
    ]
    assert behind, "no kernel was behind its stored candles: the test would prove nothing"
    del crashed  # the process dies: nothing more is saved

    restarted = radar(checkpoint_every_s=3600)
    for entry in restarted.arena:
        assert last_candle_ms(entry.kernel, SYMBOL) == int(candles[cut - 1][0]), entry.config.name
    feed(restarted, candles[cut:])
    restarted.checkpoint_all()
    after = stored()
    assert after == expected
    assert any(p[2] == "closed" for p in after["positions"])  # momentum traded: not vacuous
    # The checkpoints carry the sums of the closed trades, never the trades (they are rows):
    # a restarted kernel reports the totals of every trade, those before the restart included.
    for entry in restarted.arena:
        state = TradingSession.objects.get(pk=entry.session.pk).ledger_state
        closed = Position.objects.filter(
            session=entry.session, status=Position.Status.CLOSED, shadow=False
        )
        assert state["ledger"]["closed"] == [] and state["shadow_ledger"]["closed"] == []
        assert state["ledger"]["realised"]["trades"] == closed.count(), entry.config.name
        assert len(entry.kernel.ledger.closed) < closed.count() or not closed.exists()
        assert entry.kernel.ledger.realised_net_pnl == sum(
            closed.order_by("exit_time_ms", "id").values_list("net_pnl", flat=True)
        ), entry.config.name
