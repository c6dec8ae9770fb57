"""Group commit: candles that arrive faster than they can be committed one by one are stored
with all their effects in one transaction, and the record is the same as one per candle.

The writer (``RadarRuntime.on_closed_candle`` -> queue -> ``process_candles``) takes every
candle waiting, at most ``max_batch``; a lone candle commits at once. A batch commits whole or
not at all. Coalescing the batch's events drops snapshots only (the newest ``market.candle``
of a symbol carries every candle, the newest ``arena.update`` of a strategy), never a signal,
a position or an alert.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connections, transaction

from radar.runtime import RadarRuntime
from tests.radar.test_radar import running_radar, sample_candles
from tests.radar.test_runtime_checkpoint import radar, stored
from trading.models import Candle, Position, TradingSession

SYMBOL = "BTC/USDT:USDT"
NEVER_COALESCED = ("signal.new", "position.opened", "position.closed", "position.funding")


def batches(rows: np.ndarray, sizes: tuple[int, ...]) -> list[list[tuple[str, tuple]]]:
    """``rows`` cut into consecutive batches of the given sizes, cycled."""
    out, i, k = [], 0, 0
    while i < len(rows):
        size = sizes[k % len(sizes)]
        out.append([(SYMBOL, tuple(row)) for row in rows[i : i + size]])
        i, k = i + size, k + 1
    return out


def run(runtime: RadarRuntime, groups: list[list[tuple[str, tuple]]]) -> list[Any]:
    events: list[Any] = []
    for group in groups:
        events.extend(runtime.process_candles(group))
    runtime.checkpoint_all()
    return events


def wipe() -> None:
    with transaction.atomic():
        for model in (Position, TradingSession, Candle):
            model.objects.all().delete()
        from strategies.models import Signal

        Signal.objects.all().delete()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_candles_committed_together_leave_the_record_of_one_commit_per_candle():
    """2 days of BTC (momentum trades), once one candle per transaction, once in batches of
    1, 16, 5, 3 and 12 candles: every stored row and every trade, signal and position event is
    the same, in the same order; the batched run's candle events carry every candle once."""
    candles = sample_candles(2 * 1440)
    one_by_one = run(radar(checkpoint_every_s=3600), batches(candles, (1,)))
    expected = stored()
    wipe()
    grouped = run(radar(checkpoint_every_s=3600), batches(candles, (1, 16, 5, 3, 12)))
    assert stored() == expected
    assert any(p[2] == "closed" for p in expected["positions"])  # momentum traded: not vacuous

    def kept(events: list[Any]) -> list[Any]:
        return [e for e in events if e[1] in NEVER_COALESCED]

    assert kept(grouped) == kept(one_by_one)
    assert len(kept(grouped)) > 0
    sent = [c for e in grouped if e[1] == "market.candle" for c in e[2]["candles"]]
    assert sent == candles.tolist()
    last_arena = {e[2]["strategy"]: e[2] for e in one_by_one if e[1] == "arena.update"}
    assert {e[2]["strategy"]: e[2] for e in grouped if e[1] == "arena.update"} == last_arena


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_fails_halfway_stores_none_of_its_candles_or_effects():
    """Storing candle 3 of a batch of 5 fails in the database: the first two are not stored
    either, no session moved; the batch is retried whole (radar.writer) or, past the writer's
    limit, healed from the exchange on restart, as if never received."""
    candles = sample_candles(8)
    runtime = running_radar()
    runtime.process_candles([(SYMBOL, tuple(candles[0]))])
    before = stored()
    real = runtime.recorder.store
    failing_open = int(candles[3][0])

    def store(entry: Any, symbol: str, events: Any, *, checkpoint: bool) -> None:
        if int(entry.kernel._symbols[symbol].last_row[0]) == failing_open:
            raise OperationalError("disk I/O error")
        real(entry, symbol, events, checkpoint=checkpoint)

    runtime.recorder.store = store  # type: ignore[method-assign]
    with pytest.raises(OperationalError, match="disk I/O error"):
        runtime.process_candles([(SYMBOL, tuple(row)) for row in candles[1:6]])
    assert Candle.objects.count() == 1
    assert stored() == before


def run_async(main: Any) -> None:
    """``asyncio.run(main())``, then close the worker thread's connection (as the feed task
    does): the test database must be free to drop."""

    async def wrapped() -> None:
        try:
            await main()
        finally:
            await sync_to_async(connections.close_all, thread_sensitive=True)()

    asyncio.run(wrapped())


async def _queue_all(runtime: RadarRuntime, rows: np.ndarray) -> None:
    for row in rows:
        await runtime.on_closed_candle(SYMBOL, tuple(row))


@pytest.mark.django_db(transaction=True)
def test_the_writer_commits_a_lone_candle_at_once_and_what_waits_together():
    """One candle queued on an idle writer is committed alone; seven queued while it is busy
    are committed in batches of at most ``max_batch`` (4): 1, then 4 and 3."""
    candles = sample_candles(9)
    runtime = running_radar()
    runtime.max_batch = 4
    sizes: list[int] = []
    process = runtime.process_candles

    def recording(group: list[tuple[str, tuple]]) -> Any:
        sizes.append(len(group))
        return process(group)

    runtime.process_candles = recording  # type: ignore[method-assign]

    async def main() -> None:
        await runtime.on_closed_candle(SYMBOL, tuple(candles[0]))
        await runtime.flush()
        assert sizes == [1]
        await runtime.on_closed_candle(SYMBOL, tuple(candles[1]))
        await asyncio.sleep(0)  # the writer takes candle 1 ...
        await _queue_all(runtime, candles[2:9])  # ... while 7 more arrive
        await runtime.flush()
        await runtime.stop_writer()

    run_async(main)
    assert sizes == [1, 1, 4, 3]
    assert Candle.objects.count() == 9
    assert runtime.summary.candles == 9


@pytest.mark.django_db(transaction=True)
def test_the_queue_holds_at_most_max_batch_candles_then_the_feed_waits():
    """The writer is stuck in a commit: the queue fills up to ``max_batch`` (3) and the next
    candle's ``on_closed_candle`` waits (back-pressure to the feed) until it moves again."""
    candles = sample_candles(6)
    runtime = running_radar()
    runtime.max_batch = 3
    release = threading.Event()
    process = runtime.process_candles

    def stuck(group: list[tuple[str, tuple]]) -> Any:
        release.wait(10)
        return process(group)

    runtime.process_candles = stuck  # type: ignore[method-assign]

    async def main() -> None:
        await runtime.on_closed_candle(SYMBOL, tuple(candles[0]))
        await asyncio.sleep(0.05)  # the writer took candle 0 and is stuck
        await _queue_all(runtime, candles[1:4])
        queue = runtime.writer.queue
        assert queue is not None and queue.qsize() == 3
        fifth = asyncio.ensure_future(runtime.on_closed_candle(SYMBOL, tuple(candles[4])))
        await asyncio.sleep(0.05)
        assert not fifth.done() and queue.qsize() == 3
        release.set()
        await fifth
        await runtime.flush()
        await runtime.stop_writer()

    run_async(main)
    assert Candle.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_writer_failure_stops_the_feed_and_is_raised():
    runtime = running_radar()

    def broken(group: list[tuple[str, tuple]]) -> Any:
        raise RuntimeError("database is gone")

    runtime.process_candles = broken  # type: ignore[method-assign]
    candles = sample_candles(2)

    async def feed() -> None:  # a live feed: one candle, then waits for the next minute
        await runtime.on_closed_candle(SYMBOL, tuple(candles[0]))
        await asyncio.sleep(3600)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="database is gone"):
            await asyncio.wait_for(runtime.feeding(feed()), timeout=10)
        with pytest.raises(RuntimeError, match="database is gone"):
            await runtime.on_closed_candle(SYMBOL, tuple(candles[1]))

    run_async(main)
    assert Candle.objects.count() == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_transaction_that_closes_a_trade_pushes_the_session_summary_once():
    """The Session page's totals move with each closed trade: a transaction that closed one
    publishes ``session.update`` (one, however many closed), read after its checkpoints —
    so the last one pushed carries the trades the database holds."""
    candles = sample_candles(2 * 1440)
    groups = batches(candles, (1, 16, 5))
    runtime = radar(checkpoint_every_s=3600)
    pushed: list[list[Any]] = [runtime.process_candles(group) for group in groups]
    closing = [events for events in pushed if any(e[1] == "position.closed" for e in events)]
    summaries = [e for events in pushed for e in events if e[1] == "session.update"]
    assert closing, "momentum traded on these 2 days: not vacuous"
    assert all(sum(e[1] == "session.update" for e in events) == 1 for events in closing)
    closed = Position.objects.filter(status="closed", shadow=False).count()
    assert summaries[-1][2]["account"]["trades"] == closed > 0
