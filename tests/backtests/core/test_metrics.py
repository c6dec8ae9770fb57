"""Metrics with numbers worked by hand (see each docstring)."""

from __future__ import annotations

import numpy as np
import pytest

from backtests.core.metrics import (
    DAY_MS,
    GROSS_ZERO_NOTE,
    MIN_RATIO_DAYS,
    compute_metrics,
    cost_split,
    daily_returns,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
)
from trading.core.fees import Liquidity
from trading.core.ledger import ClosedTrade, Ledger
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


def test_fees_are_a_share_of_the_absolute_gross_on_a_losing_run_too() -> None:
    """Gross −20, fees 6 → 6 / |−20| = 30 %; +10 and −10 (fees 2 each) → gross exactly 0:
    no share, and a note saying why."""
    times = np.array([H, 2 * H])
    losing = compute_metrics([trade(-20, 6)], times[:1], np.array([9_974.0]), start_equity=10_000)
    assert losing.fees_pct_of_gross == pytest.approx(30.0)
    assert losing.fees_pct_note is None
    flat = compute_metrics([trade(10, 2), trade(-10, 2)], times, np.array([10_008.0, 9_996.0]),
                           start_equity=10_000)  # fmt: skip
    assert flat.gross_pnl == 0.0
    assert flat.fees_pct_of_gross is None and flat.fees_pct_note == GROSS_ZERO_NOTE


def test_a_liquidation_s_forfeited_margin_is_split_from_its_taker_fee() -> None:
    """The ledger's example: long 0.1 BTC at 100,000, 20× (margin 500), taker entry fee
    0.1 × 100,000 × 0.0006 = 6; liquidated at 95,439.02: gross 0.1 × −4,560.98 = −456.098,
    exit fee = margin + gross = 43.902. A normal close would pay 0.1 × 95,439.02 × 0.0006 =
    5.7263412 → fees 6 + 5.7263412 = 11.7263412, liquidation loss 43.902 − 5.7263412 =
    38.1756588; net −456.098 − 11.7263412 − 38.1756588 = −506 USDT."""
    ledger = Ledger(10_000.0)
    position = ledger.open(symbol="BTC/USDT:USDT", side=Side.LONG, qty=0.1, price=100_000.0,
                           time_ms=0, leverage=20, stop_loss=95_000.0)  # fmt: skip
    liquidated = ledger.close(position.position_id, 95_439.02, H, ExitReason.LIQUIDATION)
    fees, liquidation = cost_split(liquidated, 0.0006)
    assert fees == pytest.approx(11.7263412)
    assert liquidation == pytest.approx(38.1756588)
    assert cost_split(liquidated) == pytest.approx((6.0, 43.902))  # rate unknown: all of it
    m = compute_metrics([liquidated, trade(40, 8)], np.array([H, 2 * H]),
                        np.array([9_494.0, 9_526.0]), start_equity=10_000,
                        taker_rate=0.0006)  # fmt: skip
    assert (m.liquidations, m.liquidation_loss) == (1, pytest.approx(38.1756588))
    assert m.fees == pytest.approx(11.7263412 + 8)
    assert m.gross_pnl - m.fees - m.funding - m.liquidation_loss == pytest.approx(m.net_pnl)
    assert m.net_pnl == pytest.approx(-506.0 + 32.0)


def _daily_curve(days: int) -> tuple[np.ndarray, np.ndarray]:
    """Equity at the end of each UTC day, +1 % and −0.5 % in turn from 10,000."""
    returns = np.where(np.arange(days) % 2, -0.005, 0.01)
    return (np.arange(1, days + 1) * DAY_MS, 10_000.0 * np.cumprod(1.0 + returns))


def test_sharpe_and_sortino_are_shown_with_their_days_and_not_under_the_minimum() -> None:
    times, equity = _daily_curve(MIN_RATIO_DAYS - 1)
    short = compute_metrics([], times, equity, start_equity=10_000)
    assert short.ratio_days == MIN_RATIO_DAYS - 1
    assert short.sharpe is None and short.sortino is None
    assert f"{MIN_RATIO_DAYS - 1} daily returns" in short.ratio_note
    times, equity = _daily_curve(MIN_RATIO_DAYS)
    enough = compute_metrics([], times, equity, start_equity=10_000)
    returns = daily_returns(times, equity, 10_000)
    assert enough.ratio_days == MIN_RATIO_DAYS and enough.ratio_note is None
    assert enough.sharpe == pytest.approx(sharpe_ratio(returns))
    assert enough.sortino == pytest.approx(sortino_ratio(returns))
