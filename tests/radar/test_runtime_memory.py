"""Memory bound: a live kernel's candle history is trimmed to the window a restart reloads,
and the trades stay those of a radar that keeps every candle."""

from __future__ import annotations

from dataclasses import replace
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from radar.runtime import RadarRuntime, build_arena, history_span_ms, trim_history
from strategies.config import get_config
from strategies.kernel_config import kernel_config_from
from strategies.models import Signal, StrategyConfig
from tests.radar.test_radar import sample_candles
from tests.radar.test_runtime_checkpoint import stored
from trading.models import Candle, Position, TradingSession

SYMBOL = "BTC/USDT:USDT"


def short_window_radar(trim_every: int) -> RadarRuntime:
    """The YAML arena on BTC with snapshot windows of 31 periods (momentum's floor; the
    volatility window shrunk to fit: 14 + 16 + 1), so that 2 days of candles are longer than
    most kernels' history span (momentum: 33 h)."""
    if not StrategyConfig.objects.exists():
        call_command("load_config", stdout=StringIO())
    config = kernel_config_from(get_config())
    regime = replace(config.regime, atr_percentile_window=16)
    arena = build_arena(
        StrategyConfig.objects.filter(enabled=True),
        [SYMBOL],
        replace(config, max_candles=31, regime=regime),
        exchange="bitget",
    )
    runtime = RadarRuntime(arena, exchange="bitget", selector_every=0, checkpoint_every_s=3600)
    runtime.trim_every = trim_every
    return runtime


def held_minutes(runtime: RadarRuntime) -> dict[str, int]:
    return {
        e.config.name: len(e.kernel._symbols[SYMBOL].builder.history().candles["1m"])
        for e in runtime.arena
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_trimmed_history_takes_the_same_trades_and_stays_within_its_span():
    """2 days of BTC, once keeping every candle, once trimming every 60 candles: the same
    record row for row; the trimmed kernels hold at most their span + 60 minutes (momentum:
    (31 + 2) × 1 h = 1,980 rows + 60), the untrimmed ones all 2,880."""
    candles = sample_candles(2 * 1440)
    keeping = short_window_radar(trim_every=0)
    for group in range(0, len(candles), 7):
        keeping.process_candles([(SYMBOL, tuple(r)) for r in candles[group : group + 7]])
    keeping.checkpoint_all()
    expected = stored()
    assert set(held_minutes(keeping).values()) == {len(candles)}
    with transaction.atomic():
        for model in (Position, TradingSession, Signal, Candle):
            model.objects.all().delete()

    trimming = short_window_radar(trim_every=60)
    for group in range(0, len(candles), 7):
        trimming.process_candles([(SYMBOL, tuple(r)) for r in candles[group : group + 7]])
    trimming.checkpoint_all()
    assert stored() == expected
    assert any(p[2] == "closed" for p in expected["positions"])  # momentum traded: not vacuous
    held = held_minutes(trimming)
    for entry in trimming.arena:
        span_rows = history_span_ms(entry.kernel, SYMBOL) // 60_000
        assert held[entry.config.name] <= span_rows + 60, entry.config.name
    assert held["momentum_breakout"] <= 33 * 60 + 60


@pytest.mark.django_db(transaction=True)
def test_trimming_a_kernel_that_holds_less_than_its_span_changes_nothing():
    candles = sample_candles(30)
    runtime = short_window_radar(trim_every=0)
    runtime.process_candles([(SYMBOL, tuple(r)) for r in candles])
    entry = runtime.arena[0]
    builder = entry.kernel._symbols[SYMBOL].builder
    assert trim_history(entry.kernel, SYMBOL) == 0
    assert entry.kernel._symbols[SYMBOL].builder is builder
