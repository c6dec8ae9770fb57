"""The fake Bitget's account and matching engine (pure Python: no aiohttp, no JSON shapes).

One USDT-FUTURES account in **one-way position mode**: a wallet, at most one isolated position per
symbol, regular orders (limit / market, post-only, reduce-only, preset TP/SL), position TP/SL plan
orders (``pos_loss`` / ``pos_profit``) and fills; :mod:`trading.exchanges.fake.private` renders it
as Bitget's JSON. Mark = last = best bid = the forming close of
:class:`~trading.exchanges.fake.market.FakeMarket`, best ask = bid + 1 tick (as the public ticker
and books say), so ``triggerType`` ``mark_price`` and ``fill_price`` behave alike.

Matching (:meth:`FakeAccount.step`, at each market step) runs over the PATH between two steps:
the forming candle's piecewise-linear ``open → low → high → close`` (``open → high → low →
close`` when it closes down), legs of 20 s, each close followed at the same instant by the next
minute's open (a jump when they differ).

* Resting limits fill per :class:`trading.core.fills.LimitFillModel` over the path's ``[open,
  high, low, close]`` since the later of the step's start and their creation, at their price,
  maker (0.0002 of notional); the model draws from a seeded ``numpy`` Generator (reproducible).
* A plan order triggers when the path reaches its trigger (a long's stop at or below, a long's
  target at or above; mirrored for shorts) and closes the WHOLE position with a filled
  reduce-only market order, taker (0.0006), at the trigger, or at the first price beyond it when
  the path starts beyond it or jumps over it (a gap, as :func:`trading.core.fills.
  stop_trigger_price` models). That order's ``clientOid`` is the plan order's id (freqtrade
  follows a triggered Bitget stop so, ref/execution.md A5). Closing a position in any way
  cancels its plan orders.
* Market orders, and limits crossing the book without ``post_only``, fill at once, taker, at the
  best ask (buy) / bid (sell). A post-only order that would cross (buy ≥ ask, sell ≤ bid) is
  accepted, then cancelled at once: ASSUMPTION [U] (Bitget's Place-Order doc only names it).

Money: fee = qty × price × rate (:func:`trading.core.fees.fee_for_fill`) paid from the wallet at
each fill; realised P&L = (exit − entry) × qty (× −1 short) at each closing fill; isolated margin =
entry notional / leverage, locked while open (an open entry order locks ``remaining × price /
leverage``). Liquidation price: Bitget's isolated estimator (ref/bitget.md §3), MMR 0.004 and the
taker rate; the fake never liquidates. Refusals raise :class:`BitgetError` (codes in
:data:`ERRORS`, each with its source).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import numpy as np

from trading.core.fees import BITGET_VIP0, FeeSchedule, Liquidity, fee_for_fill
from trading.core.fills import LimitFillModel
from trading.core.orders import round_to_step
from trading.core.types import OrderSide
from trading.exchanges.fake.funding import Bill, settle_funding
from trading.exchanges.fake.market import MINUTE_MS, FakeMarket

MMR = 0.004  # maintenance margin rate of the first tier (ref/bitget.md §3)
LEG_MS = MINUTE_MS // 3  # one leg of the forming candle's path (market.py)
POS_PLANS = ("pos_loss", "pos_profit")

# Bitget code → message. "ccxt" = the message beside the code in ccxt 4.5.90 bitget.py's
# exceptions map; [the class ccxt raises].
ERRORS = {
    # ccxt [BadRequest]
    "40017": "Parameter verification failed",
    "40019": "Parameter {0} cannot be empty",
    "40034": "Parameter {0} does not exist",
    # a real reply quoted in ccxt issue #21165 [ExchangeError: not in ccxt's map]
    "22002": "No position to close",
    # ccxt [OrderNotFound]; order detail
    "40109": "The data of the order cannot be found, please confirm the order number",
    # ccxt [OrderNotFound]; cancel: tiagosiebler/bitget-api's FUTURES_ORDER_CANCEL_NOT_FOUND
    "40768": "Order does not exist",
    # ccxt [InvalidOrder]; plan order cancel
    "43025": "Plan order does not exist",
    # Bitget's error table (bitgetlimited.github.io apidoc) and its v1 SDK docstring
    # [ExchangeError: ccxt maps no Bitget code to DuplicateOrderId]
    "40786": "Duplicate clientOid",
    # raw replies recorded in gocryptotrader's bitget tests [ExchangeError]
    "45117": "Currently holding positions or orders, the margin mode cannot be adjusted",
    # ccxt [InsufficientFunds]
    "40762": "The order amount exceeds the balance",
    # ccxt [InvalidOrder]
    "45110": "less than the minimum amount 5 USDT",
    "40917": "Stop price for long positions please < mark price {0}",
    "45122": "Short position stop loss price please > mark price {0}",
    "40774": "The order type for unilateral position must also be the unilateral position type.",
    # Bitget's contract error-code table as copied in public repositories [ExchangeError]
    "40830": "The take profit price of the long position should be greater than the current price",
    "40832": "The take profit price of short positions should be less than the current price",
}


class BitgetError(Exception):
    """A Bitget business error: ``code`` and ``msg`` as Bitget's JSON carries them."""

    def __init__(self, code: str, *args: object, detail: str = "", msg: str = "") -> None:
        self.code = code
        self.msg = (msg or ERRORS[code].format(*args)) + (f" ({detail})" if detail else "")
        super().__init__(f"{code} {self.msg}")


@dataclass(eq=False)
class Order:
    """A regular order: sizes in base units, prices in USDT (``price`` 0 for a market order),
    ``fee`` the fees paid (positive), ``profit`` the realised P&L of its closing fills."""

    order_id: str
    client_oid: str
    symbol: str
    side: str  # buy | sell
    order_type: str  # limit | market
    size: float
    price: float
    leverage: int
    margin_mode: str
    c_time: int
    force: str = "gtc"  # gtc | post_only | ioc | fok
    reduce_only: bool = False
    preset_sl: float | None = None
    preset_tp: float | None = None
    source: str = "normal"  # Bitget's orderSource
    status: str = "live"  # live | partially_filled | filled | canceled (REST spelling)
    filled: float = 0.0
    filled_notional: float = 0.0
    fee: float = 0.0
    profit: float = 0.0
    trade_side: str = "open"
    u_time: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in ("live", "partially_filled")

    @property
    def remaining(self) -> float:
        return max(0.0, self.size - self.filled)

    @property
    def average(self) -> float | None:
        return self.filled_notional / self.filled if self.filled > 0 else None


@dataclass(eq=False)
class PlanOrder:
    """A position TP/SL (``plan_type`` pos_loss | pos_profit) closing the ``hold_side``
    (long | short) position; ``status`` live | executed | cancelled (Bitget's planStatus)."""

    order_id: str
    client_oid: str
    symbol: str
    plan_type: str
    trigger_price: float
    trigger_type: str
    hold_side: str
    size: float
    c_time: int
    status: str = "live"
    u_time: int = 0
    executed_order_id: str | None = None
    trigger_time: int | None = None

    @property
    def side(self) -> str:
        """The closing order's side: a long is closed by a sell."""
        return "sell" if self.hold_side == "long" else "buy"

    @property
    def fires_below(self) -> bool:
        """True when it triggers at or below its price (a long's stop, a short's target)."""
        return (self.plan_type == "pos_loss") == (self.hold_side == "long")


@dataclass(eq=False)
class Position:
    """An isolated one-way position: ``total`` base units at ``open_price_avg``, ``margin`` USDT."""

    pos_id: str
    symbol: str
    hold_side: str  # long | short
    total: float
    open_price_avg: float
    margin: float
    leverage: int
    c_time: int
    u_time: int
    achieved_profits: float = 0.0

    @property
    def sign(self) -> int:
        return 1 if self.hold_side == "long" else -1

    @property
    def closing_side(self) -> str:
        """The order side that reduces this position: a long is reduced by sells."""
        return "sell" if self.hold_side == "long" else "buy"


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of ``order``: ``size`` at ``price``; ``fee`` paid, ``profit`` realised."""

    trade_id: str
    order: Order
    price: float
    size: float
    fee: float
    profit: float
    trade_side: str  # open | close
    scope: str  # maker | taker
    c_time: int


@dataclass(slots=True)
class SymbolSettings:
    """Per-symbol settings; Bitget's defaults for a new symbol are ASSUMED (crossed, 20x)."""

    margin_mode: str = "crossed"
    long_leverage: int = 20
    short_leverage: int = 20


@dataclass(slots=True)
class Event:
    """A change to push: ``kind`` order | plan | fill | position | balance."""

    kind: str
    payload: object = None
    fill: Fill | None = None


class FakeAccount:
    """State and matching of the fake's single account (module docstring).

    ``balance`` is the starting wallet in USDT; ``fill_model`` decides resting limit fills
    (default :class:`LimitFillModel`), drawing from ``numpy.random.default_rng(seed)``. Every
    change is appended to ``events`` for the private websocket.
    """

    def __init__(
        self,
        market: FakeMarket,
        *,
        balance: float = 10_000.0,
        fill_model: LimitFillModel | None = None,
        seed: int = 0,
        fees: FeeSchedule = BITGET_VIP0,
    ) -> None:
        self.market = market
        self.balance = float(balance)  # USDT: start + realised P&L − fees
        self.fill_model = fill_model or LimitFillModel()
        self.rng = np.random.default_rng(seed)
        self.fees = fees
        self.pos_mode = "one_way_mode"
        self.settings = {m: SymbolSettings() for m in market.rules}
        self.orders: dict[str, Order] = {}
        self.plans: dict[str, PlanOrder] = {}
        self.positions: dict[str, Position] = {}
        self.fills: list[Fill] = []
        self.bills: list[Bill] = []  # funding settlements (trading.exchanges.fake.funding)
        self.events: list[Event] = []
        self.partial_next: dict[str, float] = {}
        self._ids = itertools.count(1_300_000_000_000_000_000)

    # -- views ------------------------------------------------------------------------------

    @property
    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open]

    @property
    def plan_orders(self) -> list[PlanOrder]:
        """The live plan orders."""
        return [p for p in self.plans.values() if p.status == "live"]

    def next_id(self) -> str:
        return str(next(self._ids))

    def mark(self, market_id: str, now_ms: int) -> float:
        """The forming close at ``now_ms``: mark = last = best bid."""
        forming = self.market.forming(market_id, now_ms)
        if forming is None:
            raise BitgetError("40017", detail="the fake's recorded market has ended")
        return forming[4]

    def best_ask(self, market_id: str, now_ms: int) -> float:
        rule = self.market.rules[market_id]
        return round(self.mark(market_id, now_ms) + rule.tick, rule.price_place)

    def unrealized(self, position: Position, mark: float) -> float:
        return (mark - position.open_price_avg) * position.total * position.sign

    def unrealized_total(self, now_ms: int) -> float:
        total = 0.0
        for p in self.positions.values():
            forming = self.market.forming(p.symbol, now_ms)
            if forming is not None:
                total += self.unrealized(p, forming[4])
        return total

    def liquidation_price(self, position: Position) -> float:
        """Bitget's isolated estimator (ref/bitget.md §3), 0 when not positive:
        long ``(E − M/S) / (1 − MMR − fee)``, short ``(E + M/S) / (1 + MMR + fee)``."""
        per_unit = position.margin / position.total
        rate = MMR + self.fees.taker_rate
        if position.hold_side == "long":
            return max(0.0, (position.open_price_avg - per_unit) / (1 - rate))
        return (position.open_price_avg + per_unit) / (1 + rate)

    def order_margin(self, order: Order) -> float:
        """Margin an open entry limit order locks (reduce-only orders lock none)."""
        if not order.is_open or order.reduce_only or order.order_type != "limit":
            return 0.0
        return order.remaining * order.price / order.leverage

    def locked(self) -> float:
        """Position margins plus open entry orders' margins, USDT."""
        margins = sum(p.margin for p in self.positions.values())
        return margins + sum(self.order_margin(o) for o in self.orders.values())

    def closing_size(self, market_id: str) -> float:
        """Base units held by open reduce-only orders (Bitget's position ``locked``)."""
        return sum(o.remaining for o in self.open_orders if o.symbol == market_id and o.reduce_only)

    def leverage_for(self, market_id: str, side: str) -> int:
        settings = self.settings[market_id]
        return settings.long_leverage if side == "buy" else settings.short_leverage

    # -- account settings -------------------------------------------------------------------

    def set_position_mode(self, mode: str) -> None:
        if mode != "one_way_mode":
            raise BitgetError("40017", detail="the fake supports one_way_mode only")
        self.pos_mode = mode

    def set_margin_mode(self, market_id: str, mode: str) -> SymbolSettings:
        """Refused (45117) while the symbol has a position or an open order."""
        if mode not in ("isolated", "crossed"):
            raise BitgetError("40017", detail=f"marginMode {mode}")
        if market_id in self.positions or any(o.symbol == market_id for o in self.open_orders):
            raise BitgetError("45117")
        self.settings[market_id].margin_mode = mode
        return self.settings[market_id]

    def set_leverage(self, market_id: str, leverage: int, hold_side: str | None) -> SymbolSettings:
        """Both sides when ``hold_side`` is None; an open position is re-margined."""
        rule = self.market.rules[market_id]
        if not 1 <= leverage <= rule.max_lever:
            raise BitgetError("40017", detail=f"leverage must lie in [1, {rule.max_lever}]")
        settings = self.settings[market_id]
        if hold_side in (None, "long"):
            settings.long_leverage = leverage
        if hold_side in (None, "short"):
            settings.short_leverage = leverage
        position = self.positions.get(market_id)
        if position is not None and hold_side in (None, position.hold_side):
            position.leverage = leverage
            position.margin = position.total * position.open_price_avg / leverage
            self._emit("position", market_id)
            self._emit("balance")
        return settings

    # -- orders -----------------------------------------------------------------------------

    def place_order(
        self,
        now_ms: int,
        symbol: str,
        side: str,
        order_type: str,
        size: float,
        price: float = 0.0,
        *,
        force: str = "gtc",
        reduce_only: bool = False,
        client_oid: str | None = None,
        preset_sl: float | None = None,
        preset_tp: float | None = None,
    ) -> Order:
        """Accept a regular order (filling it at once when it takes liquidity) or raise.

        Reduce-only: 22002 without a position to reduce, and cut to the position's size.
        Entries: 45110 below 5 USDT, 40762 when margin + taker fee exceed the free balance.
        """
        if side not in ("buy", "sell") or order_type not in ("limit", "market") or size <= 0:
            raise BitgetError("40017", detail="side, orderType, size")
        if order_type == "limit" and price <= 0:
            raise BitgetError("40017", detail="a limit order needs a price")
        self._check_client_oid(client_oid)
        bid, ask = self.mark(symbol, now_ms), self.best_ask(symbol, now_ms)
        position = self.positions.get(symbol)
        opposite = position.total if position and position.closing_side == side else 0.0
        if reduce_only and not opposite:
            raise BitgetError("22002")
        if reduce_only:
            size = min(size, opposite)
        elif size * (price or bid) < float(self.market.rules[symbol].min_trade_usdt):
            raise BitgetError("45110")
        leverage = self.leverage_for(symbol, side)
        opening = 0.0 if reduce_only else max(0.0, size - opposite) * (price or ask)
        if opening / leverage + opening * self.fees.taker_rate > self.balance - self.locked():
            raise BitgetError("40762")
        order = self._new_order(symbol, side, order_type, size, now_ms)
        order.client_oid = client_oid or order.client_oid
        if position is not None and reduce_only:
            order.leverage = position.leverage
        order.price = price if order_type == "limit" else 0.0
        order.force, order.reduce_only = force, reduce_only
        order.preset_sl, order.preset_tp = preset_sl, preset_tp
        order.trade_side = "close" if reduce_only else "open"
        self._emit("order", order)
        crosses = order_type == "market" or (price >= ask if side == "buy" else price <= bid)
        if crosses and force == "post_only":
            self._cancel(order, now_ms)
        elif crosses:
            self._fill(order, order.size, ask if side == "buy" else bid, Liquidity.TAKER, now_ms)
        elif force in ("ioc", "fok"):
            self._cancel(order, now_ms)
        else:
            self._emit("balance")  # an entry order locks margin
        return order

    def place_tpsl(
        self,
        now_ms: int,
        symbol: str,
        plan_type: str,
        trigger_price: float,
        hold_side: str,
        *,
        trigger_type: str = "mark_price",
        client_oid: str | None = None,
    ) -> PlanOrder:
        """A position stop (``pos_loss``) or target (``pos_profit``) for the whole position.

        22002 without that position; the trigger must lie beyond the mark (40917 / 45122 for
        stops, 40830 / 40832 for targets). A live plan of the same type on the position is
        replaced (ASSUMPTION: one pos_* of each type per position, as Bitget's app shows).
        """
        if plan_type not in POS_PLANS:
            raise BitgetError("40017", detail=f"the fake supports planType {POS_PLANS} only")
        self._check_client_oid(client_oid)
        position = self.positions.get(symbol)
        if position is None or position.hold_side != hold_side:
            raise BitgetError("22002")
        mark = self.mark(symbol, now_ms)
        long = hold_side == "long"
        if plan_type == "pos_loss" and (trigger_price >= mark if long else trigger_price <= mark):
            raise BitgetError("40917" if long else "45122", mark)
        if plan_type == "pos_profit" and (trigger_price <= mark if long else trigger_price >= mark):
            raise BitgetError("40830" if long else "40832")
        plan = self._add_plan(position, plan_type, trigger_price, client_oid, now_ms)
        plan.trigger_type = trigger_type
        return plan

    def find_order(self, symbol: str, order_id: str | None, client_oid: str | None) -> Order:
        """The regular order by id or client id (40109 when unknown)."""
        for order in self.orders.values():
            if order.symbol == symbol and (
                (order_id and order.order_id == order_id)
                or (client_oid and order.client_oid == client_oid)
            ):
                return order
        raise BitgetError("40109")

    def cancel_order(self, now_ms: int, symbol: str, oid: str | None, cid: str | None) -> Order:
        """Cancel an open order; 40768 when unknown or finished (finished: ASSUMPTION)."""
        try:
            order = self.find_order(symbol, oid, cid)
        except BitgetError:
            raise BitgetError("40768") from None
        if not order.is_open:
            raise BitgetError("40768")
        self._cancel(order, now_ms)
        return order

    def cancel_plan(
        self, now_ms: int, symbol: str, oid: str | None, cid: str | None, kind: str | None = None
    ) -> PlanOrder:
        """Cancel a live plan order by id or client id (43025 when none matches)."""
        for plan in self.plan_orders:
            wanted = (oid and plan.order_id == oid) or (cid and plan.client_oid == cid)
            if (
                plan.symbol == symbol
                and wanted
                and (kind in (None, "profit_loss") or plan.plan_type == kind)
            ):
                self._end_plan(plan, "cancelled", now_ms)
                return plan
        raise BitgetError("43025")

    def remove_plan_orders(self, symbol: str, now_ms: int) -> list[PlanOrder]:
        """Cancel every live plan order of ``symbol`` (as if by hand in Bitget's app)."""
        removed = [p for p in self.plan_orders if p.symbol == symbol]
        for plan in removed:
            self._end_plan(plan, "cancelled", now_ms)
        return removed

    # -- matching ---------------------------------------------------------------------------

    def step(self, start_ms: int, end_ms: int) -> None:
        """Match resting limits and plan orders over the path from ``start_ms`` to ``end_ms``
        (module docstring); fills are stamped ``end_ms``; funding settled in between is
        charged (:mod:`trading.exchanges.fake.funding`). A no-op past the recorded market."""
        settle_funding(self, start_ms, end_ms)
        symbols = {o.symbol for o in self.open_orders} | {p.symbol for p in self.plan_orders}
        for symbol in sorted(symbols):
            for order in [o for o in self.open_orders if o.symbol == symbol]:
                if order.order_type == "limit" and order.is_open:
                    self._match_limit(order, max(start_ms, order.c_time), end_ms)
            crossed = []
            for plan in [p for p in self.plan_orders if p.symbol == symbol]:
                path = self.path(symbol, max(start_ms, plan.c_time), end_ms)
                hit = first_cross(path, plan.trigger_price, plan.fires_below)
                if hit is not None:
                    crossed.append((hit, plan))
            if crossed:  # the earliest trigger closes the position; its sibling is cancelled
                (_, price), plan = min(crossed, key=lambda c: c[0][0])
                self._trigger(plan, price, end_ms)

    def path(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        """The price path ``[(ms, price), ...]`` from ``start_ms`` to ``end_ms`` (module
        docstring); empty when either end lies outside the recorded candles."""
        first = self.market.forming(symbol, start_ms)
        last = self.market.forming(symbol, end_ms)
        if first is None or last is None or end_ms < start_ms:
            return []
        points = [(start_ms, first[4])]
        arr = self.market.candles[symbol]
        lo = int(np.searchsorted(arr[:, 0], start_ms // MINUTE_MS * MINUTE_MS))
        hi = int(np.searchsorted(arr[:, 0], end_ms, side="right"))
        for row in arr[lo:hi]:
            t0, o, h, low, c = (float(x) for x in row[:5])
            for k, price in enumerate((o, low, h, c) if c >= o else (o, h, low, c)):
                t = int(t0) + k * LEG_MS
                if start_ms < t < end_ms or (t == end_ms and k == 3):
                    points.append((t, price))
        points.append((end_ms, last[4]))
        return points

    def _match_limit(self, order: Order, start_ms: int, end_ms: int) -> None:
        prices = [p for _, p in self.path(order.symbol, start_ms, end_ms)]
        if len(prices) < 2:
            return
        bar = [start_ms, prices[0], max(prices), min(prices), prices[-1], 0.0]
        step = float(self.market.rules[order.symbol].size_multiplier)
        side = OrderSide(order.side)
        result = self.fill_model.fill(
            side, order.price, order.remaining, bar, rng=self.rng, qty_step=step
        )
        if result.fill is None:
            return
        qty = result.fill.qty
        fraction = self.partial_next.pop(order.symbol, None)
        if fraction is not None:
            qty = max(step, round_to_step(order.remaining * fraction, step))
        self._fill(order, min(qty, order.remaining), order.price, Liquidity.MAKER, end_ms)

    def _trigger(self, plan: PlanOrder, price: float, now_ms: int) -> None:
        position = self.positions.get(plan.symbol)
        if position is None or position.hold_side != plan.hold_side:
            self._end_plan(plan, "cancelled", now_ms)
            return
        order = self._new_order(plan.symbol, plan.side, "market", position.total, now_ms)
        order.client_oid, order.leverage = plan.order_id, position.leverage
        order.reduce_only, order.trade_side = True, "close"
        order.source = f"{plan.plan_type}_market"  # Bitget's orderSource enum [U]
        plan.executed_order_id, plan.trigger_time = order.order_id, now_ms
        self._end_plan(plan, "executed", now_ms)
        self._emit("order", order)
        self._fill(order, order.size, price, Liquidity.TAKER, now_ms)

    # -- internals --------------------------------------------------------------------------

    def _emit(self, kind: str, payload: object = None, fill: Fill | None = None) -> None:
        # Orders and plans are copied: the push shows the state at this moment.
        self.events.append(Event(kind, copy.copy(payload), fill))

    def _check_client_oid(self, client_oid: str | None) -> None:
        """40786 while any regular or plan order carries ``client_oid`` (ASSUMPTION: Bitget's
        uniqueness window was not found; the fake never forgets)."""
        known = [o.client_oid for o in self.orders.values()]
        if client_oid and client_oid in known + [p.client_oid for p in self.plans.values()]:
            raise BitgetError("40786")

    def _new_order(self, symbol: str, side: str, kind: str, size: float, now: int) -> Order:
        oid, lev, mode = self.next_id(), self.leverage_for(symbol, side), self.settings[symbol]
        order = Order(oid, oid, symbol, side, kind, size, 0.0, lev, mode.margin_mode, now)
        order.source = "normal" if kind == "limit" else "market"
        order.u_time = now
        self.orders[oid] = order
        return order

    def _cancel(self, order: Order, now_ms: int) -> None:
        order.status, order.u_time = "canceled", now_ms
        self._emit("order", order)
        self._emit("balance")

    def _end_plan(self, plan: PlanOrder, status: str, now_ms: int) -> None:
        plan.status, plan.u_time = status, now_ms
        self._emit("plan", plan)

    def _add_plan(
        self, position: Position, plan_type: str, trigger: float, oid: str | None, now: int
    ) -> PlanOrder:
        for old in self.plan_orders:
            if old.symbol == position.symbol and old.plan_type == plan_type:
                self._end_plan(old, "cancelled", now)
        pid = self.next_id()
        args = (position.symbol, plan_type, trigger, "mark_price", position.hold_side)
        plan = PlanOrder(pid, oid or pid, *args, position.total, now, u_time=now)
        self.plans[pid] = plan
        self._emit("plan", plan)
        return plan

    def _fill(self, order: Order, qty: float, price: float, liquidity: Liquidity, now: int) -> None:
        """Execute ``qty`` of ``order`` at ``price``: position, wallet, fill, plans, events."""
        places = self.market.rules[order.symbol].volume_place
        position = self.positions.get(order.symbol)
        if order.reduce_only:
            closable = position.total if position and position.closing_side == order.side else 0
            qty = min(qty, closable)
        qty = round(qty, places)
        if qty <= 0:
            self._cancel(order, now)  # a reduce-only order whose position is gone
            return
        first_fill = order.filled == 0
        fee = fee_for_fill(qty, price, liquidity, self.fees)
        profit, trade_side = self._book_position(order, qty, price, now)
        self.balance += profit - fee
        order.filled = round(order.filled + qty, places)
        order.filled_notional += qty * price
        order.fee += fee
        order.profit += profit
        order.trade_side = trade_side
        order.status = "filled" if order.remaining <= 0 else "partially_filled"
        order.u_time = now
        fill = Fill(self.next_id(), order, price, qty, fee, profit, trade_side, liquidity, now)
        self.fills.append(fill)
        self._emit("order", order, fill)
        self._emit("fill", fill)
        position = self.positions.get(order.symbol)
        for plan in [p for p in self.plan_orders if p.symbol == order.symbol]:
            if position is None or plan.hold_side != position.hold_side:
                self._end_plan(plan, "cancelled", now)  # closing a position ends its TP/SL
        presets = {"pos_loss": order.preset_sl, "pos_profit": order.preset_tp}
        for plan_type, trigger in presets.items():  # they become (or replace) the TP/SL
            if position is not None and first_fill and trigger:
                self._add_plan(position, plan_type, trigger, None, now)
        self._emit("position", order.symbol)
        self._emit("balance")

    def _book_position(self, order: Order, qty: float, price: float, now: int) -> tuple[float, str]:
        """Apply a fill to the one-way position: (realised P&L, ``open`` | ``close``)."""
        places = self.market.rules[order.symbol].volume_place
        position = self.positions.get(order.symbol)
        profit, closed = 0.0, 0.0
        if position is not None and position.closing_side == order.side:
            closed = min(qty, position.total)
            profit = (price - position.open_price_avg) * closed * position.sign
            remaining = round(position.total - closed, places)
            position.margin *= remaining / position.total
            position.total, position.u_time = remaining, now
            position.achieved_profits += profit
            if remaining <= 0:
                del self.positions[order.symbol]
                position = None
        opening = round(qty - closed, places)
        if opening > 0:
            if position is None:
                hold_side = "long" if order.side == "buy" else "short"
                lev = self.leverage_for(order.symbol, order.side)
                position = Position(
                    self.next_id(), order.symbol, hold_side, 0, price, 0, lev, now, now
                )
                self.positions[order.symbol] = position
            total = round(position.total + opening, places)
            avg = (position.open_price_avg * position.total + price * opening) / total
            position.open_price_avg, position.total, position.u_time = avg, total, now
            position.margin += opening * price / position.leverage
        return profit, "close" if closed > 0 else "open"


def first_cross(
    path: list[tuple[int, float]], trigger: float, below: bool
) -> tuple[int, float] | None:
    """Where ``path`` first reaches ``trigger`` (at or below it when ``below``): ``(ms, price)``.

    The price is the trigger when a leg moves through it continuously, and the first price
    beyond it when the path starts beyond it or jumps over it (two points at one instant: a gap).
    """

    def beyond(price: float) -> bool:
        return price <= trigger if below else price >= trigger

    if not path or beyond(path[0][1]):
        return path[0] if path else None
    for (t0, p0), (t1, p1) in itertools.pairwise(path):
        if beyond(p1):
            if t1 == t0 or math.isclose(p1, p0):
                return t1, p1
            return t0 + int((trigger - p0) / (p1 - p0) * (t1 - t0)), trigger
    return None
