from __future__ import annotations

import numpy as np
import pytest

from backtests.core.engine import BacktestDataError, run_backtest
from strategies.core.kernel import KernelConfig, PositionOpened, SignalEvent
from tests.conftest import SAMPLE_DIR
from trading.core.candles import read_candles_csv

BTC = read_candles_csv(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")


def test_every_entry_happens_after_its_decision_candle_on_real_data() -> None:
    result = run_backtest("momentum_breakout", {}, "BTC/USDT:USDT", BTC, config=KernelConfig())
    decided = [e.time_ms for e in result.events if isinstance(e, SignalEvent) and e.accepted]
    opened = [e.position.entry_time_ms for e in result.events if isinstance(e, PositionOpened)]
    assert opened
    assert all(any(d <= t for d in decided) for t in opened)
    assert result.equity.shape == (len(BTC),)
    assert result.equity[-1] == pytest.approx(10_000 + sum(t.net_pnl for t in result.trades))


def test_a_run_is_deterministic_for_a_seed() -> None:
    a = run_backtest("vwap_rsi", {"timeframe": "1m"}, "BTC/USDT:USDT", BTC[:3000],
                     config=KernelConfig(seed=3))  # fmt: skip
    b = run_backtest("vwap_rsi", {"timeframe": "1m"}, "BTC/USDT:USDT", BTC[:3000],
                     config=KernelConfig(seed=3))  # fmt: skip
    assert a.trades == b.trades
    assert np.array_equal(a.equity, b.equity)


def test_five_minute_candles_are_refused_rather_than_replayed_as_minutes() -> None:
    five = BTC[::5].copy()
    with pytest.raises(BacktestDataError, match="5m apart"):
        run_backtest("vwap_rsi", {}, "BTC/USDT:USDT", five, config=KernelConfig())


def test_liquidation_zones_without_open_interest_is_reported_as_skipped() -> None:
    result = run_backtest("liquidation_zones", {}, "BTC/USDT:USDT", BTC[:2000],
                          config=KernelConfig())  # fmt: skip
    assert result.skipped_reason == "no open-interest history"
