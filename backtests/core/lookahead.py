"""Look-ahead analysis (freqtrade-style): re-decide every signal on data cut at its candle.

For each :class:`SignalEvent` of a run, the decision is taken again from scratch: a FRESH
snapshot built with :func:`strategies.core.snapshot.snapshot_at` from ``history[:i+1]`` (the 1m
candles that had closed at the signal time, nothing after), the strategy's ``decide`` and the
confirmers' ``confirm``. Any difference with the signal the run recorded means the run's
snapshot leaked data from the future: :class:`LookAheadDetected` names the strategy, the
candle and the fields that differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from strategies.core.base import OrderBook, Signal, Strategy
from strategies.core.kernel import SignalEvent
from strategies.core.scoring import apply_confirmation
from strategies.core.snapshot import snapshot_at
from trading.core.candles import MINUTE_MS


class LookAheadDetected(AssertionError):
    """A signal changed when the future was removed from its data."""


def _differences(a: Signal | None, b: Signal | None) -> list[str]:
    if a is None or b is None:
        return [] if a is b else ["signal (present in one run only)"]
    return [f.name for f in fields(Signal) if getattr(a, f.name) != getattr(b, f.name)]


def check_lookahead(
    strategy: Strategy,
    symbol: str,
    history_1m: np.ndarray,
    signals: Sequence[SignalEvent],
    timeframes: Sequence[str],
    *,
    funding: np.ndarray | None = None,
    open_interest: np.ndarray | None = None,
    order_books: Sequence[OrderBook] = (),
    trades: np.ndarray | None = None,
    confirmers: Sequence[Strategy] = (),
    max_candles: int,
) -> int:
    """Re-decide each signal on truncated data; return how many were checked."""
    history = np.asarray(history_1m, dtype=np.float64)
    book_times = np.array([b.time_ms for b in order_books], dtype=np.int64)
    for event in signals:
        now_ms = event.time_ms
        end = int(np.searchsorted(history[:, 0], now_ms - MINUTE_MS, side="right"))
        cut = [row for row in (funding, open_interest, trades)]
        cut = [None if a is None else a[a[:, 0] <= now_ms] for a in cut]
        book = None
        if len(book_times):
            k = int(np.searchsorted(book_times, now_ms, side="right")) - 1
            book = order_books[k] if k >= 0 else None
        market = snapshot_at(
            symbol,
            now_ms,
            history[:end].copy(),
            timeframes,
            funding=cut[0],
            open_interest=cut[1],
            trades=cut[2],
            order_book=book,
            max_candles=max_candles,
        )
        again = strategy.decide(market)
        if again is not None and confirmers:
            again = apply_confirmation(again, [c.confirm(again, market) for c in confirmers])
        diff = _differences(event.signal, again)
        if diff:
            raise LookAheadDetected(
                f"{strategy.kind} on {symbol}: the signal of the candle closing at {now_ms} ms "
                f"changes without the data after it ({', '.join(diff)} differ): look-ahead"
            )
    return len(signals)
