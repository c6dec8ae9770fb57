"""``manage.py telegram_bot``: the Telegram process of the production topology.

Runs :class:`notify.service.NotifyService` in its own process: the sender (the outbox to the
chats), the command bot (long polling), the heartbeat, and the dead-man probe of the radar's
``/health/`` (``--health-url``, default ``RADAR_HEALTH_URL``; ``--no-deadman`` to leave it to
a separate ``manage.py deadman``), plus the external ping (``DEADMAN_PING_URL``) while the
probe hears the radar. Stops on Ctrl+C or SIGTERM (``docker stop``), sending what is queued
first. Without ``TELEGRAM_BOT_TOKEN`` it says Telegram is off and exits 0.

Only one process may poll a bot token: do not run it beside an embedded radar (``manage.py
radar``) that has the same token.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the Telegram bot: notifications, commands, heartbeat and the radar's dead-man."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--health-url",
            default=None,
            help="the radar's /health/ the dead-man probes (default: RADAR_HEALTH_URL)",
        )
        parser.add_argument(
            "--no-deadman", action="store_true", help="do not probe the radar's /health/"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from notify.telegram import telegram_enabled

        if not telegram_enabled():
            self.stdout.write("Telegram is off (TELEGRAM_BOT_TOKEN is not set): nothing to run.")
            return
        url = None if opts["no_deadman"] else (opts["health_url"] or settings.RADAR_HEALTH_URL)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._serve(url))
        self.stdout.write("Telegram bot stopped.")

    async def _serve(self, health_url: str | None) -> None:
        from notify.service import NotifyService

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Windows has no loop signal handlers: Ctrl+C arrives as KeyboardInterrupt.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        service = NotifyService(commands=True, health_url=health_url)
        await service.start()
        where = f"; dead-man probing {health_url}" if health_url else ""
        self.stdout.write(f"Telegram bot running{where} (Ctrl+C to stop)")
        try:
            await stop.wait()
        finally:
            await service.stop()
