"""An entry intent made ready to send: one live position per symbol, the caps, the rounding,
the leverage decision and the order row, in ONE trip to the executor's database thread (the
hot path from a closed candle to the request; see bench/live.py)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction

from trading.core.execution import CappedEntry, OrderRole, OrderStatus, cap_entry
from trading.core.liquidation import liquidation_is_beyond_stop, liquidation_price
from trading.core.orders import InstrumentRules, Rounding
from trading.core.types import Side
from trading.execution import store
from trading.models import LivePosition, Order

if TYPE_CHECKING:
    from trading.execution.executor import Executor


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    """``order`` (``created`` now, or found from an earlier try) with the ``leverage`` it uses
    (``set_leverage``: to be set on the exchange first), or ``refusal`` and no order."""

    order: Order | None = None
    created: bool = False
    leverage: int = 0
    set_leverage: bool = False
    refusal: str | None = None


def prepare_entry(*, ex: Executor, intent: Mapping[str, Any], signal_ms: int) -> PreparedEntry:
    """Checks, caps, rounding and the order row of one entry intent, in one transaction on
    the executor's database thread (the only trip between a decision and its request)."""
    with transaction.atomic():
        symbol = intent["symbol"]
        positions, entries = live_book(ex.exchange_name)
        busy = next(
            (s for s, sym, *_ in positions if sym == symbol),
            next((s for s, sym in entries if sym == symbol), None),
        )
        if busy:
            return PreparedEntry(
                refusal=(
                    f"entry not sent: {busy} already trades {symbol} live (one position per "
                    "symbol, one-way mode)"
                )
            )
        side = Side(intent["side"])
        rules = ex.rules_of(symbol)
        limit = intent.get("limit_price")
        price = float(limit if limit is not None else intent["reference_price"])
        sized = capped(ex, intent=intent, price=price, rules=rules, positions=positions)
        if sized.refused:
            return PreparedEntry(refusal=sized.refused)
        toward_entry = Rounding.UP if side is Side.LONG else Rounding.DOWN
        stop = rules.round_price(float(intent["stop_loss"]), toward_entry)
        target = intent.get("take_profit")
        if target is not None:
            away = Rounding.DOWN if side is Side.LONG else Rounding.UP
            target = rules.round_price(float(target), away)
        if limit is not None:
            passive = Rounding.DOWN if side is Side.LONG else Rounding.UP
            price = rules.round_price(price, passive)
        problem = rules.check_minimums(sized.qty, price)
        if problem:
            return PreparedEntry(refusal=problem)
        set_leverage = leverage_must_change(
            ex, symbol, side, sized.leverage, price, stop, sized.qty
        )
        leverage = sized.leverage if set_leverage else ex._leverage[(symbol, side.value)]
        order, created = store.order_record(
            client_id=intent["client_order_id"],
            strategy=intent["strategy"],
            symbol=symbol,
            role=OrderRole.ENTRY,
            side=side.open_order.value,
            order_type="limit" if limit is not None else "market",
            qty=sized.qty,
            price=price if limit is not None else None,
            trigger_price=stop,
            post_only=limit is not None,
            intent={**intent, "stop_loss": stop, "take_profit": target, "leverage": leverage},
            expires_at_ms=int(intent.get("expires_at_ms") or 0) or None,
            signal_ms=signal_ms,
            exchange=ex.exchange_name,
            submitted_ms=int(time.time() * 1000),  # wall ms, as Executor stamps
            publish=False,
        )
        return PreparedEntry(order, created, leverage, set_leverage)


def leverage_must_change(
    ex: Executor, symbol: str, side: Side, wanted: int, price: float, stop: float, qty: float
) -> bool:
    """Whether the symbol's exchange leverage must be set to ``wanted`` before the entry
    (one more request on the way to the order). Not when the leverage already set gives
    a liquidation beyond the stop by the kernel's 0.5 % buffer (the isolated estimate of
    :func:`trading.core.liquidation.liquidation_price`): the position then locks less
    margin than its paper twin, with the same stop, i.e. the same risk."""
    current = ex._leverage.get((symbol, side.value))
    if current is None or current == wanted:
        return current is None
    liq = liquidation_price(symbol=symbol, side=side, entry_price=price, qty=qty, leverage=current)
    return not liquidation_is_beyond_stop(side, liq, stop, price, buffer_pct=0.5)


def live_book(
    exchange_name: str,
) -> tuple[list[tuple[str, str, float, float]], list[tuple[str, str]]]:
    """Open live positions ``(strategy, symbol, qty, entry price)`` and resting entries
    ``(strategy, symbol)``: two plain SQL reads, on the way from a decision to its order
    (the ORM's query building alone costs ~1 ms a query on a small machine)."""
    terminal = [s.value for s in OrderStatus if s.terminal]
    marks = ", ".join(["%s"] * len(terminal))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT strategy_name, symbol, qty, entry_price FROM {LivePosition._meta.db_table}"  # noqa: S608 - table names and placeholders only
            " WHERE exchange = %s AND status = %s",
            [exchange_name, LivePosition.Status.OPEN.value],
        )
        positions = [(str(a), str(b), float(c), float(d)) for a, b, c, d in cursor.fetchall()]
        cursor.execute(
            f"SELECT strategy_name, symbol FROM {Order._meta.db_table}"  # noqa: S608
            f" WHERE exchange = %s AND role = %s AND status NOT IN ({marks})",
            [exchange_name, OrderRole.ENTRY.value, *terminal],
        )
        entries = [(str(a), str(b)) for a, b in cursor.fetchall()]
    return positions, entries


def capped(
    ex: Executor,
    *,
    intent: Mapping[str, Any],
    price: float,
    rules: InstrumentRules,
    positions: list[tuple[str, str, float, float]] | None = None,
) -> CappedEntry:
    if positions is None:
        positions = live_book(ex.exchange_name)[0]
    return cap_entry(
        qty=float(intent["qty"]),
        price=price,
        leverage=int(intent["leverage"]),
        strategy=ex.settings.strategy_caps,
        account=ex.settings.account_caps,
        strategy_open=sum(1 for p in positions if p[0] == intent["strategy"]),
        account_open=len(positions),
        account_notional_usdt=sum(p[2] * p[3] for p in positions),
        round_qty=rules.round_qty,
    )
