"""Momentum breakout: crafted ranges and the real ETH breakout of 2025-06-16 14:00."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.core import indicators
from strategies.core.base import EntryType
from strategies.core.catalog import build_strategy, strategy_class
from strategies.core.snapshot import SnapshotBuilder
from tests.strategies.core.factories import candles, close_of, eth_1m, snapshot
from trading.core.types import Side


def range_then(last_close: float, *, last_high: float | None = None, higher: float = 100.0):
    """24 5m candles alternating 100 / 100.5 (spread 0.5: highs ≤ 101.0, lows ≥ 99.5), then one
    candle closing at ``last_close`` with volume 30 (3× the 10 before). 15m and 1h: 25 candles
    climbing 90 → ``higher`` (close above their EMA(20) when ``higher`` is 100)."""
    five = candles(
        [100.0 if i % 2 else 100.5 for i in range(24)] + [last_close], [10.0] * 24 + [30]
    )
    if last_high is not None:
        five[-1, 2] = last_high
    now = close_of(five, "5m")
    rising = [*np.linspace(90.0, 100.0, 24).tolist(), higher]
    return {
        "5m": five,
        "15m": candles(rising, timeframe="15m", start_ms=now - 25 * 900_000),
        "1h": candles(rising, timeframe="1h", start_ms=now - 25 * 3_600_000),
    }


def test_a_close_above_the_previous_20_highs_on_3x_volume_goes_long_at_market() -> None:
    """Range high of the 20 candles before = 101.0; close 102 > 101.0; volume 30 / 10 = 3× > 2×;
    15m and 1h close 100 above their EMA(20) → long, MARKET (next open); stop/target 1 / 2 ATR."""
    market = snapshot(range_then(102.0))
    signal = strategy_class("momentum_breakout")().decide(market)
    five = market.candles["5m"]
    atr = indicators.atr(five[:, 2], five[:, 3], five[:, 4], 14)[-1]
    assert signal is not None
    assert (signal.side, signal.entry_type, signal.entry_price) == (
        Side.LONG,
        EntryType.MARKET,
        102,
    )
    assert signal.stop_loss == pytest.approx(102.0 - atr, abs=1e-9)
    assert signal.take_profit == pytest.approx(102.0 + 2 * atr, abs=1e-9)
    assert "close 102.00 > the 20-candle range high 101.00" in signal.reasons


def test_the_breakout_candle_never_widens_its_own_range() -> None:
    """The breakout candle's own high (105) is not part of the range it breaks."""
    market = snapshot(range_then(102.0, last_high=105.0))
    assert strategy_class("momentum_breakout")().decide(market) is not None


def test_a_close_equal_to_the_range_high_is_not_a_breakout() -> None:
    market = snapshot(range_then(101.0))
    assert strategy_class("momentum_breakout")().decide(market) is None


def test_a_higher_timeframe_below_its_ema_vetoes_the_long() -> None:
    """15m / 1h last close 80, below EMA(20) ≈ 90: no multi-timeframe confirmation."""
    market = snapshot(range_then(102.0, higher=80.0))
    assert strategy_class("momentum_breakout")().decide(market) is None


def test_require_high_volatility_refuses_a_quiet_market() -> None:
    """225 quiet candles then the breakout: with require_high_volatility and only 25 candles the
    volatility is unknown (warm-up) → no trade; the default does trade."""
    market = snapshot(range_then(102.0))
    strategy = build_strategy("momentum_breakout", {"require_high_volatility": True})
    assert strategy.decide(market) is None


def test_real_eth_breakout_of_2025_06_16_1400_is_a_long() -> None:
    """ETH/USDT perp, 5m candle 13:55–14:00 UTC: close 2,638.33 above the 20-candle high
    2,628.44 on 5.88× volume; 15m and 1h closes above EMA(20) 2,615.93 / 2,590.13; ATR(14)
    7.99669, volatility in the top 20 % → stop 2,638.33 − 7.99669 = 2,630.3333, target
    2,638.33 + 2 × 7.99669 = 2,654.3234, score 1.0."""
    builder = SnapshotBuilder("ETH/USDT:USDT", eth_1m(), ("5m", "15m", "1h"))
    signal = strategy_class("momentum_breakout")().decide(builder.at(1_750_082_400_000))
    assert signal is not None
    assert (signal.side, signal.entry_type) == (Side.LONG, EntryType.MARKET)
    assert signal.entry_price == pytest.approx(2638.33, abs=1e-9)
    assert signal.stop_loss == pytest.approx(2630.3333074696484, abs=1e-9)
    assert signal.take_profit == pytest.approx(2654.323385060703, abs=1e-9)
    assert signal.score == pytest.approx(1.0, abs=1e-9)
