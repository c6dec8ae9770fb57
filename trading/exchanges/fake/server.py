"""A local HTTP + websocket server that speaks Bitget's v2 USDT-FUTURES public API.

The REAL ``ccxt.pro.bitget`` talks to it unmodified (built by
``market_data_exchange(settings, base_url=fake.base_url)``): ccxt's request building, signing
(``PAPTRADING`` header included), error mapping (``handle_errors``), parsing and websocket
handling all run; only the network ends at 127.0.0.1. What the values are (real candles and
funding, synthesised open interest / books / trades) is documented in
:mod:`trading.exchanges.fake.market`.

REST (``GET /api/...``): ``v2/public/time``, ``v2/spot/public/coins`` (load_markets asks),
``v2/spot/public/symbols`` and ``v2/margin/currencies`` (empty: no spot here),
``v2/mix/market/contracts`` (the USDT-FUTURES contracts; other product types empty),
``candles`` / ``history-candles`` (1m only; the newest ``limit`` rows of
``[startTime, endTime]``, the forming one partial, nothing after the fake's now; ``kLineType=MARK``
and ``history-mark-candles``: mark-price candles, the same prices with volume 0, the fake's mark
being its last price),
``current-fund-rate``, ``funding-time``, ``history-fund-rate`` (newest first, ``pageSize`` /
``pageNo``), ``open-interest``, ``ticker``, ``tickers``. Not Bitget's: ``GET /fake/clock``
(``nowMs``, ``speed``: the market clock, which a radar in another process mirrors, as
:func:`attach_clock` does in-process). Anything else: HTTP 404.

Websocket ``/v2/ws/public`` (and ``/wspap/v2/ws/public``, where a demo-mode instance lands):
text ``ping`` → ``pong``; ``subscribe`` / ``unsubscribe`` of ``candle1m``, ``books``,
``books1/5/15/50``, ``trade``, ``ticker`` answered with the ack, then a ``snapshot`` frame and
``update`` frames ``updates_per_minute`` times per market minute (at market times that are
multiples of ``60 s / updates_per_minute``): the forming candle's row (a new minute's first
frame carries only the new row, as Bitget's do), book snapshots (``books`` sends crc32-checksummed
deltas), synthesised trades, the ticker. An unknown channel or symbol gets Bitget's
``{"event":"error","code":30001}``.

PRIVATE API (signed REST, ``/v2/ws/private`` and ``/wspap/v2/ws/private``; orders, positions,
fills, balance, settings): :mod:`trading.exchanges.fake.private` over the account and matching
engine of :mod:`trading.exchanges.fake.account` (``fake.account``), matched at each market step;
its fault hooks (``reject_next``, ``delay_response_next``, ``drop_private_websockets``,
``partial_fill_next``, ``remove_plan_orders``) come from :class:`~.hooks.PrivateHooks`.

Fault hooks: :meth:`FakeBitget.fail_next` (answer the next call(s) of a path with an error),
:meth:`FakeBitget.drop_websockets` (close every connection),
:meth:`FakeBitget.silence_websockets` (connections open, no pushes), :meth:`FakeBitget.advance`
(jump market time). Every HTTP request (with its parsed JSON body) and websocket handshake is
logged in ``requests``; every public subscribe argument in ``subscriptions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from trading.exchanges.fake.account import FakeAccount
from trading.exchanges.fake.hooks import PrivateHooks
from trading.exchanges.fake.market import (
    FUNDING_INTERVAL_MS,
    MINUTE_MS,
    FakeClock,
    FakeMarket,
    fmt,
)
from trading.exchanges.fake.private import Credentials, PrivateApi, read_frames

PRODUCT_TYPE = "USDT-FUTURES"
BOOK_CHANNELS = {"books": 50, "books1": 1, "books5": 5, "books15": 15, "books50": 50}
CHANNELS = {"candle1m", "trade", "ticker", *BOOK_CHANNELS}
CANDLE_SNAPSHOT_ROWS = 50  # [U] the real snapshot's length is not documented; ccxt keeps 1000


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One HTTP request (or websocket handshake) as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    market_ms: int
    body: Any = None  # the parsed JSON body of a POST


@dataclass(slots=True)
class _Failure:
    path: str
    status: int
    body: str
    times: int
    after: int = 0  # matching requests still answered normally before this failure starts


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    path: str
    subscriptions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    books: dict[tuple[str, str], dict[str, dict[str, str]]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        async with self.lock:
            if not self.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.send_str(text)


def _checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """Bitget's book checksum: signed crc32 of ``bid0p:bid0q:ask0p:ask0q:...`` over 25 levels."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def attach_clock(exchange: Any, now_ms: Callable[[], int]) -> None:
    """Make a ccxt instance read a fake's market clock ``now_ms`` (epoch ms).

    ccxt compares exchange timestamps with ``exchange.milliseconds()`` (``fetch_ohlcv``
    picks the recent or the history endpoint and computes ``endTime`` from it), and so does
    the feed (closes by the clock, overdue candles). Market time runs in 2025 at ``speed``×,
    so both must read it. The websocket keep-alive, however, is a real network timer: ccxt
    checks ``lastPong`` against the WALL clock (``Exchange.milliseconds`` of the class) but
    stamps it with ``self.milliseconds()``; ``handle_pong`` is therefore rebound to stamp
    wall time, or every connection would "miss" its pongs.
    """
    wall_ms = type(exchange).milliseconds

    def handle_pong(client: Any, message: Any) -> Any:
        client.lastPong = wall_ms()
        return message

    exchange.milliseconds = now_ms
    exchange.seconds = lambda: now_ms() // 1000
    exchange.handle_pong = handle_pong


class FakeBitget(PrivateHooks):
    """The offline Bitget: ``base_url = await fake.start()``, ..., ``await fake.stop()``.

    ``start_ms`` is the market time at start (default: 24 h into the data, aligned to the
    minute, so there is history behind it); ``speed`` multiplies wall time (600 = 10 market
    minutes per second). ``credentials`` is the one API key accepted (default: demo key
    ``fake-key`` / ``fake-secret`` / ``fake-pass``); ``account`` the trading account (default:
    10,000 USDT, :class:`~.account.FakeAccount`'s defaults).
    """

    def __init__(
        self,
        market: FakeMarket | None = None,
        *,
        start_ms: int | None = None,
        speed: float = 1.0,
        updates_per_minute: int = 4,
        credentials: Credentials | None = None,
        account: FakeAccount | None = None,
    ) -> None:
        self.market = market or FakeMarket.from_files()
        if start_ms is None:
            start_ms = self.market.first_ms + 24 * 3_600_000
        if updates_per_minute < 1 or MINUTE_MS % updates_per_minute:
            raise ValueError(f"updates_per_minute must divide 60000 ms, got {updates_per_minute}")
        self.clock = FakeClock(start_ms // 1000 * 1000, speed)
        self.step_ms = MINUTE_MS // updates_per_minute
        self.requests: list[RecordedRequest] = []
        self.subscriptions: list[tuple[str, dict[str, Any]]] = []
        self._failures: deque[_Failure] = deque()
        self._connections: set[_Connection] = set()
        self._runner: web.AppRunner | None = None
        self._driver: asyncio.Task[None] | None = None
        self._trade_ids = 1_100_000_000_000_000_000
        self._silent = False
        self.base_url = ""
        self.account = account or FakeAccount(self.market)
        creds = credentials or Credentials()
        self.private = PrivateApi(
            self.account, self.clock, self._record, lambda: self._silent, creds
        )

    @classmethod
    def aligned_to_wall_clock(cls, market: FakeMarket | None = None, **kwargs: Any) -> FakeBitget:
        """Real time (speed 1) with the data shifted by a multiple of 8 h so that market time
        equals the wall clock: a consumer that cannot be :meth:`attach`-ed (another process)
        then sees consistent times."""
        market = market or FakeMarket.from_files()
        now_ms = int(time.time() * 1000)
        desired = market.first_ms + 24 * 3_600_000
        offset = (now_ms - desired) // FUNDING_INTERVAL_MS * FUNDING_INTERVAL_MS
        return cls(market.shifted(offset), start_ms=now_ms, speed=1.0, **kwargs)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = a free port) in the running loop; start the clock."""
        app = web.Application()
        app.router.add_get("/v2/ws/public", self._ws)
        app.router.add_get("/wspap/v2/ws/public", self._ws)
        app.router.add_get("/v2/ws/private", self.private.ws)
        app.router.add_get("/wspap/v2/ws/private", self.private.ws)
        app.router.add_route("*", "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, port))
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.base_url = f"http://{host}:{sock.getsockname()[1]}"
        self.clock.start()
        self._driver = asyncio.create_task(self._drive(), name="fake-bitget-driver")
        return self.base_url

    async def stop(self) -> None:
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
            self._driver = None
        await self.private.close()
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBitget:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- clock ------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The fake's market time, epoch ms."""
        return self.clock.now_ms()

    def advance(self, ms: int) -> None:
        self.clock.advance(ms)

    def attach(self, exchange: Any) -> None:
        """Make a ccxt instance read the fake's clock (:func:`attach_clock`)."""
        attach_clock(exchange, self.now_ms)

    @property
    def credentials(self) -> Credentials:
        """The one API key the fake accepts."""
        return self.private.credentials

    # -- fault hooks ------------------------------------------------------------------------

    def fail_next(
        self,
        path: str,
        status: int = 429,
        body: str | dict[str, Any] | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Answer the next ``times`` requests whose path ends with ``path`` with ``status`` and
        ``body`` (default: Bitget's ``{"code":"429","msg":"Too Many Requests"}`` for 429, an
        empty body otherwise so that ccxt's HTTP-status mapping applies), once ``after``
        matching requests have been answered normally (an outage midway through a download).
        Failures queued for one path act one after the other."""
        if body is None:
            body = (
                {"code": "429", "msg": "Too Many Requests", "requestTime": 0, "data": None}
                if status == 429
                else ""
            )
        text = body if isinstance(body, str) else json.dumps(body)
        self._failures.append(_Failure(path, status, text, times, after))

    async def drop_websockets(self) -> None:
        """Close every websocket connection, public and private (the server hangs up)."""
        await self.private.drop()
        for conn in list(self._connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.close(code=1011, message=b"dropped by the fake")
        self._connections.clear()

    def silence_websockets(self, silent: bool = True) -> None:
        """Stop (or resume) every push while connections stay open: a stream gone quiet."""
        self._silent = silent

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    # -- REST -------------------------------------------------------------------------------

    def _record(self, request: web.Request, body: str = "") -> None:
        parsed = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(body) if body else None
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                self.now_ms(),
                parsed,
            )
        )

    def _ok(self, data: Any) -> web.Response:
        now = self.now_ms()
        body = {"code": "00000", "msg": "success", "requestTime": now, "data": data}
        return web.json_response(body)

    def _error(self, status: int, code: str, msg: str) -> web.Response:
        body = {"code": code, "msg": msg, "requestTime": self.now_ms(), "data": None}
        return web.json_response(body, status=status)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self._record(request, body)
        failure = next((f for f in self._failures if request.path.endswith(f.path)), None)
        if failure is not None and failure.after > 0:
            failure.after -= 1
        elif failure is not None:
            failure.times -= 1
            if failure.times <= 0:
                self._failures.remove(failure)
            return web.Response(
                status=failure.status, text=failure.body, content_type="application/json"
            )
        if request.path in self.private.routes:
            return await self.private.rest(request, body)
        route = self._routes().get(request.path)
        if route is None or request.method != "GET":
            return web.Response(status=404, text="Not Found")
        return await route(request)

    def _routes(self) -> dict[str, Callable[[web.Request], Awaitable[web.Response]]]:
        mix = "/api/v2/mix/market/"
        return {
            "/api/v2/public/time": self._time,
            "/fake/clock": self._clock,
            "/api/v2/spot/public/coins": self._coins,
            "/api/v2/spot/public/symbols": self._empty,
            "/api/v2/margin/currencies": self._empty,
            mix + "contracts": self._contracts,
            mix + "candles": self._candles,
            mix + "history-candles": self._history_candles,
            mix + "history-mark-candles": self._history_mark_candles,
            mix + "current-fund-rate": self._current_fund_rate,
            mix + "funding-time": self._funding_time,
            mix + "history-fund-rate": self._history_fund_rate,
            mix + "open-interest": self._open_interest,
            mix + "ticker": self._ticker,
            mix + "tickers": self._tickers,
        }

    def _market_id(self, request: web.Request) -> str | web.Response:
        product = request.query.get("productType")
        if not product:
            return self._error(400, "40019", "Parameter productType cannot be empty")
        if product.upper() != PRODUCT_TYPE:
            return self._error(400, "40034", f"Parameter {product} does not exist")
        symbol = request.query.get("symbol")
        if not symbol:
            return self._error(400, "40019", "Parameter symbol cannot be empty")
        if symbol not in self.market.candles:
            return self._error(400, "40034", f"Parameter {symbol} does not exist")
        return symbol

    async def _time(self, _request: web.Request) -> web.Response:
        return self._ok({"serverTime": str(self.now_ms())})

    async def _clock(self, _request: web.Request) -> web.Response:
        return self._ok({"nowMs": str(self.now_ms()), "speed": repr(self.clock.speed)})

    async def _empty(self, _request: web.Request) -> web.Response:
        return self._ok([])

    async def _coins(self, _request: web.Request) -> web.Response:
        coins = ["USDT", *(r.base for r in self.market.rules.values())]
        return self._ok(
            [
                {"coinId": str(i + 1), "coin": c, "transfer": "true", "chains": []}
                for i, c in enumerate(coins)
            ]
        )

    async def _contracts(self, request: web.Request) -> web.Response:
        if request.query.get("productType", "").upper() != PRODUCT_TYPE:
            return self._ok([])
        return self._ok([r.contract() for r in self.market.rules.values()])

    async def _candles(
        self, request: web.Request, max_limit: int = 1000, mark: bool = False
    ) -> web.Response:
        market_id = self._market_id(request)
        if isinstance(market_id, web.Response):
            return market_id
        if request.query.get("granularity") != "1m":
            return self._error(400, "40017", "Parameter verification failed: the fake serves 1m")
        price_type = request.query.get("kLineType", "MARKET").upper()
        if price_type not in ("MARKET", "MARK"):
            return self._error(400, "40017", "Parameter verification failed: kLineType")
        mark = mark or price_type == "MARK"
        now = self.now_ms()
        try:
            limit = min(int(request.query.get("limit", "100")), max_limit)
            end_ms = int(request.query.get("endTime", now + 1))
            start_ms = int(request.query.get("startTime", end_ms - limit * MINUTE_MS))
        except ValueError:
            return self._error(400, "40017", "Parameter verification failed")
        rows = self.market.rows(market_id, start_ms, end_ms, now, limit)
        if mark:
            rows = [[*r[:5], 0.0] for r in rows]
        return self._ok([self._rest_row(r) for r in rows])

    async def _history_candles(self, request: web.Request) -> web.Response:
        return await self._candles(request, max_limit=200)

    async def _history_mark_candles(self, request: web.Request) -> web.Response:
        return await self._candles(request, max_limit=200, mark=True)

    @staticmethod
    def _rest_row(row: list[float]) -> list[str]:
        t, o, h, low, c, v = row
        return [str(int(t)), fmt(o), fmt(h), fmt(low), fmt(c), fmt(v), fmt(round(v * c, 4))]

    async def _current_fund_rate(self, request: web.Request) -> web.Response:
        market_id = self._market_id(request)
        if isinstance(market_id, web.Response):
            return market_id
        rate, next_ms = self.market.funding_now(market_id, self.now_ms())
        return self._ok(
            [
                {
                    "symbol": market_id,
                    "fundingRate": fmt(rate),
                    "fundingRateInterval": "8",
                    "nextUpdate": str(next_ms),
                    "minFundingRate": "-0.003",
                    "maxFundingRate": "0.003",
                }
            ]
        )

    async def _funding_time(self, request: web.Request) -> web.Response:
        market_id = self._market_id(request)
        if isinstance(market_id, web.Response):
            return market_id
        _, next_ms = self.market.funding_now(market_id, self.now_ms())
        return self._ok([{"symbol": market_id, "nextFundingTime": str(next_ms), "ratePeriod": "8"}])

    async def _history_fund_rate(self, request: web.Request) -> web.Response:
        market_id = self._market_id(request)
        if isinstance(market_id, web.Response):
            return market_id
        size = min(int(request.query.get("pageSize", "20")), 100)
        page = max(int(request.query.get("pageNo", "1")), 1)
        settled = self.market.funding_settled(market_id, self.now_ms())
        chunk = settled[(page - 1) * size : page * size]
        return self._ok(
            [{"symbol": market_id, "fundingRate": fmt(r), "fundingTime": str(t)} for t, r in chunk]
        )

    async def _open_interest(self, request: web.Request) -> web.Response:
        market_id = self._market_id(request)
        if isinstance(market_id, web.Response):
            return market_id
        now = self.now_ms()
        size = self.market.open_interest(market_id, now)
        return self._ok(
            {"openInterestList": [{"symbol": market_id, "size": fmt(size)}], "ts": str(now)}
        )

    def _ticker_data(self, market_id: str, now_ms: int) -> dict[str, str] | None:
        forming = self.market.forming(market_id, now_ms)
        if forming is None:
            return None
        day = self.market.rows(market_id, now_ms - 1440 * MINUTE_MS, now_ms + 1, now_ms, 1440)
        price = forming[4]
        rule = self.market.rules[market_id]
        rate, next_ms = self.market.funding_now(market_id, now_ms)
        base_volume = sum(r[5] for r in day)
        quote_volume = sum(r[5] * r[4] for r in day)
        open_24h = day[0][1]
        return {
            "instId": market_id,
            "symbol": market_id,
            "lastPr": fmt(price),
            "bidPr": fmt(price),
            "askPr": fmt(round(price + rule.tick, rule.price_place)),
            "bidSz": rule.size_multiplier,
            "askSz": rule.size_multiplier,
            "open24h": fmt(open_24h),
            "high24h": fmt(max(r[2] for r in day)),
            "low24h": fmt(min(r[3] for r in day)),
            "change24h": fmt(round(price / open_24h - 1, 5)),
            "baseVolume": fmt(round(base_volume, rule.volume_place)),
            "quoteVolume": fmt(round(quote_volume, 4)),
            "usdtVolume": fmt(round(quote_volume, 4)),
            "fundingRate": fmt(rate),
            "nextFundingTime": str(next_ms),
            "markPrice": fmt(price),
            "indexPrice": fmt(price),
            "holdingAmount": fmt(self.market.open_interest(market_id, now_ms)),
            "deliveryStartTime": "",
            "deliveryTime": "",
            "deliveryStatus": "",
            "openUtc": fmt(open_24h),
            "changeUtc24h": fmt(round(price / open_24h - 1, 5)),
            "ts": str(now_ms),
        }

    async def _ticker(self, request: web.Request) -> web.Response:
        market_id = self._market_id(request)
        if isinstance(market_id, web.Response):
            return market_id
        data = self._ticker_data(market_id, self.now_ms())
        return self._ok([data] if data else [])

    async def _tickers(self, request: web.Request) -> web.Response:
        if request.query.get("productType", "").upper() != PRODUCT_TYPE:
            return self._ok([])
        now = self.now_ms()
        data = [self._ticker_data(m, now) for m in self.market.candles]
        return self._ok([d for d in data if d])

    # -- websocket --------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws, request.path)
        self._connections.add(conn)
        try:
            await read_frames(ws, conn.send, lambda frame: self._on_frame(conn, frame))
        finally:
            self._connections.discard(conn)
        return ws

    async def _on_frame(self, conn: _Connection, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        for arg in frame.get("args") or []:
            key = (str(arg.get("channel")), str(arg.get("instId")))
            if op == "unsubscribe":
                conn.subscriptions.pop(key, None)
                conn.books.pop(key, None)
                await conn.send({"event": "unsubscribe", "arg": arg})
                continue
            if op != "subscribe":
                await conn.send({"event": "error", "code": 30003, "msg": f"invalid op {op}"})
                return
            self.subscriptions.append((conn.path, dict(arg)))
            if (
                str(arg.get("instType", "")).upper() != PRODUCT_TYPE
                or key[0] not in CHANNELS
                or key[1] not in self.market.candles
            ):
                await conn.send(
                    {
                        "event": "error",
                        "arg": arg,
                        "code": 30001,
                        "msg": f"instType:{arg.get('instType')},channel:{key[0]},"
                        f"instId:{key[1]} doesn't exist",
                    }
                )
                continue
            conn.subscriptions[key] = arg
            await conn.send({"event": "subscribe", "arg": arg})
            await self._push(conn, key, arg, self.now_ms(), snapshot=True)

    async def _drive(self) -> None:
        """Push updates at each market step (multiples of ``step_ms``) to every subscriber."""
        last_step = self.now_ms() // self.step_ms * self.step_ms
        while True:
            await asyncio.sleep(self.clock.wall_seconds_until(last_step + self.step_ms))
            step = self.now_ms() // self.step_ms * self.step_ms
            if step <= last_step:
                continue
            previous, last_step = last_step, step
            self.account.step(previous, step)  # the market moved: match orders, trigger plans
            await self.private.flush()
            if self._silent:
                continue
            for conn in list(self._connections):
                for key, arg in list(conn.subscriptions.items()):
                    await self._push(conn, key, arg, step, previous_ms=previous)

    async def _push(
        self,
        conn: _Connection,
        key: tuple[str, str],
        arg: dict[str, Any],
        now_ms: int,
        *,
        snapshot: bool = False,
        previous_ms: int | None = None,
    ) -> None:
        channel, market_id = key
        forming = self.market.forming(market_id, now_ms)
        if forming is None:
            return  # the recorded market has ended: the stream goes quiet
        if channel == "candle1m":
            if snapshot:
                start = now_ms - CANDLE_SNAPSHOT_ROWS * MINUTE_MS
                rows = self.market.rows(market_id, start, now_ms + 1, now_ms, CANDLE_SNAPSHOT_ROWS)
            else:
                rows = [forming]
            data: Any = [self._ws_row(r) for r in rows]
        elif channel in BOOK_CHANNELS:
            data = [self._book_frame(conn, key, forming[4], now_ms, snapshot)]
            if channel == "books" and not snapshot:
                action = "update"
                await conn.send({"action": action, "arg": arg, "data": data, "ts": now_ms})
                return
            snapshot = True  # books1/5/15/50 are full snapshots on every push
        elif channel == "trade":
            data = self._trades(market_id, forming, now_ms, previous_ms)
            if not data:
                return
        else:
            ticker = self._ticker_data(market_id, now_ms)
            data = [ticker] if ticker else []
        action = "snapshot" if snapshot else "update"
        await conn.send({"action": action, "arg": arg, "data": data, "ts": now_ms})

    @staticmethod
    def _ws_row(row: list[float]) -> list[str]:
        t, o, h, low, c, v = row
        quote = fmt(round(v * c, 4))
        return [str(int(t)), fmt(o), fmt(h), fmt(low), fmt(c), fmt(v), quote, quote]

    def _book_frame(
        self, conn: _Connection, key: tuple[str, str], price: float, now_ms: int, snapshot: bool
    ) -> dict[str, Any]:
        channel, market_id = key
        levels = BOOK_CHANNELS[channel]
        book = self.market.book(market_id, price, levels, seed=now_ms // self.step_ms)
        frame: dict[str, Any] = {"seq": str(now_ms // self.step_ms), "ts": str(now_ms)}
        if channel != "books":
            frame.update(book, checksum=_checksum(book["bids"], book["asks"]))
            return frame
        new = {side: {p: q for p, q in book[side]} for side in ("bids", "asks")}
        old = conn.books.get(key)
        conn.books[key] = new
        if snapshot or old is None:
            frame.update(book, checksum=0)
            return frame
        for side in ("bids", "asks"):
            delta = [[p, q] for p, q in new[side].items() if old[side].get(p) != q]
            delta += [[p, "0"] for p in old[side] if p not in new[side]]
            frame[side] = delta
        bids = sorted(new["bids"].items(), key=lambda pq: -float(pq[0]))
        asks = sorted(new["asks"].items(), key=lambda pq: float(pq[0]))
        frame["checksum"] = _checksum([list(b) for b in bids], [list(a) for a in asks])
        return frame

    def _trades(
        self, market_id: str, forming: list[float], now_ms: int, previous_ms: int | None
    ) -> list[dict[str, str]]:
        """Synthesised trades: the forming candle's volume added since the previous push,
        at its current price, newest first (Bitget's order)."""
        if previous_ms is None:
            return []
        before = self.market.forming(market_id, previous_ms)
        same_minute = before is not None and before[0] == forming[0]
        added = forming[5] - (before[5] if same_minute and before else 0.0)
        rule = self.market.rules[market_id]
        scale = 10**rule.volume_place
        if added * scale < 1:
            return []
        side = "buy" if before is None or forming[4] >= before[4] else "sell"
        parts = [added / 2, added / 3, added - added / 2 - added / 3]
        trades = []
        for i, part in enumerate(parts):
            size = round(part, rule.volume_place)
            if size <= 0:
                continue
            self._trade_ids += 1
            trades.append(
                {
                    "ts": str(now_ms - (len(parts) - 1 - i)),
                    "price": fmt(forming[4]),
                    "size": fmt(size),
                    "side": side,
                    "tradeId": str(self._trade_ids),
                }
            )
        return trades[::-1]
