"""The executor's writes: orders, fills and live positions (sync, each in one transaction).

The executor calls these from its own database thread. An order row is written BEFORE its
request leaves (:func:`order_record`), every answer moves it through the state machine of
:mod:`trading.core.execution` (:func:`order_transition` refuses an illegal move instead of
overwriting a newer state with a stale report), a fill is stored once per exchange trade id
(:func:`fill_record`), and a live position's close is booked from its fills
(:func:`live_position_close`). Each change is published to the ``live`` group after commit;
a live position's close is also told to ``common.notices`` (Telegram), in its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from common.events import publish_on_commit
from common.notices import emit, trade_closed_notice
from trading.core.execution import (
    IllegalOrderTransition,
    OrderRole,
    OrderStatus,
    next_status,
)
from trading.core.types import Side
from trading.models import Fill, LivePosition, Order

LIVE_GROUP = "live"


def order_event(order: Order) -> dict[str, Any]:
    """The ``live.order`` payload: everything the Live page's order row shows."""
    return {
        "client_id": order.client_id,
        "exchange_order_id": order.exchange_order_id,
        "strategy": order.strategy_name,
        "symbol": order.symbol,
        "role": order.role,
        "side": order.side,
        "order_type": order.order_type,
        "qty": order.qty,
        "price": order.price,
        "trigger_price": order.trigger_price,
        "status": order.status,
        "filled_qty": order.filled_qty,
        "average_price": order.average_price,
        "fee_usdt": order.fee_usdt,
        "error": order.error,
        "live_position_id": order.live_position_id,
    }


def position_event(position: LivePosition) -> dict[str, Any]:
    """The ``live.position`` payload."""
    return {
        "id": position.pk,
        "strategy": position.strategy_name,
        "symbol": position.symbol,
        "side": position.side,
        "status": position.status,
        "qty": position.qty,
        "entry_price": position.entry_price,
        "leverage": position.leverage,
        "stop_loss": position.stop_loss,
        "take_profit": position.take_profit,
        "protected": position.protected,
        "liquidation_price": position.liquidation_price,
        "mark_price": position.mark_price,
        "gross_pnl": position.gross_pnl,
        "fees_usdt": position.fees_usdt,
        "net_pnl": position.net_pnl,
        "funding_usdt": position.funding_usdt,
        "exit_reason": position.exit_reason,
        "opened_ms": position.opened_ms,
    }


def _publish_order(order: Order) -> None:
    publish_on_commit(LIVE_GROUP, "live.order", order_event(order))


def _publish_position(position: LivePosition) -> None:
    publish_on_commit(LIVE_GROUP, "live.position", position_event(position))


@transaction.atomic
def order_record(
    *,
    client_id: str,
    strategy: str,
    symbol: str,
    role: OrderRole,
    side: str,
    order_type: str,
    qty: float,
    price: float | None = None,
    trigger_price: float | None = None,
    reduce_only: bool = False,
    post_only: bool = False,
    intent: Mapping[str, Any] | None = None,
    expires_at_ms: int | None = None,
    signal_ms: int | None = None,
    live_position: LivePosition | None = None,
    exchange: str = "bitget",
    submitted_ms: int | None = None,
    publish: bool = True,
) -> tuple[Order, bool]:
    """The order row of ``client_id`` (``pending_submit``), created if new: (order, created).

    A second call with the same id returns the stored row untouched (``created`` False): the
    executor then knows the request may already have been sent and looks it up instead.
    ``submitted_ms`` (wall ms) records the first attempt with the row, saving a write;
    ``publish=False`` leaves the page's update to the order's next transition (the answer),
    so nothing is rendered between a decision and its request.
    """
    try:
        with transaction.atomic():
            order = Order.objects.create(
                client_id=client_id,
                strategy_name=strategy,
                exchange=exchange,
                symbol=symbol,
                role=role.value,
                side=side,
                order_type=order_type,
                qty=qty,
                price=price,
                trigger_price=trigger_price,
                reduce_only=reduce_only,
                post_only=post_only,
                intent=dict(intent or {}),
                expires_at_ms=expires_at_ms,
                signal_ms=signal_ms,
                live_position=live_position,
                attempts=1 if submitted_ms is not None else 0,
                submitted_ms=submitted_ms,
            )
    except IntegrityError:
        return Order.objects.get(client_id=client_id), False
    if publish:
        _publish_order(order)
    return order, True


@transaction.atomic
def order_transition(
    *,
    client_id: str,
    status: OrderStatus,
    **fields: Any,
) -> Order:
    """Move the order to ``status`` (and set ``fields``) if the state machine allows it.

    A stale report (``filled`` then ``open`` from a late poll) raises
    :class:`IllegalOrderTransition` and changes nothing; ``filled_qty`` never decreases.
    """
    order = Order.objects.select_for_update().get(client_id=client_id)
    new = next_status(OrderStatus(order.status), status)
    if "filled_qty" in fields and fields["filled_qty"] < order.filled_qty:
        raise IllegalOrderTransition(
            f"{client_id}: filled {fields['filled_qty']} is below the {order.filled_qty} "
            "already booked (a stale report)"
        )
    order.status = new.value
    for name, value in fields.items():
        setattr(order, name, value)
    order.save()
    _publish_order(order)
    return order


@transaction.atomic
def order_attempt(*, client_id: str, submitted_ms: int) -> Order:
    """Count one more send of the order (before its request leaves)."""
    order = Order.objects.select_for_update().get(client_id=client_id)
    if order.status == OrderStatus.FAILED.value:
        order.status = next_status(OrderStatus.FAILED, OrderStatus.PENDING_SUBMIT).value
        order.not_found = 0
    order.attempts += 1
    order.submitted_ms = submitted_ms
    order.save(update_fields=["status", "attempts", "submitted_ms", "not_found", "updated_at"])
    return order


def open_orders(*, exchange: str = "bitget") -> list[Order]:
    """Every order of ours that is not terminal."""
    terminal = [s.value for s in OrderStatus if s.terminal]
    return list(Order.objects.filter(exchange=exchange).exclude(status__in=terminal))


@transaction.atomic
def fill_record(
    *,
    trade_id: str,
    order: Order | None,
    client_id: str,
    symbol: str,
    side: str,
    qty: float,
    price: float,
    fee_usdt: float,
    liquidity: str,
    time_ms: int,
    realised_pnl: float | None = None,
    live_position: LivePosition | None = None,
    exchange: str = "bitget",
) -> Fill | None:
    """Store one exchange fill; ``None`` when that trade id is stored already (then the order
    and live position it lacked, if given now, are linked: a fill streamed before its
    order's report opened the position)."""
    existing = Fill.objects.filter(exchange=exchange, trade_id=trade_id).first()
    if existing is not None:
        links = {}
        if existing.order_id is None and order is not None:
            links["order"] = order
        if existing.live_position_id is None and live_position is not None:
            links["live_position"] = live_position
        if links:
            Fill.objects.filter(pk=existing.pk).update(**links)
        return None
    return Fill.objects.create(
        exchange=exchange,
        trade_id=trade_id,
        order=order,
        client_id=client_id,
        symbol=symbol,
        side=side,
        qty=qty,
        price=price,
        fee_usdt=fee_usdt,
        liquidity=liquidity,
        realised_pnl=realised_pnl,
        time_ms=time_ms,
        live_position=live_position,
    )


def fill_from_trade(
    *, fields: dict[str, Any], exchange: str, live_position: LivePosition | None = None
) -> Fill | None:
    """Store a ccxt trade (its :func:`~trading.execution.venue.fill_fields`), linked to its
    order by the exchange's order id and to the live position that order belongs to (or
    ``live_position``)."""
    fields = dict(fields)
    order_id, client_id = fields.pop("exchange_order_id", ""), fields.pop("client_id", "")
    order = Order.objects.filter(exchange_order_id=order_id).first() if order_id else None
    if order is None and client_id:
        order = Order.objects.filter(client_id=client_id).first()
    position = live_position or (order.live_position if order is not None else None)
    return fill_record(
        **fields,
        order=order,
        client_id=order.client_id if order is not None else client_id,
        live_position=position,
        exchange=exchange,
    )


def stored_fill_ids(*, exchange: str, since_ms: int) -> set[str]:
    return set(
        Fill.objects.filter(exchange=exchange, time_ms__gte=since_ms).values_list(
            "trade_id", flat=True
        )
    )


@transaction.atomic
def live_position_open(
    *,
    strategy: str,
    symbol: str,
    side: Side,
    qty: float,
    entry_price: float,
    leverage: float,
    stop_loss: float | None,
    take_profit: float | None,
    opened_ms: int,
    entry_client_id: str = "",
    adopted: bool = False,
    exchange: str = "bitget",
) -> LivePosition:
    position = LivePosition.objects.create(
        strategy_name=strategy,
        exchange=exchange,
        symbol=symbol,
        side=side.value,
        qty=qty,
        entry_price=entry_price,
        leverage=leverage,
        stop_loss=stop_loss,
        take_profit=take_profit,
        opened_ms=opened_ms,
        entry_client_id=entry_client_id,
        adopted=adopted,
    )
    _publish_position(position)
    return position


@transaction.atomic
def live_position_update(*, position_id: int, **fields: Any) -> LivePosition:
    position = LivePosition.objects.select_for_update().get(pk=position_id)
    for name, value in fields.items():
        setattr(position, name, value)
    position.save()
    _publish_position(position)
    return position


def open_live_positions(
    *, exchange: str = "bitget", strategy: str | None = None
) -> list[LivePosition]:
    rows = LivePosition.objects.filter(exchange=exchange, status=LivePosition.Status.OPEN)
    if strategy is not None:
        rows = rows.filter(strategy_name=strategy)
    return list(rows)


@transaction.atomic
def live_position_close(
    *, position_id: int, closed_ms: int, exit_reason: str, funding_usdt: float | None = None
) -> LivePosition:
    """Book the close of a live position from its stored fills.

    Entry fills are those of its entry order(s) (same side as the position), exit fills the
    others (stop, target, exit, emergency): ``gross = side × (avg exit − avg entry) ×
    closed qty``, ``fees`` = Σ every fill's fee, ``net = gross − fees − funding`` (USDT; funding
    > 0 = paid; ``None`` = not fetched: net is then before funding, and says so on the page).
    With no exit fill stored (closed while we were away and the fills not yet
    fetched) the exit price stays empty and the P&L is None: never a silent 0.
    """
    position = LivePosition.objects.select_for_update().get(pk=position_id)
    side = Side(position.side)
    fills = list(Fill.objects.filter(live_position=position))
    opening = side.open_order.value
    entries = [f for f in fills if f.side == opening]
    exits = [f for f in fills if f.side != opening]
    entry_qty = sum(f.qty for f in entries)
    exit_qty = sum(f.qty for f in exits)
    position.status = LivePosition.Status.CLOSED
    position.closed_ms = closed_ms
    position.exit_reason = exit_reason
    position.fees_usdt = sum(f.fee_usdt for f in fills)
    position.funding_usdt = funding_usdt
    if exits and entry_qty > 0:
        avg_entry = sum(f.qty * f.price for f in entries) / entry_qty
        avg_exit = sum(f.qty * f.price for f in exits) / exit_qty
        position.entry_price = avg_entry
        position.exit_price = avg_exit
        position.gross_pnl = side.sign * (avg_exit - avg_entry) * exit_qty
        position.net_pnl = position.gross_pnl - position.fees_usdt - (funding_usdt or 0.0)
    closed_qty = exit_qty or position.qty
    position.qty = 0.0
    position.save()
    _publish_position(position)
    emit(
        trade_closed_notice(
            mode="live",
            strategy=position.strategy_name,
            side=position.side,
            symbol=position.symbol,
            qty=closed_qty,
            price=position.exit_price,
            reason=exit_reason,
            gross_usdt=position.gross_pnl,
            fees_usdt=position.fees_usdt,
            funding_usdt=funding_usdt,
            net_usdt=position.net_pnl,
        )
    )
    # Its stop and target die with it on the exchange (Bitget cancels a flat position's
    # pos_loss / pos_profit); every state they are in may move to cancelled.
    terminal = [s.value for s in OrderStatus if s.terminal]
    protections = Order.objects.filter(
        live_position=position, role__in=[OrderRole.STOP.value, OrderRole.TARGET.value]
    ).exclude(status__in=terminal)
    for order in protections:
        order.status = OrderStatus.CANCELLED.value
        order.error = "its position closed"
        order.save(update_fields=["status", "error", "updated_at"])
        _publish_order(order)
    return position


def orders_of(*, position: LivePosition, roles: tuple[OrderRole, ...] = ()) -> list[Order]:
    query = Q(live_position=position)
    if roles:
        query &= Q(role__in=[r.value for r in roles])
    return list(Order.objects.filter(query))
