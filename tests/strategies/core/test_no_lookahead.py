"""No look-ahead, for every strategy (DESIGN §6, freqtrade's lookahead-analysis idea).

At each instant t the decision made from the FULL history (the backtester's SnapshotBuilder)
must equal the decision made from the history CUT at t (what a live runtime knows at t), and
equal it again when everything after t is replaced by garbage. The instants include every
candle where the strategy fires, so the equality is checked on signals, not only on None.
"""

from __future__ import annotations

import numpy as np
import pytest

from strategies.core.base import Signal, Strategy
from strategies.core.catalog import build_strategy
from strategies.core.orderflow_data import book_at, read_order_books, read_trades
from strategies.core.snapshot import SnapshotBuilder, snapshot_at
from tests.strategies.core.factories import (
    BTC_BOOK,
    BTC_TRADES,
    eth_1m,
    recorded_style_open_interest,
    sol_1m,
    sol_funding,
)
from tests.strategies.core.test_order_flow import LONG, SHORT
from trading.core.candles import timeframe_ms

TFS = ("5m", "15m", "1h")
MIN = 60_000


def scrambled_after(rows: np.ndarray, now_ms: int, time_column_offset_ms: int) -> np.ndarray:
    """``rows`` with every value after ``now_ms`` replaced by random garbage (times kept)."""
    out = rows.copy()
    future = rows[:, 0] + time_column_offset_ms > now_ms
    rng = np.random.default_rng(int(now_ms) % 2**32)
    garbage = rng.uniform(0.5, 2.0, size=(int(future.sum()), rows.shape[1] - 1))
    out[future, 1:] = out[future, 1:] * garbage
    if rows.shape[1] == 6:  # keep garbage candles consistent enough to aggregate
        out[future, 2] = out[future, 1:5].max(axis=1)
        out[future, 3] = out[future, 1:5].min(axis=1)
    return out


def assert_no_lookahead(
    strategy: Strategy,
    history: np.ndarray,
    instants: list[int],
    **inputs: np.ndarray,
) -> list[Signal]:
    full = SnapshotBuilder("X", history, TFS, **inputs)
    signals = []
    for now in instants:
        expected = strategy.decide(full.at(now))
        cut = history[history[:, 0] + MIN <= now]
        cut_inputs = {k: v[v[:, 0] <= now] for k, v in inputs.items()}
        assert strategy.decide(snapshot_at("X", now, cut, TFS, **cut_inputs)) == expected, now
        garbage_history = scrambled_after(history, now, MIN)
        garbage_inputs = {k: scrambled_after(v, now, 0) for k, v in inputs.items()}
        scrambled = snapshot_at("X", now, garbage_history, TFS, **garbage_inputs)
        assert strategy.decide(scrambled) == expected, now
        if expected is not None:
            signals.append(expected)
    return signals


def instants(builder: SnapshotBuilder, strategy: Strategy, timeframe: str, every: int) -> list[int]:
    """Every ``every``-th close of ``timeframe`` plus every close where the strategy fires."""
    closes = [int(t) for t in builder.close_times_ms(timeframe)]
    firing = [t for t in closes if strategy.decide(builder.at(t)) is not None]
    return sorted(set(closes[::every]) | set(firing[:20]))


@pytest.mark.parametrize(
    ("kind", "params", "timeframe"),
    [
        ("vwap_rsi", {}, "5m"),
        ("momentum_breakout", {}, "5m"),
        ("swing_baseline", {}, "1h"),
    ],
)
def test_candle_strategies_decide_the_same_without_the_future(kind, params, timeframe) -> None:
    history = eth_1m()
    strategy = build_strategy(kind, params)
    builder = SnapshotBuilder("X", history, TFS)
    signals = assert_no_lookahead(strategy, history, instants(builder, strategy, timeframe, 9))
    assert signals, f"{kind} never fired on the sampled instants"


def test_funding_arbitrage_decides_the_same_without_the_future() -> None:
    history, funding = sol_1m(), sol_funding()
    strategy = build_strategy("funding_arbitrage", {"extreme_rate": 0.00012})
    builder = SnapshotBuilder("X", history, TFS, funding=funding)
    times = instants(builder, strategy, "1h", 1)
    assert assert_no_lookahead(strategy, history, times, funding=funding)


def test_liquidation_zones_decide_the_same_without_the_future() -> None:
    history = eth_1m()
    start, end = int(history[0, 0]), int(history[-1, 0]) + MIN
    build_ups = {1_749_854_400_000: 20_000.0, 1_750_060_800_000: 30_000.0}
    oi = recorded_style_open_interest(start, end, build_ups)
    strategy = build_strategy("liquidation_zones", {})
    builder = SnapshotBuilder("X", history, TFS, open_interest=oi)
    times = instants(builder, strategy, "5m", 11)
    assert assert_no_lookahead(strategy, history, times, open_interest=oi)


def test_order_flow_confirms_the_same_without_the_future() -> None:
    """Every 10 s of the real capture: the adjustment from all trades equals the one from the
    trades up to t, and from trades whose future is garbage."""
    books, flow = read_order_books(BTC_BOOK), read_trades(BTC_TRADES)
    strategy = build_strategy("order_flow", {})
    minute = np.array([[0.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    deltas = set()
    for now in range(books[0].time_ms + 60_000, books[-1].time_ms, 10_000):
        book = book_at(books, now)
        full = snapshot_at("X", now, minute, ("1m",), order_book=book, trades=flow)
        cut = snapshot_at(
            "X", now, minute, ("1m",), order_book=book, trades=flow[flow[:, 0] <= now]
        )
        garbage = snapshot_at(
            "X", now, minute, ("1m",), order_book=book, trades=scrambled_after(flow, now, 0)
        )
        for signal in (LONG, SHORT):
            expected = strategy.confirm(signal, full)
            assert strategy.confirm(signal, cut) == expected
            assert strategy.confirm(signal, garbage) == expected
            deltas.add(round(expected.delta, 6))
    assert len(deltas) > 10


def test_timeframes_used_here_are_whole_minutes() -> None:
    assert all(timeframe_ms(tf) % MIN == 0 for tf in TFS)
