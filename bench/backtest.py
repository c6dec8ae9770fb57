"""Backtest throughput: one VWAP+RSI run over the bundled 1m BTC week (full cost model), and a
sweep of parameter sets over 2 processes sharing the preloaded candles (fork, copy-on-write).

Run: ``.venv/bin/python bench/backtest.py``. The candles are read once, outside the timings;
the single-run timing covers the whole ``run_backtest`` (validation, aggregation, pre-filter,
replay, metrics-ready result). The sweep hands the parameter sets to 2 processes two at a time;
its timing covers, in each process, the validation and aggregation of the candles (once per
process and sweep: they do not depend on the parameters), every whole ``run_backtest`` and a
summary row of each result sent back. ``--reference`` also times the same single run with
every candle sent through ``on_candle`` (no idle skipping) to show what skipping buys.
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

from backtests.core.engine import prepare_candles, run_backtest  # noqa: E402
from backtests.core.sweep import expand_grid  # noqa: E402
from strategies.core.kernel import KernelConfig  # noqa: E402
from strategies.core.snapshot import CandleSet  # noqa: E402
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
_PREPARED: tuple[int, CandleSet] | None = None  # per process: (sweep id, its prepared candles)


def _run(job: tuple[int, dict[str, Any]]) -> tuple[int, int, float]:
    """One parameter set of sweep ``job[0]``: (candles, trades, net P&L in USDT) of its run.

    A process prepares the candles (validation, aggregation: :func:`prepare_candles`) on its
    first parameter set of a sweep and reuses them, with the values derived from them, for the
    next ones; a new sweep id starts from nothing, so every sweep's timing includes it.
    """
    sweep_id, params = job
    global _PREPARED
    if _PREPARED is None or _PREPARED[0] != sweep_id:
        assert _CANDLES is not None
        _PREPARED = (sweep_id, prepare_candles(_CANDLES))
    result = run_backtest("vwap_rsi", params, SYMBOL, _PREPARED[1], config=KernelConfig())
    return result.candles, len(result.trades), sum(t.net_pnl for t in result.trades)


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
        pool.map(_run, [(0, params) for params in grid[:2]], chunksize=1)  # imports, untimed
        start = time.perf_counter()
        rows = pool.map(_run, [(1, params) for params in grid], chunksize=2)
        sweep = time.perf_counter() - start
    total = sum(row[0] for row in rows)
    print(
        f"sweep: {len(grid)} parameter sets × {n:,} candles over 2 processes in {sweep:.2f} s = "
        f"{total / sweep:,.0f} candle-parameter-sets/s"
    )


if __name__ == "__main__":
    main()
