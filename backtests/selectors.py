"""Backtest reads: runs, and the stored 1m candles a run stands on (coverage and source)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, Max, Min, QuerySet

from backtests.models import BacktestRun
from trading.core.candles import MINUTE_MS
from trading.models import Candle

DAY_MS = 86_400_000


def backtest_run_list(*, strategy: str | None = None, symbol: str | None = None) -> QuerySet:
    """Runs, newest first, optionally for one strategy name and/or symbol."""
    runs = BacktestRun.objects.all()
    if strategy:
        runs = runs.filter(strategy_name=strategy)
    if symbol:
        runs = runs.filter(symbol=symbol)
    return runs.defer("equity_curve", "trades")


# -- the stored candles ------------------------------------------------------------------------


def fmt_minute(time_ms: int | float | None) -> str:
    """UTC epoch ms -> ``2025-06-17 14:32`` (market time, UTC); "" when unknown."""
    if time_ms is None:
        return ""
    return datetime.fromtimestamp(float(time_ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def fmt_span(first_open_ms: int, last_open_ms: int) -> str:
    """The 1m candles opening from ``first_open_ms`` to ``last_open_ms`` as a trader says it:
    ``2025-06-17 → 2025-06-23`` for whole UTC days, else with the minutes
    (``2025-06-17 09:00 → 2025-06-18 12:29``)."""
    whole_days = first_open_ms % DAY_MS == 0 and (last_open_ms + MINUTE_MS) % DAY_MS == 0
    if whole_days:
        return f"{fmt_minute(first_open_ms)[:10]} → {fmt_minute(last_open_ms)[:10]}"
    return f"{fmt_minute(first_open_ms)} → {fmt_minute(last_open_ms)}"


@dataclass(frozen=True, slots=True)
class Coverage:
    """The stored 1m candles of ``symbol`` (in a range when one was asked): the open times of
    the first and last (``None`` without any) and how many (``None`` when not counted)."""

    symbol: str
    first_open_ms: int | None
    last_open_ms: int | None
    candles: int | None = None

    @property
    def empty(self) -> bool:
        return self.first_open_ms is None

    @property
    def span(self) -> str:
        if self.first_open_ms is None or self.last_open_ms is None:
            return ""
        return fmt_span(self.first_open_ms, self.last_open_ms)

    def describe(self) -> str:
        """``BTC/USDT:USDT has 1m candles 2025-06-17 → 2025-06-23 only``."""
        if self.empty:
            return (
                f"{self.symbol} has no stored 1m candles (fetch or import some first: "
                "manage.py fetch_history / import_candles)"
            )
        return f"{self.symbol} has 1m candles {self.span} only"


def _candles(symbol: str, start_ms: int | None, end_ms: int | None) -> QuerySet:
    # The rows ``backtests.services.load_db_data`` reads: 1m, every exchange, [start, end).
    rows = Candle.objects.filter(symbol=symbol, timeframe="1m")
    if start_ms is not None:
        rows = rows.filter(open_time_ms__gte=start_ms)
    if end_ms is not None:
        rows = rows.filter(open_time_ms__lt=end_ms)
    return rows


def candle_coverage(
    symbol: str, start_ms: int | None = None, end_ms: int | None = None, *, count: bool = True
) -> Coverage:
    """The stored 1m candles of ``symbol`` in ``[start_ms, end_ms)`` (all when ``None``)."""
    agg: dict[str, Any] = {"first": Min("open_time_ms"), "last": Max("open_time_ms")}
    if count:
        agg["n"] = Count("pk")
    found = _candles(symbol, start_ms, end_ms).aggregate(**agg)
    return Coverage(symbol, found["first"], found["last"], found.get("n"))


def candle_coverages(symbols: Sequence[str]) -> list[Coverage]:
    """What is stored for each of ``symbols`` (first and last candle, not counted)."""
    return [candle_coverage(s, count=False) for s in symbols]


def candle_sources(symbol: str, start_ms: int | None, end_ms: int | None) -> list[dict[str, Any]]:
    """Where the stored 1m candles of ``symbol`` in ``[start_ms, end_ms)`` came from: one row
    per (exchange, ``source`` column) with its candle count, most candles first."""
    rows = (
        _candles(symbol, start_ms, end_ms)
        .values("exchange", "source")
        .annotate(candles=Count("pk"))
        .order_by("-candles", "exchange", "source")
    )
    return [
        {
            "exchange": row["exchange"],
            "source": row["source"] or "not recorded",
            "recorded": bool(row["source"]),
            "candles": row["candles"],
        }
        for row in rows
    ]


def compare_runs(ids: Sequence[int]) -> list[BacktestRun]:
    """The runs of ``ids`` in the order asked (unknown ids skipped)."""
    found = {r.pk: r for r in BacktestRun.objects.filter(pk__in=ids).defer("trades")}
    return [found[i] for i in ids if i in found]
