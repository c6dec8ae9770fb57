"""Backtest reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet

from backtests.models import BacktestRun

COMPARED = ("trades", "win_rate", "net_pnl", "fees", "profit_factor_net", "max_drawdown_pct")


def backtest_run_list(*, strategy: str | None = None, symbol: str | None = None) -> QuerySet:
    """Runs, newest first, optionally for one strategy name and/or symbol."""
    runs = BacktestRun.objects.all()
    if strategy:
        runs = runs.filter(strategy_name=strategy)
    if symbol:
        runs = runs.filter(symbol=symbol)
    return runs.defer("equity_curve", "trades")


def backtest_run_compare(run_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Side-by-side rows of the key results of finished runs, in the order asked."""
    runs = {r.pk: r for r in BacktestRun.objects.filter(pk__in=run_ids).defer("trades")}
    rows = []
    for run_id in run_ids:
        run = runs.get(run_id)
        if run is None:
            continue
        rows.append(
            {
                "id": run.pk,
                "strategy": run.strategy_name,
                "symbol": run.symbol,
                "status": run.status,
                **{key: run.results.get(key) for key in COMPARED},
            }
        )
    return rows
