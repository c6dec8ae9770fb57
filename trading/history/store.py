"""What a history download finds stored, and how it stores what it fetched.

Reads: the stored 1m candles of a range are described by their runs of consecutive minutes
(one indexed window query: each stored open and the next one), so a hole anywhere in a month
is found without reading 43,200 rows. Writes go through :mod:`trading.services` (upserts on
the natural key: a row fetched twice is stored once).

The row's data source (``Candle.source`` and the others: the exchange and the URL it was
fetched from) is handed to the upsert services as ``source=`` and stored on every row written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.db.models import F, Max, Min, Window
from django.db.models.functions import Lead

from trading import services
from trading.core.candles import MINUTE_MS
from trading.core.csvdata import CandleRow, FundingRow, OpenInterestSample
from trading.history.plan import Span, missing_spans
from trading.models import Asset, Candle, FundingRate, OpenInterest
from trading.services import UpsertResult

TIMEFRAME = "1m"


def listed_ms(exchange: str, symbol: str) -> int | None:
    """The exchange's listing time of ``symbol`` as the Asset row knows it (epoch ms)."""
    return (
        Asset.objects.filter(exchange=exchange, symbol=symbol)
        .values_list("listed_at_ms", flat=True)
        .first()
    )


def missing_candle_spans(*, exchange: str, symbol: str, span: Span) -> list[Span]:
    """The minutes of ``span`` with no stored 1m candle of ``symbol``, as spans."""
    series = Candle.objects.filter(
        exchange=exchange,
        symbol=symbol,
        timeframe=TIMEFRAME,
        open_time_ms__gte=span.start_ms,
        open_time_ms__lt=span.end_ms,
    )
    bounds = series.aggregate(first=Min("open_time_ms"), last=Max("open_time_ms"))
    if bounds["first"] is None:
        return [span]
    gaps = (
        series.annotate(next_ms=Window(Lead("open_time_ms"), order_by=F("open_time_ms").asc()))
        .filter(next_ms__gt=F("open_time_ms") + MINUTE_MS)
        .values_list("open_time_ms", "next_ms")
    )
    return missing_spans(span, bounds["first"], bounds["last"], list(gaps))


def funding_times(*, exchange: str, symbol: str, span: Span) -> list[int]:
    """Stored settlement times of ``span``, oldest first (epoch ms)."""
    return list(
        FundingRate.objects.filter(
            exchange=exchange,
            symbol=symbol,
            funding_time_ms__gte=span.start_ms,
            funding_time_ms__lt=span.end_ms,
        )
        .order_by("funding_time_ms")
        .values_list("funding_time_ms", flat=True)
    )


def settlements_without_mark(*, exchange: str, symbol: str, span: Span) -> list[int]:
    """Stored settlement times of ``span`` whose mark price is not known yet."""
    return list(
        FundingRate.objects.filter(
            exchange=exchange,
            symbol=symbol,
            funding_time_ms__gte=span.start_ms,
            funding_time_ms__lt=span.end_ms,
            mark_price__isnull=True,
        )
        .order_by("funding_time_ms")
        .values_list("funding_time_ms", flat=True)
    )


def last_open_interest_ms(*, exchange: str, symbol: str, span: Span) -> int | None:
    """The last stored open-interest sample time of ``span`` (epoch ms), None when none."""
    return (
        OpenInterest.objects.filter(
            exchange=exchange, symbol=symbol, time_ms__gte=span.start_ms, time_ms__lt=span.end_ms
        )
        .aggregate(last=Max("time_ms"))
        .get("last")
    )


def candles_store(
    *, rows: Sequence[CandleRow], exchange: str, symbol: str, source: str
) -> UpsertResult:
    return services.candles_upsert_many(
        rows={symbol: rows},
        exchange=exchange,
        timeframe=TIMEFRAME,
        source=source,
    )


def funding_store(
    *, rows: Sequence[FundingRow], exchange: str, symbol: str, source: str
) -> UpsertResult:
    return services.funding_upsert(rows=rows, exchange=exchange, symbol=symbol, source=source)


def open_interest_store(
    *, rows: Sequence[OpenInterestSample], exchange: str, symbol: str, source: str
) -> UpsertResult:
    return services.open_interest_upsert(
        rows=rows,
        exchange=exchange,
        symbol=symbol,
        source=source,
    )


def mark_prices_store(*, prices: Mapping[int, float], exchange: str, symbol: str) -> int:
    """Store the mark price (USDT) at each settlement ``{funding_time_ms: price}``."""
    return int(
        services.funding_mark_prices_set(exchange=exchange, symbol=symbol, mark_prices=prices)
    )
