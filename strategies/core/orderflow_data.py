"""Loaders for recorded order-flow data: L2 book snapshots and taker trades (csv or csv.gz).

Formats (those of the bundled Binance captures, see ``/work/shared/data/README.md``):

* book — ``timestamp_ms,side,level,price,qty`` with ``side`` in {bid, ask} and ``level`` 0 =
  best; one snapshot per distinct ``timestamp_ms``. → a time-sorted list of
  :class:`~strategies.core.base.OrderBook` (bids/asks ``(N, 2)`` arrays ``[price, qty]``, best
  first);
* trades — ``timestamp_ms,trade_id,price,qty,side`` with ``side`` the TAKER side (``buy`` when
  the buyer lifted the offer). → an ``(T, 3)`` array ``[time_ms, price, signed_qty]``,
  ``signed_qty > 0`` for a taker buy: the shape :class:`MarketSnapshot.trades` expects.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from strategies.core.base import OrderBook


class OrderFlowDataError(ValueError):
    """A row of an order-flow file that does not fit its format."""


def _rows(path: str | Path) -> Iterator[dict[str, str]]:
    path = Path(path)
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # noqa: SIM115
    with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        yield from csv.DictReader(text)


def read_order_books(path: str | Path) -> list[OrderBook]:
    """Every book snapshot of a ``timestamp_ms,side,level,price,qty`` file, oldest first."""
    books: dict[int, dict[str, list[tuple[int, float, float]]]] = {}
    for line, row in enumerate(_rows(path), start=2):
        side = row["side"]
        if side not in ("bid", "ask"):
            raise OrderFlowDataError(f"{path}:{line}: side must be bid or ask, got {side!r}")
        sides = books.setdefault(int(row["timestamp_ms"]), {"bid": [], "ask": []})
        sides[side].append((int(row["level"]), float(row["price"]), float(row["qty"])))
    result = []
    for time_ms in sorted(books):
        sides = books[time_ms]
        bids = np.array([(p, q) for _, p, q in sorted(sides["bid"])], dtype=np.float64)
        asks = np.array([(p, q) for _, p, q in sorted(sides["ask"])], dtype=np.float64)
        result.append(OrderBook(time_ms, bids.reshape(-1, 2), asks.reshape(-1, 2)))
    return result


def read_trades(path: str | Path) -> np.ndarray:
    """``[time_ms, price, signed_qty]`` rows of a ``timestamp_ms,trade_id,price,qty,side`` file."""
    rows = []
    for line, row in enumerate(_rows(path), start=2):
        side = row["side"]
        if side not in ("buy", "sell"):
            raise OrderFlowDataError(f"{path}:{line}: side must be buy or sell, got {side!r}")
        qty = float(row["qty"])
        rows.append(
            (float(row["timestamp_ms"]), float(row["price"]), qty if side == "buy" else -qty)
        )
    trades = np.array(rows, dtype=np.float64).reshape(-1, 3)
    order = np.argsort(trades[:, 0], kind="stable")
    return trades[order]


def book_at(books: Sequence[OrderBook], time_ms: int) -> OrderBook | None:
    """The latest book stamped at or before ``time_ms`` (books time-sorted), or None."""
    times = np.fromiter((book.time_ms for book in books), dtype=np.int64, count=len(books))
    index = int(np.searchsorted(times, time_ms, side="right")) - 1
    return books[index] if index >= 0 else None
