"""The executor's inputs from the exchange: the private websocket first, REST as the backup.

:func:`run` keeps five loops alive until cancelled:

* ``watch_orders`` and, per symbol, ``watch_orders(symbol, params={'trigger': True})`` —
  every order and plan-order change (ccxt 4.5.90 also hands plan orders to the plain watch);
  a stop of a held position cancelled behind our back (by hand in the app, or lost) starts
  :meth:`~trading.execution.executor.Executor.ensure_protected` at once;
* ``watch_my_trades`` — fills: each stored (linked to its order and position) and the
  position of that symbol re-read;
* ``watch_positions`` — a position that changed or went flat is settled;
* the poll (every ``poll_interval_s``) — resting entries past their time cancelled, every
  open order of ours refreshed over REST (the backup when the websocket is down or lost a
  frame, as Hummingbot's status polling);
* the reconciliation (every ``reconcile_interval_s``), :mod:`trading.execution.reconciler`.

A stream that fails (dropped connection, exchange error) is retried with backoff (1 s doubling
to 30 s), with one alert when it goes down and one when it is back; ccxt.pro re-logs in by
itself on the new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import ccxt

from trading.core.execution import OrderRole, OrderStatus
from trading.core.types import Side
from trading.execution import store
from trading.execution.venue import fill_fields, order_report

if TYPE_CHECKING:
    from trading.execution.executor import Executor

log = logging.getLogger(__name__)
BACKOFF_START_S, BACKOFF_MAX_S = 1.0, 30.0


async def _stream(
    ex: Executor,
    name: str,
    watch: Callable[[], Awaitable[list[dict[str, Any]]]],
    handle: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    backoff = BACKOFF_START_S
    down = False
    while True:
        try:
            items = await watch()
        except asyncio.CancelledError:
            raise
        except (ccxt.BaseError, OSError) as exc:
            if not down:
                down = True
                await ex.alert("warning", f"live {name} stream down: {exc}; polling over REST")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
            continue
        if down:
            down = False
            backoff = BACKOFF_START_S
            await ex.alert("info", f"live {name} stream is back")
        for item in items:
            try:
                await handle(item)
            except Exception:
                log.exception("live %s: could not apply %s", name, item.get("id"))


async def _on_order(ex: Executor, order: dict[str, Any]) -> None:
    report = order_report(order)
    await ex.apply_report(report)
    if report.plan_role is not None:
        await _on_plan(ex, report)


async def _on_plan(ex: Executor, report: Any) -> None:
    if report.plan_role is not OrderRole.STOP or report.status is not OrderStatus.CANCELLED:
        return
    if await ex.held(report.symbol) is None:
        # The position is flat (its target or a close fired; the exchange then cancels the
        # stop): settle it, nothing to protect.
        ex.spawn(ex.on_position_change(report.symbol), f"settle-{report.symbol}")
        return
    positions = await ex.db(store.open_live_positions, exchange=ex.exchange_name)
    for position in positions:
        if position.symbol == report.symbol and Side(position.side) is report.protected_side:
            await ex.alert(
                "error",
                f"live {position.strategy_name} {position.symbol}: its stop was cancelled on "
                "the exchange; placing it again",
                live_position=position.pk,
            )
            await ex.db(store.live_position_update, position_id=position.pk, protected=False)
            ex.spawn(ex.ensure_protected(position.pk), f"protect-{position.pk}")


async def _on_trade(ex: Executor, trade: dict[str, Any]) -> None:
    await ex.db(store.fill_from_trade, fields=fill_fields(trade), exchange=ex.exchange_name)
    await _on_symbol(ex, trade)


async def _on_symbol(ex: Executor, item: dict[str, Any]) -> None:
    symbol = str(item.get("symbol") or "")
    if symbol in ex.symbols:
        ex.spawn(ex.on_position_change(symbol), f"settle-{symbol}")


async def _poll(ex: Executor) -> None:
    while True:
        await asyncio.sleep(ex.settings.poll_interval_s)
        try:
            await ex.expire_entries()
            for order in await ex.db(store.open_orders, exchange=ex.exchange_name):
                if order.status in ("open", "partially_filled", "pending_cancel") and OrderRole(
                    order.role
                ) not in (OrderRole.STOP, OrderRole.TARGET):
                    await ex.refresh(order)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live poll failed; next in %s s", ex.settings.poll_interval_s)


async def _reconcile(ex: Executor) -> None:
    from trading.execution.reconciler import reconcile_now

    while True:
        await asyncio.sleep(ex.settings.reconcile_interval_s)
        try:
            result = await reconcile_now(ex)
            ex.ready = result.clean
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "live reconciliation failed; next in %s s", ex.settings.reconcile_interval_s
            )


async def run(ex: Executor) -> None:
    """Run every input loop until cancelled (module docstring)."""
    exchange = ex.exchange
    loops = [
        _stream(ex, "orders", lambda: exchange.watch_orders(), lambda o: _on_order(ex, o)),
        *(
            _stream(
                ex,
                f"{symbol} plan orders",
                # ccxt 4.5.90: the trigger channel returns only when given a symbol.
                lambda symbol=symbol: exchange.watch_orders(symbol, None, None, {"trigger": True}),
                lambda o: _on_order(ex, o),
            )
            for symbol in ex.symbols
        ),
        _stream(ex, "fills", lambda: exchange.watch_my_trades(), lambda t: _on_trade(ex, t)),
        _stream(ex, "positions", lambda: exchange.watch_positions(), lambda p: _on_symbol(ex, p)),
        _poll(ex),
        _reconcile(ex),
    ]
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
