"""Reads of the Live page: open live positions, open orders, recent fills, and the journal.

The open rows are shaped by the SAME builders the ``live.position`` / ``live.order`` events go
through (``common.presenters.live_position_row`` / ``live_order_row`` over the store's
``position_event`` / ``order_event``), so a row loaded with the page and a row pushed later
show the same cells.

**The journal** sets each closed live position beside its paper twin: the paper ``Position``
opened by the same kernel decision, i.e. with the same ``entry_client_id`` (the entry intent's
client order id). A live position without one (adopted from the exchange) or whose twin is not
stored has no paper columns ("—"). Should several paper rows carry the id (a later replay of
the same candles makes the same deterministic ids), the first stored one is the twin: the live
run's paper ledger stored it before any replay of that period could run.

Price gaps, in basis points (1 bp = 0.01 %), signed so that POSITIVE = WORSE for the trader
(:func:`price_gap_bp`)::

    entry bp = side × (live entry − paper entry) / paper entry × 10,000
    exit bp  = −side × (live exit − paper exit) / paper exit × 10,000      (side: long +1, short −1)

Worked example, a long: paper entry 100,000 USDT, live entry 100,010 → +1 × 10 / 100,000 ×
10,000 = **+1.00 bp** (bought 10 USDT higher: worse); paper exit 101,000, live exit 100,990 →
−1 × (−10) / 101,000 × 10,000 = **+0.990099 bp**, shown **+0.99 bp** (sold lower: worse). For a
short the signs turn: a lower live entry or a higher live exit is worse.

Entry latency of the live entry order, in milliseconds of the wall clock (:func:`entry_latency`)::

    signal → request = submitted_ms − signal_ms      (decision received → request sent)
    request → ack    = acknowledged_ms − submitted_ms (request sent → exchange's answer)
    ack → fill       = filled_ms − acknowledged_ms    (exchange's answer → last fill)

e.g. stamps 1,000 / 1,012 / 1,055 / 1,302 → 12 ms, 43 ms, 247 ms. ``submitted_ms`` is the last
send of the request; a stamp that is missing (adopted position, order never acknowledged)
gives None, shown "—".

**Live results** (:func:`live_results`, the Session page's live rows) add up each strategy's
closed live positions as ``store.live_position_close`` booked them, never mixed with paper.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from django.db.models import Count, Q, Sum

from common.presenters import fmt_time_ms, live_order_row, live_position_row
from trading.core.execution import OrderStatus
from trading.core.pnl import fees_share_of_gross
from trading.core.types import Side
from trading.execution.store import order_event, position_event
from trading.models import Fill, LivePosition, Order, Position

FILLS_SHOWN = 50
JOURNAL_SHOWN = 100
BP_PER_UNIT = 10_000.0  # basis points in a fraction of 1 (1 bp = 0.0001)
TERMINAL = [s.value for s in OrderStatus if s.terminal]


def open_live_positions() -> list[dict[str, Any]]:
    """Open live positions, newest first, as :func:`common.presenters.live_position_row`."""
    rows = LivePosition.objects.filter(status=LivePosition.Status.OPEN).order_by("-opened_ms")
    return [live_position_row({**position_event(p), "opened_ms": p.opened_ms}) for p in rows]


def open_orders() -> list[dict[str, Any]]:
    """Orders not in a terminal status, newest first, as ``live_order_row``."""
    rows = Order.objects.exclude(status__in=TERMINAL).order_by("-created_at", "-id")
    return [live_order_row(order_event(o)) for o in rows]


def recent_fills(limit: int = FILLS_SHOWN) -> list[dict[str, Any]]:
    """The newest ``limit`` fills, newest first: time (UTC), symbol, side (buy / sell), qty
    (base units), price and fee (USDT; fee > 0 = paid), maker / taker, and the client id of
    the order it filled (the fill's own when the order is not ours)."""
    rows = Fill.objects.select_related("order").order_by("-time_ms", "-id")[:limit]
    return [
        {
            "time": fmt_time_ms(f.time_ms),
            "symbol": f.symbol,
            "side": f.side,
            "qty": f.qty,
            "price": f.price,
            "fee_usdt": f.fee_usdt,
            "liquidity": f.liquidity,
            "client_id": f.order.client_id if f.order is not None else f.client_id,
            "trade_id": f.trade_id,
        }
        for f in rows
    ]


def price_gap_bp(
    side: Side, live: float | None, paper: float | None, *, leg: Literal["entry", "exit"]
) -> float | None:
    """The live price's gap to the paper price in bp, POSITIVE = worse for the trader
    (module docstring: formulas and worked example); None when either price is unknown."""
    if live is None or paper is None or paper == 0:
        return None
    worse_when_higher = side.sign if leg == "entry" else -side.sign
    return worse_when_higher * (live - paper) / paper * BP_PER_UNIT


def _gap_ms(start: int | None, end: int | None) -> int | None:
    return end - start if start is not None and end is not None else None


def entry_latency(order: Order | None) -> dict[str, int | None]:
    """The entry order's three latencies in ms (module docstring); None for a missing stamp."""
    if order is None:
        return {"signal_to_request": None, "request_to_ack": None, "ack_to_fill": None}
    return {
        "signal_to_request": _gap_ms(order.signal_ms, order.submitted_ms),
        "request_to_ack": _gap_ms(order.submitted_ms, order.acknowledged_ms),
        "ack_to_fill": _gap_ms(order.acknowledged_ms, order.filled_ms),
    }


def journal(limit: int = JOURNAL_SHOWN) -> list[dict[str, Any]]:
    """The newest ``limit`` closed live positions (newest close first), each beside its paper
    twin (module docstring): prices (USDT), gaps (bp, positive = worse), fees, funding (> 0 =
    paid), gross and net (USDT), exit reasons and the entry order's latencies (ms)."""
    closed = list(
        LivePosition.objects.filter(status=LivePosition.Status.CLOSED).order_by(
            "-closed_ms", "-id"
        )[:limit]
    )
    ids = {p.entry_client_id for p in closed if p.entry_client_id}
    twins: dict[tuple[str, str], Position] = {}
    for paper in Position.objects.filter(entry_client_id__in=ids, shadow=False).order_by("id"):
        twins.setdefault((paper.strategy_name, paper.entry_client_id), paper)
    orders = {o.client_id: o for o in Order.objects.filter(client_id__in=ids)}
    with_fills = set(
        Fill.objects.filter(live_position__in=closed).values_list("live_position_id", flat=True)
    )
    return [
        journal_row(
            p,
            twins.get((p.strategy_name, p.entry_client_id)) if p.entry_client_id else None,
            orders.get(p.entry_client_id) if p.entry_client_id else None,
            has_fills=p.pk in with_fills,
        )
        for p in closed
    ]


def journal_row(
    live: LivePosition, paper: Position | None, entry: Order | None, *, has_fills: bool
) -> dict[str, Any]:
    """One journal line: the live position, its paper twin (or None) and its entry order (or
    None). Paper values are None without a twin; a twin still open has no exit, gross or net
    yet (its fees are then its entry fee, its funding what it paid so far). The live fees are
    the sum of its stored fills: None when none is stored (an adopted position closed while
    the executor was away), not a made-up 0."""
    side = Side(live.side)
    twin_closed = paper is not None and paper.status == Position.Status.CLOSED
    paper_exit = paper.exit_price if paper is not None and twin_closed else None
    return {
        "id": live.pk,
        "closed": fmt_time_ms(live.closed_ms),
        "opened": fmt_time_ms(live.opened_ms),
        "strategy": live.strategy_name,
        "symbol": live.symbol,
        "side": live.side,
        "adopted": live.adopted,
        "client_id": live.entry_client_id,
        "has_twin": paper is not None,
        "twin_open": paper is not None and not twin_closed,
        "live_entry": live.entry_price,
        "paper_entry": paper.entry_price if paper is not None else None,
        "entry_bp": price_gap_bp(
            side, live.entry_price, paper.entry_price if paper else None, leg="entry"
        ),
        "live_exit": live.exit_price,
        "paper_exit": paper_exit,
        "exit_bp": price_gap_bp(side, live.exit_price, paper_exit, leg="exit"),
        "live_fees": live.fees_usdt if has_fills else None,
        "paper_fees": paper.fees_usdt if paper is not None else None,
        "live_funding": live.funding_usdt,
        "paper_funding": paper.funding_usdt if paper is not None else None,
        "live_gross": live.gross_pnl,
        "paper_gross": paper.gross_pnl if paper is not None else None,
        "live_net": live.net_pnl,
        "paper_net": paper.net_pnl if paper is not None else None,
        "live_exit_reason": live.exit_reason,
        "paper_exit_reason": paper.exit_reason if paper is not None else "",
        **entry_latency(entry),
    }


def _results(
    *,
    trades: int,
    booked: int,
    wins: int,
    gross: float,
    fees: float,
    net: float,
    funding: float | None,
    funding_missing: int,
    open_count: int,
) -> dict[str, Any]:
    """One live results line; win rate = wins / booked × 100, fees share = fees / gross × 100
    (gross > 0 only), None when undefined."""
    return {
        "trades": trades,
        "booked": booked,
        "unbooked": trades - booked,
        "wins": wins,
        "win_rate_pct": wins / booked * 100.0 if booked else None,
        "gross": gross,
        "fees": fees,
        "fees_share_pct": _share_pct(fees, gross),
        "funding": funding,
        "funding_missing": funding_missing,
        "net": net,
        "open": open_count,
    }


def live_results(since_ms: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Each strategy's live results: its live positions closed at or after ``since_ms[name]``
    (epoch ms; the Session page passes its paper session's start) and those open now. A
    strategy of ``since_ms`` with no such position is absent (no empty live row).

    ``trades`` counts the closed positions; the sums (USDT) run over the BOOKED ones, whose
    P&L ``store.live_position_close`` computed from their fills: gross = Σ gross_pnl, fees =
    Σ fees_usdt, net = Σ net_pnl, wins = net > 0. ``unbooked`` = closed without P&L (no exit
    fill stored yet): counted, never summed as 0. Funding (> 0 = paid) is not fetched for a
    trade whose ``funding_usdt`` is None: ``funding`` = Σ of the fetched ones, or None when
    none was fetched; ``funding_missing`` = booked trades without it (their net is before
    funding). E.g. nets +80 and −30.5 with funding 0.4 and None: net 49.5, funding 0.4, one
    missing. ``open`` = positions open now.
    """
    if not since_ms:
        return {}
    closed = Q(status=LivePosition.Status.CLOSED)
    booked = closed & Q(net_pnl__isnull=False)
    window = Q(pk__in=[])
    for name, start_ms in since_ms.items():
        window |= Q(strategy_name=name) & (
            Q(status=LivePosition.Status.OPEN) | Q(closed_ms__gte=start_ms)
        )
    rows = (
        LivePosition.objects.filter(window)
        .values("strategy_name")
        .annotate(
            trades=Count("id", filter=closed),
            booked=Count("id", filter=booked),
            wins=Count("id", filter=booked & Q(net_pnl__gt=0)),
            gross=Sum("gross_pnl", filter=booked),
            fees=Sum("fees_usdt", filter=booked),
            net=Sum("net_pnl", filter=booked),
            funding=Sum("funding_usdt", filter=booked),  # SQL SUM skips NULLs: all None -> None
            funding_missing=Count("id", filter=booked & Q(funding_usdt__isnull=True)),
            open_count=Count("id", filter=Q(status=LivePosition.Status.OPEN)),
        )
        .order_by("strategy_name")
    )
    return {
        row["strategy_name"]: _results(
            trades=row["trades"],
            booked=row["booked"],
            wins=row["wins"],
            gross=row["gross"] or 0.0,
            fees=row["fees"] or 0.0,
            net=row["net"] or 0.0,
            funding=row["funding"],
            funding_missing=row["funding_missing"],
            open_count=row["open_count"],
        )
        for row in rows
    }


def live_results_total(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The live account line: the strategies' :func:`live_results` added up (funding None
    when no strategy's was fetched), with win rate and fees share recomputed from the sums."""
    rows = list(results)
    fundings = [r["funding"] for r in rows if r["funding"] is not None]
    return _results(
        trades=sum(r["trades"] for r in rows),
        booked=sum(r["booked"] for r in rows),
        wins=sum(r["wins"] for r in rows),
        gross=sum(r["gross"] for r in rows),
        fees=sum(r["fees"] for r in rows),
        net=sum(r["net"] for r in rows),
        funding=sum(fundings) if fundings else None,
        funding_missing=sum(r["funding_missing"] for r in rows),
        open_count=sum(r["open"] for r in rows),
    )


def _share_pct(fees: float, gross: float) -> float | None:
    """``fees / |gross| × 100`` (trading.core.pnl.fees_share_of_gross), ``None`` at gross 0."""
    share = fees_share_of_gross(fees, gross)
    return None if share is None else share * 100.0
