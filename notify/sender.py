"""The sender: moves the outbox (``notify.outbox``) to Telegram, within Telegram's limits.

Loop. Each step drops what went stale (``stale_after_minutes``), claims the rows of every chat
that is ready and not being paced (:func:`notify.outbox.claim`), and sends each such chat ONE
message: its oldest rows joined by a blank line, up to ``max_message_chars`` characters (the
rows that do not fit are given back and go in the chat's next message; one row longer than the
limit alone is cut into several messages, at line or word breaks). Chats are sent to
concurrently; the loop sleeps until the next chat is due, is woken on commit in this process
(:meth:`Sender.wake`), and polls every ``idle_poll_s`` for rows other processes wrote.

Telegram's limits honoured: at most one message per ``per_chat_interval_s`` (default 1 s, the
Bot FAQ's per-chat rate) to a chat, timed from the END of the previous request so the server
never sees two closer; a 429 ``retry_after`` holds that chat for ``retry_after`` seconds (the
attempt is counted but never makes the row fail); messages are at most 4096 characters
(``max_message_chars`` ≤ that). Several chats are sent in parallel; the bot's overall limit
(~30 messages/s) is far above what a few owner chats receive. Two senders in separate processes
pace each chat separately: Telegram may then answer 429, which the sender obeys.

Errors: network errors and time-outs (every request is bounded: ``notify.telegram``) put the
rows back with the back-off ``retry_backoff_s[failures - 1]`` (then its last value); nothing is
lost, it is sent when the network returns or goes stale. ``BadRequest`` / ``Forbidden`` /
``ChatMigrated`` (chat not found, bot blocked, group moved) mark the rows ``failed`` with the
reason. A rejected token keeps everything pending at the longest back-off.

Delivery guarantee. A row is claimed (``sending``, by this worker) before its request leaves and
marked ``sent`` right after Telegram's answer; a claim expires after ``claim_ttl_s`` (its sender
died) and the row is sent again. So each row is sent exactly once, except across two windows
that make it at-least-once: the process dies (or the database refuses the mark) between
Telegram's answer and the ``sent`` mark, or Telegram received a request whose answer never
arrived (a read time-out, retried as a network error). The Bot API has no idempotency key to
close them. A row longer than ``max_message_chars`` goes as several messages and is marked once
all went: a failure between them resends its first parts. Units: seconds (``clock`` is
``time.monotonic``); database times are wall-clock UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from django.db import connections
from django.utils import timezone
from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from notify import outbox
from notify.config import NotifyConfig
from notify.models import Notification
from notify.telegram import chat_param, scrub

log = logging.getLogger(__name__)

T = TypeVar("T")
SEND_TIMEOUT_S = 20.0  # above the request's own connect + write + read timeouts (5 s each)
IDLE_POLL_S = 1.0
CLAIM_LIMIT = 200
MESSAGE_SEPARATOR = "\n\n"


def split_text(text: str, limit: int) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` characters, at a line break or a space in
    the second half of a piece when there is one."""
    pieces = []
    while len(text) > limit:
        cut = max(text.rfind("\n", limit // 2, limit), text.rfind(" ", limit // 2, limit))
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


def plan_message(
    rows: Sequence[Notification], limit: int
) -> tuple[list[Notification], list[str], list[Notification]]:
    """(rows of the next message, its text(s), rows left for later) for one chat's rows,
    oldest first: as many rows as fit in ``limit`` characters; a first row longer than that
    alone, cut into several texts."""
    first = rows[0]
    if len(first.text) > limit:
        return [first], split_text(first.text, limit), list(rows[1:])
    batch, length = [first], len(first.text)
    for row in rows[1:]:
        length += len(MESSAGE_SEPARATOR) + len(row.text)
        if length > limit:
            break
        batch.append(row)
    text = MESSAGE_SEPARATOR.join(row.text for row in batch)
    return batch, [text], list(rows[len(batch) :])


def _retry_after_s(exc: RetryAfter) -> float:
    """The 429's ``retry_after`` in seconds (PTB 22 returns an int or a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _describe(exc: BaseException) -> str:
    return scrub(f"{type(exc).__name__}: {exc}")


class Sender:
    """Sends the outbox with ``bot`` (a ``telegram.Bot``; initialised here when needed, never
    shut down: its owner does that). ``worker_id`` names this sender in the claims (unique per
    process run, <= 64 characters)."""

    def __init__(
        self,
        bot: Bot,
        *,
        worker_id: str,
        config: NotifyConfig,
        clock: Callable[[], float] = time.monotonic,
        claim_ttl_s: float = outbox.CLAIM_TTL_S,
        idle_poll_s: float = IDLE_POLL_S,
    ) -> None:
        self.bot = bot
        self.worker_id = worker_id
        self.config = config
        self.clock = clock
        self.claim_ttl_s = claim_ttl_s
        self.idle_poll_s = idle_poll_s
        self.sent_rows = 0
        self._ready_at: dict[str, float] = {}  # chat -> clock time its next message may leave
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._db_thread: ThreadPoolExecutor | None = None
        self._bot_ready = False
        self._init_failures = 0
        self._users = 0  # run() and drain() calls in progress

    # -- public -------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the outbox now (thread-safe; called on commit by ``outbox.wake``)."""
        loop, event = self._loop, self._wakeup
        if loop is None or event is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(event.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set (what is in flight then finishes first). A step that
        fails (the database locked or unreachable) is logged and tried again after the
        back-off: the sender never dies of it."""
        self._attach()
        failures = 0
        try:
            while not stop.is_set():
                try:
                    delay = await self._step(flush=False)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    delay = self.config.backoff_s(failures)
                    log.log(
                        logging.ERROR if failures == 1 else logging.WARNING,
                        "notification sender step failed (%d in a row): %s",
                        failures,
                        _describe(exc),
                        exc_info=exc if failures == 1 else None,
                    )
                await self._sleep(delay, stop)
        finally:
            await self._detach()

    async def drain(self, timeout_s: float) -> int:
        """Send everything queued now, not waiting for coalescing windows, for ``timeout_s``
        seconds at most (plus the bounded requests of the last step); returns the rows sent.
        What could not be sent in time (network down) stays pending for the next sender; a
        database error is raised."""
        self._attach()
        deadline = self.clock() + timeout_s
        before = self.sent_rows
        try:
            while True:
                delay = await self._step(flush=True)
                left = deadline - self.clock()
                if left <= 0 or not await self._db(self._sendable_count):
                    break
                await self._sleep(min(delay, left), None)
        finally:
            await self._detach()
        return self.sent_rows - before

    # -- one step -----------------------------------------------------------------------------

    async def _step(self, *, flush: bool) -> float:
        """Send one message to every ready chat; returns the seconds until the next is due."""
        if self._wakeup is not None:
            self._wakeup.clear()  # a wake from now on means a new look
        now = timezone.now()
        stale_after = self.config.stale_after_minutes
        await self._db(
            outbox.mark_stale,
            older_than=now - timedelta(minutes=stale_after),
            stale_after_minutes=stale_after,
        )
        if not await self._ensure_bot():
            return self.config.backoff_s(self._init_failures)
        paced = {chat for chat, at in self._ready_at.items() if at > self.clock()}
        rows = await self._db(
            outbox.claim,
            worker=self.worker_id,
            now=now,
            limit=CLAIM_LIMIT,
            claim_ttl_s=self.claim_ttl_s,
            skip_chats=paced,
            flush=flush,
        )
        by_chat: dict[str, list[Notification]] = defaultdict(list)
        for row in rows:
            by_chat[row.chat_id].append(row)
        if by_chat:
            # Every chat's send runs to its end (its 'sent' mark included) before one chat's
            # database error propagates: a sent message is never left marked 'sending'.
            outcomes = await asyncio.gather(
                *(self._send_chat(chat, batch) for chat, batch in by_chat.items()),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return await self._next_delay(flush=flush)

    async def _next_delay(self, *, flush: bool) -> float:
        due = await self._db(outbox.next_due, claim_ttl_s=self.claim_ttl_s, flush=flush)
        now, mono = timezone.now(), self.clock()
        delay = self.idle_poll_s
        for chat, at in due.items():
            wait = (at - now).total_seconds()
            pace = self._ready_at.get(chat, 0.0) - mono
            delay = min(delay, max(wait, pace, 0.0))
        return delay

    async def _send_chat(self, chat: str, rows: list[Notification]) -> None:
        batch, texts, rest = plan_message(rows, self.config.max_message_chars)
        if rest:
            await self._db(outbox.release, rows=rest)
        message_id: int | None = None
        for text in texts:
            await self._pace(chat)
            try:
                message = await asyncio.wait_for(
                    self.bot.send_message(chat_id=chat_param(chat), text=text), SEND_TIMEOUT_S
                )
            except Exception as exc:
                self._paced(chat)
                await self._failed(chat, batch, exc)
                return
            self._paced(chat)
            message_id = message.message_id
        await self._db(outbox.mark_sent, rows=batch, message_id=message_id)
        self.sent_rows += len(batch)

    async def _failed(self, chat: str, batch: list[Notification], exc: Exception) -> None:
        """Put ``batch`` back (or fail it) according to what went wrong."""
        error = _describe(exc)
        failures = max(row.attempts for row in batch) + 1
        if isinstance(exc, RetryAfter):
            wait = _retry_after_s(exc)
            self._ready_at[chat] = max(self._ready_at.get(chat, 0.0), self.clock() + wait)
            log.warning("Telegram asks to wait %.1f s before writing to chat %s", wait, chat)
            await self._db(outbox.mark_retry, rows=batch, error=error, delay_s=wait)
        elif isinstance(exc, BadRequest | Forbidden | ChatMigrated):
            # Permanent: a bad chat id, the bot blocked or removed, a group moved.
            log.error("Telegram refused %d message(s) for chat %s: %s", len(batch), chat, error)
            await self._db(outbox.mark_failed, rows=batch, error=error)
        elif isinstance(exc, InvalidToken):
            log.error("Telegram rejected the bot token; messages stay queued")
            delay = self.config.retry_backoff_s[-1]
            await self._db(outbox.mark_retry, rows=batch, error=error, delay_s=delay)
        else:
            if not isinstance(exc, TelegramError | TimeoutError | OSError):
                log.error("sending to chat %s failed unexpectedly: %s", chat, error, exc_info=exc)
            else:
                log.warning("sending to chat %s failed (attempt %d): %s", chat, failures, error)
            delay = self.config.backoff_s(failures)
            await self._db(outbox.mark_retry, rows=batch, error=error, delay_s=delay)

    async def _ensure_bot(self) -> bool:
        """Initialise the bot (its HTTP client and ``getMe``) once the network answers."""
        if self._bot_ready:
            return True
        try:
            await asyncio.wait_for(self.bot.initialize(), SEND_TIMEOUT_S)
        except Exception as exc:
            self._init_failures += 1
            if isinstance(exc, InvalidToken):  # not a passing fault: the longest wait
                self._init_failures = max(self._init_failures, len(self.config.retry_backoff_s))
            if self._init_failures == 1 or isinstance(exc, InvalidToken):
                log.warning("Telegram is not reachable yet: %s", _describe(exc))
            return False
        if self._init_failures:
            log.info("Telegram reachable again after %d failed attempts", self._init_failures)
        self._bot_ready, self._init_failures = True, 0
        return True

    # -- pacing, waiting, the database thread -------------------------------------------------

    async def _pace(self, chat: str) -> None:
        wait = self._ready_at.get(chat, 0.0) - self.clock()
        if wait > 0:
            await asyncio.sleep(wait)

    def _paced(self, chat: str) -> None:
        """A request to ``chat`` just ended: the next may leave one interval from now."""
        ready = self.clock() + self.config.per_chat_interval_s
        self._ready_at[chat] = max(self._ready_at.get(chat, 0.0), ready)

    async def _sleep(self, delay: float, stop: asyncio.Event | None) -> None:
        if self._wakeup is None:
            raise RuntimeError("the sender is not running")
        waits = [asyncio.ensure_future(self._wakeup.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, timeout=max(delay, 0.0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    def _sendable_count(self) -> int:
        return outbox.unsent_count(claim_ttl_s=self.claim_ttl_s, now=timezone.now())

    def _attach(self) -> None:
        """Start the database thread and listen for wakes (nested: a drain during a run)."""
        self._users += 1
        if self._users > 1:
            return
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._db_thread = ThreadPoolExecutor(1, thread_name_prefix=f"notify-{self.worker_id}")
        outbox.add_waker(self.wake)

    async def _detach(self) -> None:
        self._users -= 1
        if self._users > 0:
            return
        outbox.remove_waker(self.wake)
        thread, self._db_thread = self._db_thread, None
        if thread is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception):  # its connection: closed, or already gone
                await loop.run_in_executor(thread, connections.close_all)
            thread.shutdown(wait=False)
        self._wakeup = None

    async def _db(self, func: Callable[..., T], /, **kwargs: Any) -> T:
        """Run a sync outbox function on this sender's own database thread (one connection)."""
        if self._db_thread is None:
            raise RuntimeError("the sender is not running")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread, _fresh_connection, func, kwargs)


def _fresh_connection[R](func: Callable[..., R], kwargs: dict[str, Any]) -> R:
    """``func(**kwargs)`` on a usable connection: one the server dropped (a PostgreSQL
    restart, an idle-session kill, a TCP reset) is closed first and reopened by the call, as
    Django does around each request — else every later step fails on it and nothing is sent
    until the process restarts."""
    for connection in connections.all(initialized_only=True):
        # Django's own test (``close_if_unusable_or_obsolete``) minus the age, which with
        # CONN_MAX_AGE 0 would reconnect on every call: only after an error, and if it fails.
        if connection.connection is not None and connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()
    return func(**kwargs)


def worker_name(prefix: str = "sender") -> str:
    """A claim name unique to this process run: ``sender-<host>-<pid>-<start ms>``."""
    return f"{prefix}-{socket.gethostname()[:24]}-{os.getpid()}-{int(time.time() * 1000)}"[:64]
