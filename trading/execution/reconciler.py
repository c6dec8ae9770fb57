"""Reconciliation, the I/O side: read both books, diff them (:mod:`trading.core.reconcile`),
act on every difference, read again.

At start-up and every ``reconcile_interval_s``: the exchange's positions, open orders, open
plan (stop / target) orders and fills since the last check (with a minute of overlap) of every
traded symbol against the database's open live positions, non-terminal orders and stored
fills. The actions, per difference:

* fill not stored (a fill frame the streams lost) → stored, linked to its order and position,
  and its order, if still open in the database, looked up (what it filled is booked);
* order to look up → fetched by client id (and failed after repeated "not found", then
  resubmitted with the same id while still wanted);
* position closed on the exchange → its fills fetched, the close booked;
* quantity mismatch → the exchange's quantity kept;
* unknown exchange position → alerted; ``unknown_positions: close`` closes it at market,
  ``adopt`` keeps it (strategy ``(adopted)``) with a stop ``adopt_stop_pct`` away;
* position without a stop → stop placed, or the position closed at market;
* an exchange stop / target of a held position not in the database (a preset that became a
  plan order while we were down) → recorded as that position's; any other order of ours the
  database does not know → cancelled; someone else's → alerted, left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trading.core.execution import OrderRole, OrderStatus
from trading.core.reconcile import (
    ExchangeOrder,
    ExchangePosition,
    HeldPosition,
    KnownOrder,
    Reconciliation,
    is_ours,
    reconcile,
)
from trading.core.types import Side, normalise_symbol
from trading.execution import store
from trading.execution.venue import exchange_fill, exchange_order, fill_fields
from trading.models import LivePosition, Order

if TYPE_CHECKING:
    from trading.execution.executor import Executor

ADOPTED = "(adopted)"
UNKNOWN = "(unknown)"


PAGE = 100  # Bitget's largest page of orders-pending / orders-plan-pending / fills
FILL_OVERLAP_MS = 60_000  # each check re-reads the minute before the last one
FILL_LOOKBACK_MS = 7 * 86_400_000  # at start-up: the last stored fill, at most a week back


async def all_open_orders(ex: Executor, params: dict) -> list[dict]:
    """Every open order of the product type, page by page (Bitget's ``idLessThan`` cursor:
    the oldest id of the previous page), whatever the symbol: 3 calls reconcile 100 symbols."""
    found: list[dict] = []
    cursor: dict[str, str] = {}
    while True:
        page = await ex.exchange.fetch_open_orders(None, None, PAGE, {**params, **cursor})
        found.extend(page)
        if len(page) < PAGE:
            return found
        cursor = {"idLessThan": str(min(int(o["id"]) for o in page))}


async def fills_since(ex: Executor, since_ms: int) -> list[dict]:
    """Every trade of ours on the traded symbols since ``since_ms`` (exchange time), parsed
    by ccxt. One call for the whole product type while fewer than a page filled: Bitget's v2
    ``fills`` takes the symbol as optional (ccxt's ``fetch_my_trades`` insists on one, which
    would cost a call per symbol: 100 calls at 10/s to reconcile 100 symbols); paged by
    ``idLessThan``, the oldest trade id of the previous page."""
    exchange = ex.exchange
    markets = {exchange.market(s)["id"]: exchange.market(s) for s in ex.symbols}
    product, _ = exchange.handle_product_type_and_params(exchange.market(ex.symbols[0]), {})
    found: list[dict] = []
    cursor: dict[str, str] = {}
    while True:
        request = {"productType": product, "startTime": str(since_ms), "limit": str(PAGE)}
        answer = await exchange.privateMixGetV2MixOrderFills({**request, **cursor})
        rows = (answer.get("data") or {}).get("fillList") or []
        found.extend(
            exchange.parse_trade(row, markets[row["symbol"]])
            for row in rows
            if row.get("symbol") in markets
        )
        if len(rows) < PAGE:
            return found
        cursor = {"idLessThan": str(min(int(row["tradeId"]) for row in rows))}


def _fills_start(*, exchange: str, now_ms: int) -> int:
    """Where the start-up check reads fills from: the last stored fill (or the oldest open
    position) minus the overlap, at most :data:`FILL_LOOKBACK_MS` back."""
    from trading.models import Fill

    marks = [
        Fill.objects.filter(exchange=exchange)
        .order_by("-time_ms")
        .values_list("time_ms", flat=True)
        .first(),
        *(p.opened_ms for p in store.open_live_positions(exchange=exchange)),
    ]
    known = [m for m in marks if m]
    start = min(known) if known else now_ms
    return max(start - FILL_OVERLAP_MS, now_ms - FILL_LOOKBACK_MS)


async def exchange_view(
    ex: Executor,
) -> tuple[list[ExchangePosition], list[ExchangeOrder], dict[str, dict]]:
    """The exchange's positions and open orders (regular and plan) of the traded symbols."""
    positions = await ex.exchange_positions()
    answers = [
        *await all_open_orders(ex, {}),
        *await all_open_orders(ex, {"trigger": True, "planType": "profit_loss"}),
    ]
    traded = set(ex.symbols)
    orders: list[ExchangeOrder] = []
    raw: dict[str, dict] = {}
    for answer in answers:
        if answer.get("symbol") in traded:
            order = exchange_order(answer)
            orders.append(order)
            raw[order.client_id] = answer
    return positions, orders, raw


def _db_view(
    *, exchange: str, fills_since_ms: int
) -> tuple[list[HeldPosition], list[KnownOrder], set[str]]:
    held = [
        HeldPosition(str(p.pk), p.symbol, Side(p.side), p.qty)
        for p in store.open_live_positions(exchange=exchange)
    ]
    known = [
        KnownOrder(
            o.client_id, o.symbol, OrderRole(o.role), OrderStatus(o.status), o.exchange_order_id
        )
        for o in store.open_orders(exchange=exchange)
        if o.status != OrderStatus.PENDING_SUBMIT.value or o.attempts > 0
    ]
    return held, known, store.stored_fill_ids(exchange=exchange, since_ms=fills_since_ms)


async def diff(
    ex: Executor, since_ms: int, fills: list[dict] | None = None
) -> tuple[Reconciliation, dict[str, dict], list[dict]]:
    """The differences, the raw open orders by client id, and the raw fills since
    ``since_ms`` (``fills`` given: those, not fetched again)."""
    positions, orders, raw = await exchange_view(ex)
    if fills is None:
        fills = await fills_since(ex, since_ms)
    held, known, stored = await ex.db(
        _db_view, exchange=ex.exchange_name, fills_since_ms=since_ms - FILL_OVERLAP_MS
    )
    trades = [exchange_fill(t) for t in fills]
    return (
        reconcile(held, positions, known, orders, fills=trades, stored_fill_ids=stored),
        raw,
        fills,
    )


def _store_trades(*, ex: Executor, trades: list[dict]) -> None:
    for trade in trades:
        store.fill_from_trade(fields=fill_fields(trade), exchange=ex.exchange_name)


def _position_on(*, exchange: str, symbol: str) -> LivePosition | None:
    wanted = normalise_symbol(symbol)
    for position in store.open_live_positions(exchange=exchange):
        if normalise_symbol(position.symbol) == wanted:
            return position
    return None


async def reconcile_now(ex: Executor, *, startup: bool = False) -> Reconciliation:
    """One reconciliation pass with its actions, then a fresh diff (what is returned)."""
    from trading.execution.protection import book_close, close_position, hold_plan

    checked_ms = ex.market_ms()
    if startup or ex.fills_checked_ms is None:
        since = await ex.db(_fills_start, exchange=ex.exchange_name, now_ms=checked_ms)
    else:
        since = ex.fills_checked_ms - FILL_OVERLAP_MS
    result, raw, fills = await diff(ex, since)
    ex.fills_checked_ms = checked_ms
    if result.clean:
        return result
    when = "start-up" if startup else "periodic"
    await ex.alert("warning", f"reconciliation ({when}): {result.summary()}")
    if result.unbooked_fills:
        missed = {f.trade_id for f in result.unbooked_fills}
        await ex.db(_store_trades, ex=ex, trades=[t for t in fills if str(t.get("id")) in missed])
    if result.to_look_up:
        for known in result.to_look_up:
            order = await ex.db(Order.objects.get, client_id=known.client_id)
            await ex.look_up(order)
        await ex.idle(timeout_s=ex.settings.stop_confirm_s + 5)  # the fills they booked
        # What the look-ups changed (a fill grows a position).
        result, raw, _ = await diff(ex, since, fills)
    for held in result.missing_positions:
        position = await ex.db(LivePosition.objects.get, pk=int(held.key))
        async with ex._locks[position.symbol]:
            await book_close(ex, position)
    for held, on_exchange in result.quantity_mismatches:
        await ex.db(store.live_position_update, position_id=int(held.key), qty=on_exchange.qty)
    for found in result.unknown_positions:
        adopt = ex.settings.unknown_positions == "adopt"
        position = await ex.db(
            store.live_position_open,
            strategy=ADOPTED if adopt else UNKNOWN,
            symbol=found.symbol,
            side=found.side,
            qty=found.qty,
            entry_price=found.entry_price,
            leverage=1,
            stop_loss=None,
            take_profit=None,
            opened_ms=ex.market_ms(),
            adopted=True,
            exchange=ex.exchange_name,
        )
        await ex.alert(
            "warning",
            f"unknown {found.side.value} position of {found.qty:g} {found.symbol} on the "
            f"exchange: {'adopted with a stop' if adopt else 'closing it at market'}",
        )
        if not adopt:
            async with ex._locks[position.symbol]:
                await close_position(
                    ex,
                    position,
                    client_id=f"sr-rc-{position.pk}-{ex.market_ms() // 1000}",
                    role=OrderRole.EMERGENCY,
                    reason="unknown position closed",
                )
    for order in result.unknown_orders:
        position = await ex.db(_position_on, exchange=ex.exchange_name, symbol=order.symbol)
        if order.role is not OrderRole.ENTRY and position is not None:
            await ex.db(
                hold_plan, position=position, plan=raw[order.client_id], exchange=ex.exchange_name
            )
        elif is_ours(order.client_id):
            params = {"trigger": True, "planType": raw[order.client_id]["info"].get("planType")}
            await ex.exchange.cancel_order(
                order.exchange_id, order.symbol, params if order.role is not OrderRole.ENTRY else {}
            )
        else:
            await ex.alert(
                "warning",
                f"an order not sent by Scalp Radar rests on {order.symbol} "
                f"(id {order.exchange_id}): left alone",
            )
    for unprotected in result.unprotected:
        position = await ex.db(_position_on, exchange=ex.exchange_name, symbol=unprotected.symbol)
        if position is not None:
            await ex.ensure_protected(position.pk)
    final, _, _ = await diff(ex, since, fills)
    if not final.clean:
        await ex.alert("warning", f"reconciliation ({when}) still differs: {final.summary()}")
    return final
