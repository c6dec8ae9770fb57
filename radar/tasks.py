"""Celery tasks of the strategies app: the radar's feed worker.

``radar_feed`` is the production form of ``manage.py radar``'s live mode without the web
server: one long-running task per exchange on the ``feed`` queue, holding the single-instance
lock ``feed:<exchange>`` (:mod:`trading.locks`) for as long as the feed runs. It assembles the
same pieces as the radar (:func:`radar.launch.build`: live exchange -> feed -> runtime) and
runs the feed until it stops.

Routing: ``CELERY_TASK_ROUTES`` sends ``radar.tasks.*`` to the ``strategies`` queue, but
the feed must run on the ``feed`` workers (one process per exchange, next to the REST pollers),
so every send of this task (``delay``, ``apply_async``, beat) carries ``queue="feed"`` unless the
caller names another: an explicit queue option wins over the route patterns. (Celery's
``queue=`` task attribute would do the same but is deprecated for Celery 6.)

Delivery: it is acknowledged on receipt (``acks_late=False``, unlike the other tasks): a message
left unacknowledged for hours would be redelivered by the Redis broker (visibility timeout) to
start a second feed. Beat re-sends it every minute as a keep-alive (``CELERY_BEAT_SCHEDULE``);
while a feed runs, those ticks are refused at once by the lock, and after a crash the lock
expires within its TTL so the next tick starts a new feed.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

from asgiref.sync import sync_to_async
from celery import Task, shared_task
from django.db import connections

from radar import launch as radar
from radar.health import radar_status
from radar.watchdog import configured, start_watchdog
from strategies.config import get_config
from trading.locks import LockLost, SingleInstanceLock, single_instance_lock

log = logging.getLogger(__name__)

FEED_LOCK_TTL_S = 30.0


class FeedUnavailable(RuntimeError):
    """The exchange could not be reached when the feed started; the task retries it."""


class _LogLines(io.TextIOBase):
    """A text stream for :func:`radar.build`'s progress lines: each line becomes a log record."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                log.info("%s", line.strip())
        return len(text)


def feed_lock_name(exchange_name: str) -> str:
    return f"feed:{exchange_name}"


async def _feed_under_lock(lock: SingleInstanceLock) -> dict[str, Any]:
    """Build the radar on live data and run its feed; stop it if the lock is lost."""
    try:
        return await _build_and_run(lock)
    finally:
        # The radar's reads and writes ran in asgiref's worker thread: free its connection.
        await sync_to_async(connections.close_all)()


async def _build_and_run(lock: SingleInstanceLock) -> dict[str, Any]:
    try:
        exchange, feed, runtime = await radar.build(
            replay_paths=None, speed=None, fallback_to_replay=False, out=_LogLines()
        )
    except radar.RadarError as exc:
        raise FeedUnavailable(str(exc)) from exc
    loop = asyncio.get_running_loop()
    feed_run = asyncio.ensure_future(feed.run())
    lock.on_lost = lambda: loop.call_soon_threadsafe(feed_run.cancel)
    # The watchdog (disconnects, REST latency, silent candles and strategies) of this worker:
    # its findings are alerts, which reach Telegram through the outbox.
    radar_status.feed_started(source="live", stats=feed.stats)
    watch = start_watchdog(
        configured(),
        status=radar_status,
        runtime=runtime,
        symbols=feed.symbols,
        live=True,
        exchange=exchange,
        limiter=feed.limiter,
    )
    try:
        stats = await runtime.feeding(feed_run)
    except asyncio.CancelledError:
        if lock.lost:
            raise LockLost(
                f"the feed lost its lock {lock.name!r} (not renewed in time) and stopped, "
                "so that two feeds never run at once"
            ) from None
        raise
    finally:
        lock.on_lost = None
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        finished = feed_run.done() and not feed_run.cancelled() and not feed_run.exception()
        radar_status.feed_stopped(finished=finished)
        await exchange.close()
    return {
        "status": "finished",
        "candles": runtime.summary.candles,
        "closed": stats.closed,
        "healed": stats.healed,
        "reconnects": stats.reconnects,
    }


def radar_feed_run(exchange_name: str, *, lock_ttl_s: float = FEED_LOCK_TTL_S) -> dict[str, Any]:
    """Run the radar feed of ``exchange_name`` under its lock; refuse when another runs it.

    Returns ``{"status": "refused", "holder": ...}`` when the lock is held elsewhere, else the
    feed's counters once it stops. Raises :class:`FeedUnavailable` when the exchange cannot be
    reached and :class:`LockLost` when the lock expired under a running feed."""
    configured = next(iter(get_config().exchanges.exchanges))
    if exchange_name != configured:
        # radar.build runs on the first exchange of exchanges.yaml: refuse to mislabel it.
        raise ValueError(
            f"the radar feed runs on {configured!r} (first exchange of exchanges.yaml), "
            f"not {exchange_name!r}"
        )
    lock = single_instance_lock(feed_lock_name(exchange_name), ttl_s=lock_ttl_s)
    if not lock.acquire(blocking=False):
        holder = lock.holder()
        log.info("radar feed of %s already runs (%s): not started", exchange_name, holder)
        return {"status": "refused", "exchange": exchange_name, "holder": holder}
    log.info("radar feed of %s starting (lock %s)", exchange_name, lock.holder_id)
    try:
        result = asyncio.run(_feed_under_lock(lock))
    finally:
        lock.release()
    log.info("radar feed of %s stopped: %s", exchange_name, result)
    return {**result, "exchange": exchange_name}


class FeedQueueTask(Task):
    """A task sent to the ``feed`` queue unless the caller names another."""

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        options.setdefault("queue", "feed")
        return super().apply_async(args, kwargs, **options)


@shared_task(
    base=FeedQueueTask,
    acks_late=False,
    # Runs for as long as the market is open: no time limit on purpose (None = no limit).
    time_limit=None,
    soft_time_limit=None,
    autoretry_for=(FeedUnavailable,),
    max_retries=5,
    retry_backoff=10,  # s: 10, 20, 40, 80, 160 (+ jitter), capped at retry_backoff_max
    retry_backoff_max=300,
    retry_jitter=True,
)
def radar_feed(exchange_name: str = "bitget") -> dict[str, Any]:
    """The live feed of one exchange, single instance (see the module docstring)."""
    return radar_feed_run(exchange_name)
