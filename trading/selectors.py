"""Reads of market data for pages and the runtime."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import Count, Max, Min, Q, QuerySet, Sum

from common.presenters import alert_item, fmt_time_ms, open_position_row
from trading.core.fees import BITGET_VIP0, Liquidity, fee_for_fill
from trading.core.numbers import fmt_duration, fmt_money, fmt_price, fmt_qty
from trading.core.pnl import fees_share_of_gross, unrealised_pnl
from trading.core.types import Side
from trading.instruments import steps_for
from trading.models import Alert, Asset, Candle, Position

ALERTS_PER_PAGE = 50
STALE_AFTER_MINUTES = 5.0
MINUTE_MS = 60_000
TAKER_RATE = BITGET_VIP0.taker_rate  # the exit fee open P&L assumes (fraction of notional)


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


# --- marks, open positions, trades ---------------------------------------------------------------


def latest_marks(markets: Iterable[tuple[str, str]] | None = None) -> dict[str, tuple[float, int]]:
    """``{symbol: (last 1m close, its open time ms)}`` of ``(exchange, symbol)`` markets (default
    every asset): the mark used for open P&L.

    One lookup per market on the candle natural-key index (exchange, symbol, timeframe, time).
    """
    if markets is None:
        markets = Asset.objects.values_list("exchange", "symbol")
    marks: dict[str, tuple[float, int]] = {}
    for exchange, symbol in markets:
        row = (
            Candle.objects.filter(exchange=exchange, symbol=symbol, timeframe="1m")
            .order_by("-open_time_ms")
            .values_list("close", "open_time_ms")
            .first()
        )
        if row is not None:
            marks[symbol] = (float(row[0]), int(row[1]))
    return marks


def open_positions(now_ms: int | None = None) -> list[dict[str, Any]]:
    """Open positions with their mark-dependent figures (:func:`mark_figures`) at the last 1m
    close. Rows shaped like the live ``position.opened`` fragment
    (``common.presenters.open_position_row``) plus those figures.

    Time in trade is MARKET time: the mark candle's close − the entry time, in seconds (a
    replay at 60× moves it 60× faster than the wall clock); ``now_ms`` (UTC epoch ms) replaces
    that reference when given, and without a mark the wall clock is the reference.
    """
    positions = list(
        Position.objects.filter(status=Position.Status.OPEN).order_by("-entry_time_ms")
    )
    marks = latest_marks(sorted({(p.exchange, p.symbol) for p in positions}))
    wall_ms = int(time.time() * 1000)
    rows = []
    for p in positions:
        mark, mark_open_ms = marks.get(p.symbol, (None, None))
        row = open_position_row(
            {
                "strategy": p.strategy_name,
                "shadow": p.shadow,
                "ledger_id": p.ledger_id,
                "position_id": p.ledger_id.removesuffix(":shadow"),
                "symbol": p.symbol,
                "side": p.side,
                "qty": p.qty,
                "leverage": p.leverage,
                "entry_price": p.entry_price,
                "entry_time_ms": p.entry_time_ms,
                "entry_fee": p.entry_fee,
                "stop_loss": p.stop_loss,
                "take_profit": p.take_profit,
                "liquidation_price": p.liquidation_price,
                "funding": p.funding_usdt,
            }
        )
        if mark is not None:
            row.update(mark_figures(row, mark))
        if now_ms is not None:
            reference = now_ms
        elif mark_open_ms is not None:
            reference = mark_open_ms + MINUTE_MS
        else:
            reference = wall_ms
        row["time_in_trade_s"] = max(reference - p.entry_time_ms, 0) / 1000.0
        row["time_in_trade"] = fmt_duration(row["time_in_trade_s"])
        rows.append(row)
    return rows


def mark_figures(row: Mapping[str, Any], mark: float) -> dict[str, Any]:
    """Every figure of an open position that moves with the mark (USDT unless said).

    ``row``: side, qty (base units), leverage, entry_price, entry_fee, funding (paid > 0),
    stop_loss, take_profit, liquidation_price (0 = none) — a Positions row.

    * ``upnl_gross`` = side × qty × (mark − entry); ``upnl_net`` = gross − entry fee − exit
      fee at the mark (taker: qty × mark × 0.06 %) − funding paid (:func:`_open_pnl`);
    * ``margin_usdt`` = initial margin = entry notional / leverage = qty × entry / leverage;
    * ``roe_pct`` = return on equity = upnl_net / margin_usdt × 100 (%);
    * ``stop_distance_pct``, ``target_distance_pct``, ``liq_distance_pct`` = the move of the
      price from the mark to that level, signed: (level − mark) / mark × 100 (%); a long's
      stop is below the mark (negative), its target above (positive). ``None`` when there is
      no such level.

    Long 0.1 BTC from 100,000 at 10×, entry fee 6, mark 101,000, stop 99,500: gross +100,
    net 100 − 6 − 6.06 = 87.94, margin 0.1 × 100,000 / 10 = 1,000, ROE +8.794 %, stop
    (99,500 − 101,000) / 101,000 = −1.485 %. ``static/js/positions.js`` repeats this
    arithmetic on each ``market.price`` (a test checks both give the same text).
    """
    side = Side(str(row["side"]))
    qty, entry = float(row["qty"]), float(row["entry_price"])
    gross = unrealised_pnl(side, qty, entry, mark)
    exit_fee = fee_for_fill(qty, mark, Liquidity.TAKER)
    net = gross - float(row.get("entry_fee") or 0.0) - exit_fee - float(row.get("funding") or 0.0)
    leverage = float(row.get("leverage") or 0.0)
    margin = qty * entry / leverage if leverage > 0 else None

    def distance(level: object) -> float | None:
        price = float(level) if level is not None else 0.0  # type: ignore[arg-type]
        return (price - mark) / mark * 100.0 if price > 0 and mark > 0 else None

    return {
        "mark_price": mark,
        "upnl_gross": gross,
        "upnl_net": net,
        "margin_usdt": margin,
        "roe_pct": net / margin * 100.0 if margin else None,
        "stop_distance_pct": distance(row.get("stop_loss")),
        "target_distance_pct": distance(row.get("take_profit")),
        "liq_distance_pct": distance(row.get("liquidation_price")),
    }


def _open_pnl(p: Position, mark: float) -> tuple[float, float]:
    """``(gross, net)`` unrealised P&L of an open position at ``mark`` (USDT).

    Gross = side × qty × (mark − entry); net = gross − entry fee − exit fee at the mark
    (taker: qty × mark × 0.06 %) − funding paid. Long 0.1 from 100,000, mark 101,000, entry
    fee 6, no funding: gross 100, exit fee 6.06, net 87.94. The Positions page's live script
    (``static/js/positions.js``) repeats this arithmetic on each ``market.price``.
    """
    gross = unrealised_pnl(Side(p.side), p.qty, p.entry_price, mark)
    exit_fee = fee_for_fill(p.qty, mark, Liquidity.TAKER)
    return gross, gross - p.entry_fee - exit_fee - p.funding_usdt


def open_pnl_by_session() -> dict[int, float]:
    """``{session id: unrealised net P&L}`` of open, non-shadow positions at the last 1m close.

    A position whose symbol has no stored candle counts 0 (no mark, nothing made up).
    """
    positions = list(Position.objects.filter(status=Position.Status.OPEN, shadow=False))
    marks = latest_marks(sorted({(p.exchange, p.symbol) for p in positions}))
    out: dict[int, float] = {}
    for p in positions:
        mark = marks.get(p.symbol)
        if mark is not None:
            out[p.session_id] = out.get(p.session_id, 0.0) + _open_pnl(p, mark[0])[1]
    return out


def _duration(ms: int) -> str:
    minutes = max(ms, 0) // 60_000
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"


@dataclass(frozen=True, slots=True)
class TradeFilters:
    """Filters of the trade history (also the CSV export). Dates are UTC days, inclusive."""

    strategy: str = ""
    symbol: str = ""
    date_from: date | None = None
    date_to: date | None = None
    result: str = ""  # "", "win", "loss"
    # Shadow trades (taken by a paused or killed strategy, on its shadow ledger) are left out
    # of the history and its totals unless asked for; they are tagged "shadow" then.
    include_shadow: bool = False

    def as_query(self) -> str:
        params = {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "result": self.result,
            "shadow": "1" if self.include_shadow else "",
        }
        return urlencode({k: v for k, v in params.items() if v})


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def closed_trades(filters: TradeFilters) -> QuerySet[Position]:
    """Closed positions, newest exit first, filtered; shadow ones only with
    ``filters.include_shadow``."""
    qs = Position.objects.filter(status=Position.Status.CLOSED)
    if not filters.include_shadow:
        qs = qs.filter(shadow=False)
    if filters.strategy:
        qs = qs.filter(strategy_name=filters.strategy)
    if filters.symbol:
        qs = qs.filter(symbol=filters.symbol)
    if filters.date_from:
        qs = qs.filter(exit_time_ms__gte=_day_ms(filters.date_from))
    if filters.date_to:
        qs = qs.filter(exit_time_ms__lt=_day_ms(filters.date_to) + 86_400_000)
    if filters.result == "win":
        qs = qs.filter(net_pnl__gt=0)
    elif filters.result == "loss":
        qs = qs.filter(net_pnl__lte=0)
    return qs.order_by("-exit_time_ms", "-id")


def trades_totals(qs: QuerySet[Position]) -> dict[str, Any]:
    """Sums over the filtered trades, in the database (one query)."""
    totals = qs.aggregate(
        n=Count("id"),
        wins=Count("id", filter=Q(net_pnl__gt=0)),
        gross=Sum("gross_pnl"),
        entry_fees=Sum("entry_fee"),
        exit_fees=Sum("exit_fee"),
        funding=Sum("funding_usdt"),
        slippage=Sum("slippage_usdt"),
        net=Sum("net_pnl"),
    )
    fees = (totals["entry_fees"] or 0.0) + (totals["exit_fees"] or 0.0)
    gross = totals["gross"] or 0.0
    share = fees_share_of_gross(fees, gross)
    return {
        "trades": totals["n"],
        "wins": totals["wins"],
        "win_rate_pct": totals["wins"] / totals["n"] * 100 if totals["n"] else None,
        "gross": gross,
        "fees": fees,
        "fees_share_pct": share * 100 if share is not None else None,
        "funding": totals["funding"] or 0.0,
        "slippage": totals["slippage"] or 0.0,
        "net": totals["net"] or 0.0,
    }


TRADE_CSV_COLUMNS = (
    "strategy",
    "symbol",
    "side",
    "qty",
    "leverage",
    "entry_time_utc",
    "entry_price",
    "exit_time_utc",
    "exit_price",
    "exit_reason",
    "shadow",
    "gross_pnl_usdt",
    "fees_usdt",
    "funding_usdt",
    "slippage_usdt",
    "net_pnl_usdt",
)


def trade_csv_rows(qs: QuerySet[Position]) -> Iterator[tuple[Any, ...]]:
    """Rows of :data:`TRADE_CSV_COLUMNS`: plain machine-readable numbers
    (``trading.core.numbers`` with ``grouping=False``: no thousands separator, ASCII "-"),
    prices on the instrument's tick, quantities on its lot, money (USDT) with 2 decimals,
    times UTC, ``shadow`` "true" / "false"; a missing figure is an empty cell."""
    fields = (
        "strategy_name",
        "symbol",
        "side",
        "qty",
        "leverage",
        "entry_time_ms",
        "entry_price",
        "exit_time_ms",
        "exit_price",
        "exit_reason",
        "shadow",
        "gross_pnl",
        "entry_fee",
        "exit_fee",
        "funding_usdt",
        "slippage_usdt",
        "net_pnl",
    )
    for row in qs.values_list(*fields).iterator(chunk_size=2000):
        (strategy, symbol, side, qty, lev, et, ep, xt, xp, reason, shadow, *money) = row
        gross, ef, xf, fund, slip, net = money
        steps = steps_for(symbol)
        yield (
            strategy,
            symbol,
            side,
            fmt_qty(qty, steps.lot, grouping=False),
            fmt_qty(lev, None, grouping=False),
            fmt_time_ms(et),
            fmt_price(ep, steps.tick, grouping=False),
            fmt_time_ms(xt),
            fmt_price(xp, steps.tick, grouping=False),
            reason,
            "true" if shadow else "false",
            *(
                fmt_money(value, grouping=False)
                for value in (gross, ef + (xf or 0.0), fund, slip, net)
            ),
        )


def trade_symbols() -> list[str]:
    return list(Asset.objects.values_list("symbol", flat=True))


# --- alerts and stale data -----------------------------------------------------------------------


def alert_history(page_number: str | int | None) -> tuple[Page, list[dict[str, Any]]]:
    """One page of stored alerts, newest first, rendered like the live ``alert.new`` ones."""
    page = Paginator(Alert.objects.order_by("-created_at", "-id"), ALERTS_PER_PAGE).get_page(
        page_number
    )
    return page, [alert_item(alert.as_event()) for alert in page.object_list]


def stale_assets(
    *, max_age_minutes: float = STALE_AFTER_MINUTES, now_ms: int | None = None
) -> list[dict[str, Any]]:
    """Enabled assets whose newest stored 1m candle closed more than ``max_age_minutes`` ago.

    Age = now − (open time of the newest 1m candle + 1 minute). Newest candle opened 12:00,
    now 12:07 → closed 12:01, 6 minutes old: stale with the default 5. An asset with no candle
    at all is listed too. During a replay of recorded data every asset is "stale" by the wall
    clock, and the warning says so.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    out = []
    for exchange, symbol in Asset.objects.filter(enabled=True).values_list("exchange", "symbol"):
        last_open = (
            Candle.objects.filter(exchange=exchange, symbol=symbol, timeframe="1m")
            .order_by("-open_time_ms")
            .values_list("open_time_ms", flat=True)
            .first()
        )
        if last_open is None:
            out.append({"symbol": symbol, "last_close": "", "age": "", "message": "no 1m candle"})
            continue
        age_ms = now_ms - (last_open + MINUTE_MS)
        if age_ms > max_age_minutes * MINUTE_MS:
            out.append(
                {
                    "symbol": symbol,
                    "last_close": fmt_time_ms(last_open + MINUTE_MS),
                    "age": _duration(age_ms),
                    "message": f"newest 1m candle closed {_duration(age_ms)} ago",
                }
            )
    return out
