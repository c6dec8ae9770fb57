"""VWAP + RSI mean reversion: crafted edge cases and the real ETH episode of 2025-06-16 22:40."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.core import indicators
from strategies.core.base import EntryType, PositionView
from strategies.core.catalog import build_strategy, strategy_class
from strategies.core.snapshot import SnapshotBuilder
from tests.strategies.core.factories import candles, close_of, eth_1m, snapshot
from trading.core.types import ExitReason, Side

FAST_RSI = {"rsi_period": 6}


def ranging_then_drop(last_volume: float = 40.0, trend_close: float = 100.0) -> dict:
    """96 5m candles of a sine wave (100 ± 1, period 8: ADX stays ~12), then three 1.0 drops to
    96.29; the last candle trades 40 against 10 before (4×). The 15m trend series is flat at
    100 with its last close ``trend_close`` (100 = on its EMA, not bearish)."""
    closes = [100 + np.sin(2 * np.pi * i / 8) for i in range(96)]
    closes += [closes[-1] - j for j in (1, 2, 3)]
    five = candles(closes, [10.0] * 98 + [last_volume])
    ends = close_of(five, "5m") - 60 * 900_000  # the 60 15m candles close by the 5m close
    fifteen = candles([100.0] * 59 + [trend_close], timeframe="15m", start_ms=ends)
    return {"5m": five, "15m": fifteen}


def test_a_washed_out_candle_below_vwap_in_a_range_goes_long_at_its_close() -> None:
    """RSI(6) 15.4 < 25, close 96.29 below the session VWAP 99.83, volume 4× the average,
    ADX(14) 15.7 < 20, 15m close 100 = its EMA(50) (not bearish) → long, LIMIT at the close;
    stop = close − 1.0 × ATR, target = close + 1.5 × ATR."""
    market = snapshot(ranging_then_drop())
    signal = build_strategy("vwap_rsi", FAST_RSI).decide(market)
    five = market.candles["5m"]
    atr = indicators.atr(five[:, 2], five[:, 3], five[:, 4], 14)[-1]
    assert signal is not None
    assert signal.side is Side.LONG
    assert signal.entry_type is EntryType.LIMIT
    assert signal.entry_price == five[-1, 4]
    assert signal.stop_loss == pytest.approx(five[-1, 4] - atr, abs=1e-9)
    assert signal.take_profit == pytest.approx(five[-1, 4] + 1.5 * atr, abs=1e-9)
    assert any("RSI(6) 15.4 < 25" in reason for reason in signal.reasons)


def test_volume_exactly_at_the_spike_multiple_is_not_a_spike() -> None:
    """15 against an average of 10 is 1.5×: the rule is strictly above 1.5×."""
    market = snapshot(ranging_then_drop(last_volume=15.0))
    assert build_strategy("vwap_rsi", FAST_RSI).decide(market) is None


def test_no_long_against_a_bearish_15m_trend() -> None:
    """15m close 95 below its EMA(50) (≈ 99.9): the same setup is refused."""
    market = snapshot(ranging_then_drop(trend_close=95.0))
    assert build_strategy("vwap_rsi", FAST_RSI).decide(market) is None


def test_no_trade_once_adx_says_the_market_trends() -> None:
    """ADX is 15.7: with adx_range_max 15 the market counts as trending."""
    market = snapshot(ranging_then_drop())
    assert build_strategy("vwap_rsi", {**FAST_RSI, "adx_range_max": 15.0}).decide(market) is None


def test_an_open_position_is_left_when_the_regime_turns_trending() -> None:
    market = snapshot(ranging_then_drop())
    position = PositionView("TEST", Side.LONG, 96.3, 0, 95.0, 98.0, 1.0)
    strategy = build_strategy("vwap_rsi", {**FAST_RSI, "adx_range_max": 15.0})
    decision = strategy.should_exit(position, market)
    assert decision is not None
    assert decision.reason is ExitReason.REGIME_CHANGE
    assert "ADX(14) 15.7 ≥ 15" in decision.detail
    assert build_strategy("vwap_rsi", FAST_RSI).should_exit(position, market) is None


def test_real_eth_washout_of_2025_06_16_2240_is_a_long() -> None:
    """ETH/USDT perp, 5m candle 22:35–22:40 UTC: close 2,599.80 under the session VWAP 2,613.91,
    RSI(14) 20.7, volume 15.8× the 20-candle average, ADX(14) 16.8, 15m close 2,654.64 above
    EMA(50) 2,635.99. ATR(14) = 9.71311 → stop 2,599.80 − 9.71311 = 2,590.0869, target
    2,599.80 + 1.5 × 9.71311 = 2,614.3697. Default parameters."""
    builder = SnapshotBuilder("ETH/USDT:USDT", eth_1m(), ("5m", "15m"))
    signal = strategy_class("vwap_rsi")().decide(builder.at(1_750_113_600_000))
    assert signal is not None
    assert signal.side is Side.LONG
    assert signal.entry_type is EntryType.LIMIT
    assert signal.entry_price == pytest.approx(2599.8, abs=1e-9)
    assert signal.stop_loss == pytest.approx(2590.086886579518, abs=1e-9)
    assert signal.take_profit == pytest.approx(2614.369670130724, abs=1e-9)
    assert signal.score == pytest.approx(0.6354964769162667, abs=1e-9)
    assert signal.reasons[0] == "RSI(14) 20.7 < 25"


def test_it_fires_only_once_in_the_real_eth_fixture() -> None:
    builder = SnapshotBuilder("ETH/USDT:USDT", eth_1m(), ("5m", "15m"))
    strategy = strategy_class("vwap_rsi")()
    fired = [int(t) for t in builder.close_times_ms("5m") if strategy.decide(builder.at(int(t)))]
    assert fired == [1_750_113_600_000]
