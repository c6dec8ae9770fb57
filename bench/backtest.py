"""Backtest throughput: one VWAP+RSI run over the bundled 1m BTC week (full cost model), and a
sweep of 8 parameter sets over 2 processes.  Run: ``.venv/bin/python bench/backtest.py``."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backtests.core.engine import run_backtest  # noqa: E402
from backtests.core.sweep import expand_grid  # noqa: E402
from strategies.core.kernel import KernelConfig  # noqa: E402
from trading.core.candles import read_candles_csv  # noqa: E402

BTC = ROOT / "data/sample/binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"


def one(params: dict) -> int:
    candles = read_candles_csv(BTC)
    run_backtest("vwap_rsi", params, "BTC/USDT:USDT", candles, config=KernelConfig())
    return len(candles)


def main() -> None:
    candles = read_candles_csv(BTC)
    start = time.perf_counter()
    run_backtest("vwap_rsi", {}, "BTC/USDT:USDT", candles, config=KernelConfig())
    single = time.perf_counter() - start
    print(
        f"single run: {len(candles):,} candles in {single:.2f} s = "
        f"{len(candles) / single:,.0f} candles/s"
    )
    grid = expand_grid(
        {"rsi_period": [10, 14], "stop_atr_mult": [1.0, 1.5], "volume_spike_mult": [1.5, 2.0]}
    )
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        total = sum(pool.map(one, grid))
    sweep = time.perf_counter() - start
    print(
        f"sweep: {len(grid)} parameter sets × {len(candles):,} candles in {sweep:.2f} s = "
        f"{total / sweep:,.0f} candle-parameter-sets/s"
    )


if __name__ == "__main__":
    main()
