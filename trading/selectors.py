"""Reads of market data for pages and the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Max, Min

from trading.models import Asset, Candle


@dataclass(frozen=True, slots=True)
class MarketRow:
    symbol: str
    exchange: str
    enabled: bool
    correlation_group: str
    candles_1m: int
    first_open_ms: int | None
    last_open_ms: int | None
    last_close: float | None


def market_overview() -> list[MarketRow]:
    """One row per configured asset with what is stored of its 1m candles."""
    stats = {
        (row["exchange"], row["symbol"]): row
        for row in Candle.objects.filter(timeframe="1m")
        .values("exchange", "symbol")
        .annotate(n=Count("id"), first=Min("open_time_ms"), last=Max("open_time_ms"))
    }
    rows = []
    for asset in Asset.objects.all():
        stat = stats.get((asset.exchange, asset.symbol), {})
        last = stat.get("last")
        last_close = None
        if last is not None:
            last_close = (
                Candle.objects.filter(
                    exchange=asset.exchange, symbol=asset.symbol, timeframe="1m", open_time_ms=last
                )
                .values_list("close", flat=True)
                .first()
            )
        rows.append(
            MarketRow(
                symbol=asset.symbol,
                exchange=asset.exchange,
                enabled=asset.enabled,
                correlation_group=asset.correlation_group,
                candles_1m=stat.get("n", 0),
                first_open_ms=stat.get("first"),
                last_open_ms=last,
                last_close=last_close,
            )
        )
    return rows
