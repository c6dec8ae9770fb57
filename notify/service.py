"""The notify service: everything Telegram does, as tasks of one asyncio loop.

:class:`NotifyService` runs, on the loop it is started in:

* the :class:`notify.sender.Sender` (the outbox to the chats; woken on every commit);
* the :class:`notify.bot.CommandBot` (long polling: the allowed users' commands);
* the heartbeat (:func:`notify.heartbeat.heartbeat_loop`, every ``heartbeat_minutes``);
* inside the radar (``radar_mode`` set): the radar's run row
  (:class:`notify.models.RadarBeat`, beaten every :data:`notify.heartbeat.BEAT_EVERY_S`
  or a third of ``deadman.silent_after_s`` if shorter, ``stopped_at`` on :meth:`stop`) and
  the external ping (``DEADMAN_PING_URL``);
* with ``health_url`` (the production ``telegram_bot`` process, apart from the radar): the
  dead-man probe (:mod:`notify.deadman`), whose messages go through this service's sender,
  and the external ping, sent while the probe hears the radar.

Two places start it: the embedded radar (``scalpradar.serve``, on the radar's own loop, when
a token is set) and ``manage.py telegram_bot`` (its own process: the compose ``telegram``
service). Only ONE process may poll a bot token (Telegram answers a second poller 409
Conflict): the embedded radar and a ``telegram_bot`` process must not run on the same token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from notify import heartbeat
from notify.config import NotifyConfig, get_notify_config
from notify.sender import worker_name

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 10.0


class NotifyService:
    """The notify tasks (module doc). ``commands``: run the command bot; ``radar_mode``: this
    process is the radar (``live``, ``replay``...); ``health_url``: run the dead-man probe on
    it; ``config``: default ``config/notify.yaml``'s."""

    def __init__(
        self,
        *,
        commands: bool = True,
        radar_mode: str | None = None,
        health_url: str | None = None,
        config: NotifyConfig | None = None,
    ) -> None:
        self.commands = commands
        self.radar_mode = radar_mode
        self.health_url = health_url
        self.config = config or get_notify_config()
        self.run_id = heartbeat.new_run_id() if radar_mode is not None else ""
        self.worker_id = worker_name("radar" if radar_mode is not None else "bot")
        self.sender: Any = None
        self.deadman_state = "unknown"
        self._bot: Any = None
        self._stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    async def start(self) -> None:
        """Start every task (returns at once; Telegram unreachable is retried by the tasks)."""
        from notify.bot import CommandBot
        from notify.deadman import Delivery, ping_loop, run_deadman
        from notify.sender import Sender
        from notify.telegram import make_bot

        if self.radar_mode is not None:
            await sync_to_async(heartbeat.radar_beat_start, thread_sensitive=True)(
                run_id=self.run_id, mode=self.radar_mode
            )
        self._bot = make_bot()
        self.sender = Sender(self._bot, worker_id=self.worker_id, config=self.config)
        self._spawn("sender", self.sender.run(self._stop))
        if self.commands:
            self._spawn("commands", CommandBot().run(self._stop))
        self._spawn(
            "heartbeat",
            heartbeat.heartbeat_loop(
                self._stop,
                every_s=self.config.heartbeat_minutes * 60.0,
                send=lambda: heartbeat.heartbeat_enqueue(
                    self.config, radar_state=self.deadman_state if self.health_url else None
                ),
                wake=self.sender.wake,
            ),
        )
        if self.radar_mode is not None:
            # /status calls the radar silent past deadman.silent_after_s: beat well within it.
            beat_every_s = min(heartbeat.BEAT_EVERY_S, self.config.deadman.silent_after_s / 3)
            self._spawn(
                "radar_beat",
                heartbeat.radar_beat_loop(self._stop, run_id=self.run_id, every_s=beat_every_s),
            )
        if self.health_url:
            deadman = self.config.deadman
            self._spawn(
                "deadman",
                run_deadman(
                    health_url=self.health_url,
                    check_every_s=deadman.check_every_s,
                    silent_after_s=deadman.silent_after_s,
                    delivery=Delivery(sender=self.sender),
                    stop=self._stop,
                    on_state=self._deadman_state,
                ),
            )
        if settings.DEADMAN_PING_URL and (self.radar_mode is not None or self.health_url):
            self._spawn(
                "ping",
                ping_loop(
                    self._stop,
                    url=settings.DEADMAN_PING_URL,
                    every_s=self.config.deadman.ping_every_s,
                    healthy=self._radar_heard,
                ),
            )
        log.info("notify service started", extra={"tasks": sorted(self._tasks)})

    def _spawn(self, name: str, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        task.add_done_callback(lambda t: self._ended(name, t))
        self._tasks[name] = task

    def _ended(self, name: str, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self._stop.is_set():
            return
        exc = task.exception()
        if exc is not None:
            log.error("notify task %s failed", name, exc_info=exc)

    def _deadman_state(self, state: str) -> None:
        self.deadman_state = state

    def _radar_heard(self) -> bool:
        """The ping's gate: inside the radar, always (this process IS the radar); apart from
        it, while the dead-man hears ``/health/`` answer."""
        return self.radar_mode is not None or self.deadman_state in ("ok", "degraded")

    def wake(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> int:
        """Send everything pending now (at most ``timeout_s``); the number of rows sent."""
        if self.sender is None:
            return 0
        return await self.sender.drain(timeout_s)

    async def stop(self, drain_timeout_s: float = DRAIN_TIMEOUT_S) -> int:
        """Stop polling and every task, send what is pending (at most ``drain_timeout_s``),
        mark the radar's run stopped. Returns the rows the final drain sent."""
        self._stop.set()
        tasks = list(self._tasks.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=15.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        sent = 0
        try:
            sent = await self.drain(drain_timeout_s)
        except Exception as exc:  # the network or the database: the rows stay queued
            log.warning("notify drain at stop failed: %s: %s", type(exc).__name__, exc)
        if self.radar_mode is not None:
            try:
                await sync_to_async(heartbeat.radar_beat_stop, thread_sensitive=True)(
                    run_id=self.run_id
                )
            except Exception as exc:
                log.warning("radar run not marked stopped: %s: %s", type(exc).__name__, exc)
        if self._bot is not None:
            try:
                await self._bot.shutdown()
            except Exception as exc:
                log.info("bot shutdown: %s", type(exc).__name__)
        self._tasks.clear()
        log.info("notify service stopped", extra={"drained": sent})
        return sent
