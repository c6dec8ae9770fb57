"""Metrics with numbers worked by hand (see each docstring)."""

from __future__ import annotations

import numpy as np
import pytest

from backtests.core.metrics import (
    compute_metrics,
    daily_returns,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
)
from trading.core.fees import Liquidity
from trading.core.ledger import ClosedTrade
from trading.core.types import ExitReason, MarginMode, Side

H = 3_600_000


def trade(gross: float, fees: float, funding: float = 0.0) -> ClosedTrade:
    reason = ExitReason.TAKE_PROFIT if gross > 0 else ExitReason.STOP_LOSS
    return ClosedTrade(
        "1", "BTC/USDT:USDT", Side.LONG, 1.0, 2.0, MarginMode.ISOLATED, 50.0, 100.0, 0,
        fees / 2, Liquidity.TAKER, 100.0, 1, fees / 2, Liquidity.TAKER, funding, 0.5, gross,
        gross - fees - funding, reason, 99.0, 101.0, 0.0,
    )  # fmt: skip


def test_profit_factor_is_gains_over_losses() -> None:
    """30 − 10 + 20 − 5: 50 / 15 = 3.3333."""
    assert profit_factor([30, -10, 20, -5]) == pytest.approx(50 / 15)
    assert profit_factor([1, 2]) is None


def test_max_drawdown_is_measured_from_the_peak_and_lasts_until_recovery() -> None:
    """100, 120, 90, 130 at hours 0..3: (120 − 90) / 120 = 25 %, under water hours 1→3 = 2 h."""
    dd, hours = max_drawdown(np.array([0, H, 2 * H, 3 * H]), np.array([100, 120, 90, 130.0]))
    assert dd == pytest.approx(25.0)
    assert hours == pytest.approx(2.0)


def test_daily_returns_take_the_last_equity_of_each_utc_day() -> None:
    """Capital 100; day 1 ends at 110, day 2 at 99 → +10 %, −10 %."""
    day = 86_400_000
    times = np.array([day // 2, day, day + day // 2, 2 * day])
    returns = daily_returns(times, np.array([105, 110, 120, 99.0]), 100.0)
    assert returns == pytest.approx([0.10, -0.10])


def test_sharpe_and_sortino_are_annualised_with_the_square_root_of_365() -> None:
    """r = 0.01, −0.005, 0.02: mean 0.0083333, std 0.0125831 → Sharpe 0.66227 × 19.10497 =
    12.6525; downside sqrt(0.005² / 3) = 0.00288675 → Sortino 2.88675 × 19.10497 = 55.1512."""
    r = np.array([0.01, -0.005, 0.02])
    assert sharpe_ratio(r) == pytest.approx(12.6525, rel=1e-4)
    assert sortino_ratio(r) == pytest.approx(55.1512, rel=1e-4)


def test_a_run_adds_up_gross_fees_funding_and_net() -> None:
    """Trades gross +40 fees 8; gross −20 fees 6 funding 1: gross 20, fees 14 = 70 % of gross,
    net 32 − 27 = 5, win rate 50 %, expectancy 2.5, net PF 32 / 27."""
    trades = [trade(40, 8), trade(-20, 6, 1)]
    times = np.array([H, 2 * H])
    m = compute_metrics(trades, times, np.array([10_032.0, 10_005.0]), start_equity=10_000,
                        in_position=np.array([True, False]))  # fmt: skip
    assert (m.trades, m.win_rate, m.gross_pnl, m.fees) == (2, 50.0, 20.0, 14.0)
    assert m.fees_pct_of_gross == pytest.approx(70.0)
    assert m.net_pnl == pytest.approx(5.0)
    assert m.expectancy == pytest.approx(2.5)
    assert m.profit_factor_net == pytest.approx(32 / 27)
    assert m.exposure_pct == pytest.approx(50.0)
    assert m.by_exit_reason["stop_loss"]["trades"] == 1
