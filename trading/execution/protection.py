"""Never a position without a stop; closes that always end flat; closes booked from fills.

Called by :class:`trading.execution.executor.Executor` with the symbol's lock held (one live
position per symbol, so a symbol's lock is its position's).

* :func:`protect` — find the position's stop among the exchange's plan orders (the entry's
  preset stop becomes one when the entry fills), waiting up to ``stop_confirm_s``; place one
  (``pos_loss``, whole position) when it is not there; if that fails, close at market and raise
  an error alert.
* :func:`close_position` — a reduce-only market close, retried with new ids when rejected
  (``exit_attempts``), then an emergency close; a close that cannot be sent at all is an error
  alert asking for a hand.
* :func:`close_on_request` — a trader's Close of one live position (the Live page): its
  resting entry cancelled, then :func:`close_position`; its stop and target stay on the
  exchange until it is flat (then :func:`book_close` cancels them), so a refused close leaves
  it protected — checked, and the stop placed again if it is missing.
* :func:`settle_symbol` — re-read the exchange's position; when it is gone, fetch the fills
  since it opened and book the close (exit reason from the order that closed it: a close of
  ours carries its reason; a triggered stop / target is told apart by which plan order fired,
  or, when the exchange does not say, by which of stop and target the exit price is nearer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ccxt

from trading.core.execution import OrderRole, OrderStatus, protection_id, retry_id
from trading.core.types import Side
from trading.execution import store
from trading.execution.venue import fill_fields, order_report
from trading.models import LivePosition, Order

if TYPE_CHECKING:
    from trading.execution.executor import Executor

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often the plan orders are re-read while a preset stop is awaited


def _entry_key(position: LivePosition) -> str:
    return position.entry_client_id or f"sr-lp-{position.pk}"


async def hold_plans(ex: Executor, position: LivePosition) -> bool:
    """Record the stop and target the exchange holds for ``position``; True when a stop is
    among them."""
    side = Side(position.side)
    try:
        plans = await ex.plan_orders(position.symbol)
    except ccxt.NetworkError:
        return False
    mine = [p for p in plans if order_report(p).protected_side is side]
    for plan in mine:
        await ex.db(hold_plan, position=position, plan=plan, exchange=ex.exchange_name)
    return any(order_report(p).plan_role is OrderRole.STOP for p in mine)


def hold_plan(*, position: LivePosition, plan: dict[str, Any], exchange: str) -> None:
    """Record a stop or target plan order the exchange holds for ``position``; a stop marks
    the position protected."""
    report = order_report(plan)
    role = report.plan_role or OrderRole.STOP
    order, _ = store.order_record(
        client_id=report.client_id or f"x-{report.exchange_id}",
        strategy=position.strategy_name,
        symbol=position.symbol,
        role=role,
        side=Side(position.side).close_order.value,
        order_type="market",
        qty=position.qty or report.amount or 1e-12,
        trigger_price=report.trigger_price,
        reduce_only=True,
        live_position=position,
        exchange=exchange,
    )
    if order.status in (OrderStatus.PENDING_SUBMIT.value, OrderStatus.UNKNOWN.value):
        store.order_transition(
            client_id=order.client_id,
            status=OrderStatus.OPEN,
            exchange_order_id=report.exchange_id,
        )
    if role is OrderRole.STOP:
        fields: dict[str, Any] = {"protected": True}
        if report.trigger_price:
            fields["stop_loss"] = report.trigger_price
        store.live_position_update(position_id=position.pk, **fields)
    elif report.trigger_price:
        store.live_position_update(position_id=position.pk, take_profit=report.trigger_price)


async def protect(ex: Executor, position_id: int) -> bool:
    position = await ex.db(LivePosition.objects.get, pk=position_id)
    if position.status != LivePosition.Status.OPEN:
        return True
    Side(position.side)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ex.settings.stop_confirm_s
    while True:
        if await hold_plans(ex, position):
            return True
        if loop.time() >= deadline:
            break
        await asyncio.sleep(POLL_S)
    if not await _still_held(ex, position):
        await settle_symbol(ex, position.symbol)  # its stop or target already fired
        return True
    placed = await _place_stop(ex, position)
    if placed or not await _still_held(ex, position):
        if not placed:
            await settle_symbol(ex, position.symbol)
        return True
    position = await ex.db(LivePosition.objects.get, pk=position_id)
    await ex.alert(
        "error",
        f"live {position.strategy_name} {position.symbol}: the stop could not be placed; "
        "closing the position at market",
        live_position=position.pk,
    )
    await close_position(
        ex,
        position,
        client_id=protection_id(_entry_key(position), OrderRole.EMERGENCY),
        role=OrderRole.EMERGENCY,
        reason="no_stop",
    )
    return False


async def _still_held(ex: Executor, position: LivePosition) -> bool:
    """Whether the exchange still holds ``position`` (a fired stop or target flattened it)."""
    return await ex.held(position.symbol, position.side) is not None


def stop_price_for(ex: Executor, position: LivePosition) -> float:
    """The stop to place: the intent's (already on the tick, toward the entry), or, for an
    adopted position without one, ``adopt_stop_pct`` beyond the entry, rounded toward it."""
    if position.stop_loss:
        return float(position.stop_loss)
    from trading.core.orders import Rounding

    side = Side(position.side)
    distance = ex.settings.adopt_stop_pct / 100.0
    raw = position.entry_price * (1 - side.sign * distance)
    toward = Rounding.UP if side is Side.LONG else Rounding.DOWN
    return ex.rules_of(position.symbol).round_price(raw, toward)


async def _place_stop(ex: Executor, position: LivePosition) -> bool:
    cid = protection_id(_entry_key(position), OrderRole.STOP)
    for attempt in range(ex.settings.exit_attempts):
        client_id = cid if attempt == 0 else retry_id(cid, attempt)
        order, created = await ex.db(
            store.order_record,
            client_id=client_id,
            strategy=position.strategy_name,
            symbol=position.symbol,
            role=OrderRole.STOP,
            side=Side(position.side).close_order.value,
            order_type="market",
            qty=position.qty,
            trigger_price=stop_price_for(ex, position),
            reduce_only=True,
            live_position=position,
            exchange=ex.exchange_name,
        )
        if not created and OrderStatus(order.status).terminal:
            continue
        order = await ex.send(order)
        if order.status == OrderStatus.REJECTED.value:
            if "trigger" in order.error.lower() or "mark" in order.error.lower():
                return False  # the market is already beyond the stop: no retry helps
            continue
        if await hold_plans(ex, position):
            return True
    return False


async def close_position(
    ex: Executor,
    position: LivePosition,
    *,
    client_id: str,
    role: OrderRole,
    reason: str,
    signal_ms: int | None = None,
) -> Order | None:
    """Close ``position`` with a reduce-only market order (module docstring)."""
    held = await ex.held(position.symbol, position.side)
    if held is None:
        await settle_symbol(ex, position.symbol)
        return None
    attempts = ex.settings.exit_attempts
    order: Order | None = None
    for attempt in range(attempts):
        cid = client_id if attempt == 0 else retry_id(client_id, attempt)
        order, created = await ex.db(
            store.order_record,
            client_id=cid,
            strategy=position.strategy_name,
            symbol=position.symbol,
            role=role,
            side=Side(position.side).close_order.value,
            order_type="market",
            qty=held.qty,
            reduce_only=True,
            intent={"reason": reason},
            signal_ms=signal_ms,
            live_position=position,
            exchange=ex.exchange_name,
        )
        if not created and OrderStatus(order.status).terminal:
            if order.status == OrderStatus.FILLED.value:
                break
            continue
        order = await ex.send(order)
        if order.status != OrderStatus.REJECTED.value:
            break
    else:
        if role is not OrderRole.EMERGENCY:
            await ex.alert(
                "error",
                f"live {position.strategy_name} {position.symbol}: {attempts} close attempts "
                "rejected; sending an emergency close",
                live_position=position.pk,
            )
            return await close_position(
                ex,
                position,
                client_id=protection_id(_entry_key(position), OrderRole.EMERGENCY),
                role=OrderRole.EMERGENCY,
                reason=reason,
            )
        await ex.alert(
            "error",
            f"live {position.strategy_name} {position.symbol}: the emergency close was "
            "rejected too; CLOSE IT BY HAND on the exchange",
            live_position=position.pk,
        )
        return order
    await settle_symbol(ex, position.symbol)
    return order


@dataclass(frozen=True, slots=True)
class RequestedClose:
    """What :func:`close_on_request` did: ``closed`` (flat on the exchange and booked), the
    stored position after it, and, when not closed, why and whether its stop is held."""

    closed: bool
    position: LivePosition
    already: bool = False  # closed before the request was carried out (stop, target, exit)
    why: str = ""
    stop_held: bool = True


async def close_on_request(
    ex: Executor, position_id: int, *, client_id: str, signal_ms: int | None = None
) -> RequestedClose:
    """Close the live position ``position_id`` at market for a trader (module docstring),
    exit reason "manual". The caller holds the symbol's lock."""
    position = await ex.db(LivePosition.objects.get, pk=position_id)
    if position.status != LivePosition.Status.OPEN:
        return RequestedClose(True, position, already=True)
    if not await _still_held(ex, position):  # its stop or target fired meanwhile
        await settle_symbol(ex, position.symbol)
        position = await ex.db(LivePosition.objects.get, pk=position_id)
        flat = position.status == LivePosition.Status.CLOSED
        return RequestedClose(flat, position, already=True)
    for entry in await ex.db(store.orders_of, position=position, roles=(OrderRole.ENTRY,)):
        if not OrderStatus(entry.status).terminal:  # a resting remainder would reopen it
            await ex.cancel(entry, "its position is closed by hand")
    order = await close_position(
        ex,
        position,
        client_id=client_id,
        role=OrderRole.EXIT,
        reason="manual",
        signal_ms=signal_ms,
    )
    position = await ex.db(LivePosition.objects.get, pk=position_id)
    if position.status == LivePosition.Status.CLOSED:
        return RequestedClose(True, position)
    why = (order.error if order is not None else "") or "the exchange still holds it"
    # Never a position without a stop: the stop was never cancelled; check it is still there.
    stop_held = await protect(ex, position_id)
    position = await ex.db(LivePosition.objects.get, pk=position_id)
    return RequestedClose(
        position.status == LivePosition.Status.CLOSED, position, why=why, stop_held=stop_held
    )


async def settle_symbol(ex: Executor, symbol: str) -> None:
    position = await ex.db(
        LivePosition.objects.filter(
            exchange=ex.exchange_name, symbol=symbol, status=LivePosition.Status.OPEN
        ).first
    )
    if position is None:
        return
    held = await ex.held(symbol)
    if held is not None and held.side.value == position.side:
        await ex.db(
            store.live_position_update,
            position_id=position.pk,
            qty=held.qty,
            liquidation_price=held.liquidation_price,
            mark_price=held.mark_price,
        )
        return
    await book_close(ex, position)


async def book_close(ex: Executor, position: LivePosition, reason: str | None = None) -> None:
    """The position is flat on the exchange: cancel what of its entry still rests (it would
    open a position again), store its fills and book the close."""
    for entry in await ex.db(store.orders_of, position=position, roles=(OrderRole.ENTRY,)):
        if not OrderStatus(entry.status).terminal:
            await ex.cancel(entry, "its position closed")
    since = position.opened_ms - 60_000
    trades = await ex.exchange.fetch_my_trades(position.symbol, since)
    await ex.db(_store_fills, ex=ex, position=position, trades=trades)
    for plan in await ex.plan_orders(position.symbol):  # left-overs of a flat position
        report = order_report(plan)
        if report.plan_role is not None:
            with contextlib.suppress(ccxt.BaseError):
                await ex.exchange.cancel_order(
                    report.exchange_id,
                    position.symbol,
                    {"trigger": True, "planType": plan["info"]["planType"]},
                )
    closed_ms = ex.market_ms()
    funding = await funding_paid(ex, position, closed_ms)
    await ex.db(_close, position=position, reason=reason, closed_ms=closed_ms, funding=funding)


async def funding_paid(ex: Executor, position: LivePosition, until_ms: int) -> float | None:
    """The funding the position paid while open, USDT (> 0 paid, < 0 received): minus the sum
    of the exchange's funding bills (ccxt ``fetch_funding_history``, Bitget's account bills of
    type ``contract_settle_fee``) from its first entry fill (or its opening) to ``until_ms``.
    In one-way mode a symbol holds one position at a time, so the window is its own.
    ``None`` when the exchange could not say: the journal then reads "not fetched", never 0."""
    start = await ex.db(_first_entry_ms, position=position)
    try:
        bills = await ex.exchange.fetch_funding_history(
            position.symbol, start, 100, {"until": until_ms}
        )
    except ccxt.BaseError as exc:
        log.warning("funding of live position %s not fetched: %s", position.pk, exc)
        return None
    return -sum(
        float(b.get("amount") or 0.0)
        for b in bills
        if start <= int(b.get("timestamp") or 0) <= until_ms
    )


def _first_entry_ms(*, position: LivePosition) -> int:
    opening = Side(position.side).open_order.value
    times = [f.time_ms for f in position.fills.all() if f.side == opening and f.time_ms]
    return min([position.opened_ms, *times])


def _store_fills(*, ex: Executor, position: LivePosition, trades: list[dict[str, Any]]) -> None:
    for trade in trades:
        if int(trade.get("timestamp") or 0) < position.opened_ms - 60_000:
            continue
        store.fill_from_trade(
            fields={**fill_fields(trade), "symbol": position.symbol},
            exchange=ex.exchange_name,
            live_position=position,
        )


def _close(
    *, position: LivePosition, reason: str | None, closed_ms: int, funding: float | None
) -> None:
    if reason is None:
        reason = _exit_reason(position)
    store.live_position_close(
        position_id=position.pk, closed_ms=closed_ms, exit_reason=reason, funding_usdt=funding
    )


def _exit_reason(position: LivePosition) -> str:
    closer = (
        Order.objects.filter(
            live_position=position, status="filled", role__in=["exit", "emergency"]
        )
        .order_by("-updated_at")
        .first()
    )
    if closer is not None:
        return str(closer.intent.get("reason") or closer.role)
    exits = [f for f in position.fills.all() if f.side == Side(position.side).close_order.value]
    if not exits:
        return "closed on the exchange"
    price = sum(f.qty * f.price for f in exits) / sum(f.qty for f in exits)
    stop, target = position.stop_loss, position.take_profit
    if stop is not None and (target is None or abs(price - stop) <= abs(price - target)):
        return "stop_loss"
    return "take_profit" if target is not None else "closed on the exchange"
