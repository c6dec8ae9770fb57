"""Every live input besides candles, per symbol, handed to the kernels.

* funding settlements ``[time_ms, rate]`` and open interest ``[time_ms, oi]``: stored by the
  pollers (Celery beat, or :mod:`radar.pollers` in the embedded mode) or by a replay; the
  runtime reads the rows newer than the last seen per symbol (:meth:`MarketInputs.read_new`,
  one query per table, at most every ``controls_every_s``) and appends them;
* the L2 book: the latest snapshot from the feed;
* trades: a rolling window ``[time_ms, price, signed_qty]`` (buy +, sell −) of the last
  ``TRADES_WINDOW_MS`` (at most ``TRADES_MAX`` rows) for the order-flow filter.

``StrategyKernel.set_inputs`` replaces every input at once, so :meth:`MarketInputs.give`
always passes them all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from django.db.models import Q

from strategies.core.base import OrderBook
from strategies.core.kernel import StrategyKernel
from trading.models import FundingRate, OpenInterest

TRADES_WINDOW_MS = 30 * 60_000  # order flow: delta window × (EARLIER_WINDOWS + 1), with room
TRADES_MAX = 100_000
OPEN_INTEREST_KEPT_MS = 15 * 86_400_000  # liquidation zones look back at most 14 days
_EMPTY_2 = np.empty((0, 2), dtype=np.float64)


class MarketInputs:
    """The non-candle inputs of every symbol, as the kernels see them."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.funding: dict[str, np.ndarray] = {}
        self.open_interest: dict[str, np.ndarray] = {}
        self.order_books: dict[str, OrderBook] = {}
        self._trades: dict[str, deque[tuple[float, float, float]]] = {}

    # -- what the kernels get ----------------------------------------------------------------
    def trades(self, symbol: str) -> np.ndarray | None:
        window = self._trades.get(symbol)
        if not window:
            return None
        return np.asarray(window, dtype=np.float64).reshape(-1, 3)

    def give(self, kernel: StrategyKernel, symbol: str) -> None:
        if symbol not in kernel.symbols():
            return
        kernel.set_inputs(
            symbol,
            funding=self.funding.get(symbol),
            open_interest=self.open_interest.get(symbol),
            order_book=self.order_books.get(symbol),
            trades=self.trades(symbol),
        )

    def give_all(self, kernels: Iterable[StrategyKernel], symbols: Iterable[str]) -> None:
        symbols = list(symbols)
        for kernel in kernels:
            for symbol in symbols:
                self.give(kernel, symbol)

    # -- what arrives ------------------------------------------------------------------------
    def set_funding(self, symbol: str, rows: np.ndarray) -> None:
        self.funding[symbol] = np.asarray(rows, dtype=np.float64).reshape(-1, 2)

    def set_open_interest(self, symbol: str, rows: np.ndarray) -> None:
        self.open_interest[symbol] = np.asarray(rows, dtype=np.float64).reshape(-1, 2)

    def set_order_book(self, symbol: str, book: dict[str, Any]) -> None:
        bids = np.asarray(book.get("bids") or [], dtype=np.float64).reshape(-1, 2)
        asks = np.asarray(book.get("asks") or [], dtype=np.float64)
        self.order_books[symbol] = OrderBook(
            time_ms=int(book.get("timestamp") or 0), bids=bids, asks=asks.reshape(-1, 2)
        )

    def add_trades(self, symbol: str, trades: Sequence[dict[str, Any]]) -> int:
        """Append ccxt trades (``timestamp``, ``price``, ``amount``, ``side``) to the window;
        returns how many were kept. A trade without a side or an amount is not order flow."""
        window = self._trades.setdefault(symbol, deque(maxlen=TRADES_MAX))
        kept = 0
        for trade in trades:
            t, price, amount = trade.get("timestamp"), trade.get("price"), trade.get("amount")
            side = trade.get("side")
            if t is None or price is None or amount is None or side not in ("buy", "sell"):
                continue
            if window and int(t) < window[-1][0]:
                continue  # a redelivered older trade
            qty = float(amount) if side == "buy" else -float(amount)
            window.append((float(int(t)), float(price), qty))
            kept += 1
        if window:
            start = window[-1][0] - TRADES_WINDOW_MS
            while window and window[0][0] <= start:
                window.popleft()
        return kept

    def read_new(self, symbols: Sequence[str]) -> set[str]:
        """Append the stored funding and open-interest rows newer than the last seen per symbol
        (one query per table); returns the symbols whose inputs changed."""
        changed: set[str] = set()
        if not symbols:
            return changed
        funding = _newer_rows(
            FundingRate, "funding_time_ms", "rate", self.exchange, self.funding, symbols
        )
        for symbol, new in funding.items():
            self.funding[symbol] = np.vstack([self.funding.get(symbol, _EMPTY_2), new])
            changed.add(symbol)
        interest = _newer_rows(
            OpenInterest, "time_ms", "open_interest", self.exchange, self.open_interest, symbols
        )
        for symbol, new in interest.items():
            series = np.vstack([self.open_interest.get(symbol, _EMPTY_2), new])
            keep_from = series[-1, 0] - OPEN_INTEREST_KEPT_MS
            self.open_interest[symbol] = series[series[:, 0] > keep_from]
            changed.add(symbol)
        return changed


def _newer_rows(
    model: Any,
    time_field: str,
    value_field: str,
    exchange: str,
    known: Mapping[str, np.ndarray],
    symbols: Sequence[str],
) -> dict[str, np.ndarray]:
    """``[time_ms, value]`` rows of ``model`` per symbol stamped after the last ``known`` one
    (one query for all symbols)."""
    since = Q()
    for symbol in symbols:
        rows = known.get(symbol)
        last = int(rows[-1, 0]) if rows is not None and len(rows) else -1
        since |= Q(symbol=symbol, **{f"{time_field}__gt": last})
    found = (
        model.objects.filter(since, exchange=exchange)
        .order_by("symbol", time_field)
        .values_list("symbol", time_field, value_field)
    )
    return _by_symbol(found)


def _by_symbol(rows: Iterable[tuple[str, int, float]]) -> dict[str, np.ndarray]:
    grouped: dict[str, list[tuple[int, float]]] = {}
    for symbol, t, value in rows:
        grouped.setdefault(symbol, []).append((t, value))
    return {s: np.asarray(v, dtype=np.float64).reshape(-1, 2) for s, v in grouped.items()}
