"""Reading ccxt's answers for the executor: orders, plan orders, positions, market rules.

ccxt hands back dicts (unified fields plus Bitget's raw ``info``); these functions turn them
into the plain values :mod:`trading.core.execution` and :mod:`trading.core.reconcile` take,
in ONE place, so the stream handlers, the REST poll and the reconciliation read an order the
same way. Bitget specifics (ref/bitget.md §4, ref/execution.md A2): a position's stop and
target are plan orders with ``planType`` ``pos_loss`` / ``pos_profit`` (``loss_plan`` /
``profit_plan`` for a partial size); in one-way mode their ``holdSide`` / ``posSide`` names the
position as ``long``/``short`` or by its opening order ``buy``/``sell``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trading.core.execution import OrderRole, OrderStatus, status_from_exchange
from trading.core.orders import InstrumentRules
from trading.core.reconcile import ExchangeFill, ExchangeOrder, ExchangePosition
from trading.core.types import Side

STOP_PLAN_TYPES = frozenset({"pos_loss", "loss_plan"})
TARGET_PLAN_TYPES = frozenset({"pos_profit", "profit_plan"})


def _num(value: Any) -> float:
    try:
        return float(value) if value not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True, slots=True)
class OrderReport:
    """One ccxt order, read: state, cumulative fill (base units), average price and fee
    (USDT, > 0 paid)."""

    client_id: str
    exchange_id: str
    symbol: str
    status: OrderStatus
    amount: float
    filled: float
    average: float | None
    fee_usdt: float
    reduce_only: bool
    plan_role: OrderRole | None
    protected_side: Side | None
    trigger_price: float | None
    side: str


def plan_role(order: dict[str, Any]) -> OrderRole | None:
    """STOP / TARGET for a position's stop-loss / take-profit plan order, else ``None``."""
    plan = str((order.get("info") or {}).get("planType") or "").lower()
    if plan in STOP_PLAN_TYPES:
        return OrderRole.STOP
    if plan in TARGET_PLAN_TYPES:
        return OrderRole.TARGET
    return None


def protected_side(order: dict[str, Any]) -> Side | None:
    """The side of the position a plan order protects (``None`` for a regular order)."""
    if plan_role(order) is None:
        return None
    info = order.get("info") or {}
    hold = str(info.get("holdSide") or info.get("posSide") or "").lower()
    if hold in ("long", "buy"):
        return Side.LONG
    if hold in ("short", "sell"):
        return Side.SHORT
    # A stop that sells closes a long.
    return Side.LONG if str(order.get("side") or "").lower() == "sell" else Side.SHORT


def order_report(order: dict[str, Any]) -> OrderReport:
    """One ccxt order, read. On Bitget's private websocket ccxt's ``filled`` is the size of
    that push's fill only; the running total is ``info.accBaseVolume`` (and the average price
    ``info.priceAvg``), which is what the state machine needs."""
    info = order.get("info") or {}
    amount = _num(order.get("amount"))
    filled = _num(info["accBaseVolume"]) if "accBaseVolume" in info else _num(order.get("filled"))
    average = _num(info.get("priceAvg")) or _num(order.get("average")) or None
    fee = order.get("fee") or {}
    trigger = (
        order.get("stopLossPrice") or order.get("takeProfitPrice") or order.get("triggerPrice")
    )
    return OrderReport(
        client_id=str(order.get("clientOrderId") or ""),
        exchange_id=str(order.get("id") or ""),
        symbol=str(order.get("symbol") or ""),
        status=status_from_exchange(order.get("status"), filled, amount),
        amount=amount,
        filled=filled,
        average=average,
        fee_usdt=abs(_num(fee.get("cost"))),
        reduce_only=bool(order.get("reduceOnly")),
        plan_role=plan_role(order),
        protected_side=protected_side(order),
        trigger_price=_num(trigger) or None,
        side=str(order.get("side") or ""),
    )


def exchange_order(order: dict[str, Any]) -> ExchangeOrder:
    """An open exchange order as :func:`trading.core.reconcile.reconcile` takes it."""
    report = order_report(order)
    return ExchangeOrder(
        client_id=report.client_id or report.exchange_id,
        exchange_id=report.exchange_id,
        symbol=report.symbol,
        role=report.plan_role or OrderRole.ENTRY,
        side=report.protected_side,
        trigger_price=report.trigger_price,
    )


def exchange_position(position: dict[str, Any]) -> ExchangePosition | None:
    """A ccxt position, or ``None`` when it holds nothing (Bitget lists flat symbols too)."""
    qty = abs(_num(position.get("contracts"))) * (_num(position.get("contractSize")) or 1.0)
    side = str(position.get("side") or "").lower()
    if qty <= 0 or side not in ("long", "short"):
        return None
    return ExchangePosition(
        symbol=str(position.get("symbol") or ""),
        side=Side(side),
        qty=qty,
        entry_price=_num(position.get("entryPrice")),
        liquidation_price=_num(position.get("liquidationPrice")) or None,
        mark_price=_num(position.get("markPrice")) or None,
    )


def exchange_fill(trade: dict[str, Any]) -> ExchangeFill:
    """A ccxt trade of ours (``fetch_my_trades`` / ``watch_my_trades``) as reconcile takes it."""
    return ExchangeFill(
        trade_id=str(trade.get("id") or ""),
        exchange_order_id=str(trade.get("order") or ""),
        symbol=str(trade.get("symbol") or ""),
        qty=_num(trade.get("amount")),
    )


def fill_fields(trade: dict[str, Any]) -> dict[str, Any]:
    """The :func:`trading.execution.store.fill_record` fields of a ccxt trade: base units,
    USDT; the fee as paid (> 0), Bitget's realised ``profit`` when it says one."""
    fee = trade.get("fee") or {}
    profit = (trade.get("info") or {}).get("profit")
    return {
        "trade_id": str(trade.get("id") or ""),
        "exchange_order_id": str(trade.get("order") or ""),
        "client_id": str(trade.get("clientOrderId") or ""),
        "symbol": str(trade.get("symbol") or ""),
        "side": str(trade.get("side") or ""),
        "qty": _num(trade.get("amount")),
        "price": _num(trade.get("price")),
        "fee_usdt": abs(_num(fee.get("cost"))),
        "liquidity": str(trade.get("takerOrMaker") or ""),
        "time_ms": int(_num(trade.get("timestamp"))),
        "realised_pnl": _num(profit) if profit not in (None, "") else None,
    }


def market_rules(market: dict[str, Any]) -> InstrumentRules:
    """The instrument rules of a ccxt market (``load_markets``): tick, lot, minimums."""
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    leverage = (limits.get("leverage") or {}).get("max")
    return InstrumentRules(
        price_tick=_num(precision.get("price")),
        qty_step=_num(precision.get("amount")),
        min_qty=_num((limits.get("amount") or {}).get("min")),
        min_notional_usdt=_num((limits.get("cost") or {}).get("min")),
        max_leverage=int(_num(leverage)) or 125,
    )
