"""The live executor: carries the kernel's order intents out on the exchange. It never decides.

One :class:`Executor` per exchange account, async, on a keyed ccxt.pro instance
(:func:`trading.exchanges.clients.trading_exchange`). What it does, in order:

* **start** (:meth:`Executor.start`): loads the markets (their tick, lot and minimums are the
  rounding rules), refuses a key that can withdraw, sets one-way position mode, isolated margin
  and the capped leverage per symbol (an "already set" answer is fine), then reconciles with
  the exchange (:mod:`trading.execution.reconciler`). Nothing is sent until that is clean.
* **entries** (:meth:`submit_entry`, from an :class:`OrderIntent`'s dict): one live position
  per symbol (one-way mode nets every order of a symbol into one position), the caps of
  ``risk.yaml``'s ``live`` section, prices re-rounded by the ONE rounding function (limit to the
  passive side, stop and target toward the entry), minimums checked; the order row is written
  BEFORE the request; post-only limit or market as the intent says, with its preset stop and
  target. A resting entry past its ``expires_at_ms`` is cancelled.
* **protection** (:meth:`ensure_protected`): once an entry fills (even partly) the position's
  stop must be seen on the exchange within ``stop_confirm_s``; if not, it is placed
  (``pos_loss``, whole position); if THAT fails the position is closed at market at once and an
  error alert raised. Never a position without a stop.
* **closes** (:meth:`submit_close`): reduce-only market; a rejected close is retried
  ``exit_attempts`` times with new ids, then sent as an emergency close.
* **a trader's Close** (:meth:`close_on_request`): one live position, reduce-only at market.
* **kill** (:meth:`flatten`): cancels the strategy's (or every) order and closes its positions,
  then checks the exchange's positions and reports what is still open.
* **reports** (:meth:`apply_report`): every order the private stream or a REST poll shows moves
  the order's state machine; a request that timed out is looked up by client id
  (:meth:`look_up`), never resent blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import ccxt
from django.db import transaction

from common.notices import emit, trade_opened_notice
from trading.core.execution import (
    NOT_FOUND_LIMIT,
    IllegalOrderTransition,
    OrderRole,
    OrderStatus,
    protection_id,
)
from trading.core.orders import InstrumentRules, round_to_step, rules_for
from trading.core.reconcile import ExchangePosition
from trading.core.types import OrderSide, Side
from trading.execution import store
from trading.execution.entries import PreparedEntry, prepare_entry
from trading.execution.settings import LiveSettings, LiveTradingRefused
from trading.execution.venue import OrderReport, exchange_position, market_rules, order_report
from trading.models import Fill, LivePosition, Order

if TYPE_CHECKING:
    from trading.execution.protection import RequestedClose

log = logging.getLogger(__name__)
T = TypeVar("T")
WITHDRAW_AUTHORITY = "wwow"  # Bitget's "withdraw" permission code (ref/bitget.md §10)
PLAN_QUERY = {"trigger": True, "planType": "profit_loss"}


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class FlattenReport:
    """What a kill switch's flatten did, checked against the exchange afterwards."""

    cancelled: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    still_open: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.still_open


class Executor:
    """See the module docstring. ``alert(level, message, payload)`` stores an alert (default:
    :func:`trading.alerts.alert_create` on the executor's database thread)."""

    def __init__(
        self,
        exchange: Any,
        *,
        settings: LiveSettings,
        symbols: list[str],
        exchange_name: str = "bitget",
        alert: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.exchange = exchange
        self.settings = settings
        self.symbols = symbols
        self.exchange_name = exchange_name
        self.rules: dict[str, InstrumentRules] = {}
        self.ready = False
        self.fills_checked_ms: int | None = None  # exchange time of the last fills check
        self._alert = alert
        self._db_thread = ThreadPoolExecutor(1, thread_name_prefix="executor-db")
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._leverage: dict[tuple[str, str], int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- plumbing ---------------------------------------------------------------------------

    async def db(self, func: Callable[..., T], /, **kwargs: Any) -> T:
        """Run a sync database function on the executor's own thread (one connection)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread, lambda: func(**kwargs))

    def market_ms(self) -> int:
        """The exchange's clock (what intents' ``expires_at_ms`` are in)."""
        return int(self.exchange.milliseconds())

    async def alert(self, level: str, message: str, **payload: Any) -> None:
        log.log(logging.ERROR if level == "error" else logging.WARNING, message)
        if self._alert is not None:
            self._alert(level, message, payload)
            return
        from trading.alerts import alert_create

        await self.db(
            alert_create, level=level, message=message, source="executor", payload=payload
        )

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def idle(self, timeout_s: float = 10.0) -> None:
        """Wait until the tasks the executor spawned (stop confirmations, settlements,
        look-ups) are done, or ``timeout_s``."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait(list(self._tasks), timeout=0.1)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        from django.db import connections

        with contextlib.suppress(Exception):
            await self.db(connections.close_all)
        self._db_thread.shutdown(wait=False)

    def rules_of(self, symbol: str) -> InstrumentRules:
        return rules_for(self.rules, symbol)

    # -- start ------------------------------------------------------------------------------

    async def start(self) -> bool:
        """Markets, key check, account settings, start-up reconciliation; ``ready`` after."""
        from trading.execution.reconciler import reconcile_now

        markets = await self.exchange.load_markets()
        self.rules = {s: market_rules(markets[s]) for s in self.symbols if s in markets}
        missing = [s for s in self.symbols if s not in markets]
        if missing:
            raise LiveTradingRefused(f"the exchange lists no market {', '.join(missing)}")
        await self._refuse_withdraw_keys()
        await self._tolerant(
            "one-way position mode", self.exchange.set_position_mode, False, self.symbols[0]
        )
        lev = min(self.settings.strategy_caps.max_leverage, self.settings.account_caps.max_leverage)
        for symbol in self.symbols:
            await self._tolerant(
                f"isolated margin on {symbol}", self.exchange.set_margin_mode, "isolated", symbol
            )
            for hold in ("long", "short"):
                await self._set_leverage(symbol, hold, min(lev, self.rules[symbol].max_leverage))
        result = await reconcile_now(self, startup=True)
        self.ready = result.clean
        return self.ready

    async def _refuse_withdraw_keys(self) -> None:
        try:
            answer = await self.exchange.privateSpotGetV2SpotAccountInfo()
        except ccxt.AuthenticationError:
            raise
        except ccxt.BaseError as exc:
            await self.alert(
                "warning",
                f"could not read the API key's permissions ({exc}); check by hand "
                "that it cannot withdraw",
            )
            return
        authorities = [str(a).lower() for a in (answer.get("data") or {}).get("authorities", [])]
        if WITHDRAW_AUTHORITY in authorities or "withdraw" in authorities:
            raise LiveTradingRefused(
                "the API key has the withdraw permission: create a key without it (trade and "
                "read only) before trading live"
            )

    async def _tolerant(self, what: str, call: Callable[..., Any], *args: Any) -> None:
        try:
            await call(*args)
        except (ccxt.AuthenticationError, ccxt.NetworkError):
            raise
        except ccxt.ExchangeError as exc:  # "already set", or refused while a position is open
            log.info("%s: the exchange answered %s (kept as is)", what, exc)

    async def _set_leverage(self, symbol: str, hold: str, leverage: int) -> None:
        if self._leverage.get((symbol, hold)) == leverage:
            return
        await self._tolerant(
            f"{leverage}x on {symbol} {hold}",
            self.exchange.set_leverage,
            leverage,
            symbol,
            {"holdSide": hold, "marginMode": "isolated"},
        )
        self._leverage[(symbol, hold)] = leverage

    # -- entries ----------------------------------------------------------------------------

    async def submit_entry(self, intent: Mapping[str, Any]) -> Order | None:
        """Send one entry intent (``OrderIntent.to_dict()``); ``None`` when refused (alerted).

        One trip to the database thread (checks, caps and the order row, written with its
        first attempt counted) stands between the intent and the request."""
        signal_ms = wall_ms()
        strategy, symbol, cid = intent["strategy"], intent["symbol"], intent["client_order_id"]
        if not self.ready:
            prepared = PreparedEntry(
                refusal="entry not sent: the start-up reconciliation is not clean yet"
            )
        else:
            prepared = await self.db(prepare_entry, ex=self, intent=intent, signal_ms=signal_ms)
        order = prepared.order
        if order is None:
            await self.alert(
                "warning", f"live {strategy} {symbol}: {prepared.refusal}", client_order_id=cid
            )
            return None
        if not prepared.created:  # seen before: the request may have left; look it up instead
            await self.look_up(order)
            return order
        if prepared.set_leverage:
            await self._set_leverage(symbol, intent["side"], prepared.leverage)
        return await self.send(order, counted=True)

    # -- sending ----------------------------------------------------------------------------

    def _request(self, order: Order) -> tuple[str, str, float, float | None, dict[str, Any]]:
        """The ``create_order`` arguments of a stored order (its row is the source of truth)."""
        params: dict[str, Any] = {"clientOrderId": order.client_id}
        role = OrderRole(order.role)
        if role is OrderRole.STOP:
            params["stopLossPrice"] = order.trigger_price
            return order.symbol, "market", order.qty, None, params
        if role is OrderRole.TARGET:
            params["takeProfitPrice"] = order.trigger_price
            return order.symbol, "market", order.qty, None, params
        params["marginMode"] = "isolated"
        if order.reduce_only:
            params["reduceOnly"] = True
        if order.post_only:
            params["postOnly"] = True
        if role is OrderRole.ENTRY:
            params["stopLoss"] = {"triggerPrice": order.intent["stop_loss"]}
            if order.intent.get("take_profit") is not None:
                params["takeProfit"] = {"triggerPrice": order.intent["take_profit"]}
        return order.symbol, order.order_type, order.qty, order.price, params

    async def send(self, order: Order, *, counted: bool = False) -> Order:
        """Send a stored order once (``counted``: its row already counts this attempt). A
        refusal → ``rejected``; no answer → ``unknown`` (then looked up by client id, never
        resent blindly)."""
        symbol, kind, qty, price, params = self._request(order)
        if not counted:
            order = await self.db(
                store.order_attempt, client_id=order.client_id, submitted_ms=wall_ms()
            )
        try:
            answer = await self.exchange.create_order(symbol, kind, order.side, qty, price, params)
        except ccxt.NetworkError as exc:
            order = await self._move(order, OrderStatus.UNKNOWN, error=f"no answer: {exc}")
            self.spawn(self.look_up_later(order.client_id), f"look-up-{order.client_id}")
            return order
        except ccxt.ExchangeError as exc:
            order = await self._move(order, OrderStatus.REJECTED, error=str(exc)[:500])
            await self.alert(
                "warning",
                f"live {order.strategy_name} {order.symbol}: {order.role} order "
                f"{order.client_id} rejected: {exc}",
                client_order_id=order.client_id,
            )
            return order
        order = await self._move(
            order,
            OrderStatus.OPEN,
            exchange_order_id=str(answer.get("id") or ""),
            acknowledged_ms=wall_ms(),
        )
        if order.order_type == "market" and OrderRole(order.role) not in (
            OrderRole.STOP,
            OrderRole.TARGET,
        ):
            await self.refresh(order)  # a market order has filled: learn it without waiting
        return await self.db(Order.objects.get, client_id=order.client_id)

    async def _move(self, order: Order, status: OrderStatus, **fields: Any) -> Order:
        try:
            return await self.db(
                store.order_transition, client_id=order.client_id, status=status, **fields
            )
        except IllegalOrderTransition as exc:
            log.info("%s: %s (kept %s)", order.client_id, exc, order.status)
            return await self.db(Order.objects.get, client_id=order.client_id)

    # -- reports ----------------------------------------------------------------------------

    async def refresh(self, order: Order) -> OrderReport | None:
        """Fetch one order by client id and apply it; ``None`` when the exchange has none."""
        params: dict[str, Any] = {"clientOrderId": order.client_id}
        if OrderRole(order.role) in (OrderRole.STOP, OrderRole.TARGET):
            params.update(PLAN_QUERY)
        try:
            answer = await self.exchange.fetch_order(None, order.symbol, params)
        except ccxt.OrderNotFound:
            return None
        except ccxt.InvalidOrder:  # Bitget's 43025 "plan order does not exist"
            return None
        report = order_report(answer)
        if not report.client_id:
            report = order_report({**answer, "clientOrderId": order.client_id})
        await self.apply_report(report)
        return report

    async def look_up_later(self, client_id: str, delay_s: float = 0.5) -> None:
        await asyncio.sleep(delay_s)
        order = await self.db(Order.objects.get, client_id=client_id)
        await self.look_up(order)

    async def look_up(self, order: Order) -> None:
        """Find an order whose outcome is unknown; after :data:`NOT_FOUND_LIMIT` "not found"
        answers it is ``failed`` and, while still wanted, resubmitted with the SAME id. A stop
        or target is looked for among the open plan orders instead: gone means it fired or died
        with its position; the position, if still open, is protected again."""
        if OrderRole(order.role) in (OrderRole.STOP, OrderRole.TARGET):
            await self._look_up_plan(order)
            return
        for attempt in range(NOT_FOUND_LIMIT):
            try:
                found = await self.refresh(order)
            except ccxt.NetworkError:
                found = None
            if found is not None:
                return
            order = await self.db(self._count_not_found, client_id=order.client_id)
            if OrderStatus(order.status) is not OrderStatus.UNKNOWN:
                return
            if attempt + 1 < NOT_FOUND_LIMIT:
                await asyncio.sleep(min(2.0, 0.5 * 2**attempt))
        order = await self._move(order, OrderStatus.FAILED, error="not found on the exchange")
        if await self.db(lambda: self._still_wanted(Order.objects.get(pk=order.pk))):
            await self.send(order)

    async def _look_up_plan(self, order: Order) -> None:
        for plan in await self.plan_orders(order.symbol):
            report = order_report(plan)
            if order.client_id in (report.client_id, f"x-{report.exchange_id}") or (
                order.exchange_order_id and order.exchange_order_id == report.exchange_id
            ):
                await self.apply_report(order_report({**plan, "clientOrderId": order.client_id}))
                return
        await self._move(order, OrderStatus.CANCELLED, error="no longer on the exchange")
        position = order.live_position_id and await self.db(
            LivePosition.objects.filter(pk=order.live_position_id, status="open").first
        )
        if position:
            self.spawn(self.ensure_protected(position.pk), f"protect-{position.pk}")

    @staticmethod
    def _count_not_found(*, client_id: str) -> Order:
        order = Order.objects.get(client_id=client_id)
        order.not_found += 1
        order.save(update_fields=["not_found", "updated_at"])
        return order

    def _still_wanted(self, order: Order) -> bool:
        if OrderRole(order.role) is not OrderRole.ENTRY:  # a close: while its position is open
            return order.live_position is not None and order.live_position.status == "open"
        return self.ready and (order.expires_at_ms or 0) > self.market_ms()

    async def apply_report(self, report: OrderReport) -> None:
        """Move the order of ``report`` through the state machine and book what it filled."""
        booked = await self.db(self._book_report, report=report)
        if booked is None:
            if report.plan_role is None and report.reduce_only and report.filled > 0:
                # A triggered stop or target's close order (its id is the exchange's).
                self.spawn(self.on_position_change(report.symbol), f"settle-{report.symbol}")
            return
        order, position = booked
        if position is not None:
            self.spawn(self.ensure_protected(position.pk), f"protect-{position.pk}")
        elif OrderRole(order.role) is not OrderRole.ENTRY and order.status == "filled":
            # A close filled: settle the position (a task: the closer may hold its lock).
            self.spawn(self.on_position_change(order.symbol), f"settle-{order.symbol}")

    @transaction.atomic
    def _book_report(self, *, report: OrderReport) -> tuple[Order, LivePosition | None] | None:
        """One transaction: the order's new state and, for an entry, the position its new fill
        opens or grows — so that a crash between the two cannot leave the order "filled 0.08"
        beside a position of 0.06. The delta is computed on the locked row: two reports of the
        same fill (stream and poll) book it once. ``None`` for an order we do not know;
        ``(order, None)`` when nothing changed or no entry fill was booked."""
        found = self._find_order(report=report)
        if found is None:
            return None
        order = Order.objects.select_for_update().get(pk=found.pk)
        delta = report.filled - order.filled_qty
        fields: dict[str, Any] = {}
        if report.exchange_id and not order.exchange_order_id:
            fields["exchange_order_id"] = report.exchange_id
        if delta > 0:
            fields.update(
                filled_qty=report.filled,
                average_price=report.average or order.price,
                fee_usdt=report.fee_usdt,
                filled_ms=wall_ms(),
            )
        previous = order.status
        try:
            order = store.order_transition(
                client_id=order.client_id, status=report.status, **fields
            )
        except IllegalOrderTransition as exc:
            log.info("%s: %s (kept %s)", order.client_id, exc, order.status)
            return order, None
        if order.status == previous and delta <= 0:
            return order, None
        if OrderRole(order.role) is OrderRole.ENTRY and delta > 0:
            price = report.average or order.price or 0.0
            return order, self._add_entry_fill(order=order, qty=delta, price=price)
        return order, None

    def _find_order(self, *, report: OrderReport) -> Order | None:
        if report.client_id:
            found = Order.objects.filter(client_id=report.client_id).first()
            if found is not None:
                return found
        if report.exchange_id:
            return Order.objects.filter(exchange_order_id=report.exchange_id).first()
        return None

    def _add_entry_fill(self, *, order: Order, qty: float, price: float) -> LivePosition:
        """Open the entry's live position, or grow it by a partial fill (average price)."""
        side = Side.LONG if order.side == OrderSide.BUY.value else Side.SHORT
        position = order.live_position
        if position is None or position.status != LivePosition.Status.OPEN:
            position = store.live_position_open(
                strategy=order.strategy_name,
                symbol=order.symbol,
                side=side,
                qty=qty,
                entry_price=price,
                leverage=float(order.intent.get("leverage") or 1),
                stop_loss=order.intent.get("stop_loss"),
                take_profit=order.intent.get("take_profit"),
                opened_ms=self.market_ms(),
                entry_client_id=order.client_id,
                exchange=self.exchange_name,
            )
            Order.objects.filter(pk=order.pk).update(live_position=position)
            # Fills the trade stream stored before this report opened the position.
            Fill.objects.filter(order=order, live_position=None).update(live_position=position)
            emit(
                trade_opened_notice(
                    mode="live",
                    strategy=order.strategy_name,
                    side=side.value,
                    symbol=order.symbol,
                    qty=qty,
                    price=price,
                )
            )
            return position
        # On the lot grid: 0.06 + 0.02 is 0.08, not 0.07999999999999999.
        total = round_to_step(position.qty + qty, self.rules_of(order.symbol).qty_step)
        average = (position.qty * position.entry_price + qty * price) / total
        return store.live_position_update(position_id=position.pk, qty=total, entry_price=average)

    # -- protection -------------------------------------------------------------------------

    async def plan_orders(self, symbol: str) -> list[dict[str, Any]]:
        return await self.exchange.fetch_open_orders(symbol, None, None, dict(PLAN_QUERY))

    async def ensure_protected(self, position_id: int) -> bool:
        """The position's stop is on the exchange (found, or placed); else it is closed."""
        from trading.execution.protection import protect

        async with self._locks[await self._symbol_of(position_id)]:
            return await protect(self, position_id)

    async def _symbol_of(self, position_id: int) -> str:
        position = await self.db(LivePosition.objects.get, pk=position_id)
        return position.symbol

    async def on_position_change(self, symbol: str) -> None:
        """Re-read the exchange's position of ``symbol``; book a close when it is gone."""
        from trading.execution.protection import settle_symbol

        async with self._locks[symbol]:
            await settle_symbol(self, symbol)

    async def held(self, symbol: str, side: str | None = None) -> ExchangePosition | None:
        """The exchange's open position of ``symbol`` (of ``side`` when given), or ``None``."""
        return next(
            (
                p
                for p in await self.exchange_positions()
                if p.symbol == symbol and side in (None, p.side.value)
            ),
            None,
        )

    async def exchange_positions(self) -> list[Any]:
        answer = await self.exchange.fetch_positions(self.symbols)
        return [p for p in (exchange_position(a) for a in answer) if p is not None]

    # -- closes and kills -------------------------------------------------------------------

    async def submit_close(self, intent: Mapping[str, Any]) -> Order | None:
        """Close the live position a kernel close intent names (by strategy, symbol, side)."""
        from trading.execution.protection import close_position

        position = await self.db(
            LivePosition.objects.filter(
                exchange=self.exchange_name,
                strategy_name=intent["strategy"],
                symbol=intent["symbol"],
                side=intent["side"],
                status=LivePosition.Status.OPEN,
            ).first
        )
        if position is None:
            return None  # nothing live to close (the entry never filled live)
        async with self._locks[position.symbol]:
            return await close_position(
                self,
                position,
                client_id=intent["client_order_id"],
                role=OrderRole.EXIT,
                reason=str(intent.get("reason") or "exit"),
                signal_ms=wall_ms(),
            )

    async def close_on_request(self, position_id: int, *, client_id: str) -> RequestedClose:
        """A trader's Close of one live position (:func:`~trading.execution.protection.
        close_on_request`: reduce-only market, its stop kept until flat)."""
        from trading.execution.protection import close_on_request

        async with self._locks[await self._symbol_of(position_id)]:
            return await close_on_request(
                self, position_id, client_id=client_id, signal_ms=wall_ms()
            )

    async def cancel(self, order: Order, reason: str) -> Order:
        """Cancel a resting order of ours; whatever filled before stays booked."""
        order = await self._move(order, OrderStatus.PENDING_CANCEL, error=reason)
        params: dict[str, Any] = {}
        if OrderRole(order.role) in (OrderRole.STOP, OrderRole.TARGET):
            params.update(PLAN_QUERY)
        try:
            if order.exchange_order_id:
                await self.exchange.cancel_order(order.exchange_order_id, order.symbol, params)
            else:
                params["clientOrderId"] = order.client_id
                await self.exchange.cancel_order(None, order.symbol, params)
        except (ccxt.OrderNotFound, ccxt.InvalidOrder):
            pass  # filled or cancelled meanwhile: the refresh below says which
        except ccxt.NetworkError:
            pass
        if await self.refresh(order) is None:
            order = await self._move(order, OrderStatus.CANCELLED)
        return await self.db(Order.objects.get, client_id=order.client_id)

    async def cancel_entry(self, client_id: str, reason: str) -> None:
        order = await self.db(Order.objects.filter(client_id=client_id).first)
        if order is not None and not OrderStatus(order.status).terminal:
            await self.cancel(order, reason)

    async def expire_entries(self) -> int:
        """Cancel resting entries past their strategy's time; how many."""
        now = self.market_ms()
        due = await self.db(self._due_entries, now_ms=now)
        for order in due:
            await self.cancel(order, "not filled in its time")
        return len(due)

    def _due_entries(self, *, now_ms: int) -> list[Order]:
        return list(
            Order.objects.filter(
                exchange=self.exchange_name,
                role="entry",
                status__in=["open", "partially_filled"],
                expires_at_ms__lte=now_ms,
            )
        )

    async def flatten(self, strategy: str | None, reason: str) -> FlattenReport:
        """Kill switch: cancel the strategy's (``None``: every) order, close its positions at
        market, then check the exchange still holds none of them."""
        from trading.execution.protection import close_position

        report = FlattenReport()
        orders = await self.db(store.open_orders, exchange=self.exchange_name)
        for order in orders:
            mine = strategy is None or order.strategy_name == strategy
            if mine and OrderRole(order.role) is OrderRole.ENTRY and order.status != "unknown":
                await self.cancel(order, f"kill switch: {reason}")
                report.cancelled.append(order.client_id)
        positions = await self.db(
            store.open_live_positions, exchange=self.exchange_name, strategy=strategy
        )
        for position in positions:
            async with self._locks[position.symbol]:
                cid = protection_id(
                    position.entry_client_id or f"sr-lp-{position.pk}", OrderRole.EMERGENCY
                )
                await close_position(
                    self,
                    position,
                    client_id=cid,
                    role=OrderRole.EMERGENCY,
                    reason="kill_switch",
                    signal_ms=wall_ms(),
                )
            report.closed.append(position.symbol)
        held = {(p.symbol, p.side.value) for p in await self.exchange_positions()}
        report.still_open = [p.symbol for p in positions if (p.symbol, p.side) in held]
        if report.still_open:
            await self.alert(
                "error",
                f"kill switch ({reason}): still open on the exchange: "
                f"{', '.join(report.still_open)} — close them by hand",
            )
        return report
