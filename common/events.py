"""Live events: published to Channels groups only AFTER the transaction that caused them commits.

Group names: ``arena``, ``signals``, ``positions``, ``alerts``, ``live`` (the live executor's
orders and positions), ``market.<BASE>-<QUOTE>``, ``backtest.<id>``, and ``session.<digest>``
(the sockets of one login, closed at its logout). Event ``type`` strings are prefixed by domain
(``arena.update``, ``market.price``, ``signal.new``, ``position.opened``, ``alert.new``,
``backtest.progress``, ``live.order``). Payloads are JSON-safe and complete, so nothing
downstream queries anything.

**Rendered once, numbered, never awaited by trading.** Each event is rendered ONCE, here
(``common.presenters.render_event``: the page's own partial, out-of-band), and travels as a
:class:`LiveFrame` carrying its HTML, its typed payload and a sequence number: consecutive per
group within one publishing *stream* (a :class:`Broadcaster`, or a thread sending directly).
The consumer forwards the HTML as is, so 200 sockets cost 200 forwards, not 200 renders, and it
checks the numbers: a gap (the layer dropped a frame for that socket: channel full, a send
failed) or a frame delivered too late (a slow client) ends that socket with a resync instead of
a silent subset (``scalpradar.consumers``).

Async publishers (the radar's writer) hand frames to the :class:`Broadcaster` of their event
loop and return at once: it renders and sends them in order from its own task, retrying a
failed send (the same number: consumers drop a duplicate), so the trading loop never waits on
a channel layer or a socket. Sync publishers (pages, services, Celery tasks) hand their frames
to that broadcaster when the process has one running (the embedded mode: Daphne and the radar
on one loop), else send them directly, still after commit.

High-rate snapshots are coalesced, never events that happened: within one committed batch
(:class:`EventBatch`) a newer ``market.candle`` of a symbol or ``arena.update`` of a strategy
replaces the older one (the candle event then carries every candle of the batch), and
``market.price`` ticks go out at most once per interval per symbol, the newest last
(:class:`LatestPerKey`). Signals, positions, funding, alerts and kill-switch trips are never
coalesced.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Any, NotRequired, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from common.presenters import render_event

log = logging.getLogger(__name__)

GROUPS = ("arena", "signals", "positions", "alerts", "session", "live")
FRAME_TYPE = "live.event"  # the consumer's handler: ``live_event``
LOGOUT_TYPE = "live.logout"  # the consumer's handler: ``live_logout``


class LiveFrame(TypedDict):
    """One event as it travels to the sockets of a group (JSON-safe: it crosses Redis).

    ``stream`` names the publisher, ``seq`` numbers its frames for ``group`` from 1 without
    gaps, ``since`` is when the stream started and ``sent_at`` when this frame left (UTC epoch
    seconds); ``html`` is the rendered out-of-band fragment ("" when the event has none)."""

    type: str
    event: str
    payload: dict[str, Any]
    html: str
    group: str
    stream: str
    seq: int
    since: float
    sent_at: float


class LogoutMessage(TypedDict):
    """Tells the sockets of one login to close (``reason`` is logged)."""

    type: str
    reason: NotRequired[str]


def market_group(symbol: str) -> str:
    """``BTC/USDT:USDT`` -> ``market.BTC-USDT`` (group names allow ASCII letters, - _ .)."""
    base_quote = symbol.split(":")[0]
    return "market." + base_quote.replace("/", "-")


def backtest_group(run_id: int) -> str:
    return f"backtest.{run_id}"


def session_group(session_key: str) -> str:
    """The group of every socket opened with one login session. A digest, not the key: the
    group name sits in Redis and in logs, the key is a credential."""
    digest = hashlib.sha256(session_key.encode("utf-8")).hexdigest()[:32]
    return f"session.{digest}"


def _checked(payload: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so a non-serialisable payload fails HERE, at the publisher.
    return json.loads(json.dumps(payload))


class Sequencer:
    """One publishing stream: a random id, its start time, and the next number per group."""

    def __init__(self) -> None:
        self.stream = uuid.uuid4().hex[:16]
        self.since = time.time()
        self._last: dict[str, int] = {}

    def next(self, group: str) -> int:
        seq = self._last.get(group, 0) + 1
        self._last[group] = seq
        return seq


BATCH_EVENT = "live.batch"  # a frame carrying several events of one group (Broadcaster)


def _render(event_type: str, payload: dict[str, Any]) -> str:
    try:
        return render_event(event_type, payload)
    except Exception:  # a template bug must not stop the other events: logged, sent bare
        log.exception("live event %s could not be rendered", event_type)
        return ""


def build_frame(
    sequencer: Sequencer,
    group: str,
    event_type: str,
    payload: dict[str, Any],
    *,
    html: str | None = None,
) -> LiveFrame:
    """Render the event once (unless ``html`` is given) and number it (the next ``seq`` of
    ``group`` in the stream)."""
    html = _render(event_type, payload) if html is None else html
    return {
        "type": FRAME_TYPE,
        "event": event_type,
        "payload": payload,
        "html": html,
        "group": group,
        "stream": sequencer.stream,
        "seq": sequencer.next(group),
        "since": sequencer.since,
        "sent_at": time.time(),
    }


class ChannelLayerUnavailable(ConnectionError):
    """The channel layer refused the latest live frames (Redis down): data is committed, only
    live updates are at stake; the frames handed over are retried, then end as a resync."""


# (group, event type or None for a control message, payload or control message)
Item = tuple[str, str | None, dict[str, Any]]


class Broadcaster:
    """Sends the frames of one event loop's async publishers, in order, from its own task.

    ``submit`` returns at once (never awaits the layer): a publisher's loop is never held by
    delivery. The task renders and numbers each event (:func:`build_frame`) and sends it;
    a failed send is retried ``send_attempts`` times (``retry_s`` doubled, seconds) with the
    same number, then given up: the consumers see the gap and resync. At most ``max_backlog``
    frames wait; beyond, the oldest is dropped and its number spent (a gap again, never a
    silent hole). Memory: ``max_backlog`` frames.

    **One frame per group per window.** The first event after a quiet spell opens a window of
    ``window_s`` seconds; when it ends, every event of the window goes out as ONE frame per
    group, their fragments concatenated in order (htmx applies out-of-band swaps in document
    order, so the page ends in the newest state, having missed none). Per socket the cost is
    then at most one frame per group and window (4 per second at 0.25 s) however fast the radar
    runs — a 30×-speed replay or a catch-up — which is what keeps 200 dashboards from eating the
    trading loop's CPU; a live update waits at most ``window_s``. A window of one event sends
    it as it is (``event``/``payload`` of that event); a merged frame has ``event``
    ``"live.batch"`` and ``payload`` ``{"events": [{"event", "payload"}, ...]}``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        max_backlog: int = 10_000,
        send_attempts: int = 3,
        retry_s: float = 0.05,
        window_s: float = 0.25,
    ) -> None:
        self.loop = loop
        self.window_s = window_s
        self.max_backlog = max_backlog
        self.send_attempts = send_attempts
        self.retry_s = retry_s
        self.sequencer = Sequencer()
        self.failure: BaseException | None = None  # the last send's error, until one succeeds
        self.sent = 0
        self.dropped = 0
        self._queue: deque[Item] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def submit(self, group: str, event_type: str | None, payload: dict[str, Any]) -> None:
        """Queue one event (or, with ``event_type`` None, a control message). Call it on the
        broadcaster's loop; other threads go through ``loop.call_soon_threadsafe``."""
        if len(self._queue) >= self.max_backlog:
            old_group, old_type, _ = self._queue.popleft()
            if old_type is not None:
                self.sequencer.next(old_group)  # its number is spent: the sockets see a gap
            self.dropped += 1
            if self.dropped % 1_000 == 1:
                log.error(
                    "live broadcaster: %d frames waiting, dropping the oldest (%d so far); "
                    "their sockets resync",
                    self.max_backlog,
                    self.dropped,
                )
        self._queue.append((group, event_type, payload))
        self._idle.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._run(), name="live-broadcaster")

    def backlog(self) -> int:
        return len(self._queue)

    async def drain(self) -> None:
        """Wait until every submitted frame was sent (or given up)."""
        await self._idle.wait()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.window_s > 0:
                await asyncio.sleep(self.window_s)  # the window: what else comes, goes along
                items = list(self._queue)
                self._queue.clear()
            else:
                items = [self._queue.popleft()]  # no window: a frame per event
            for group, message in self._frames(items):
                await self._send(group, message)

    def _frames(self, items: list[Item]) -> list[tuple[str, dict[str, Any]]]:
        """One message per group (in order of its first event) and per control message."""
        by_group: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        out: list[tuple[str, dict[str, Any] | None]] = []
        for group, event_type, payload in items:
            if event_type is None:
                out.append((group, payload))
                continue
            if group not in by_group:
                by_group[group] = []
                out.append((group, None))  # its place: the group's merged frame
            by_group[group].append((event_type, payload))
        frames: list[tuple[str, dict[str, Any]]] = []
        for group, control in out:
            if control is not None:
                frames.append((group, control))
                continue
            events = by_group[group]
            if len(events) == 1:
                frames.append((group, dict(build_frame(self.sequencer, group, *events[0]))))
                continue
            html = "".join(_render(event_type, payload) for event_type, payload in events)
            frame = build_frame(
                self.sequencer,
                group,
                BATCH_EVENT,
                {"events": [{"event": e, "payload": p} for e, p in events]},
                html=html,
            )
            frames.append((group, dict(frame)))
        return frames

    async def _send(self, group: str, message: dict[str, Any]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        for attempt in range(1, self.send_attempts + 1):
            try:
                await layer.group_send(group, message)
            except Exception as exc:  # the layer (Redis) failed: retried, then a resync
                self.failure = exc
                if attempt == self.send_attempts:
                    log.error(
                        "live frame %s #%s to %s given up after %d attempts: %s: %s",
                        message.get("event"),
                        message.get("seq"),
                        group,
                        attempt,
                        type(exc).__name__,
                        exc,
                    )
                    return
                await asyncio.sleep(self.retry_s * 2 ** (attempt - 1))
                continue
            self.failure = None
            self.sent += 1
            return


_broadcasters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Broadcaster] = (
    weakref.WeakKeyDictionary()
)
_home: Broadcaster | None = None  # the newest loop's: where sync code of this process hands off
_local = threading.local()


def broadcaster() -> Broadcaster:
    """The broadcaster of the running event loop (created on first use)."""
    global _home
    loop = asyncio.get_running_loop()
    found = _broadcasters.get(loop)
    if found is None:
        found = _broadcasters[loop] = Broadcaster(loop)
        _home = found
    return found


async def aflush() -> None:
    """Wait until the running loop's broadcaster sent everything handed to it."""
    await broadcaster().drain()


def _send_sync(group: str, event_type: str | None, payload: dict[str, Any]) -> None:
    """From sync code: hand off to the process's running broadcaster, else send directly
    (this thread's own stream, blocking this thread only)."""
    home = _home
    if home is not None and home.loop.is_running():
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is home.loop:
            home.submit(group, event_type, payload)
        else:
            home.loop.call_soon_threadsafe(home.submit, group, event_type, payload)
        return
    layer = get_channel_layer()
    if layer is None:
        return
    if event_type is None:
        message: dict[str, Any] = payload
    else:
        sequencer = getattr(_local, "sequencer", None)
        if sequencer is None:
            sequencer = _local.sequencer = Sequencer()
        message = dict(build_frame(sequencer, group, event_type, payload))
    async_to_sync(layer.group_send)(group, message)


def publish_now(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send to a group immediately (sync code outside any transaction)."""
    _send_sync(group, event_type, _checked(payload))


async def apublish(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send to a group from async code: handed to the loop's broadcaster, returns at once."""
    broadcaster().submit(group, event_type, _checked(payload))


def publish_on_commit(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send once the current transaction commits (immediately when there is none)."""
    body = _checked(payload)
    transaction.on_commit(lambda: _send_sync(group, event_type, body))


def close_session_sockets(session_key: str, reason: str = "logged out") -> None:
    """Tell every socket opened with this login session to close (sync: the logout view)."""
    message: LogoutMessage = {"type": LOGOUT_TYPE, "reason": reason}
    _send_sync(session_group(session_key), None, dict(message))


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
        self._handed = False

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
        """Hand every event, in order, to the running loop's :class:`Broadcaster` and return:
        never waits on the channel layer or a socket. Called again (a caller retrying), it hands
        nothing twice. Raises :class:`ChannelLayerUnavailable` while the layer refuses the
        broadcaster's sends (the frames stay with it), so the caller can tell the outage."""
        sender = broadcaster()
        if not self._handed:
            self._handed = True
            for group, event_type, payload in self:
                sender.submit(group, event_type, _checked(payload))
        if sender.failure is not None:
            failure = sender.failure
            raise ChannelLayerUnavailable(f"{type(failure).__name__}: {failure}") from failure


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
