"""``manage.py deadman``: tell the chats when the radar stops answering (``notify.deadman``).

Probes ``--health-url`` (default ``RADAR_HEALTH_URL``) every ``deadman.check_every_s`` of
``config/notify.yaml``: silent for ``silent_after_s`` -> "radar down"; degraded -> its
problems; answering again -> "radar back". Messages go through the outbox and this process's
own sender, or straight to the Bot API while the database does not answer.

``--parent-pid PID``: the radar that spawned it (the embedded mode): once that process is gone
its death is told at once — unless its run row says it stopped cleanly — and the dead-man
exits when the message is delivered. ``--once``: one probe (no answer = down), the exit status
says what it found: 0 ok, 1 degraded, 2 down.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

EXIT_STATUS = {"ok": 0, "stopped": 0, "unknown": 0, "degraded": 1, "down": 2}


class Command(BaseCommand):
    help = "Probe the radar's /health/ and alert the Telegram chats when it stops answering."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--health-url", default=None, help="default: RADAR_HEALTH_URL")
        parser.add_argument("--once", action="store_true", help="probe once, then exit")
        parser.add_argument(
            "--parent-pid",
            type=int,
            default=None,
            help="the radar's process: tell its death at once, then exit",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from notify.telegram import telegram_enabled

        if not telegram_enabled():
            raise CommandError("TELEGRAM_BOT_TOKEN is not set: the dead-man has nobody to tell")
        url = opts["health_url"] or settings.RADAR_HEALTH_URL
        state = "stopped"
        with contextlib.suppress(KeyboardInterrupt):
            state = asyncio.run(self._watch(url, once=opts["once"], parent_pid=opts["parent_pid"]))
        if opts["once"]:
            self.stdout.write(f"radar {state}")
            sys.exit(EXIT_STATUS.get(state, 2))

    async def _watch(self, url: str, *, once: bool, parent_pid: int | None) -> str:
        from asgiref.sync import sync_to_async
        from django.db import connections

        from notify.config import get_notify_config
        from notify.deadman import Delivery, run_deadman

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        config = get_notify_config().deadman
        delivery = Delivery()
        who = f" for the radar of pid {parent_pid}" if parent_pid is not None else ""
        self.stdout.write(f"Dead-man watching {url}{who}")
        try:
            return await run_deadman(
                health_url=url,
                check_every_s=config.check_every_s,
                silent_after_s=config.silent_after_s,
                delivery=delivery,
                stop=stop,
                parent_pid=parent_pid,
                once=once,
            )
        finally:
            await delivery.close()
            await sync_to_async(connections.close_all, thread_sensitive=True)()
