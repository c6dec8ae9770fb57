"""Reconciliation, the I/O side: read both books, diff them (:mod:`trading.core.reconcile`),
act on every difference, read again.

At start-up and every ``reconcile_interval_s``: the exchange's positions, open orders and open
plan (stop / target) orders of every traded symbol against the database's open live positions
and non-terminal orders. The actions, per difference:

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
from trading.execution.venue import exchange_order
from trading.models import LivePosition, Order

if TYPE_CHECKING:
    from trading.execution.executor import Executor

ADOPTED = "(adopted)"
UNKNOWN = "(unknown)"


PAGE = 100  # Bitget's largest page of orders-pending / orders-plan-pending


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


def _db_view(*, exchange: str) -> tuple[list[HeldPosition], list[KnownOrder]]:
    held = [
        HeldPosition(str(p.pk), p.symbol, Side(p.side), p.qty)
        for p in store.open_live_positions(exchange=exchange)
    ]
    known = [
        KnownOrder(o.client_id, o.symbol, OrderRole(o.role), OrderStatus(o.status))
        for o in store.open_orders(exchange=exchange)
        if o.status != OrderStatus.PENDING_SUBMIT.value or o.attempts > 0
    ]
    return held, known


async def diff(ex: Executor) -> tuple[Reconciliation, dict[str, dict]]:
    positions, orders, raw = await exchange_view(ex)
    held, known = await ex.db(_db_view, exchange=ex.exchange_name)
    return reconcile(held, positions, known, orders), raw


def _position_on(*, exchange: str, symbol: str) -> LivePosition | None:
    wanted = normalise_symbol(symbol)
    for position in store.open_live_positions(exchange=exchange):
        if normalise_symbol(position.symbol) == wanted:
            return position
    return None


async def reconcile_now(ex: Executor, *, startup: bool = False) -> Reconciliation:
    """One reconciliation pass with its actions, then a fresh diff (what is returned)."""
    from trading.execution.protection import book_close, close_position, hold_plan

    result, raw = await diff(ex)
    if result.clean:
        return result
    when = "start-up" if startup else "periodic"
    await ex.alert("warning", f"reconciliation ({when}): {result.summary()}")
    if result.to_look_up:
        for known in result.to_look_up:
            order = await ex.db(Order.objects.get, client_id=known.client_id)
            await ex.look_up(order)
        await ex.idle(timeout_s=ex.settings.stop_confirm_s + 5)  # the fills they booked
        result, raw = await diff(ex)  # what the look-ups changed (a fill grows a position)
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
    final, _ = await diff(ex)
    if not final.clean:
        await ex.alert("warning", f"reconciliation ({when}) still differs: {final.summary()}")
    return final
