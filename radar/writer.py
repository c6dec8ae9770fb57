"""The writer: group commit of closed candles (queue, batch, one transaction per batch).

``submit`` queues a candle and returns; the writer task takes every candle waiting (at most
``max_batch``), hands them to ``commit`` (sync, run in the worker thread, ONE transaction; it
returns the batch's events) and publishes those events from the loop once committed. The queue
holds at most ``max_batch`` candles, then the feed waits (memory and latency bound). A failure
of ``commit`` is kept and raised to the feed (``submit``, ``flush``, ``feeding``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asgiref.sync import sync_to_async

from common.events import EventBatch

Candle = tuple[str, tuple[float, ...]]


class GroupCommitWriter:
    def __init__(
        self,
        commit: Callable[[Sequence[Candle]], EventBatch],
        *,
        max_batch: int,
        committed: Callable[[Sequence[Candle]], None] | None = None,
    ) -> None:
        """``commit``: processes a batch in one transaction, returns its events;
        ``committed``: told of each batch once committed and published (health)."""
        self.commit = commit
        self.committed = committed
        self.max_batch = max_batch
        self.queue: asyncio.Queue[Candle] | None = None
        self.task: asyncio.Future[None] | None = None
        self.failure: Exception | None = None

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
        """Stop the writer task, dropping what is still queued (:meth:`flush` first to keep it)."""
        writer, self.task, self.queue = self.task, None, None
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _queue(self) -> asyncio.Queue[Candle]:
        if self.queue is None:
            self.queue = asyncio.Queue(maxsize=self.max_batch)
            self.task = asyncio.ensure_future(self._write(self.queue))
        return self.queue

    async def _write(self, queue: asyncio.Queue[Candle]) -> None:
        process = sync_to_async(self.commit, thread_sensitive=True)
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                events = await process(batch)
                await events.apublish()
                if self.committed is not None:
                    self.committed(batch)
            except Exception as exc:  # kept, and raised to the feed (submit, flush)
                self.failure = exc
                while not queue.empty():  # wake a feed waiting to queue: it raises the failure
                    queue.get_nowait()
                    queue.task_done()
                return
            finally:
                for _ in batch:
                    queue.task_done()
