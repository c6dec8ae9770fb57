"""Every strategy, re-decided on data cut at each signal, gives the same signal (real data)."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest

from backtests.core.engine import as_strategy, run_backtest
from backtests.core.lookahead import LookAheadDetected, check_lookahead
from strategies.core.kernel import KernelConfig, SignalEvent, StrategyKernel
from tests.conftest import SAMPLE_DIR
from tests.strategies.core.factories import eth_1m, recorded_style_open_interest
from trading.core.candles import read_candles_csv


def _funding(name: str) -> np.ndarray:
    with gzip.open(SAMPLE_DIR / name, "rt", newline="") as handle:
        return np.array([(float(r["timestamp_ms"]), float(r["rate"]))
                         for r in csv.DictReader(handle)])  # fmt: skip


BTC = read_candles_csv(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")
BTC_FUNDING = _funding("binance-usdm_BTC-USDT_funding_20250617-20250623.csv.gz")
CASES = {
    "vwap_rsi": (
        {"timeframe": "1m", "rsi_long_below": 35, "rsi_short_above": 65, "adx_range_max": 30},
        {},
    ),
    "momentum_breakout": ({}, {}),
    "funding_arbitrage": ({"extreme_rate": 0.00005}, {"funding": BTC_FUNDING}),
    "swing_baseline": ({}, {}),
}


def _check(kind: str, params: dict, symbol: str, candles: np.ndarray, inputs: dict) -> int:
    config = KernelConfig()
    result = run_backtest(kind, params, symbol, candles, config=config, **inputs)
    signals = [e for e in result.events if isinstance(e, SignalEvent)]
    strategy = as_strategy(kind, params)
    kernel = StrategyKernel(kind, {symbol: strategy}, config)
    assert signals, f"{kind} produced no signal to check"
    return check_lookahead(
        strategy, symbol, candles, signals, kernel.timeframes(symbol),
        max_candles=kernel._max_candles(symbol), **inputs,
    )  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CASES))
def test_signals_do_not_change_when_the_future_is_removed(kind: str) -> None:
    params, inputs = CASES[kind]
    assert _check(kind, params, "BTC/USDT:USDT", BTC, inputs) > 0


def test_liquidation_zone_signals_do_not_change_when_the_future_is_removed() -> None:
    """Real ETH candles with a recorded-style OI series (as in the strategy's own tests)."""
    eth = eth_1m()
    oi = recorded_style_open_interest(int(eth[0, 0]), int(eth[-1, 0]) + 60_000,
                                      {1_749_854_400_000: 20_000.0})  # fmt: skip
    assert _check("liquidation_zones", {}, "ETH/USDT:USDT", eth, {"open_interest": oi}) > 0


def test_a_signal_that_used_the_future_is_caught() -> None:
    result = run_backtest("momentum_breakout", {}, "BTC/USDT:USDT", BTC, config=KernelConfig())
    event = next(e for e in result.events if isinstance(e, SignalEvent))
    strategy = as_strategy("momentum_breakout", {})
    forged = SignalEvent(event.symbol, event.timeframe, event.candle_open_ms,
                         event.signal, True, "", time_ms=event.time_ms - 300_000)  # fmt: skip
    with pytest.raises(LookAheadDetected, match="momentum_breakout on BTC/USDT:USDT"):
        check_lookahead(strategy, "BTC/USDT:USDT", BTC, [forged], ("5m", "15m", "1h", "1m"),
                        max_candles=500)  # fmt: skip
