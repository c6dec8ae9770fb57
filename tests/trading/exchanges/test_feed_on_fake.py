"""MarketFeed with the real ccxt.pro bitget against the fake, and the exchanges.yaml keys that
shape its reconnects, staleness, book depth and REST retries."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import numpy as np
import pytest

from trading.core.candles import read_candles_csv
from trading.core.ratelimit import RateLimiter
from trading.exchanges.clients import ExchangeSettings, feed_options
from trading.exchanges.fake.market import SAMPLE_DIR
from trading.feed.feed import MarketFeed
from trading.feed.simulated import Faults, SimulatedExchange

BTC = "BTC/USDT:USDT"
MINUTE_MS = 60_000


class Recorder:
    """Collects what the feed hands over; stops the feed after ``stop_after`` closed candles."""

    def __init__(self, stop_after: int = 10**9) -> None:
        self.rows: list[tuple[float, ...]] = []
        self.alerts: list[str] = []
        self.books: list[dict[str, Any]] = []
        self.stop_after = stop_after
        self.feed: MarketFeed | None = None

    async def on_closed_candle(self, symbol, row):
        self.rows.append(row)
        if len(self.rows) >= self.stop_after and self.feed is not None:
            self.feed.stop()

    async def on_price(self, symbol, price, time_ms, kind):
        pass

    async def on_order_book(self, symbol, book):
        self.books.append(book)

    async def on_trades(self, symbol, trades):
        pass

    async def on_alert(self, level, message):
        self.alerts.append(message)

    async def flush(self):
        pass


def make_feed(
    exchange, recorder: Recorder, bitget_settings: ExchangeSettings, **kwargs
) -> MarketFeed:
    options = feed_options(bitget_settings)
    options.update(backoff_initial_s=0.01, backoff_max_s=0.05)  # wall seconds: keep tests fast
    options.update(kwargs)
    feed = MarketFeed(exchange, [BTC], recorder, RateLimiter(), **options)
    recorder.feed = feed
    return feed


@pytest.fixture(scope="module")
def btc() -> np.ndarray:
    return read_candles_csv(next(SAMPLE_DIR.glob("binance-usdm_BTC-USDT_1m_*.csv.gz")))


def assert_real_and_consecutive(rows: list[tuple[float, ...]], btc: np.ndarray) -> None:
    times = [int(r[0]) for r in rows]
    assert times == list(range(times[0], times[0] + MINUTE_MS * len(times), MINUTE_MS))
    start = int(np.searchsorted(btc[:, 0], times[0]))
    assert np.array_equal(np.array(rows), btc[start : start + len(rows)])


async def test_the_feed_delivers_real_closed_candles_once_in_order_across_a_websocket_drop(
    exchange, fake, bitget_settings, btc
):
    """Resume 3 minutes back (REST heal first), drop every websocket after 5 closed candles,
    expect a reconnect and an unbroken run of final candles."""
    last = fake.now_ms() // MINUTE_MS * MINUTE_MS - 4 * MINUTE_MS
    recorder = Recorder(stop_after=14)
    feed = make_feed(exchange, recorder, bitget_settings, last_closed_ms={BTC: last})

    async def drop_later():
        while len(recorder.rows) < 5:
            await asyncio.sleep(0.005)
        await fake.drop_websockets()

    dropper = asyncio.create_task(drop_later())
    stats = await asyncio.wait_for(feed.run(), timeout=10)
    await dropper
    assert int(recorder.rows[0][0]) == last + MINUTE_MS
    assert_real_and_consecutive(recorder.rows, btc)
    assert stats.reconnects >= 1
    assert any("disconnected" in a for a in recorder.alerts)
    assert len(fake.requests_to("/v2/ws/public")) >= 2  # dialled again


@pytest.mark.parametrize(("multiplier", "expected"), [(3.0, [1.0, 3.0, 9.0]), (2.0, [1, 2, 4])])
async def test_the_backoff_multiplier_key_sets_the_waits_between_reconnects(
    bitget_settings, btc, multiplier, expected
):
    """Three disconnects in a row: waits initial × multiplier^k (capped by max_backoff_s)."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    ex = SimulatedExchange({BTC: btc[:30]}, faults={BTC: Faults(disconnect={5, 6, 7})})
    changed = dataclasses.replace(
        bitget_settings, initial_backoff_s=1.0, max_backoff_s=60.0, backoff_multiplier=multiplier
    )
    feed = MarketFeed(ex, [BTC], Recorder(), RateLimiter(), sleep=record, **feed_options(changed))
    await asyncio.wait_for(feed.run(), timeout=10)
    assert waits == expected


@pytest.mark.parametrize(("max_retries", "reconnects"), [(0, 2), (2, 0)])
async def test_the_max_retries_key_retries_a_failing_rest_heal_before_reconnecting(
    exchange, fake, bitget_settings, btc, max_retries, reconnects
):
    """Two 503s on the first candles page: 2 retries absorb them (3 attempts, no reconnect);
    0 retries turns each into a disconnect (2 reconnects), healed after them."""
    last = fake.now_ms() // MINUTE_MS * MINUTE_MS - 3 * MINUTE_MS
    await exchange.load_markets()
    fake.fail_next("/mix/market/candles", 503, times=2)
    recorder = Recorder(stop_after=4)
    feed = make_feed(
        exchange,
        recorder,
        dataclasses.replace(bitget_settings, max_retries=max_retries),
        last_closed_ms={BTC: last},
    )
    stats = await asyncio.wait_for(feed.run(), timeout=10)
    assert stats.reconnects == reconnects
    assert_real_and_consecutive(recorder.rows, btc)
    if max_retries:
        assert len(fake.requests_to("/mix/market/candles")) >= 3


@pytest.mark.parametrize(("stale_after_s", "reconnects"), [(0.15, True), (None, False)])
async def test_the_stale_after_key_reconnects_a_silent_stream(
    exchange, fake, bitget_settings, stale_after_s, reconnects
):
    recorder = Recorder(stop_after=10**9)
    feed = make_feed(
        exchange, recorder, dataclasses.replace(bitget_settings), stale_after_s=stale_after_s
    )
    task = asyncio.create_task(feed.run())
    await asyncio.sleep(0.1)
    fake.silence_websockets()
    await asyncio.sleep(0.4)
    feed.stop()
    fake.silence_websockets(False)
    await asyncio.wait_for(task, timeout=5)
    assert (feed.stats.reconnects >= 1) is reconnects
    assert any("no message" in a for a in recorder.alerts) is reconnects
    assert (len(fake.requests_to("/v2/ws/public")) >= 2) is reconnects


@pytest.mark.parametrize(("depth", "channel", "levels"), [(15, "books15", 15), (5, "books5", 5)])
async def test_the_order_book_depth_key_picks_the_subscribed_channel(
    exchange, fake, bitget_settings, depth, channel, levels
):
    recorder = Recorder(stop_after=10**9)
    feed = make_feed(
        exchange,
        recorder,
        dataclasses.replace(bitget_settings, order_book_depth=depth),
        watch_books=True,
    )
    task = asyncio.create_task(feed.run())
    while not recorder.books:
        await asyncio.sleep(0.01)
    feed.stop()
    await asyncio.wait_for(task, timeout=5)
    assert channel in {arg["channel"] for _, arg in fake.subscriptions}
    assert len(recorder.books[-1]["bids"]) == levels
