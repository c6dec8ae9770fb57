"""snapshot_at / SnapshotBuilder: only closed candles, never a higher-timeframe bar still open."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.core.base import OrderBook
from strategies.core.snapshot import CandleSet, LookAheadError, SnapshotBuilder, snapshot_at
from tests.strategies.core.factories import candles, eth_1m
from trading.core.candles import CandleNotClosed

H12 = 1_750_075_200_000  # 2025-06-16 12:00 UTC
MIN = 60_000
TFS = ("1m", "5m", "15m", "1h")


def minutes(start_ms: int, count: int) -> np.ndarray:
    return candles(100 + np.arange(count) * 0.01, timeframe="1m", start_ms=start_ms)


def test_at_1207_the_last_15m_candle_is_the_1145_one() -> None:
    """1m candles 10:00..12:06 are closed at 12:07. The 15m bucket opened at 12:00 closes at
    12:15, so the last visible 15m candle opened at 11:45; the last 5m one at 12:00 (closed
    12:05); the last 1h one at 11:00."""
    history = minutes(H12 - 2 * 60 * MIN, 127)  # 10:00 .. 12:06
    now = H12 + 7 * MIN
    for snap in (snapshot_at("X", now, history, TFS), SnapshotBuilder("X", history, TFS).at(now)):
        assert snap.candles["15m"][-1, 0] == H12 - 15 * MIN
        assert snap.candles["5m"][-1, 0] == H12
        assert snap.candles["1h"][-1, 0] == H12 - 60 * MIN
        assert snap.candles["1m"][-1, 0] == H12 + 6 * MIN


def test_a_15m_candle_appears_exactly_when_it_closes() -> None:
    """At 12:14 the 12:00 bucket is still open; at 12:15 it is closed and visible with the
    high of its 15 minutes."""
    history = minutes(H12 - 60 * MIN, 90)
    builder = SnapshotBuilder("X", history, TFS)
    assert builder.at(H12 + 14 * MIN).candles["15m"][-1, 0] == H12 - 15 * MIN
    last = builder.at(H12 + 15 * MIN).candles["15m"][-1]
    assert last[0] == H12
    assert last[2] == history[60:75, 2].max()


def test_snapshot_ignores_minutes_that_close_after_now() -> None:
    """A backtester hands the whole history: the 1m candle opened at 12:07 closes at 12:08,
    after now = 12:07, so it is left out (and so is everything later)."""
    history = minutes(H12, 30)
    snap = snapshot_at("X", H12 + 7 * MIN, history, ("1m",))
    assert len(snap.candles["1m"]) == 7
    assert snap.candles["1m"][-1, 0] == H12 + 6 * MIN


def test_builder_refuses_a_forming_candle() -> None:
    """The 12:07 minute is forming until 12:08: appending it at 12:07:30 raises, so a
    forming-candle update can never reach aggregation or a strategy."""
    builder = SnapshotBuilder("X", minutes(H12, 7), TFS)
    forming = minutes(H12 + 7 * MIN, 1)[0]
    with pytest.raises(CandleNotClosed, match="after now"):
        builder.append_candle(forming, now_ms=H12 + 7 * MIN + 30_000)
    builder.append_candle(forming, now_ms=H12 + 8 * MIN)
    assert builder.at(H12 + 8 * MIN).candles["1m"][-1, 0] == H12 + 7 * MIN


def test_an_order_book_stamped_after_now_is_refused() -> None:
    book = OrderBook(H12 + 1, np.array([[100.0, 1.0]]), np.array([[100.1, 1.0]]))
    with pytest.raises(LookAheadError):
        snapshot_at("X", H12, minutes(H12 - 10 * MIN, 10), ("1m",), order_book=book)


def test_builder_picks_the_latest_book_not_after_now() -> None:
    books = [
        OrderBook(t, np.array([[100.0, 1.0]]), np.array([[100.1, 1.0]]))
        for t in (H12 - 2000, H12 - 1000, H12 + 1000)
    ]
    builder = SnapshotBuilder("X", minutes(H12 - 10 * MIN, 10), ("1m",), order_books=books)
    book = builder.at(H12).order_book
    assert book is not None
    assert book.time_ms == H12 - 1000


def test_funding_open_interest_and_trades_are_cut_at_now() -> None:
    """Rows stamped at 12:00 are known at 12:00; rows at 12:00:00.001 are not."""
    rows = np.array([[H12 - 1, 1.0], [H12, 2.0], [H12 + 1, 3.0]])
    trades = np.array([[H12, 100.0, 1.0], [H12 + 1, 100.0, -1.0]])
    snap = snapshot_at(
        "X",
        H12,
        minutes(H12 - 10 * MIN, 10),
        ("1m",),
        funding=rows,
        open_interest=rows,
        trades=trades,
    )
    assert snap.funding is not None and snap.funding[:, 1].tolist() == [1.0, 2.0]
    assert snap.open_interest is not None and len(snap.open_interest) == 2
    assert snap.trades is not None and len(snap.trades) == 1


def test_the_window_holds_the_last_max_candles_periods() -> None:
    """max_candles 4 at 12:07 on 5m: periods opened 11:45, 11:50, 11:55, 12:00."""
    snap = snapshot_at("X", H12 + 7 * MIN, minutes(H12 - 60 * MIN, 67), ("5m",), max_candles=4)
    assert snap.candles["5m"][:, 0].tolist() == [H12 - 15 * MIN + i * 5 * MIN for i in range(4)]


def test_snapshot_arrays_are_read_only_views() -> None:
    snap = SnapshotBuilder("X", minutes(H12, 30), ("1m", "5m")).at(H12 + 30 * MIN)
    with pytest.raises(ValueError, match="read-only"):
        snap.candles["5m"][0, 4] = 0.0


def test_builder_equals_snapshot_at_on_real_candles() -> None:
    """Same arrays, bit for bit, at 300 instants of the real ETH fixture (every 23 minutes)."""
    history = eth_1m()
    builder = SnapshotBuilder("ETH", history, TFS)
    for now in range(int(history[0, 0]), int(history[-1, 0]) + MIN, 23 * MIN)[:300]:
        expected = snapshot_at("ETH", now, history, TFS)
        got = builder.at(now)
        for tf in TFS:
            assert np.array_equal(got.candles[tf], expected.candles[tf]), (tf, now)


def test_appending_live_candles_gives_the_bulk_arrays() -> None:
    """Start with the first day, append the next 1,000 minutes one by one (live): the 5m/15m/1h
    arrays equal those aggregated from the whole history at once."""
    history = eth_1m()[: 1440 + 1000]
    live = SnapshotBuilder("ETH", history[:1440], TFS)
    for row in history[1440:]:
        live.append_candle(row, now_ms=int(row[0]) + MIN)
    bulk = SnapshotBuilder("ETH", history, TFS)
    now = int(history[-1, 0]) + MIN
    for tf in TFS:
        assert np.array_equal(live.candles_at(tf, now), bulk.candles_at(tf, now)), tf


def test_a_candle_set_is_a_read_only_copy_its_builders_read_without_copying() -> None:
    history = eth_1m()[:2000]
    shared = CandleSet(history)
    history[0, 4] = -1.0  # the caller's array changes: the set does not
    assert shared.minutes[0, 4] != -1.0
    with pytest.raises(ValueError, match="read-only"):
        shared.minutes[0, 4] = 0.0
    a, b = SnapshotBuilder("ETH", shared, TFS), SnapshotBuilder("ETH", shared, TFS)
    now = int(shared.minutes[-1, 0]) + MIN
    assert np.shares_memory(a.candles_at("15m", now), b.candles_at("15m", now))
    fresh = SnapshotBuilder("ETH", eth_1m()[:2000], TFS)
    for tf in TFS:
        assert np.array_equal(a.candles_at(tf, now), fresh.candles_at(tf, now)), tf


def test_snapshots_of_one_candle_set_share_derived_values_until_a_candle_is_appended() -> None:
    """Same set, time and window → one memo (a sweep computes an indicator value once).
    Another window, or a builder that appended a live candle (its history is no longer the
    set's), gets its own."""
    history = eth_1m()[:2000]
    shared = CandleSet(history[:1500])
    now = int(history[1499, 0]) + MIN
    a = SnapshotBuilder("ETH", shared, TFS).at(now)
    assert a.derived(("answer",), lambda: 42) == 42
    assert SnapshotBuilder("ETH", shared, TFS).at(now).derived(("answer",), lambda: 0) == 42
    other_window = SnapshotBuilder("ETH", shared, TFS, max_candles=100).at(now)
    assert other_window.derived(("answer",), lambda: 0) == 0
    live = SnapshotBuilder("ETH", shared, TFS)
    assert live.history().memo is shared.memo
    live.append_candle(history[1500], now_ms=now + MIN)
    assert live.history().memo is None
    assert live.at(now).derived(("answer",), lambda: 7) == 7
    assert SnapshotBuilder("ETH", shared, TFS).at(now).derived(("answer",), lambda: 0) == 42


def test_a_builder_resumes_streaming_mid_bucket_from_a_candle_set() -> None:
    """The live aggregator is made at the first append from the set's last minutes: the
    appended candles give the bulk arrays (as from a plain array)."""
    history = eth_1m()[: 1447 + 300]  # starts mid-hour: buckets open at the cut
    live = SnapshotBuilder("ETH", CandleSet(history[:1447]), TFS)
    for row in history[1447:]:
        live.append_candle(row, now_ms=int(row[0]) + MIN)
    bulk = SnapshotBuilder("ETH", history, TFS)
    now = int(history[-1, 0]) + MIN
    for tf in TFS:
        assert np.array_equal(live.candles_at(tf, now), bulk.candles_at(tf, now)), tf
