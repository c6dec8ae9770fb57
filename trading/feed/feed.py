"""The market feed: websocket streams in, closed candles and price ticks out.

One :class:`MarketFeed` per exchange. For each symbol it watches 1m candles (and, when asked,
the L2 book and trades), detects closes (:mod:`trading.feed.detector`), heals every gap over
REST BEFORE handing newer candles on, reconnects with exponential backoff, and calls the
handler: ``on_closed_candle`` for each closed 1m candle exactly once and in order,
``on_price`` for forming-candle updates (a price ticker only: it never reaches a strategy),
``on_order_book`` / ``on_trades`` for order flow, ``on_alert`` for anything a trader should see,
and ``flush`` once every stream ended normally (a handler that works in the background, like
the runtime's group commit, returns from it when all it was handed is done). Every REST call
goes through the shared rate limiter.

The ``exchanges.yaml`` keys act here (``trading.exchanges.clients.feed_options`` maps them):
after a disconnect the feed waits ``backoff_initial_s``, then multiplies the wait by
``backoff_multiplier`` per failed attempt up to ``backoff_max_s``; a stream with no message for
``stale_after_s`` is treated as dropped (its websocket connections are closed so ccxt dials
afresh, an alert is raised, the gap is healed); books are watched at ``book_depth`` levels; a
REST page that fails with ``ccxt.NetworkError`` is retried ``rest_max_retries`` times with the
same backoff before the failure counts as a disconnect.

Bad rows from the exchange (websocket or REST) are refused with a logged warning and an alert
and never handed on, by the rules of :mod:`trading.core.validation`: absurd values, an open
time in the future or before the exchange listed the symbol (ccxt's market ``created``, or
``listed_ms``), or a price 100× away from the previous close handed on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import ccxt

from trading.core.validation import candle_problem
from trading.feed.detector import MINUTE_MS, CandleCloseDetector, Gap, parse_row

log = logging.getLogger(__name__)

# A REST candle opening up to this much after our clock is the exchange's clock a little ahead
# (the close detector's own grace), not a candle from the future.
REST_CLOCK_GRACE_MS = 5_000

REST_PAGE_LIMIT = 200


class ReplayFinished(Exception):
    """Raised by a replay exchange when its recorded data is exhausted."""


class StaleStream(ccxt.NetworkError):
    """A stream sent nothing for ``stale_after_s``: handled like a dropped connection."""


class FeedHandler(Protocol):
    async def on_closed_candle(self, symbol: str, row: tuple[float, ...]) -> None: ...
    async def on_price(self, symbol: str, price: float, time_ms: int, kind: str) -> None: ...
    async def on_order_book(self, symbol: str, book: dict[str, Any]) -> None: ...
    async def on_trades(self, symbol: str, trades: list[dict[str, Any]]) -> None: ...
    async def on_alert(self, level: str, message: str) -> None: ...
    async def flush(self) -> None: ...


class Limiter(Protocol):
    async def acquire(self, category: str) -> None: ...


@dataclass(slots=True)
class FeedStats:
    closed: int = 0
    healed: int = 0
    duplicates: int = 0
    rejected: int = 0
    reconnects: int = 0
    last_closed_ms: dict[str, int] = field(default_factory=dict)


class MarketFeed:
    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        handler: FeedHandler,
        limiter: Limiter,
        *,
        last_closed_ms: dict[str, int] | None = None,
        watch_books: bool = False,
        watch_trades: bool = False,
        book_depth: int = 20,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        backoff_multiplier: float = 2.0,
        stale_after_s: float | None = None,
        rest_max_retries: int = 3,
        grace_ms: int = 5_000,
        listed_ms: dict[str, int] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.exchange = exchange
        self.symbols = list(symbols)
        self.handler = handler
        self.limiter = limiter
        self.watch_books = watch_books
        self.watch_trades = watch_trades
        self.book_depth = book_depth
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.backoff_multiplier = backoff_multiplier
        self.stale_after_s = stale_after_s
        self.rest_max_retries = rest_max_retries
        self._sleep = sleep
        self._last_forced_reconnect_s: float | None = None
        self.stats = FeedStats()
        self._listed_ms = dict(listed_ms or {})
        self._last_close: dict[str, float] = {}
        self._detectors = {
            s: CandleCloseDetector((last_closed_ms or {}).get(s), grace_ms=grace_ms)
            for s in self.symbols
        }
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> FeedStats:
        """Run until stopped or until a replay is exhausted on every symbol; then wait for the
        handler to finish what it was handed (``flush``)."""
        tasks = [asyncio.create_task(self._candles(s), name=f"candles:{s}") for s in self.symbols]
        side = []
        if self.watch_books:
            side += [asyncio.create_task(self._books(s)) for s in self.symbols]
        if self.watch_trades:
            side += [asyncio.create_task(self._trades(s)) for s in self.symbols]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)
        await self.handler.flush()
        return self.stats

    async def _candles(self, symbol: str) -> None:
        detector = self._detectors[symbol]
        backoff = self.backoff_initial_s
        heal_needed = detector.last_closed_open_ms is not None
        while not self._stopping.is_set():
            try:
                if heal_needed:
                    await self._heal_to_now(symbol, detector)
                    heal_needed = False
                raw = await self._watch(symbol, lambda: self.exchange.watch_ohlcv(symbol, "1m"))
                backoff = self.backoff_initial_s
                await self._process_update(symbol, detector, raw)
            except ReplayFinished:
                return
            except ccxt.NetworkError as exc:
                self.stats.reconnects += 1
                await self.handler.on_alert(
                    "warning",
                    f"{symbol} feed disconnected ({type(exc).__name__}: {exc}); "
                    f"reconnecting in {backoff:.0f} s",
                )
                await self._sleep(backoff)
                backoff = self._next_backoff(backoff)
                heal_needed = detector.last_closed_open_ms is not None
            except ccxt.BadSymbol as exc:
                await self.handler.on_alert("error", f"{symbol} is not on the exchange: {exc}")
                return

    def _next_backoff(self, backoff_s: float) -> float:
        return min(backoff_s * self.backoff_multiplier, self.backoff_max_s)

    async def _watch(self, symbol: str, watch: Callable[[], Awaitable[Any]]) -> Any:
        """One ``watch_*`` call, bounded by ``stale_after_s`` when set."""
        if self.stale_after_s is None:
            return await watch()
        try:
            return await asyncio.wait_for(watch(), timeout=self.stale_after_s)
        except TimeoutError:
            await self._force_reconnect()
            raise StaleStream(f"no message on {symbol} for {self.stale_after_s:g} s") from None

    async def _force_reconnect(self) -> None:
        """Close the exchange's websocket connections (ccxt.pro dials again on the next watch);
        once per staleness window, however many streams noticed it."""
        now_s = asyncio.get_running_loop().time()
        last = self._last_forced_reconnect_s
        if last is not None and now_s - last < (self.stale_after_s or 0) / 2:
            return
        self._last_forced_reconnect_s = now_s
        close = getattr(self.exchange, "close_ws_clients", None)
        if close is not None:
            await close()

    async def _process_update(
        self, symbol: str, detector: CandleCloseDetector, raw: list[object]
    ) -> None:
        result = detector.on_update(raw, self.exchange.milliseconds())
        self.stats.duplicates += result.duplicates
        for reason in result.rejected:
            await self._refuse(symbol, reason)
        rows = list(result.closed)
        for t in result.unconfirmed:
            final = await self._fetch_gap(symbol, Gap(t, t))
            if final:
                rows = [final[0] if int(r[0]) == t else r for r in rows]
        for gap in result.gaps:
            rows.extend(await self._fetch_gap(symbol, gap))
        rows.sort(key=lambda r: r[0])
        for row in rows:
            await self._emit(symbol, row)
        if result.forming is not None:
            price, time_ms = result.forming[4], self.exchange.milliseconds()
            await self.handler.on_price(symbol, price, time_ms, "last")

    async def _heal_to_now(self, symbol: str, detector: CandleCloseDetector) -> None:
        gap = detector.overdue(self.exchange.milliseconds())
        if gap is None:
            return
        for row in detector.accept_healed(await self._fetch_gap(symbol, gap)):
            await self._emit(symbol, row)

    async def _fetch_gap(self, symbol: str, gap: Gap) -> list[tuple[float, ...]]:
        """Closed candles with open time in ``[gap.from_ms, gap.to_ms]``, fetched over REST."""
        rows: list[tuple[float, ...]] = []
        since = gap.from_ms
        while since <= gap.to_ms:
            page = await self._fetch_page(symbol, since)
            # The clock once the answer is in (a page may end with the candle forming now),
            # with the detector's grace for a clock a little behind the exchange's.
            now_ms = self.exchange.milliseconds()
            fresh = []
            for raw in page:
                parsed = parse_row(raw, now_ms=now_ms + REST_CLOCK_GRACE_MS)
                if isinstance(parsed, str):
                    await self._refuse(symbol, f"{parsed} (REST)")
                    continue
                t = int(parsed[0])
                if since <= t <= gap.to_ms and t + MINUTE_MS <= now_ms:
                    fresh.append(parsed)
            if not fresh:
                break
            rows.extend(fresh)
            since = int(fresh[-1][0]) + MINUTE_MS
        self.stats.healed += len(rows)
        missing = gap.minutes - len(rows)
        if missing > 0:
            await self.handler.on_alert(
                "warning", f"{symbol}: {missing} candle(s) missing on the exchange in {gap}"
            )
        return rows

    async def _fetch_page(self, symbol: str, since: int) -> list[Any]:
        """One REST page of 1m candles from ``since``; a ``ccxt.NetworkError`` (timeouts, 429,
        5xx) is retried ``rest_max_retries`` times with the reconnect backoff, then raised."""
        backoff = self.backoff_initial_s
        attempt = 0
        while True:
            await self.limiter.acquire("market_data")
            try:
                return await self.exchange.fetch_ohlcv(
                    symbol, "1m", since=since, limit=REST_PAGE_LIMIT
                )
            except ccxt.NetworkError as exc:
                if attempt >= self.rest_max_retries:
                    raise
                attempt += 1
                log.warning(
                    "%s: REST candles failed (%s), retry %d/%d in %.1f s",
                    symbol,
                    type(exc).__name__,
                    attempt,
                    self.rest_max_retries,
                    backoff,
                )
                await self._sleep(backoff)
                backoff = self._next_backoff(backoff)

    def listed_ms(self, symbol: str) -> int | None:
        """When the exchange listed ``symbol`` (epoch ms): the ``listed_ms`` handed in, else
        ccxt's market ``created`` once the markets are loaded; None when unknown."""
        if symbol in self._listed_ms:
            return self._listed_ms[symbol]
        markets = getattr(self.exchange, "markets", None)
        market = markets.get(symbol) if isinstance(markets, dict) else None
        created = market.get("created") if isinstance(market, dict) else None
        return int(created) if created else None

    async def _refuse(self, symbol: str, reason: str) -> None:
        self.stats.rejected += 1
        log.warning("%s: dropped %s", symbol, reason)
        await self.handler.on_alert("warning", f"{symbol}: dropped {reason}")

    async def _emit(self, symbol: str, row: tuple[float, ...]) -> None:
        problem = candle_problem(
            row,
            now_ms=self.exchange.milliseconds(),
            listed_ms=self.listed_ms(symbol),
            previous_close=self._last_close.get(symbol),
        )
        if problem is not None:
            await self._refuse(symbol, f"closed candle {list(row)!r}: {problem}")
            return
        self._last_close[symbol] = row[4]
        self.stats.closed += 1
        self.stats.last_closed_ms[symbol] = int(row[0])
        await self.handler.on_closed_candle(symbol, row)

    async def _books(self, symbol: str) -> None:
        await self._side_stream(
            symbol,
            lambda: self.exchange.watch_order_book(symbol, self.book_depth),
            self.handler.on_order_book,
        )

    async def _trades(self, symbol: str) -> None:
        await self._side_stream(
            symbol, lambda: self.exchange.watch_trades(symbol), self.handler.on_trades
        )

    async def _side_stream(
        self,
        symbol: str,
        watch: Callable[[], Awaitable[Any]],
        deliver: Callable[[str, Any], Awaitable[None]],
    ) -> None:
        backoff = self.backoff_initial_s
        while not self._stopping.is_set():
            try:
                data = await self._watch(symbol, watch)
                backoff = self.backoff_initial_s
                await deliver(symbol, data)
            except (ReplayFinished, ccxt.NotSupported):
                return
            except ccxt.NetworkError:
                await self._sleep(backoff)
                backoff = self._next_backoff(backoff)
