"""A recorded market behind the ccxt interface: the replay source and the test fake.

:class:`SimulatedExchange` replays closed 1m candles (plus optional funding, open interest,
order-book snapshots and trades) on a virtual clock, and answers the same calls as
``ccxt.pro.bitget`` — ``watch_ohlcv``, ``fetch_ohlcv``, ``watch_order_book``, ``watch_trades``,
``fetch_funding_rate``, ``fetch_open_interest``, ``milliseconds``, ``close`` — with ccxt's shapes
and ccxt's exceptions, so the feed cannot tell it from the live exchange.

Each replay step is one minute ``t``: the clock is set to ``t + 30 s`` and every symbol's
``watch_ohlcv`` returns ``[candle t-1 (final), candle t (forming)]`` — the forming state is
``open, max(open, mid), min(open, mid), mid, volume/2`` with ``mid`` the midpoint of open and
close (it only moves the price ticker). Minutes before ``fast_until_ms`` replay as fast as the
consumers go (a warm-up, so that indicators are ready when the paced replay starts); after it,
``speed`` is the multiple of real time (60 = one minute
of market per second); ``None`` runs as fast as the consumers take updates (back-pressure: each
symbol holds at most one undelivered update, so the clock never runs ahead of the runtime).

``faults`` injects, per step index, what a real websocket does: ``disconnect`` (the call raises
``ccxt.NetworkError`` and that update is lost), ``silent`` (no update for that minute),
``new_only`` (only the new candle is sent, ccxt.pro ``newUpdates`` style), ``duplicate``
(already-closed candles sent again), ``out_of_order`` (rows reversed, plus an old one), and
``malformed`` (a garbage row added).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt
import numpy as np

from trading.feed.detector import MINUTE_MS
from trading.feed.feed import ReplayFinished


@dataclass(slots=True)
class Faults:
    disconnect: set[int] = field(default_factory=set)
    silent: set[int] = field(default_factory=set)
    new_only: set[int] = field(default_factory=set)
    duplicate: set[int] = field(default_factory=set)
    out_of_order: set[int] = field(default_factory=set)
    malformed: set[int] = field(default_factory=set)


def _forming(row: np.ndarray) -> list[float]:
    t, o, _h, _l, c, v = (float(x) for x in row)
    mid = (o + c) / 2
    return [t, o, max(o, mid), min(o, mid), mid, v / 2]


class SimulatedExchange:
    """Replays recorded data through ccxt's interface on a virtual clock."""

    id = "replay"

    def __init__(
        self,
        candles: Mapping[str, np.ndarray],
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        speed: float | None = None,
        fast_until_ms: int | None = None,
        funding: Mapping[str, np.ndarray] | None = None,
        open_interest: Mapping[str, np.ndarray] | None = None,
        books: Mapping[str, list[dict[str, Any]]] | None = None,
        faults: Mapping[str, Faults] | None = None,
    ) -> None:
        if not candles:
            raise ValueError("a replay needs candles for at least one symbol")
        self.candles = {s: np.asarray(a, dtype=np.float64) for s, a in candles.items()}
        first = min(int(a[0, 0]) for a in self.candles.values())
        last = max(int(a[-1, 0]) for a in self.candles.values())
        self.start_ms = first if start_ms is None else start_ms
        self.end_ms = last if end_ms is None else min(end_ms, last)
        self.speed = speed
        self.fast_until_ms = fast_until_ms
        self.funding = {s: np.asarray(a, dtype=np.float64) for s, a in (funding or {}).items()}
        self.open_interest = dict(open_interest or {})
        self.books = dict(books or {})
        self._books_seen: dict[str, int] = {}  # symbol -> books handed out (index of the next)
        self.faults = dict(faults or {})
        self.markets = {s: {"symbol": s, "type": "swap", "linear": True} for s in self.candles}
        self._now_ms = self.start_ms
        self._queues: dict[str, asyncio.Queue[Any]] = {}
        self._driver: asyncio.Task[None] | None = None
        self._step = 0
        self._taken: set[str] = set()  # symbols holding an update not yet acknowledged
        self.closed = False

    # -- clock -------------------------------------------------------------------------------
    def milliseconds(self) -> int:
        return self._now_ms

    @property
    def steps_total(self) -> int:
        return max(0, (self.end_ms - self.start_ms) // MINUTE_MS + 1)

    @property
    def progress(self) -> float:
        return min(1.0, self._step / self.steps_total) if self.steps_total else 1.0

    def _ensure_driver(self) -> None:
        if self._driver is None:
            self._queues = {s: asyncio.Queue(maxsize=1) for s in self.candles}
            self._driver = asyncio.get_running_loop().create_task(self._drive())

    async def _drive(self) -> None:
        t = self.start_ms
        while t <= self.end_ms and not self.closed:
            self._now_ms = t + MINUTE_MS // 2
            for symbol, queue in self._queues.items():
                update = self._update_for(symbol, t, self._step)
                if update is not None:
                    await queue.put(update)
            # The clock moves on only once every consumer came back for its next update: a
            # consumer still busy with this minute must not read the next minute's clock (the
            # detector would then close this minute's FORMING candle by the clock).
            await asyncio.gather(*(queue.join() for queue in self._queues.values()))
            self._step += 1
            t += MINUTE_MS
            await asyncio.sleep(self._wait_before_s(t))
        # Let the last candle close, then tell every consumer the replay is over.
        self._now_ms = self.end_ms + MINUTE_MS + MINUTE_MS // 2
        for symbol, queue in self._queues.items():
            last = self._row_at(symbol, self.end_ms)
            if last is not None:
                await queue.put([list(map(float, last))])
            await queue.put(ReplayFinished())

    def _wait_before_s(self, t: int) -> float:
        """Real seconds to wait before replaying minute ``t``: 60 / speed once paced, else 0."""
        warming_up = self.fast_until_ms is not None and t < self.fast_until_ms
        if self.speed is None or warming_up or t > self.end_ms:
            return 0.0
        return 60.0 / self.speed

    def _row_at(self, symbol: str, t: int) -> np.ndarray | None:
        arr = self.candles[symbol]
        i = int(np.searchsorted(arr[:, 0], t))
        if i < len(arr) and int(arr[i, 0]) == t:
            return arr[i]
        return None

    def _update_for(self, symbol: str, t: int, step: int) -> Any:
        faults = self.faults.get(symbol, Faults())
        if step in faults.silent:
            return None
        if step in faults.disconnect:
            return ccxt.NetworkError(f"simulated disconnect of {symbol} at step {step}")
        rows: list[list[Any]] = []
        prev = self._row_at(symbol, t - MINUTE_MS)
        cur = self._row_at(symbol, t)
        if prev is not None and step not in faults.new_only:
            rows.append([float(x) for x in prev])
        if cur is not None:
            rows.append(_forming(cur))
        if step in faults.duplicate:
            older = self._row_at(symbol, t - 2 * MINUTE_MS)
            if older is not None:
                rows.insert(0, [float(x) for x in older])
        if step in faults.out_of_order:
            older = self._row_at(symbol, t - 3 * MINUTE_MS)
            rows.reverse()
            if older is not None:
                rows.append([float(x) for x in older])
        if step in faults.malformed:
            rows.append(["not-a-time", None, 1, 2])
        return rows or None

    # -- ccxt interface ----------------------------------------------------------------------
    async def load_markets(self, reload: bool = False) -> dict[str, Any]:
        return self.markets

    def _check_symbol(self, symbol: str) -> None:
        if symbol not in self.candles:
            raise ccxt.BadSymbol(f"replay has no data for {symbol}")

    def _check_candles(self, symbol: str, timeframe: str) -> None:
        self._check_symbol(symbol)
        if timeframe != "1m":
            raise ccxt.NotSupported("the replay has 1m candles only")

    async def watch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[list[float]]:
        self._check_candles(symbol, timeframe)
        self._ensure_driver()
        queue = self._queues[symbol]
        if symbol in self._taken:  # asking again = done with the previous update
            self._taken.discard(symbol)
            queue.task_done()
        update = await queue.get()
        self._taken.add(symbol)
        if isinstance(update, BaseException):
            raise update
        return update

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[list[float]]:
        """Closed candles from ``since`` (or the latest ``limit``), never the forming one."""
        self._check_candles(symbol, timeframe)
        arr = self.candles[symbol]
        closed_until = self._now_ms - MINUTE_MS  # open time of the newest closed candle
        hi = int(np.searchsorted(arr[:, 0], closed_until, side="right"))
        limit = limit or 500
        lo = max(0, hi - limit) if since is None else int(np.searchsorted(arr[:, 0], since))
        return [[float(x) for x in row] for row in arr[lo : min(hi, lo + limit)]]

    async def fetch_funding_rate(
        self, symbol: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._check_symbol(symbol)
        rates = self.funding.get(symbol)
        if rates is None or len(rates) == 0:
            raise ccxt.NotSupported(f"the replay has no funding data for {symbol}")
        i = int(np.searchsorted(rates[:, 0], self._now_ms, side="right")) - 1
        if i < 0:
            raise ccxt.ExchangeError(f"no funding settled yet for {symbol} at {self._now_ms}")
        t, rate = int(rates[i, 0]), float(rates[i, 1])
        return {
            "symbol": symbol,
            "fundingRate": rate,
            "fundingTimestamp": t,
            "timestamp": self._now_ms,
            "markPrice": None,
            "interval": "8h",
        }

    async def fetch_open_interest(
        self, symbol: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._check_symbol(symbol)
        series = self.open_interest.get(symbol)
        if series is None or len(series) == 0:
            raise ccxt.NotSupported(f"the replay has no open-interest data for {symbol}")
        arr = np.asarray(series, dtype=np.float64)
        i = int(np.searchsorted(arr[:, 0], self._now_ms, side="right")) - 1
        if i < 0:
            raise ccxt.ExchangeError(f"no open interest yet for {symbol}")
        return {
            "symbol": symbol,
            "openInterestAmount": float(arr[i, 1]),
            "timestamp": int(arr[i, 0]),
            "openInterestValue": None,
        }

    async def watch_order_book(
        self, symbol: str, limit: int | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The newest book due at the replay's clock that this symbol's watcher has not had
        yet — like a real watch, it waits for an update instead of handing the same book
        again (which made a feed's book loop spin)."""
        books = self.books.get(symbol)
        if not books:
            raise ccxt.NotSupported(f"the replay has no order-book data for {symbol}")
        times = [b["timestamp"] for b in books]
        while not self.closed:
            i = int(np.searchsorted(times, self._now_ms, side="right"))
            if i > self._books_seen.get(symbol, 0):
                self._books_seen[symbol] = i
                return books[i - 1]
            await asyncio.sleep(0.05)
        raise ccxt.ExchangeClosedByUser("the replay is closed")

    async def watch_trades(
        self,
        symbol: str,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        raise ccxt.NotSupported("the replay carries no trade stream")

    async def close(self) -> None:
        self.closed = True
        if self._driver is not None and not self._driver.done():
            self._driver.cancel()
