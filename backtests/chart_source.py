"""A backtest run as the Chart page draws it (``chart/?run=<id>``).

The Chart page lives in ``strategies``, under this app in the stack, so it cannot read runs
itself: this loader is registered with :func:`strategies.chart_data.register_run_source` when
the app is ready (``backtests.apps``).
"""

from __future__ import annotations

from backtests.models import BacktestRun
from strategies.chart_data import RunWindow


def backtest_run_window(run_id: int) -> RunWindow | None:
    """The run's symbol, period, parameters and trades; ``None`` when no run has that id."""
    run = (
        BacktestRun.objects.filter(pk=run_id)
        .only("strategy_name", "strategy_kind", "symbol", "start_ms", "end_ms", "params", "trades")
        .first()
    )
    if run is None:
        return None
    params = run.params or {}
    timeframe = params.get("timeframe") if isinstance(params, dict) else None
    return RunWindow(
        run_id=run.pk,
        strategy_name=run.strategy_name,
        strategy_kind=run.strategy_kind,
        symbol=run.symbol,
        start_ms=run.start_ms,
        end_ms=run.end_ms,
        params=params if isinstance(params, dict) else {},
        trades=[t for t in run.trades or [] if isinstance(t, dict)],
        timeframe=timeframe if isinstance(timeframe, str) else None,
    )
