"""Swing baseline: a hand-worked EMA cross and the real ETH cross of 2025-06-16 07:00."""

from __future__ import annotations

import pytest

from strategies.core.base import EntryType, PositionView
from strategies.core.catalog import build_strategy, strategy_class
from strategies.core.snapshot import SnapshotBuilder
from tests.strategies.core.factories import candles, eth_1m, snapshot
from trading.core.types import ExitReason, Side

SMALL = {"fast_ema": 3, "slow_ema": 5, "atr_period": 3}
CLOSES = [110.0, 108, 106, 104, 102, 100, 100, 103, 106, 108]


def hours(count: int):
    return {"1h": candles(CLOSES[:count], timeframe="1h")}


def test_fast_ema_crossing_above_slow_goes_long_on_that_candle() -> None:
    """EMA(3) (k = 1/2) from the seed mean(110, 108, 106) = 108: 106, 104, 102, 101, 102, 104.
    EMA(5) (k = 1/3) from mean(110..102) = 106: 104, 102.667, 102.778, 103.852.
    Candle 8 (close 106): fast 104 > slow 103.852 while candle 7 had 102 ≤ 102.778 → long.
    True ranges |Δclose| + 1 (0.5 wicks): 3, 3, 3, 3, 3, 1, 4, 4 → ATR(3) = 88/27 = 3.259259;
    stop 106 − 2 × 88/27 = 99.481481, target 106 + 4 × 88/27 = 119.037037."""
    signal = build_strategy("swing_baseline", SMALL).decide(snapshot(hours(9)))
    assert signal is not None
    assert (signal.side, signal.entry_type) == (Side.LONG, EntryType.MARKET)
    assert signal.entry_price == 106.0
    assert signal.stop_loss == pytest.approx(106 - 2 * 88 / 27, abs=1e-9)
    assert signal.take_profit == pytest.approx(106 + 4 * 88 / 27, abs=1e-9)


def test_no_signal_before_or_after_the_cross_candle() -> None:
    strategy = build_strategy("swing_baseline", SMALL)
    assert strategy.decide(snapshot(hours(8))) is None
    assert strategy.decide(snapshot(hours(10))) is None


def test_an_hour_strategy_does_not_repeat_its_decision_between_hour_closes() -> None:
    """At 08:05 (a 5m close) the last 1h candle is still the 07:00 one: no repeat."""
    market = snapshot(hours(9))
    later = snapshot(dict(market.candles), now_ms=market.now_ms + 300_000)
    assert build_strategy("swing_baseline", SMALL).decide(later) is None


def test_a_long_is_closed_when_the_emas_stand_crossed_against_it() -> None:
    """Candle 7: fast 102 < slow 102.778."""
    position = PositionView("TEST", Side.LONG, 104.0, 0, 99.0, 115.0, 1.0)
    decision = build_strategy("swing_baseline", SMALL).should_exit(position, snapshot(hours(8)))
    assert decision is not None
    assert decision.reason is ExitReason.SIGNAL_EXIT
    assert build_strategy("swing_baseline", SMALL).should_exit(position, snapshot(hours(9))) is None


def test_real_eth_cross_of_2025_06_16_0700_is_a_long() -> None:
    """ETH/USDT perp, 1h candle 06:00–07:00 UTC (EMAs seeded from the fixture's first hour,
    2025-06-12 00:00): EMA(20) 2,556.51 crosses above EMA(50) 2,554.09; close 2,606.58, ATR(14)
    22.0361 → stop 2,606.58 − 2 × 22.0361 = 2,562.5079, target 2,606.58 + 4 × 22.0361 =
    2,694.7243."""
    builder = SnapshotBuilder("ETH/USDT:USDT", eth_1m(), ("1h",))
    strategy = strategy_class("swing_baseline")()
    signal = strategy.decide(builder.at(1_750_057_200_000))
    assert signal is not None
    assert signal.side is Side.LONG
    assert signal.entry_price == pytest.approx(2606.58, abs=1e-9)
    assert signal.stop_loss == pytest.approx(2562.5078562026383, abs=1e-9)
    assert signal.take_profit == pytest.approx(2694.724287594723, abs=1e-9)
    fired = [int(t) for t in builder.close_times_ms("1h") if strategy.decide(builder.at(int(t)))]
    assert fired == [1_750_057_200_000]
