"""Backtest throughput: one VWAP+RSI run over the bundled 1m BTC week (full cost model), and a
sweep of parameter sets over 2 processes sharing the preloaded candles (fork, copy-on-write).

Run: ``.venv/bin/python bench/backtest.py``. The candles are read once, outside the timings;
each timing covers the whole ``run_backtest`` (validation, aggregation, pre-filter, replay,
metrics-ready result). ``--reference`` also times the same run with every candle sent through
``on_candle`` (no idle skipping) to show what the replay's skipping buys.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from backtests.core.engine import run_backtest  # noqa: E402
from backtests.core.sweep import expand_grid  # noqa: E402
from strategies.core.kernel import KernelConfig  # noqa: E402
from trading.core.candles import read_candles_csv  # noqa: E402

BTC = ROOT / "data/sample/binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
SYMBOL = "BTC/USDT:USDT"
GRID = {
    "rsi_period": [10, 14],
    "rsi_long_below": [25.0, 30.0],
    "stop_atr_mult": [1.0, 1.5],
    "volume_spike_mult": [1.5, 2.0],
    "adx_range_max": [20.0, 25.0],
}
_CANDLES: np.ndarray | None = None  # set before the pool forks: shared, never pickled


def _one(params: dict[str, Any]) -> int:
    assert _CANDLES is not None
    run_backtest("vwap_rsi", params, SYMBOL, _CANDLES, config=KernelConfig())
    return len(_CANDLES)


def best_of(runs: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    global _CANDLES
    candles = read_candles_csv(BTC)
    _CANDLES = candles
    n = len(candles)
    run_backtest("vwap_rsi", {}, SYMBOL, candles, config=KernelConfig())  # imports, caches
    single = best_of(
        5, lambda: run_backtest("vwap_rsi", {}, SYMBOL, candles, config=KernelConfig())
    )
    print(f"single run: {n:,} candles in {single * 1000:.1f} ms = {n / single:,.0f} candles/s")
    if "--reference" in sys.argv:
        reference = best_of(
            1,
            lambda: run_backtest(
                "vwap_rsi", {}, SYMBOL, candles, config=KernelConfig(), skip_idle=False
            ),
        )
        print(f"reference (every candle through on_candle): {n / reference:,.0f} candles/s")
    grid = expand_grid(GRID)
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        pool.map(_one, grid[:2])  # warm the workers (imports) outside the timing
        start = time.perf_counter()
        total = sum(pool.map(_one, grid, chunksize=4))
        sweep = time.perf_counter() - start
    print(
        f"sweep: {len(grid)} parameter sets × {n:,} candles over 2 processes in {sweep:.2f} s = "
        f"{total / sweep:,.0f} candle-parameter-sets/s"
    )


if __name__ == "__main__":
    main()
