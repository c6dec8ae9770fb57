"""Backtest throughput over the bundled 1m BTC week (10,080 candles) with the full cost model
(fills with slippage, fees, the funding series, stops, targets, liquidation, equity with open
P&L), VWAP+RSI:

(a) one run with the default parameters — they trade NOTHING on this week, so this figure is
    mostly the fixed cost of a run and the vectorised pre-filter;
(b) one run with ``TRADING_PARAMS``, a 5m set that trades (stop-loss, take-profit, time-stop
    and regime-change exits, a funding settlement): its trades and gross / fees / funding / net
    are printed to show the cost model ran;
(c) a sweep over ``GRID`` (32 sets around (b), every one of which trades on this week) over 2
    processes sharing the preloaded candles (fork, copy-on-write); total trades and the number
    of sets that traded are printed.

Run: ``.venv/bin/python bench/backtest.py [--reference]``. The candles and funding are read
once, outside the timings; a single-run timing covers the whole ``run_backtest`` (validation,
aggregation, pre-filter, replay, metrics-ready result), best of 5. The sweep hands the
parameter sets to 2 processes, half each (one task per process: the least inter-process
traffic); its timing covers, in each process, the
validation and aggregation of the candles (once per process and sweep: they do not depend on
the parameters), every whole ``run_backtest`` and a summary row of each result sent back; best
of 5 sweeps, each with a new sweep id (so each prepares its candles and derived values again).
The indicator loops (``strategies.core.recursions``) are compiled (or loaded from numba's disk
cache) before any timing, by ``recursions.warm_up()`` as the radar and ``optimize`` do: ~1 s
once per process, outside the timings like the imports; the bench prints whether they run
compiled (``SCALPRADAR_JIT=0``: interpreted). The forked sweep processes inherit them.
``--reference`` also times (b) with every candle sent through ``on_candle`` (no skipping), the
loop the live runtime runs.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from backtests.core.engine import BacktestResult, prepare_candles, run_backtest  # noqa: E402
from backtests.core.sweep import expand_grid  # noqa: E402
from strategies.core import recursions  # noqa: E402
from strategies.core.kernel import KernelConfig, KillSwitchTripped  # noqa: E402
from strategies.core.snapshot import CandleSet  # noqa: E402
from trading.core.candles import read_candles_csv  # noqa: E402
from trading.core.csvdata import FundingCsvReader, open_data_file  # noqa: E402

SAMPLE = ROOT / "data/sample"
BTC = SAMPLE / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
BTC_FUNDING = SAMPLE / "binance-usdm_BTC-USDT_funding_20250617-20250623.csv.gz"
SYMBOL = "BTC/USDT:USDT"
TRADING_PARAMS = {  # 5m entries (the default timeframe), looser than the defaults
    "rsi_long_below": 40.0,
    "rsi_short_above": 60.0,
    "volume_spike_mult": 1.2,
    "adx_range_max": 25.0,
}
GRID = {
    "rsi_long_below": [35.0, 40.0],
    "rsi_short_above": [60.0, 65.0],
    "volume_spike_mult": [1.2, 1.5],
    "adx_range_max": [25.0, 35.0],
    "stop_atr_mult": [1.0, 1.5],
}
PROCESSES = 2  # this machine's cores
_CANDLES: np.ndarray | None = None  # set before the pool forks: shared, never pickled
_FUNDING: np.ndarray | None = None
_PREPARED: tuple[int, CandleSet] | None = None  # per process: (sweep id, its prepared candles)


def read_funding(path: Path) -> np.ndarray:
    with open_data_file(path) as stream:
        return np.array(list(FundingCsvReader(stream, source=path.name)), dtype=np.float64)


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
    result = run_backtest(
        "vwap_rsi", params, SYMBOL, _PREPARED[1], funding=_FUNDING, config=KernelConfig()
    )
    return result.candles, len(result.trades), sum(t.net_pnl for t in result.trades)


def best_of(runs: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def describe(result: BacktestResult) -> str:
    """Trades of the real ledger by exit reason, their gross / fees / funding / net (USDT),
    and the kill switch and shadow trades when it tripped."""
    trades = result.trades
    exits = Counter(t.exit_reason.value for t in trades)
    gross = sum(t.gross_pnl for t in trades)
    fees = sum(t.fees for t in trades)
    funding = sum(t.funding for t in trades)
    net = sum(t.net_pnl for t in trades)
    text = (
        f"{len(trades)} trades ({', '.join(f'{k} {v}' for k, v in sorted(exits.items()))}); "
        f"gross {gross:,.2f} − fees {fees:,.2f} − funding {funding:,.2f} = net {net:,.2f} USDT"
    )
    tripped = [e for e in result.events if isinstance(e, KillSwitchTripped)]
    if tripped:
        shadow = result.shadow_trades
        text += (
            f"; kill switch tripped, then {len(shadow)} shadow trades "
            f"(net {sum(t.net_pnl for t in shadow):,.2f}, funding "
            f"{sum(t.funding for t in shadow):,.2f})"
        )
    return text


def main() -> None:
    global _CANDLES, _FUNDING
    candles = read_candles_csv(BTC)
    funding = read_funding(BTC_FUNDING)
    _CANDLES, _FUNDING = candles, funding
    n = len(candles)

    def single(params: dict[str, Any], **options: Any) -> BacktestResult:
        return run_backtest(
            "vwap_rsi", params, SYMBOL, candles, funding=funding, config=KernelConfig(), **options
        )

    # As a long-running process (radar, worker, optimize) does: compile the indicator loops now.
    how = "compiled (numba)" if recursions.warm_up() else "interpreted (CPython)"
    print(f"indicator loops: {how}")
    for label, params in (("default parameters", {}), ("trading parameters", TRADING_PARAMS)):
        result = single(params)  # imports, caches; the result is the same every time
        seconds = best_of(5, lambda params=params: single(params))
        print(
            f"single run, {label}: {n:,} candles in {seconds * 1000:.1f} ms = "
            f"{n / seconds:,.0f} candles/s; {describe(result)}"
        )
    if "--reference" in sys.argv:
        reference = best_of(1, lambda: single(TRADING_PARAMS, skip_idle=False))
        print(
            f"reference, trading parameters, every candle through on_candle: "
            f"{n / reference:,.0f} candles/s"
        )
    grid = expand_grid(GRID)
    context = multiprocessing.get_context("fork")
    with context.Pool(PROCESSES) as pool:
        pool.map(_run, [(0, params) for params in grid[:2]], chunksize=1)  # imports, untimed
        sweep = float("inf")
        for sweep_id in range(1, 6):  # best of 5, each a new sweep id: nothing carried over
            start = time.perf_counter()
            jobs = [(sweep_id, params) for params in grid]
            rows = pool.map(_run, jobs, chunksize=len(jobs) // PROCESSES)
            sweep = min(sweep, time.perf_counter() - start)
    total = sum(row[0] for row in rows)
    trades = sum(row[1] for row in rows)
    traded = sum(1 for row in rows if row[1])
    print(
        f"sweep: {len(grid)} parameter sets × {n:,} candles over 2 processes in {sweep:.3f} s = "
        f"{total / sweep:,.0f} candle-parameter-sets/s; {trades} trades, "
        f"{traded} of {len(grid)} sets traded"
    )


if __name__ == "__main__":
    main()
