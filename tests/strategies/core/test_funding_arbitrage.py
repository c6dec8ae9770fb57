"""Funding arbitrage: crafted settlements and the real SOL funding of 2025-05-28 16:00."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.core.base import StrategySkipped
from strategies.core.catalog import build_strategy, strategy_class
from strategies.core.snapshot import SnapshotBuilder
from tests.strategies.core.factories import candles, close_of, snapshot, sol_1m, sol_funding
from trading.core.types import Side

HOUR = 3_600_000


def hourly() -> np.ndarray:
    return candles([100.0, 101.0] * 10, timeframe="1h", spread=0.5)


def market_with(rate: float, settled_hours_ago: float):
    rows = hourly()
    now = close_of(rows, "1h")
    funding = np.array([[now - 16 * HOUR, 0.0001], [now - settled_hours_ago * HOUR, rate]])
    return snapshot({"1h": rows}, funding=funding)


def test_extreme_negative_funding_goes_long() -> None:
    """Rate −0.06 % ≤ −0.05 % settled 1 h ago (≤ 8 h): shorts pay longs → long at the close 101.
    Each candle moves 1.0 with 0.5 wicks: true range 2.0, so 1h ATR(14) = 2.0 → stop
    101 − 2 × 2 = 97, target 101 + 3 × 2 = 107."""
    signal = strategy_class("funding_arbitrage")().decide(market_with(-0.0006, 1))
    assert signal is not None
    assert signal.side is Side.LONG
    assert (signal.entry_price, signal.stop_loss, signal.take_profit) == pytest.approx(
        (101.0, 97.0, 107.0), abs=1e-9
    )


def test_extreme_positive_funding_goes_short() -> None:
    signal = strategy_class("funding_arbitrage")().decide(market_with(0.0006, 1))
    assert signal is not None
    assert signal.side is Side.SHORT


def test_a_rate_just_inside_the_extreme_does_nothing() -> None:
    assert strategy_class("funding_arbitrage")().decide(market_with(-0.000499, 1)) is None


def test_a_settlement_older_than_max_rate_age_is_ignored() -> None:
    """Settled 9 h ago > 8 h."""
    assert strategy_class("funding_arbitrage")().decide(market_with(-0.001, 9)) is None


def test_without_funding_history_it_reports_skipped_with_a_reason() -> None:
    market = snapshot({"1h": hourly()})
    strategy = strategy_class("funding_arbitrage")()
    assert strategy.missing_inputs(market) == "no funding-rate history"
    with pytest.raises(StrategySkipped, match="no funding-rate history"):
        strategy.decide(market)


def test_real_sol_funding_of_2025_05_28_1600_is_a_long() -> None:
    """SOL/USDT perp settled −0.013891 % at 16:00 UTC (threshold 0.012 %): long at the 15:00–
    16:00 candle's close 169.60; 1h ATR(14) 1.52525 → stop 169.60 − 2 × 1.52525 = 166.5495,
    target 169.60 + 3 × 1.52525 = 174.1757. Score = 0.4 × (0.013891 − 0.012) / 0.024 + 0.2 ×
    0.5 + 0.2 × 0.5 + 0.2 × 1 (fresh) = 0.431517."""
    builder = SnapshotBuilder("SOL/USDT:USDT", sol_1m(), ("1h",), funding=sol_funding())
    strategy = build_strategy("funding_arbitrage", {"extreme_rate": 0.00012})
    signal = strategy.decide(builder.at(1_748_448_000_000))
    assert signal is not None
    assert signal.side is Side.LONG
    assert signal.entry_price == pytest.approx(169.6, abs=1e-9)
    assert signal.stop_loss == pytest.approx(166.54950577945553, abs=1e-9)
    assert signal.take_profit == pytest.approx(174.1757413308167, abs=1e-9)
    assert signal.score == pytest.approx(0.4 * (0.00013891 - 0.00012) / 0.00024 + 0.4, abs=1e-9)
    fired = [int(t) for t in builder.close_times_ms("1h") if strategy.decide(builder.at(int(t)))]
    assert fired[0] == 1_748_448_000_000
    assert len(fired) == 8  # 16:00 .. 23:00, while the rate is at most 8 h old
