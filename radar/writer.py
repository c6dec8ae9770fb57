"""The writer: group commit of closed candles (queue, batch, one transaction per batch),
supervised.

``submit`` queues a candle and returns; the writer task takes every candle waiting (at most
``max_batch``), hands them to ``commit`` (sync, ONE transaction; it returns the batch's events)
and publishes those events from the loop once committed. The queue holds at most
``max_batch`` candles, then the feed waits (memory and latency bound).

**Its own thread.** ``commit`` runs on the writer's own thread (one worker, one database
connection), not on asgiref's single thread shared by every ``thread_sensitive`` call of the
process (websocket logins, other consumers): trading never queues behind the web.

**Supervised.** A TRANSIENT failure of ``commit`` (``is_transient``: the database went away,
a lock held too long, a connection killed) rolled the whole batch back; the writer then
tells ``on_outage`` (start: alert, ``/health/`` degraded), calls ``recover`` (on the writer's
thread: drop the broken connection and rebuild in-memory state from the stored record, as a
restart would), waits a bounded exponential backoff and commits the SAME batch again — no
candle lost, none doubled — until it succeeds (``on_outage`` told of the end) or the outage has
lasted ``max_outage_s``: then it gives up loudly, like on any other failure. Any other failure
is kept and raised to the feed (``submit``, ``flush``, ``feeding``), which stops.

A failure to PUBLISH the committed batch's events (the channel layer, e.g. Redis, is down) loses
no data: it is retried briefly, then the events are dropped with the outage told (the pages
resync from the stored record on their next load or reconnect).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections

from common.events import EventBatch

log = logging.getLogger(__name__)

Candle = tuple[str, tuple[float, ...]]
# (what, started: bool, message): an outage of "database" or "channel layer" began / ended.
OutageHook = Callable[[str, bool, str], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between two attempts: ``first_s`` doubled each time, at most ``max_s`` (seconds)."""

    first_s: float = 0.5
    max_s: float = 30.0

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failure (1-based)."""
        return min(self.max_s, self.first_s * 2 ** max(0, attempt - 1))


DEFAULT_BACKOFF = Backoff()


class WriterGaveUp(RuntimeError):
    """A transient outage lasted longer than the writer's limit: it stopped, loudly."""


class GroupCommitWriter:
    def __init__(
        self,
        commit: Callable[[Sequence[Candle]], EventBatch],
        *,
        max_batch: int,
        committed: Callable[[Sequence[Candle]], None] | None = None,
        is_transient: Callable[[BaseException], bool] = lambda exc: False,
        recover: Callable[[], None] | None = None,
        on_outage: OutageHook | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        max_outage_s: float = 900.0,
        publish_attempts: int = 3,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        """``commit``: processes a batch in one transaction, returns its events;
        ``committed``: told of each batch once committed and published (health);
        ``is_transient``: whether a failure of ``commit`` is worth retrying; ``recover``: run on
        the writer's thread before a retry; ``on_outage(what, started, message)``: told when an
        outage starts and ends; ``max_outage_s``: longest outage retried before giving up;
        ``publish_attempts``: tries to publish a batch's events before dropping them."""
        self.commit = commit
        self.committed = committed
        self.max_batch = max_batch
        self.is_transient = is_transient
        self.recover = recover
        self.on_outage = on_outage
        self.backoff = backoff
        self.max_outage_s = max_outage_s
        self.publish_attempts = publish_attempts
        self.sleep = sleep
        self.queue: asyncio.Queue[Candle] | None = None
        self.task: asyncio.Future[None] | None = None
        self.failure: Exception | None = None
        self.outage: str | None = None  # what is down now ("database: OperationalError: …")
        self.retries = 0  # commits retried since the start (all outages)
        self._executor: ThreadPoolExecutor | None = None

    async def submit(self, symbol: str, row: tuple[float, ...]) -> None:
        """Queue the candle for the writer; waits only while ``max_batch`` candles already
        wait (back-pressure on the feed). Raises the writer's failure, if it failed."""
        self.raise_failure()
        await self._queue().put((symbol, row))
        self.raise_failure()

    async def flush(self) -> None:
        """Wait until every queued candle is committed and its events published."""
        if self.queue is not None:
            self.raise_failure()
            waiting = asyncio.ensure_future(self.queue.join())
            assert self.task is not None  # noqa: S101  (started with the queue)
            await asyncio.wait({waiting, self.task}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            self.raise_failure()

    async def feeding[T](self, feed_run: Awaitable[T], flush: Callable[[], Awaitable[None]]) -> T:
        """Run the feed with the writer; the feed's result once every candle it handed over is
        committed and published (``flush``). A writer failure stops the feed and is raised; if
        the feed fails or is cancelled, the candles still queued are dropped (the next start
        heals them from the exchange)."""
        feed_task = asyncio.ensure_future(feed_run)
        self._queue()
        writer = self.task
        assert writer is not None  # noqa: S101
        try:
            either: set[asyncio.Future[Any]] = {feed_task, writer}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not feed_task.done():  # the writer failed
                feed_task.cancel()
                await asyncio.gather(feed_task, return_exceptions=True)
                self.raise_failure()
            result = await feed_task
            await flush()
            return result
        finally:
            feed_task.cancel()
            await self.stop()

    async def stop(self) -> None:
        """Stop the writer task, dropping what is still queued (:meth:`flush` first to keep it);
        the writer's thread closes its database connection and ends."""
        writer, self.task, self.queue = self.task, None, None
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.wrap_future(executor.submit(connections.close_all))
            executor.shutdown(wait=False)

    async def run_on_writer_thread[R](self, func: Callable[..., R], *args: Any) -> R:
        """Run ``func(*args)`` on the writer's thread (its database connection)."""
        return await sync_to_async(func, thread_sensitive=False, executor=self._thread())(*args)

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="radar-writer")
        return self._executor

    def _queue(self) -> asyncio.Queue[Candle]:
        if self.queue is None:
            self.queue = asyncio.Queue(maxsize=self.max_batch)
            self.task = asyncio.ensure_future(self._write(self.queue))
        return self.queue

    async def _write(self, queue: asyncio.Queue[Candle]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                events = await self._commit_supervised(batch)
                await self._publish(events)
                if self.committed is not None:
                    self.committed(batch)
            except Exception as exc:  # kept, and raised to the feed (submit, flush)
                self.failure = exc
                log.error("radar writer stopped: %s: %s", type(exc).__name__, exc)
                while not queue.empty():  # wake a feed waiting to queue: it raises the failure
                    queue.get_nowait()
                    queue.task_done()
                return
            finally:
                for _ in batch:
                    queue.task_done()

    async def _commit_supervised(self, batch: Sequence[Candle]) -> EventBatch:
        """``commit(batch)``, retried through a transient outage (module doc)."""
        started: float | None = None
        attempt = 0
        while True:
            try:
                events = await self.run_on_writer_thread(self.commit, batch)
            except Exception as exc:
                if not self.is_transient(exc):
                    raise
                attempt += 1
                self.retries += 1
                now = time.monotonic()
                if started is None:
                    started = now
                    self.outage = f"database: {type(exc).__name__}: {exc}"
                    log.error("radar writer: %s; retrying the batch", self.outage)
                    await self._tell("database", True, self.outage)
                if now - started >= self.max_outage_s:
                    raise WriterGaveUp(
                        f"the database was unreachable for {now - started:.0f} s "
                        f"({attempt} attempts, limit {self.max_outage_s:.0f} s): "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                await self.sleep(self.backoff.delay_s(attempt))
                await self._recover()
                continue
            if started is not None:
                lasted = time.monotonic() - started
                self.outage = None
                message = (
                    f"database back after {lasted:.1f} s; the batch was committed on attempt "
                    f"{attempt + 1}, nothing lost"
                )
                log.warning("radar writer: %s", message)
                await self._tell("database", False, message)
            return events

    async def _recover(self) -> None:
        if self.recover is None:
            return
        try:
            await self.run_on_writer_thread(self.recover)
        except Exception as exc:
            if not self.is_transient(exc):
                raise
            log.warning("radar writer: recovery failed (%s), will retry", exc)

    async def _publish(self, events: EventBatch) -> None:
        """Publish a committed batch's events; a down channel layer drops them, loudly."""
        for attempt in range(1, self.publish_attempts + 1):
            try:
                await events.apublish()
            except Exception as exc:  # the data is committed: only the live update is at stake
                if attempt < self.publish_attempts:
                    await self.sleep(self.backoff.delay_s(attempt) / 2)
                    continue
                message = (
                    f"channel layer: {type(exc).__name__}: {exc}; live updates of "
                    f"{len(events)} event(s) dropped (pages resync on reload)"
                )
                if self.outage is None or not self.outage.startswith("channel layer"):
                    log.error("radar writer: %s", message)
                    self.outage = message
                    await self._tell("channel layer", True, message)
                return
            if self.outage is not None and self.outage.startswith("channel layer"):
                self.outage = None
                await self._tell("channel layer", False, "channel layer back: live updates flow")
            return

    async def _tell(self, what: str, started: bool, message: str) -> None:
        if self.on_outage is None:
            return
        try:
            result = self.on_outage(what, started, message)
            if result is not None:
                await result
        except Exception as exc:  # telling must never stop the writer
            log.warning("radar writer: could not report the outage: %s", exc)
