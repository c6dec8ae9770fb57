"""Every strategy's backtest speed at the scalper's timeframes, beside two peer backtesters.

Data: ``../shared/data/binance-usdm_BTC-USDT_1m_20250504-20250624.csv.gz`` (73,139 real 1m
candles, 2025-05-04 → 2025-06-24) with the BTC funding settlements of that period (modelled:
a position holding through a settlement pays or receives it). Full cost model (taker/maker
fees, slippage, fills, stops, targets, liquidation), ``KernelConfig()`` defaults.

Rows: every strategy kind × entry timeframe 1m and 5m × (its default parameters, a looser
set meant to trade ≥ 50 times). ``trades`` counts the real ledger's trades plus the shadow
ledger's (after the kill switch trips — 5 % session loss by default — a strategy keeps
deciding in the shadow ledger, so the decisions still run: the count says how many decisions
led to a trade). Timing: the whole ``run_backtest`` (validation, aggregation, vectorised
series, pre-filter, replay), best of ``--repeat`` (3), the candles read once outside it,
indicator loops compiled (numba) before any timing. liquidation_zones needs open interest,
which this file's period lacks: its rows say so instead of a figure. order_flow is a filter,
not a contestant: no row.

``--peers PYTHON`` runs ``../shared/bench/peers.py`` (backtesting.py and vectorbt on a
VWAP+RSI rule with a fixed TP/SL, signals precomputed) with that interpreter, an environment
of its own (``python3 -m uv venv DIR --python 3.12`` then ``python3 -m uv pip install
--python DIR/bin/python backtesting vectorbt pandas``), in the same run, and prints each row's
ratio to backtesting.py and vectorbt's warm figure.

Run: ``.venv/bin/python bench/strategies.py [--peers /path/to/python] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from backtests.core.engine import run_backtest  # noqa: E402
from strategies.core import recursions  # noqa: E402
from strategies.core.kernel import KernelConfig  # noqa: E402
from trading.core.candles import read_candles_csv  # noqa: E402
from trading.core.csvdata import FundingCsvReader, open_data_file  # noqa: E402

SHARED = ROOT.parent / "shared"
CANDLES = SHARED / "data/binance-usdm_BTC-USDT_1m_20250504-20250624.csv.gz"
FUNDING = SHARED / "data/binance-usdm_BTC-USDT_funding_20190910-20260517.csv.gz"
PEERS = SHARED / "bench/peers.py"
SYMBOL = "BTC/USDT:USDT"
TIMEFRAMES = ("1m", "5m")
# kind -> a looser parameter set that trades (real + shadow) at least 50 times on this file
TRADING: dict[str, dict[str, Any]] = {
    "vwap_rsi": {
        "rsi_long_below": 40.0,
        "rsi_short_above": 60.0,
        "volume_spike_mult": 1.0,
        "adx_range_max": 40.0,
    },
    "momentum_breakout": {"range_lookback": 10, "volume_mult": 1.2},
    "funding_arbitrage": {"extreme_rate": 0.00005},
    "swing_baseline": {"fast_ema": 5, "slow_ema": 20},
    "liquidation_zones": {},
}
NEEDS_OPEN_INTEREST = {"liquidation_zones"}


def read_funding(path: Path, start_ms: float, end_ms: float) -> np.ndarray:
    with open_data_file(path) as stream:
        rows = np.array(list(FundingCsvReader(stream, source=path.name)), dtype=np.float64)
    return rows[(rows[:, 0] >= start_ms - 8 * 3_600_000) & (rows[:, 0] <= end_ms)]


def peer_figures(python: str) -> dict[str, float]:
    """backtesting.py's and vectorbt's (warm) candles/s from ``peers.py``, run by ``python``."""
    command = [python, str(PEERS), str(CANDLES)]  # the operator's own interpreter
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    print(out.rstrip())
    figures = {}
    for name, pattern in (
        ("backtesting.py", r"backtesting\.py: ([\d,]+) candles/s"),
        ("vectorbt", r"vectorbt: ([\d,]+) candles/s warm"),
    ):
        match = re.search(pattern, out)
        if match:
            figures[name] = float(match.group(1).replace(",", ""))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", metavar="PYTHON", help="interpreter with the peer libraries")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    candles = read_candles_csv(CANDLES)
    funding = read_funding(FUNDING, candles[0, 0], candles[-1, 0])
    n = len(candles)
    how = "compiled (numba)" if recursions.warm_up() else "interpreted (CPython)"
    print(f"{CANDLES.name}: {n:,} candles, {len(funding)} funding settlements; loops {how}")
    peers = peer_figures(args.peers) if args.peers else {}

    header = "| strategy | tf | parameters | trades (real+shadow) | candles/s |"
    if "backtesting.py" in peers:
        header += " × backtesting.py |"
    print()
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for kind, loose in TRADING.items():
        for tf in TIMEFRAMES:
            for label, params in (("defaults", {}), ("trading set", loose)):
                if kind in NEEDS_OPEN_INTEREST:
                    print(f"| {kind} | {tf} | {label} | — | no open interest in this file |")
                    continue
                run_params = {**params, "timeframe": tf}

                def run(kind: str = kind, run_params: dict[str, Any] = run_params) -> Any:
                    return run_backtest(
                        kind, run_params, SYMBOL, candles, funding=funding, config=KernelConfig()
                    )

                result = run()
                best = float("inf")
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    run()
                    best = min(best, time.perf_counter() - start)
                trades = f"{len(result.trades)}+{len(result.shadow_trades)}"
                line = f"| {kind} | {tf} | {label} | {trades} | {n / best:,.0f} |"
                if "backtesting.py" in peers:
                    ratio = f"{n / best / peers['backtesting.py']:.1f}×"
                    if kind == "vwap_rsi" and tf == "1m" and "vectorbt" in peers:
                        ratio += f" (vectorbt warm: {n / best / peers['vectorbt']:.2f}×)"
                    line += f" {ratio} |"
                print(line, flush=True)


if __name__ == "__main__":
    main()
