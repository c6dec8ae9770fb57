"""The fake Bitget's PRIVATE API: signed REST and the private websocket, in Bitget's JSON.

State and matching: :mod:`trading.exchanges.fake.account`. Numbers are strings, as Bitget's.

Authentication as ccxt 4.5.90 signs (``bitget.sign``, ``pro.bitget.authenticate``): ``ACCESS-SIGN``
= base64(HMAC-SHA256(secret, timestamp + METHOD + path [+ "?" + raw query] + body)). Refusals (codes
/ messages of ccxt's exceptions map, AuthenticationError): 40001 / 40003 / 40011 a header missing,
40006 key, 40009 sign, 40012 passphrase; 40005 / 40008 (InvalidNonce) a bad / stale timestamp, fresh
= within 30 WALL seconds of the fake's clock or of the wall clock (ASSUMPTION). A demo key without
``PAPTRADING: 1`` or a live key with it: 40099 "exchange environment is incorrect" (ccxt issue
#25502; unmapped → ExchangeError). Websocket login (ccxt pro's map): 30011 key, 30012 passphrase,
30013 timestamp, 30015 sign; a demo key off ``/wspap`` (or a live key on it): 40099 (ASSUMPTION).

Shapes: "sample" = the docstring sample response of that ccxt 4.5.90 method. POST place-order /
place-tpsl-order / cancel-order → ``{orderId, clientOid}`` (create_order, cancel_order);
cancel-plan-order → ``{successList, failureList}`` (cancel_order "swap trigger"; no ``orderIdList``
cancels every plan of the symbol: ASSUMED from Bitget's doc); set-position-mode / set-margin-mode /
set-leverage: theirs. GET detail (fetch_order "swap", ``state``), orders-pending / -history
(fetch_open_orders "swap", ``status``), orders-plan-pending / -history (fetch_open_orders "swap
stop"; ASSUMED: a pos_loss row repeats its trigger in ``stopLossTriggerPrice``, a pos_profit row in
``stopSurplusTriggerPrice``, so ccxt reports stopLossPrice / takeProfitPrice), fills
(fetch_my_trades "swap", plus the ws ``orderType``), all-position / single-position
(fetch_position(s), plus ``uTime``; ``[]`` when flat), accounts (fetch_balance "swap"),
spot/account/info (Bitget's Get-Account-Info doc, ref/bitget.md §10). One-way rows (the samples are
hedge-mode ones): ``posMode`` one_way_mode, orders' ``posSide`` net (listed by the ws sample),
``tradeSide`` open / close (ASSUMED). Websocket: text ``ping`` → ``pong``,
``{"event":"login","code":0}``, subscribe acks, pushes ``{"action":"snapshot","arg","data","ts"}``
(the handle_* samples): ``orders`` (parse_ws_order "contract"; on a fill ``baseVolume`` = that fill,
``accBaseVolume`` = total, ``tradeScope`` T / M), ``orders-algo`` (its trigger fields; ``status``
live / executed / cancelled, ASSUMED from REST planStatus: ccxt's ws map knows live and cancelled
only), ``positions`` (every open position on each change and on subscribe, ``[]`` when flat),
``fill`` (handle_my_trades "swap"), ``account`` (handle_balance "swap", also on subscribe).

Money: ``locked`` / ``frozen`` = margins locked, ``available`` = wallet − locked, equity = wallet
+ unrealised P&L. Position ``locked`` = size held by open reduce-only orders; ``marginRatio`` =
(MMR + taker) × notional / (margin + uPnL).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import WSMsgType, web

from trading.exchanges.fake.account import MMR, BitgetError, FakeAccount, Fill, Order, PlanOrder
from trading.exchanges.fake.funding import bills_answer
from trading.exchanges.fake.market import FakeClock, fmt

PRODUCT_TYPE = "USDT-FUTURES"
WS_CHANNELS = {"orders", "orders-algo", "positions", "fill", "account"}
WS_STATUS = {"canceled": "cancelled"}  # the ws spelling (parse_ws_order_status)
DEFAULT_AUTHORITIES = ("coor", "coow", "cpor", "cpow")  # futures orders + holdings, no wwow
Params = dict[str, Any]


class Credentials(NamedTuple):
    """The one API key the fake accepts; ``demo``: a Demo-trading key (PAPTRADING, wspap)."""

    api_key: str = "fake-key"
    secret: str = "fake-secret"  # noqa: S105 - a test fixture's credential
    passphrase: str = "fake-pass"  # noqa: S105
    demo: bool = True


async def read_frames(
    ws: web.WebSocketResponse,
    send: Callable[[Any], Awaitable[None]],
    on_frame: Callable[[Params], Awaitable[None]],
) -> None:
    """Bitget's text protocol on one websocket (public or private): ``ping`` → ``pong``, a
    JSON frame to ``on_frame``, anything unparsable → error 30016."""
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        if msg.data == "ping":
            await send("pong")
            continue
        try:
            frame = json.loads(msg.data)
        except ValueError:
            await send({"event": "error", "code": 30016, "msg": "Param error"})
            continue
        await on_frame(frame)


def market_id_of(symbol: str) -> str:
    """``BTC/USDT:USDT`` → ``BTCUSDT``; a market id is returned unchanged."""
    return symbol.split(":")[0].replace("/", "")


def _money(value: float) -> str:
    return fmt(round(value, 8) + 0.0)  # + 0.0 turns -0.0 into 0.0


def _paid(fee: float) -> str:
    """A fee paid, as Bitget writes it: negative."""
    return _money(-fee)


def _opt(value: float | None) -> str:
    return fmt(value) if value else ""


def _num(params: Params, key: str, default: float | None = None) -> float:
    raw = params.get(key)
    if raw in (None, "") and default is not None:
        return default
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BitgetError("40017", detail=f"{key}={raw!r}") from None


def _sign(secret: str, prehash: str) -> str:
    digest = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _error(code: int | str, msg: str, **extra: Any) -> Params:
    return {"event": "error", **extra, "code": code, "msg": msg}


@dataclass(slots=True)
class Rule:
    path: str
    times: int
    code: str = ""
    msg: str = ""
    seconds: float = 0.0


def _take(rules: deque[Rule], path: str) -> Rule | None:
    for rule in rules:
        if path.endswith(rule.path):
            rule.times -= 1
            if rule.times <= 0:
                rules.remove(rule)
            return rule
    return None


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    demo_host: bool
    logged_in: bool = False
    subs: dict[tuple[str, str], Params] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        async with self.lock:
            if not self.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.send_str(text)


class PrivateApi:
    """Signed REST routes and private websockets over one :class:`FakeAccount`.

    ``clock`` is the fake's market clock, ``record`` logs a request, ``silent`` tells whether
    pushes are silenced. ``authorities`` / ``ips`` are what ``spot/account/info`` reports
    (default: a trade-only key, no ``wwow``, no IP whitelist).
    """

    def __init__(
        self,
        account: FakeAccount,
        clock: FakeClock,
        record: Callable[..., None],
        silent: Callable[[], bool],
        credentials: Credentials,
    ) -> None:
        self.account, self.clock, self.record, self.silent = account, clock, record, silent
        self.credentials = credentials
        self.authorities: list[str] = list(DEFAULT_AUTHORITIES)
        self.ips = ""
        self.connections: set[_Connection] = set()
        self.latency_s = 0.0  # added to every private REST answer (benchmarks)
        self.rejects: deque[Rule] = deque()
        self.delays: deque[Rule] = deque()
        self._stopping = asyncio.Event()
        mix = "/api/v2/mix/"
        self.routes: dict[str, tuple[str, Callable[[Params, int], Any]]] = {
            mix + "account/set-position-mode": ("POST", self._set_position_mode),
            mix + "account/set-margin-mode": ("POST", self._set_margin_mode),
            mix + "account/set-leverage": ("POST", self._set_leverage),
            mix + "order/place-order": ("POST", self._place_order),
            mix + "order/place-tpsl-order": ("POST", self._place_tpsl),
            mix + "order/cancel-order": ("POST", self._cancel_order),
            mix + "order/cancel-plan-order": ("POST", self._cancel_plan),
            mix + "order/detail": ("GET", self._detail),
            mix + "order/orders-pending": ("GET", lambda p, now: self._orders(p, True, False)),
            mix + "order/orders-history": ("GET", lambda p, now: self._orders(p, False, False)),
            mix + "order/orders-plan-pending": ("GET", lambda p, now: self._orders(p, True, True)),
            mix + "order/orders-plan-history": ("GET", lambda p, now: self._orders(p, False, True)),
            mix + "order/fills": ("GET", self._fills),
            mix + "account/bill": ("GET", self._bills),
            mix + "position/all-position": ("GET", self._all_positions),
            mix + "position/single-position": ("GET", self._single_position),
            mix + "account/accounts": ("GET", lambda p, now: [self.account_row(now)]),
            "/api/v2/spot/account/info": ("GET", self._key_info),
        }

    def now(self) -> int:
        return self.clock.now_ms()

    # -- REST -------------------------------------------------------------------------------

    def _reply(self, data: Any, status: int = 200, code: str = "00000", msg: str = "success"):
        body = {"code": code, "msg": msg, "requestTime": self.now(), "data": data}
        return web.json_response(body, status=status)

    async def rest(self, request: web.Request, body: str) -> web.Response:
        """A queued rejection, else: verify, act, push, reply (after a queued delay)."""
        rejection = _take(self.rejects, request.path)
        if rejection is not None:
            return self._reply(None, 400, rejection.code, rejection.msg)
        method, handler = self.routes[request.path]
        if request.method != method:
            return web.Response(status=404, text="Not Found")
        try:
            self._verify(request, body)
            params = dict(request.query) if method == "GET" else json.loads(body or "{}")
            response = self._reply(handler(params, self.now()))
        except BitgetError as error:
            response = self._reply(None, 400, error.code, error.msg)
        except ValueError:
            response = self._reply(None, 400, "40017", "Parameter verification failed")
        await self.flush()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        delay = _take(self.delays, request.path)
        if delay is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay.seconds)
        return response

    def _fresh(self, ts_ms: int) -> bool:
        tolerance = 30_000 * max(1.0, self.clock.speed)
        return abs(ts_ms - self.now()) <= tolerance or abs(ts_ms - time.time() * 1000) <= 30_000

    def _verify(self, request: web.Request, body: str) -> None:
        h, creds = request.headers, self.credentials
        key, sign, phrase = h.get("ACCESS-KEY"), h.get("ACCESS-SIGN"), h.get("ACCESS-PASSPHRASE")
        stamp = h.get("ACCESS-TIMESTAMP", "")
        query = "&".join(f"{k}={v}" for k, v in request.query.items())
        prehash = stamp + request.method + request.path + (f"?{query}" if query else "") + body
        signed = hmac.compare_digest(str(sign), _sign(creds.secret, prehash))
        fresh, demo = stamp.isdigit() and self._fresh(int(stamp)), h.get("PAPTRADING") == "1"
        for failed, code, msg in (
            (not key, "40001", "ACCESS_KEY cannot be empty"),
            (not sign, "40003", "Signature cannot be empty"),
            (not phrase, "40011", "ACCESS_PASSPHRASE cannot be empty"),
            (key != creds.api_key, "40006", "Invalid ACCESS_KEY"),
            (not stamp.isdigit(), "40005", "Invalid ACCESS_TIMESTAMP"),
            (not fresh, "40008", "Request timestamp expired"),
            (not signed, "40009", "sign signature error"),
            (phrase != creds.passphrase, "40012", "apikey/password is incorrect"),
            (demo != creds.demo, "40099", "exchange environment is incorrect"),
        ):
            if failed:
                raise BitgetError(code, msg=msg)

    def _symbol(self, params: Params, required: bool = True) -> str | None:
        """The ``symbol`` parameter checked, after ``productType`` (40019 / 40034)."""
        product, market_id = str(params.get("productType") or ""), params.get("symbol")
        if not product or (required and not market_id):
            raise BitgetError("40019", "productType" if not product else "symbol")
        if product.upper() != PRODUCT_TYPE:
            raise BitgetError("40034", product)
        if market_id and market_id not in self.account.market.rules:
            raise BitgetError("40034", market_id)
        return market_id

    # -- REST handlers ----------------------------------------------------------------------

    def _set_position_mode(self, p: Params, now: int) -> Params:
        self._symbol(p, required=False)
        self.account.set_position_mode(str(p.get("posMode")))
        return {"posMode": self.account.pos_mode}

    def _set_margin_mode(self, p: Params, now: int) -> Params:
        symbol = str(self._symbol(p))
        self.account.set_margin_mode(symbol, str(p.get("marginMode")))
        return {k: v for k, v in self._leverage_data(symbol).items() if k != "crossMarginLeverage"}

    def _set_leverage(self, p: Params, now: int) -> Params:
        symbol = str(self._symbol(p))
        self.account.set_leverage(symbol, int(_num(p, "leverage")), p.get("holdSide") or None)
        return self._leverage_data(symbol)

    def _place_order(self, p: Params, now: int) -> Params:
        symbol = str(self._symbol(p))
        if p.get("tradeSide"):
            raise BitgetError("40774")  # a hedge-mode field on a one-way account
        side, kind, size = str(p.get("side")), str(p.get("orderType")), _num(p, "size")
        order = self.account.place_order(
            now, symbol, side, kind, size, _num(p, "price", 0.0),
            force=str(p.get("force") or "gtc").lower(),
            reduce_only=str(p.get("reduceOnly", "NO")).upper() == "YES",
            client_oid=p.get("clientOid"),
            preset_sl=_num(p, "presetStopLossPrice", 0.0) or None,
            preset_tp=_num(p, "presetStopSurplusPrice", 0.0) or None,
        )  # fmt: skip
        return {"orderId": order.order_id, "clientOid": order.client_oid}

    def _place_tpsl(self, p: Params, now: int) -> Params:
        symbol = str(self._symbol(p))
        if _num(p, "executePrice", 0.0):
            raise BitgetError("40017", detail="the fake executes position TP/SL at market only")
        hold = {"buy": "long", "long": "long", "sell": "short", "short": "short"}
        plan = self.account.place_tpsl(
            now, symbol, str(p.get("planType")), _num(p, "triggerPrice"),
            hold.get(str(p.get("holdSide")), ""),
            trigger_type=str(p.get("triggerType") or "mark_price"), client_oid=p.get("clientOid"),
        )  # fmt: skip
        return {"orderId": plan.order_id, "clientOid": plan.client_oid}

    def _cancel_order(self, p: Params, now: int) -> Params:
        symbol = str(self._symbol(p))
        order = self.account.cancel_order(now, symbol, p.get("orderId"), p.get("clientOid"))
        return {"orderId": order.order_id, "clientOid": order.client_oid}

    def _cancel_plan(self, p: Params, now: int) -> Params:
        symbol, kind = str(self._symbol(p)), p.get("planType")
        items = p.get("orderIdList")
        if not items:  # every plan of the symbol (and planType)
            items = [
                {"orderId": x.order_id} for x in self.account.plan_orders if x.symbol == symbol
            ]
        success, failure = [], []
        for item in items:
            oid, cid = item.get("orderId"), item.get("clientOid")
            try:
                plan = self.account.cancel_plan(now, symbol, oid, cid, kind)
            except BitgetError as error:
                failure.append({"orderId": oid, "clientOid": cid, "errorMsg": error.msg})
            else:
                success.append({"orderId": plan.order_id, "clientOid": plan.client_oid})
        if not success and len(items) <= 1:
            raise BitgetError("43025")
        return {"successList": success, "failureList": failure}

    def _detail(self, p: Params, now: int) -> Params:
        symbol = str(self._symbol(p))
        order = self.account.find_order(symbol, p.get("orderId"), p.get("clientOid"))
        return self.order_row(order, "state")

    def _window(self, p: Params, items: list[Any]) -> list[Any]:
        """Newest first within ``[startTime, endTime]``, older than the ``idLessThan`` cursor
        (Bitget's paging: the last page's ``endId``), at most ``limit`` (default and max 100)."""
        start, end = _num(p, "startTime", 0.0), _num(p, "endTime", float("inf"))
        below = int(p.get("idLessThan") or 1 << 63)  # ids are 19 digits: never via a float

        def key(x: Any) -> int:
            return int(getattr(x, "order_id", None) or x.trade_id)

        chosen = sorted(
            (x for x in items if start <= x.c_time <= end and key(x) < below),
            key=lambda x: -key(x),  # ids grow with time: newest first, as the cursor pages
        )
        return chosen[: min(int(_num(p, "limit", 100.0)), 100)]

    def _orders(self, p: Params, pending: bool, plans: bool) -> Params:
        """orders-pending / -history (regular) and orders-plan-pending / -history (plans)."""
        symbol = self._symbol(p, required=False)
        if plans and not p.get("planType"):
            raise BitgetError("40019", "planType")
        items: list[Any] = list(
            self.account.plans.values() if plans else self.account.orders.values()
        )
        chosen = [
            x for x in items
            if (x.status == "live" if plans else x.is_open) == pending
            and symbol in (None, x.symbol)
            and p.get("clientOid") in (None, x.client_oid)
            and p.get("orderId") in (None, x.order_id)
            and (not plans or p["planType"] in ("profit_loss", x.plan_type))
        ]  # fmt: skip
        rows = [self.plan_row(x) if plans else self.order_row(x) for x in self._window(p, chosen)]
        return {"entrustedList": rows, "endId": rows[-1]["orderId"] if rows else None}

    def _fills(self, p: Params, now: int) -> Params:
        symbol = self._symbol(p, required=False)  # none: every symbol of the product type
        fills = [f for f in self.account.fills if symbol is None or f.order.symbol == symbol]
        if p.get("orderId"):
            fills = [f for f in fills if f.order.order_id == p["orderId"]]
        rows = [self.fill_row(f) for f in self._window(p, fills)]
        return {"fillList": rows, "endId": rows[-1]["tradeId"] if rows else None}

    def _bills(self, p: Params, now: int) -> Params:
        self._symbol(p, required=False)  # productType and symbol checked
        return bills_answer(self.account, p)

    def _all_positions(self, p: Params, now: int) -> list[Params]:
        self._symbol(p, required=False)
        return [self.position_row(symbol, now) for symbol in sorted(self.account.positions)]

    def _single_position(self, p: Params, now: int) -> list[Params]:
        symbol = str(self._symbol(p))
        return [self.position_row(symbol, now)] if symbol in self.account.positions else []

    # -- rows (shapes: module docstring) ----------------------------------------------------
    # fmt: off
    # The rows keep several keys per line: one key per line would double this module's length.

    def order_row(self, o: Order, status_key: str = "status") -> Params:
        """A regular order as a detail (``state``) / orders-pending (``status``) row."""
        return {
            "symbol": o.symbol, "size": fmt(o.size), "orderId": o.order_id,
            "clientOid": o.client_oid, "baseVolume": fmt(o.filled), "fee": _paid(o.fee),
            "price": fmt(o.price), "priceAvg": _money(o.average) if o.average else "",
            status_key: o.status, "side": o.side, "force": o.force,
            "totalProfits": _money(o.profit), "posSide": "net", "marginCoin": "USDT",
            "presetStopSurplusPrice": _opt(o.preset_tp), "presetStopLossPrice": _opt(o.preset_sl),
            "quoteVolume": _money(o.filled_notional), "orderType": o.order_type,
            "leverage": str(o.leverage), "marginMode": o.margin_mode,
            "reduceOnly": "YES" if o.reduce_only else "NO", "enterPointSource": "API",
            "tradeSide": o.trade_side, "posMode": "one_way_mode", "orderSource": o.source,
            "cTime": str(o.c_time), "uTime": str(o.u_time),
        }

    def plan_row(self, x: PlanOrder) -> Params:
        """A pos_loss / pos_profit plan order as an orders-plan-pending row."""
        trigger, kind = fmt(x.trigger_price), x.trigger_type
        return {
            "planType": x.plan_type, "symbol": x.symbol, "size": fmt(x.size),
            "orderId": x.order_id, "clientOid": x.client_oid, "price": "0", "executePrice": "0",
            "callbackRatio": "", "triggerPrice": trigger, "triggerType": kind,
            "planStatus": x.status, "side": x.side, "posSide": "net", "marginCoin": "USDT",
            "marginMode": self.account.settings[x.symbol].margin_mode,
            "enterPointSource": "API", "tradeSide": "close", "posMode": "one_way_mode",
            "orderType": "market",
            "stopSurplusTriggerPrice": trigger if x.plan_type == "pos_profit" else "",
            "stopSurplusExecutePrice": "", "stopSurplusTriggerType": kind,
            "stopLossTriggerPrice": trigger if x.plan_type == "pos_loss" else "",
            "stopLossExecutePrice": "", "stopLossTriggerType": kind,
            "cTime": str(x.c_time), "uTime": str(x.u_time),
        }

    def fill_row(self, f: Fill, ws: bool = False) -> Params:
        """A fill as a ``fills`` row (``ws``: a ``fill`` channel row, with ``uTime``)."""
        fee = {"deduction": "no", "feeCoin": "USDT", "totalDeductionFee": "0",
               "totalFee": _paid(f.fee)}
        row = {
            "tradeId": f.trade_id, "symbol": f.order.symbol, "orderId": f.order.order_id,
            "orderType": f.order.order_type, "price": fmt(f.price), "baseVolume": fmt(f.size),
            "feeDetail": [fee], "side": f.order.side, "quoteVolume": _money(f.size * f.price),
            "profit": _money(f.profit), "enterPointSource": "API", "tradeSide": f.trade_side,
            "posMode": "one_way_mode", "tradeScope": f.scope, "cTime": str(f.c_time),
        }
        return {**row, "uTime": str(f.c_time)} if ws else row

    def _position_numbers(self, symbol: str, now: int) -> Params:
        pos = self.account.positions[symbol]
        forming = self.account.market.forming(symbol, now)
        mark = forming[4] if forming else pos.open_price_avg
        upnl = self.account.unrealized(pos, mark)
        locked = min(pos.total, self.account.closing_size(symbol))
        maintenance = (MMR + self.account.fees.taker_rate) * pos.total * mark
        return {
            "marginCoin": "USDT", "marginSize": _money(pos.margin),
            "marginMode": self.account.settings[symbol].margin_mode, "holdSide": pos.hold_side,
            "posMode": "one_way_mode", "total": fmt(pos.total),
            "available": fmt(round(pos.total - locked, 8)), "locked": fmt(locked),
            "openPriceAvg": _money(pos.open_price_avg), "leverage": str(pos.leverage),
            "achievedProfits": _money(pos.achieved_profits), "unrealizedPL": _money(upnl),
            "unrealizedPLR": _money(upnl / pos.margin),
            "liquidationPrice": _money(self.account.liquidation_price(pos)),
            "keepMarginRate": fmt(MMR), "markPrice": fmt(mark),
            "marginRatio": _money(maintenance / max(pos.margin + upnl, 1e-12)),
            "cTime": str(pos.c_time), "uTime": str(pos.u_time), "posId": pos.pos_id,
        }

    def position_row(self, symbol: str, now: int) -> Params:
        """A position as an all-position / single-position row."""
        n = self._position_numbers(symbol, now)
        same_side = "buy" if n["holdSide"] == "long" else "sell"
        opening = sum(o.remaining for o in self.account.open_orders
                      if o.symbol == symbol and o.side == same_side and not o.reduce_only)
        keys = ["marginCoin", "symbol", "holdSide", "openDelegateSize", "marginSize",
                "available", "locked", "total", "leverage", "achievedProfits", "openPriceAvg",
                "marginMode", "posMode", "unrealizedPL", "liquidationPrice", "keepMarginRate",
                "markPrice", "marginRatio", "cTime", "uTime"]
        n |= {"symbol": symbol, "openDelegateSize": fmt(opening)}
        return {k: n[k] for k in keys}

    def ws_position_row(self, symbol: str, now: int) -> Params:
        """A position as a ``positions`` channel row (handle_positions sample)."""
        n = self._position_numbers(symbol, now)
        n |= {"instId": symbol, "frozen": n["locked"], "leverage": int(n["leverage"]),
              "marginRate": n["marginRatio"], "autoMargin": "off"}
        keys = ["posId", "instId", "marginCoin", "marginSize", "marginMode", "holdSide",
                "posMode", "total", "available", "frozen", "openPriceAvg", "leverage",
                "achievedProfits", "unrealizedPL", "unrealizedPLR", "liquidationPrice",
                "keepMarginRate", "marginRate", "cTime", "uTime", "autoMargin"]
        return {k: n[k] for k in keys}

    def account_row(self, now: int, ws: bool = False) -> Params:
        """The USDT row of ``accounts`` (fetch_balance "swap" sample); ``ws``: of the
        ``account`` channel (handle_balance "swap" sample)."""
        acct = self.account
        locked, upnl = acct.locked(), acct.unrealized_total(now)
        free, equity = _money(acct.balance - locked), _money(acct.balance + upnl)
        if ws:
            return {"marginCoin": "USDT", "frozen": _money(locked), "available": free,
                    "maxOpenPosAvailable": free, "maxTransferOut": free, "equity": equity,
                    "usdtEquity": equity}
        btc = acct.market.forming("BTCUSDT", now) if "BTCUSDT" in acct.market.rules else None
        return {
            "marginCoin": "USDT", "locked": _money(locked), "available": free,
            "crossedMaxAvailable": free, "isolatedMaxAvailable": free, "maxTransferOut": free,
            "accountEquity": equity, "usdtEquity": equity,
            "btcEquity": _money((acct.balance + upnl) / btc[4]) if btc else "0",
            "crossedRiskRate": "0", "unrealizedPL": _money(upnl), "coupon": "0",
            "crossedUnrealizedPL": "0", "isolatedUnrealizedPL": _money(upnl),
        }

    def _leverage_data(self, symbol: str) -> Params:
        """The set-leverage sample (set-margin-mode's lacks ``crossMarginLeverage``)."""
        s = self.account.settings[symbol]
        return {"symbol": symbol, "marginCoin": "USDT", "longLeverage": str(s.long_leverage),
                "shortLeverage": str(s.short_leverage), "crossMarginLeverage": str(s.long_leverage),
                "marginMode": s.margin_mode}

    def _key_info(self, p: Params, now: int) -> Params:
        """Bitget's Get-Account-Info doc sample, with the configured authorities and IPs."""
        return {"userId": "1000000001", "inviterId": "", "ips": self.ips,
                "authorities": list(self.authorities), "parentId": 1000000001, "traderType": "",
                "channelCode": "", "channel": "", "regisTime": "1700000000000"}

    def ws_order_row(self, o: Order, fill: Fill | None) -> Params:
        """An order as an ``orders`` channel row (parse_ws_order "contract" sample)."""
        row = {
            "accBaseVolume": fmt(o.filled), "cTime": str(o.c_time), "clientOid": o.client_oid,
            "enterPointSource": "API", "feeDetail": [{"feeCoin": "USDT", "fee": _paid(o.fee)}],
            "force": o.force, "instId": o.symbol, "leverage": str(o.leverage),
            "marginCoin": "USDT", "marginMode": o.margin_mode,
            "notionalUsd": _money(o.size * (o.price or o.average or 0.0)),
            "orderId": o.order_id, "orderType": o.order_type, "posMode": "one_way_mode",
            "posSide": "net", "price": fmt(o.price),
            "reduceOnly": "yes" if o.reduce_only else "no", "side": o.side,
            "size": fmt(o.size), "status": WS_STATUS.get(o.status, o.status),
            "tradeSide": o.trade_side, "uTime": str(o.u_time),
        }
        if fill is not None:
            row |= {
                "baseVolume": fmt(fill.size), "fillFee": _paid(fill.fee), "fillFeeCoin": "USDT",
                "fillNotionalUsd": _money(fill.size * fill.price), "fillPrice": fmt(fill.price),
                "fillTime": str(fill.c_time), "pnl": _money(fill.profit),
                "priceAvg": _money(o.average or fill.price), "tradeId": fill.trade_id,
                "tradeScope": "T" if fill.scope == "taker" else "M",
            }
        return row

    def ws_plan_row(self, x: PlanOrder) -> Params:
        """A plan order as an ``orders-algo`` row (the trigger fields of the same sample)."""
        trigger, kind = fmt(x.trigger_price), x.trigger_type
        return {
            "instId": x.symbol, "orderId": x.order_id, "clientOid": x.client_oid,
            "triggerPrice": trigger, "price": trigger, "triggerType": kind,
            "triggerTime": str(x.trigger_time or ""), "planType": x.plan_type,
            "size": fmt(x.size), "actualSize": fmt(x.size if x.status == "executed" else 0),
            "side": x.side, "posSide": "net", "posMode": "one_way_mode", "tradeSide": "close",
            "orderType": "market", "status": x.status, "marginCoin": "USDT",
            "marginMode": self.account.settings[x.symbol].margin_mode,
            "enterPointSource": "API", "stopSurplusTriggerType": kind,
            "stopLossTriggerType": kind, "cTime": str(x.c_time), "uTime": str(x.u_time),
        }

    # fmt: on

    # -- websocket --------------------------------------------------------------------------

    async def ws(self, request: web.Request) -> web.StreamResponse:
        """A private websocket connection (``/v2/ws/private`` or ``/wspap/v2/ws/private``)."""
        self.record(request)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws, request.path.startswith("/wspap/"))
        self.connections.add(conn)
        try:
            await read_frames(ws, conn.send, lambda frame: self._on_frame(conn, frame))
        finally:
            self.connections.discard(conn)
        return ws

    def _login_error(self, conn: _Connection, arg: Params) -> Params | None:
        creds, stamp = self.credentials, str(arg.get("timestamp", ""))
        fresh = stamp.isdigit() and self._fresh(int(stamp) * 1000)
        expected = _sign(creds.secret, stamp + "GET" + "/user/verify")
        for failed, code, msg in (
            (arg.get("apiKey") != creds.api_key, 30011, "Invalid ACCESS_KEY"),
            (arg.get("passphrase") != creds.passphrase, 30012, "Invalid ACCESS_PASSPHRASE"),
            (not fresh, 30013, "Invalid ACCESS_TIMESTAMP"),
            (not hmac.compare_digest(str(arg.get("sign", "")), expected), 30015, "Invalid sign"),
            (conn.demo_host != creds.demo, 40099, "exchange environment is incorrect"),
        ):
            if failed:
                return _error(code, msg)
        return None

    async def _on_frame(self, conn: _Connection, frame: Params) -> None:
        op, args = frame.get("op"), frame.get("args") or []
        if op == "login":
            error = self._login_error(conn, args[0] if args else {})
            conn.logged_in = error is None
            await conn.send(error or {"event": "login", "code": 0})
            return
        if op not in ("subscribe", "unsubscribe") or not conn.logged_in:
            login = _error(30004, "Please log in")  # ccxt pro: 30004 requires login
            await conn.send(_error(30003, "invalid op") if conn.logged_in else login)
            return
        for arg in args:
            channel = str(arg.get("channel"))
            key = str(arg.get("coin") if channel == "account" else arg.get("instId"))
            if op == "unsubscribe":
                conn.subs.pop((channel, key), None)
                await conn.send({"event": "unsubscribe", "arg": arg})
                continue
            known = key in ("default", "USDT") or key in self.account.market.rules
            product = str(arg.get("instType", "")).upper()
            if product != PRODUCT_TYPE or channel not in WS_CHANNELS or not known:
                msg = f"instType:{arg.get('instType')},channel:{channel},instId:{key} doesn't exist"
                await conn.send(_error(30001, msg, arg=arg))
                continue
            conn.subs[(channel, key)] = arg
            await conn.send({"event": "subscribe", "arg": arg})
            now = self.now()
            if channel in ("positions", "account"):  # their state comes on subscribe
                await self._push(conn, channel, None, self._snapshot(channel, now), now)

    def _snapshot(self, channel: str, now: int) -> list[Params]:
        if channel == "positions":
            return [self.ws_position_row(s, now) for s in sorted(self.account.positions)]
        return [self.account_row(now, ws=True)]

    async def _push(
        self, conn: _Connection, channel: str, symbol: str | None, data: list[Any], now: int
    ) -> None:
        for (sub_channel, key), arg in list(conn.subs.items()):
            if sub_channel == channel and key in ("default", "USDT", symbol):
                await conn.send({"action": "snapshot", "arg": arg, "data": data, "ts": now})

    async def flush(self) -> None:
        """Push the account's pending events (dropped while the fake is silenced)."""
        events, self.account.events = self.account.events, []
        if self.silent() or not self.connections:
            return
        now = self.now()
        frames: list[tuple[str, str | None, list[Any]]] = []
        for e in events:
            if isinstance(e.payload, Order):
                frames.append(("orders", e.payload.symbol, [self.ws_order_row(e.payload, e.fill)]))
            elif isinstance(e.payload, PlanOrder):
                frames.append(("orders-algo", e.payload.symbol, [self.ws_plan_row(e.payload)]))
            elif isinstance(e.payload, Fill):
                frames.append(("fill", e.payload.order.symbol, [self.fill_row(e.payload, True)]))
        kinds = {e.kind for e in events}
        for kind, channel in (("position", "positions"), ("balance", "account")):
            if kind in kinds:
                frames.append((channel, None, self._snapshot(channel, now)))
        for conn in [c for c in self.connections if c.logged_in]:
            for channel, symbol, data in frames:
                await self._push(conn, channel, symbol, data, now)

    async def drop(self) -> None:
        """Close every private websocket connection."""
        for conn in list(self.connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.close(code=1011, message=b"dropped by the fake")
        self.connections.clear()

    async def close(self) -> None:
        """Drop the connections and end pending response delays (the server stops)."""
        self._stopping.set()
        await self.drop()
