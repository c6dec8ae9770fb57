"""Parameter sweeps: grid expansion, walk-forward windows and ranking on net results.

* ``expand_grid({"a": [1, 2], "b": [x]})`` → every combination, in a stable order
  (``[{a:1,b:x}, {a:2,b:x}]``).
* ``walk_forward_windows(start, end, in_days, out_days)``: consecutive windows
  ``[train_start, train_end) → [train_end, train_end + out)``, stepping by ``out_days``; the
  last out-of-sample window is cut at ``end``. Example: 7 days with 3:2 → (d0–d3 | d3–d5),
  (d2–d5 | d5–d7).
* ``rank``: rows with at least ``min_trades`` trades first, by net P&L then net profit factor;
  rows below the minimum follow (never ranked above a valid one: too few trades is noise).
* ``run_sweep``: one run per parameter set over the same candles, in order. Each result equals
  the single ``run_backtest`` of its parameters (tested event for event); the runs share what
  does not depend on the parameters — the validated candles, their aggregation into every
  timeframe and the values derived from the candles alone (whole-history pre-filter arrays,
  indicator values at a decision time, keyed by indicator, timeframe, period and window):
  see :class:`strategies.core.snapshot.CandleSet`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backtests.core.engine import BacktestResult, prepare_candles, run_backtest
from strategies.core.kernel import KernelConfig
from strategies.core.snapshot import CandleSet

DAY_MS = 86_400_000


def run_sweep(
    strategy_kind: str,
    param_sets: Sequence[Mapping[str, Any]],
    symbol: str,
    candles_1m: np.ndarray | CandleSet,
    *,
    config: KernelConfig,
    **kwargs: Any,
) -> list[BacktestResult]:
    """``run_backtest`` of each parameter set over one prepared candle set (module docstring);
    ``kwargs`` are ``run_backtest``'s (inputs, confirmers, name...), the same for every run."""
    candles = prepare_candles(candles_1m)
    return [
        run_backtest(strategy_kind, params, symbol, candles, config=config, **kwargs)
        for params in param_sets
    ]


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (cartesian product), keys in the given order."""
    if not grid:
        return [{}]
    keys = list(grid)
    for key in keys:
        if len(grid[key]) == 0:
            raise ValueError(f"grid key {key!r} has no values")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


@dataclass(frozen=True, slots=True)
class Window:
    """One walk-forward split (ms, UTC): in ``[in_start, in_end)``, out ``[in_end, out_end)``."""

    in_start_ms: int
    in_end_ms: int
    out_end_ms: int


def walk_forward_windows(start_ms: int, end_ms: int, in_days: int, out_days: int) -> list[Window]:
    """Rolling windows of ``in_days`` in-sample then ``out_days`` out-of-sample (see module)."""
    if in_days < 1 or out_days < 1:
        raise ValueError("walk-forward IN_DAYS and OUT_DAYS must both be at least 1")
    windows = []
    in_start = start_ms
    while in_start + in_days * DAY_MS < end_ms:
        in_end = in_start + in_days * DAY_MS
        windows.append(Window(in_start, in_end, min(end_ms, in_end + out_days * DAY_MS)))
        in_start += out_days * DAY_MS
    if not windows:
        raise ValueError(
            f"{in_days}+{out_days} days do not fit in the data "
            f"({(end_ms - start_ms) / DAY_MS:.1f} days)"
        )
    return windows


def rank(rows: Sequence[Mapping[str, Any]], min_trades: int = 1) -> list[dict[str, Any]]:
    """Rows (each with ``trades``, ``net_pnl``, ``profit_factor_net``) best first, see module."""

    def key(row: Mapping[str, Any]) -> tuple[int, float, float]:
        enough = row.get("trades", 0) >= min_trades
        pf = row.get("profit_factor_net")
        return (0 if enough else 1, -float(row.get("net_pnl", 0.0)), -(pf if pf else 0.0))

    ranked = [dict(row) for row in sorted(rows, key=key)]
    for position, row in enumerate(ranked, start=1):
        row["rank"] = position
        row["enough_trades"] = row.get("trades", 0) >= min_trades
    return ranked


def parse_grid_option(text: str) -> tuple[str, list[str]]:
    """``"rsi_period=10,14,20"`` → ``("rsi_period", ["10", "14", "20"])``."""
    key, sep, values = text.partition("=")
    parts = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not key.strip() or not parts:
        raise ValueError(f"--grid expects KEY=v1,v2,..., got {text!r}")
    return key.strip(), parts
