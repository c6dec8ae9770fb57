"""The feed hands every closed candle on exactly once, in order, whatever the websocket does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import ccxt
import numpy as np
import pytest

from trading.core.candles import read_candles_csv
from trading.core.ratelimit import RateLimiter
from trading.feed.detector import MINUTE_MS, CandleCloseDetector, Gap
from trading.feed.feed import MarketFeed
from trading.feed.simulated import Faults, SimulatedExchange

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC


def candle(t: int, close: float = 100.0) -> list[float]:
    return [float(t), 100.0, max(101.0, close), min(99.0, close), close, 5.0]


class Recorder:
    def __init__(self) -> None:
        self.closed: list[tuple[str, int]] = []
        self.rows: list[tuple[float, ...]] = []
        self.prices: list[tuple[str, float]] = []
        self.alerts: list[str] = []
        self.flushed_after: int | None = None  # candles handed over when the feed flushed

    async def on_closed_candle(self, symbol, row):
        self.closed.append((symbol, int(row[0])))
        self.rows.append(row)

    async def on_price(self, symbol, price, time_ms, kind):
        self.prices.append((symbol, price))

    async def on_order_book(self, symbol, book):
        pass

    async def on_trades(self, symbol, trades):
        pass

    async def on_alert(self, level, message):
        self.alerts.append(message)

    async def flush(self):
        self.flushed_after = len(self.closed)


# -- the detector, one test per way a close shows up ------------------------------------------


def test_a_candle_closes_when_an_update_carries_it_with_a_newer_one():
    det = CandleCloseDetector()
    res = det.on_update([candle(T0), candle(T0 + MINUTE_MS)], now_ms=T0 + MINUTE_MS + 1_000)
    assert [int(r[0]) for r in res.closed] == [T0]
    assert res.forming is not None and int(res.forming[0]) == T0 + MINUTE_MS


def test_a_candle_closes_with_its_last_seen_state_when_only_the_new_one_arrives():
    det = CandleCloseDetector()
    det.on_update([candle(T0, close=100.5)], now_ms=T0 + 30_000)
    res = det.on_update([candle(T0 + MINUTE_MS)], now_ms=T0 + MINUTE_MS + 2_000)
    assert [(int(r[0]), r[4]) for r in res.closed] == [(T0, 100.5)]


def test_a_silent_stream_reports_the_overdue_candles_for_rest_healing():
    det = CandleCloseDetector(last_closed_open_ms=T0, grace_ms=5_000)
    assert det.overdue(T0 + 2 * MINUTE_MS + 4_000) is None  # T0+1m closes at T0+2m, grace 5 s
    assert det.overdue(T0 + 2 * MINUTE_MS + 6_000) == Gap(T0 + MINUTE_MS, T0 + MINUTE_MS)


def test_a_jump_ahead_reports_the_missing_minutes_as_a_gap():
    det = CandleCloseDetector(last_closed_open_ms=T0)
    res = det.on_update(
        [candle(T0 + 3 * MINUTE_MS), candle(T0 + 4 * MINUTE_MS)], now_ms=T0 + 4 * MINUTE_MS + 1
    )
    assert res.gaps == [Gap(T0 + MINUTE_MS, T0 + 2 * MINUTE_MS)]
    assert res.gaps[0].minutes == 2


def test_duplicates_old_candles_and_a_forming_candle_are_never_closed_twice():
    det = CandleCloseDetector()
    det.on_update([candle(T0), candle(T0 + MINUTE_MS)], now_ms=T0 + MINUTE_MS + 1)
    res = det.on_update([candle(T0), candle(T0 + MINUTE_MS)], now_ms=T0 + MINUTE_MS + 2)
    assert res.closed == [] and res.duplicates == 1


def test_malformed_rows_are_rejected_with_a_reason_and_the_rest_kept():
    det = CandleCloseDetector()
    bad_hl = [float(T0 + MINUTE_MS), 100.0, 99.0, 101.0, 100.0, 1.0]
    res = det.on_update(
        [["x", 1], candle(T0), bad_hl, candle(T0 + 2 * MINUTE_MS)],
        now_ms=T0 + 2 * MINUTE_MS + 1,
    )
    assert len(res.rejected) == 2
    assert any("high 99.0 < low 101.0" in r for r in res.rejected)
    assert [int(r[0]) for r in res.closed] == [T0]
    assert res.gaps == []  # T0+1m is missing but the forming one is T0+2m: gap reported later


# -- the whole feed over the simulated exchange ------------------------------------------------


def run_feed(exchange: SimulatedExchange, symbols: list[str], **kwargs) -> Recorder:
    recorder = Recorder()

    async def no_sleep(_s: float) -> None:
        await asyncio.sleep(0)

    async def main():
        feed = MarketFeed(exchange, symbols, recorder, RateLimiter(), sleep=no_sleep, **kwargs)
        await asyncio.wait_for(feed.run(), timeout=30)

    asyncio.run(main())
    return recorder


@pytest.fixture(scope="module")
def btc() -> np.ndarray:
    arr = read_candles_csv(next(SAMPLE.glob("binance-usdm_BTC-USDT_1m_*.csv.gz")))
    return arr[:300]


def test_every_real_candle_arrives_once_and_in_order_despite_every_fault(btc):
    faults = Faults(
        disconnect={20, 21, 90},
        silent={40, 41, 42},
        new_only={60, 61},
        duplicate={70},
        out_of_order={80},
        malformed={100},
    )
    start = int(btc[10, 0])
    ex = SimulatedExchange({"BTC/USDT:USDT": btc}, start_ms=start, faults={"BTC/USDT:USDT": faults})
    rec = run_feed(ex, ["BTC/USDT:USDT"], last_closed_ms={"BTC/USDT:USDT": int(btc[9, 0])})
    times = [t for _, t in rec.closed]
    assert times == [int(t) for t in btc[10:, 0]]  # no loss, no duplicate, in order
    assert np.array_equal(np.array(rec.rows), btc[10:])  # final values, never forming ones
    assert rec.flushed_after == len(times)  # the handler was told once every candle was handed
    assert any("disconnected" in a for a in rec.alerts)
    assert any("dropped malformed" in a for a in rec.alerts)


def test_forming_updates_only_move_the_price_ticker(btc):
    ex = SimulatedExchange({"BTC/USDT:USDT": btc[:20]})
    rec = run_feed(ex, ["BTC/USDT:USDT"])
    assert len(rec.prices) >= 19
    closes = {float(r[4]) for r in rec.rows}
    mids = {(float(o) + float(c)) / 2 for o, c in btc[:20, [1, 4]]}
    assert {p for _, p in rec.prices} <= mids
    assert len(rec.closed) == 20 and closes == {float(c) for c in btc[:20, 4]}


def test_a_restart_heals_missed_candles_before_new_ones(btc):
    """The radar stopped after candle 49; the replay resumes at 120: 50..119 come from REST
    first, then the stream continues — all in order."""
    ex = SimulatedExchange({"BTC/USDT:USDT": btc[:150]}, start_ms=int(btc[120, 0]))
    rec = run_feed(ex, ["BTC/USDT:USDT"], last_closed_ms={"BTC/USDT:USDT": int(btc[49, 0])})
    assert [t for _, t in rec.closed] == [int(t) for t in btc[50:150, 0]]


def test_several_symbols_replay_in_lockstep():
    arrays = {
        s: read_candles_csv(next(SAMPLE.glob(f"binance-usdm_{s[:3]}-USDT_1m_*.csv.gz")))[:60]
        for s in ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
    }
    rec = run_feed(SimulatedExchange(arrays), list(arrays))
    for symbol, arr in arrays.items():
        assert [t for s, t in rec.closed if s == symbol] == [int(t) for t in arr[:, 0]]


def test_a_newest_candle_closed_by_the_clock_alone_is_confirmed_over_rest():
    """A consumer lagging past the close: the update's newest row may still be a forming state,
    so it is flagged unconfirmed (the feed fetches its final values) instead of trusted."""
    det = CandleCloseDetector(grace_ms=5_000)
    res = det.on_update([candle(T0, close=100.5)], now_ms=T0 + MINUTE_MS + 6_000)
    assert [int(r[0]) for r in res.closed] == [T0]
    assert res.unconfirmed == [T0]
    assert res.forming is None


def test_a_lagging_consumer_still_gets_the_final_values_of_every_candle(btc):
    """The replay clock waits for its consumers; and were a consumer to lag, the clock-closed
    candle would be re-fetched. Either way no forming value reaches the handler."""
    ex = SimulatedExchange({"BTC/USDT:USDT": btc[:120]})
    rec = run_feed(ex, ["BTC/USDT:USDT"])
    assert np.array_equal(np.array(rec.rows), btc[:120])


def test_the_replay_runs_the_warm_up_unpaced_then_at_its_speed(btc, monkeypatch):
    """speed 60 = one minute per second: the 30 minutes before ``fast_until_ms`` are not waited
    for, the 10 after it wait 1 s each (sleeps recorded, not timed)."""
    import trading.feed.simulated as simulated

    real_sleep = asyncio.sleep
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(simulated.asyncio, "sleep", record)
    ex = SimulatedExchange({"BTC/USDT:USDT": btc[:40]}, speed=60.0, fast_until_ms=int(btc[30, 0]))
    rec = run_feed(ex, ["BTC/USDT:USDT"])
    assert len(rec.closed) == 40
    assert [w for w in waits if w > 0] == [1.0] * 10


# -- bad rows from the exchange are refused, alerted, never handed on (issue 12) ---------------

YEAR_3000 = 32_503_680_000_000  # 3000-01-01 00:00 UTC


def test_a_year_3000_candle_in_an_update_is_refused_and_does_not_move_the_clock():
    """Without the check it would close T0 and become the detector's last candle, so every
    later real candle would count as a duplicate."""
    det = CandleCloseDetector(last_closed_open_ms=T0 - MINUTE_MS)
    res = det.on_update([candle(T0), candle(YEAR_3000)], now_ms=T0 + 30_000)
    assert len(res.rejected) == 1 and "3000-01-01 00:00 UTC) is in the future" in res.rejected[0]
    assert res.forming is not None and int(res.forming[0]) == T0
    res = det.on_update([candle(T0), candle(T0 + MINUTE_MS)], now_ms=T0 + MINUTE_MS + 1_000)
    assert [int(r[0]) for r in res.closed] == [T0]
    assert det.last_closed_open_ms == T0


def test_a_candle_100_times_off_its_neighbours_is_refused_with_an_alert(btc):
    """Real candle 30 rewritten at 100× its prices: dropped (alert), its neighbours arrive."""
    spiked = btc[:60].copy()
    spiked[30, 1:5] *= 100
    rec = run_feed(SimulatedExchange({"BTC/USDT:USDT": spiked}), ["BTC/USDT:USDT"])
    assert [t for _, t in rec.closed] == [int(t) for i, t in enumerate(btc[:60, 0]) if i != 30]
    assert any("100× away from its neighbours" in a for a in rec.alerts)


def test_candles_before_the_listing_are_refused(btc):
    listed = int(btc[5, 0])
    rec = run_feed(
        SimulatedExchange({"BTC/USDT:USDT": btc[:20]}),
        ["BTC/USDT:USDT"],
        listed_ms={"BTC/USDT:USDT": listed},
    )
    assert [t for _, t in rec.closed] == [int(t) for t in btc[5:20, 0]]
    assert sum("before the exchange listed the symbol" in a for a in rec.alerts) == 5


class BadRestExchange(SimulatedExchange):
    """Its REST history carries one impossible row (high below low) in the healed range."""

    async def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        rows = await super().fetch_ohlcv(symbol, timeframe, since, limit, params)
        return [[r[0], r[1], r[3] - 1, r[2] + 1, r[4], r[5]] if i == 3 else r
                for i, r in enumerate(rows)]  # fmt: skip


def test_a_bad_rest_row_while_healing_is_refused_with_an_alert(btc):
    """Restart after candle 49, resume at 120: the healed page's 4th row (candle 53) is bad."""
    ex = BadRestExchange({"BTC/USDT:USDT": btc[:150]}, start_ms=int(btc[120, 0]))
    rec = run_feed(ex, ["BTC/USDT:USDT"], last_closed_ms={"BTC/USDT:USDT": int(btc[49, 0])})
    assert int(btc[53, 0]) not in [t for _, t in rec.closed]
    assert any("(REST)" in a and "< low" in a for a in rec.alerts)


async def test_a_replayed_book_is_handed_once_then_the_watch_waits_for_the_next(btc):
    """A real ``watch_order_book`` answers on an update; the replay's used to return the same
    book at once on every call, and a feed's book loop spun on it."""
    t0 = int(btc[0, 0])
    books = [
        {"timestamp": t0, "bids": [[100.0, 1.0]], "asks": [[100.5, 1.0]]},
        {"timestamp": t0 + MINUTE_MS, "bids": [[101.0, 1.0]], "asks": [[101.5, 1.0]]},
    ]
    ex = SimulatedExchange({"BTC/USDT:USDT": btc[:5]}, books={"BTC/USDT:USDT": books})
    assert (await ex.watch_order_book("BTC/USDT:USDT"))["bids"][0][0] == 100.0
    waiting = asyncio.ensure_future(ex.watch_order_book("BTC/USDT:USDT"))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # nothing new at this market time: no second copy
    ex._now_ms = t0 + MINUTE_MS
    assert (await asyncio.wait_for(waiting, 2))["bids"][0][0] == 101.0
    again = asyncio.ensure_future(ex.watch_order_book("BTC/USDT:USDT"))
    await ex.close()
    with pytest.raises(ccxt.ExchangeClosedByUser):
        await asyncio.wait_for(again, 2)
