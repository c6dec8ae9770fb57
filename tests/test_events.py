"""Live events: what is coalesced (snapshots) and what never is (things that happened)."""

from __future__ import annotations

import asyncio

from common.events import EventBatch, LatestPerKey


def test_a_newer_snapshot_replaces_the_older_one_and_moves_to_the_end():
    batch = EventBatch()
    batch.add("market.BTC-USDT", "market.candle", {"t": 1}, coalesce=("candle", "BTC"))
    batch.add("signals", "signal.new", {"n": 1})
    batch.add("market.BTC-USDT", "market.candle", {"t": 2}, coalesce=("candle", "BTC"))
    assert list(batch) == [
        ("signals", "signal.new", {"n": 1}),
        ("market.BTC-USDT", "market.candle", {"t": 2}),
    ]
    assert len(batch) == 2
    assert batch.pending(("candle", "BTC")) == {"t": 2}
    assert batch.pending(("candle", "ETH")) is None


def test_events_without_a_key_are_never_coalesced_however_many():
    """1,000 position events between 1,000 candle snapshots: every position event stays, in
    order; the candle snapshots collapse to the last one."""
    batch = EventBatch()
    for i in range(1_000):
        batch.add("positions", "position.closed", {"i": i})
        batch.add("market.BTC-USDT", "market.candle", {"i": i}, coalesce="candle")
    events = list(batch)
    assert [e[2]["i"] for e in events if e[1] == "position.closed"] == list(range(1_000))
    assert [e[2] for e in events if e[1] == "market.candle"] == [{"i": 999}]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_price_ticks_go_out_at_most_once_per_interval_and_the_newest_always_arrives():
    """Interval 50 ms: tick 1 goes out at once; ticks 2..999 arrive 10 ms later, so 999
    (the newest) waits and goes out when the interval ends; 2..998 are never sent. A key holds
    at most one waiting tick, however many arrive."""
    sent: list[tuple[str, dict]] = []
    clock = FakeClock()

    async def send(group: str, event_type: str, payload: dict) -> None:
        sent.append((group, payload))

    async def main() -> None:
        prices = LatestPerKey(0.05, send, clock=clock)
        await prices.publish("BTC", "market.BTC-USDT", "market.price", {"p": 1})
        clock.now += 0.01
        for p in range(2, 1_000):
            await prices.publish("BTC", "market.BTC-USDT", "market.price", {"p": p})
        await prices.publish("ETH", "market.ETH-USDT", "market.price", {"p": 7})
        assert prices.waiting() == 1  # BTC's newest only; ETH went out at once
        assert sent == [("market.BTC-USDT", {"p": 1}), ("market.ETH-USDT", {"p": 7})]
        clock.now += 0.05
        await asyncio.sleep(0.1)  # the timer fires
        assert sent[-1] == ("market.BTC-USDT", {"p": 999})
        assert prices.waiting() == 0

    asyncio.run(main())
    assert len(sent) == 3


def test_flush_sends_the_waiting_ticks_at_once():
    sent: list[dict] = []
    clock = FakeClock()

    async def send(group: str, event_type: str, payload: dict) -> None:
        sent.append(payload)

    async def main() -> None:
        prices = LatestPerKey(60.0, send, clock=clock)
        await prices.publish("BTC", "market.BTC-USDT", "market.price", {"p": 1})
        await prices.publish("BTC", "market.BTC-USDT", "market.price", {"p": 2})
        assert sent == [{"p": 1}]
        await prices.flush()
        assert sent == [{"p": 1}, {"p": 2}]

    asyncio.run(main())
