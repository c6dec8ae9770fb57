"""Live events: published to Channels groups only AFTER the transaction that caused them commits.

Group names: ``arena``, ``signals``, ``positions``, ``alerts``, ``market.<BASE>-<QUOTE>``,
``backtest.<id>``. Event ``type`` strings are prefixed by domain (``arena.update``,
``market.price``, ``signal.new``, ``position.opened``, ``alert.new``, ``backtest.progress``).
Payloads are JSON-safe and complete, so a consumer renders without querying anything.

High-rate snapshots are coalesced, never events that happened: within one committed batch
(:class:`EventBatch`) a newer ``market.candle`` of a symbol or ``arena.update`` of a strategy
replaces the older one (the candle event then carries every candle of the batch), and
``market.price`` ticks go out at most once per interval per symbol, the newest last
(:class:`LatestPerKey`). Signals, positions, funding, alerts and kill-switch trips are never
coalesced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

GROUPS = ("arena", "signals", "positions", "alerts", "session")


def market_group(symbol: str) -> str:
    """``BTC/USDT:USDT`` -> ``market.BTC-USDT`` (group names allow ASCII letters, - _ .)."""
    base_quote = symbol.split(":")[0]
    return "market." + base_quote.replace("/", "-")


def backtest_group(run_id: int) -> str:
    return f"backtest.{run_id}"


def _message(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so a non-serialisable payload fails HERE, at the publisher.
    body = json.loads(json.dumps(payload))
    return {"type": "live.event", "event": event_type, "payload": body}


def publish_now(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send to a group immediately (sync code outside any transaction)."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(group, _message(event_type, payload))


async def apublish(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send to a group from async code (the runtime's event loop)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, _message(event_type, payload))


def publish_on_commit(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send once the current transaction commits (immediately when there is none)."""
    message = _message(event_type, payload)

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, message)

    transaction.on_commit(send)


Event = tuple[str, str, dict[str, Any]]  # (group, event type, payload)


class EventBatch:
    """The events of one committed transaction, in order, to publish once it committed.

    ``add(..., coalesce=key)`` replaces the pending event of the same key, which moves to the
    newest position: only the latest state of a row or a chart is worth sending. An event added
    without a key is always kept. Memory: one slot per event added without a key plus one per
    distinct key.
    """

    def __init__(self) -> None:
        self._events: list[Event | None] = []
        self._slots: dict[Hashable, int] = {}

    def add(
        self,
        group: str,
        event_type: str,
        payload: dict[str, Any],
        *,
        coalesce: Hashable | None = None,
    ) -> None:
        if coalesce is not None:
            previous = self._slots.get(coalesce)
            if previous is not None:
                self._events[previous] = None
            self._slots[coalesce] = len(self._events)
        self._events.append((group, event_type, payload))

    def pending(self, key: Hashable) -> dict[str, Any] | None:
        """The payload waiting under ``key``, if any (to merge a newer one into it)."""
        slot = self._slots.get(key)
        event = self._events[slot] if slot is not None else None
        return event[2] if event is not None else None

    def __iter__(self) -> Iterator[Event]:
        return (event for event in self._events if event is not None)

    def __len__(self) -> int:
        return sum(1 for event in self._events if event is not None)

    async def apublish(self) -> None:
        """Send every event: the groups in parallel (their round trips to Redis overlap), the
        events of one group in order (what one consumer of that group sees)."""
        by_group: dict[str, list[Event]] = {}
        for event in self:
            by_group.setdefault(event[0], []).append(event)

        async def send(events: list[Event]) -> None:
            for group, event_type, payload in events:
                await apublish(group, event_type, payload)

        await asyncio.gather(*(send(events) for events in by_group.values()))


class LatestPerKey:
    """Sends a stream of snapshots (a price tick) at most once per ``interval_s`` per key.

    The first snapshot of a quiet key goes out at once; one arriving sooner waits until the
    interval ends, replaced by any newer one, so the newest value always arrives — at most
    ``interval_s`` late — and a key holds at most one waiting snapshot (memory: one per key).
    Call :meth:`flush` before the loop stops to send what still waits.
    """

    def __init__(
        self,
        interval_s: float,
        send: Callable[[str, str, dict[str, Any]], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self._send = send or apublish
        self._clock = clock
        self._sent_at: dict[Hashable, float] = {}
        self._waiting: dict[Hashable, Event] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(
        self, key: Hashable, group: str, event_type: str, payload: dict[str, Any]
    ) -> None:
        wait_s = self._sent_at.get(key, -math.inf) + self.interval_s - self._clock()
        if wait_s <= 0 and key not in self._waiting:
            self._sent_at[key] = self._clock()
            await self._send(group, event_type, payload)
            return
        self._waiting[key] = (group, event_type, payload)
        if key not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(max(wait_s, 0.0), self._due, key)

    def waiting(self) -> int:
        return len(self._waiting)

    def _due(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        task = asyncio.ensure_future(self._send_waiting(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_waiting(self, key: Hashable) -> None:
        event = self._waiting.pop(key, None)
        if event is not None:
            self._sent_at[key] = self._clock()
            await self._send(*event)

    async def flush(self) -> None:
        """Send every waiting snapshot now."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for key in list(self._waiting):
            await self._send_waiting(key)
        if self._tasks:
            await asyncio.gather(*self._tasks)
