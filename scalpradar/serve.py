"""Serving the dashboard and the radar in one process: Daphne on the Twisted asyncio loop, the
feed and runtime (``radar.launch``) as tasks on that same loop — the in-memory channel layer
works because publisher and consumers share it. Wiring: the ``radar`` command calls it.

Also wired here, on the same loop: the watchdog (:mod:`radar.watchdog`, its thresholds read
from ``config/notify.yaml``: the radar does not import ``notify``) and, when
``TELEGRAM_BOT_TOKEN`` is set, Telegram (:class:`EmbeddedNotify`): the notify service
(sender, command bot, heartbeat, the radar's run row, the external ping), the start and stop
messages, and — when serving, so that there is a ``/health/`` to probe — the dead-man as a
separate process (``manage.py deadman --parent-pid``). A headless replay sends what its run
queued before it exits. Without a token none of this starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections, transaction

from radar.launch import RadarError, build, run_feed, run_headless
from radar.watchdog import WatchdogThresholds
from trading.feed.simulated import SimulatedExchange

log = logging.getLogger(__name__)

STOP_DRAIN_S = 10.0  # at most this long sending what is queued when the radar stops


def watchdog_thresholds() -> WatchdogThresholds:
    """``notify.yaml``'s watchdog section as the radar's plain thresholds. A finding's
    "cleared" line reaches the phone as a notice when its raise does but an info alert
    would not (``alerts_min_level``)."""
    from common.yamlcheck import ConfigError
    from notify.config import get_notify_config

    try:
        config = get_notify_config()
    except ConfigError as exc:
        raise RadarError(str(exc)) from None
    w = config.watchdog
    clears = (
        frozenset()
        if config.alert_is_sent("info")
        else frozenset(level for level in ("warning", "error") if config.alert_is_sent(level))
    )
    return WatchdogThresholds(
        ws_disconnected_s=w.ws_disconnected_s,
        api_latency_s=w.api_latency_s,
        candle_silence_s=w.candle_silence_s,
        strategy_silence_minutes=w.strategy_silence_minutes,
        clear_notice_levels=clears,
    )


def run(
    *,
    replay_paths: Sequence[Path] | None,
    speed: float | None,
    host: str,
    port: int,
    headless: bool,
    fallback_to_replay: bool,
    out: TextIO,
    warmup_hours: float = 24.0,
    fake_speed: float | None = None,
    selector_every: int = 60,
) -> None:
    kwargs = {
        "fake_speed": fake_speed,
        "selector_every": selector_every,
        "replay_paths": replay_paths,
        "speed": speed,
        "fallback_to_replay": fallback_to_replay,
        "out": out,
        "warmup_hours": warmup_hours,
    }
    watchdog = watchdog_thresholds()
    if headless:
        asyncio.run(_headless(watchdog, **kwargs))
        return
    serve(host=host, port=port, watchdog=watchdog, **kwargs)


async def _headless(watchdog: WatchdogThresholds, **kwargs: Any) -> None:
    notify = EmbeddedNotify(out=kwargs["out"])
    how = "stopped"
    try:
        runtime = await run_headless(watchdog=watchdog, on_built=notify.started, **kwargs)
        how = f"replay finished: {runtime.summary.candles} candles processed"
    except asyncio.CancelledError:
        how = "interrupted"
        raise
    except Exception as exc:
        how = f"failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        await notify.stop(how)
        await sync_to_async(connections.close_all, thread_sensitive=True)()


def serve(
    *, host: str, port: int, watchdog: WatchdogThresholds | None = None, **kwargs: Any
) -> None:
    """Daphne on the twisted asyncio loop, with the feed and runtime as tasks on that loop."""
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server, twisted_loop
    from twisted.internet import defer, reactor

    from scalpradar.asgi import application

    out: TextIO = kwargs["out"]
    notify = EmbeddedNotify(
        out=out, dashboard=f"http://{host}:{port}/", health_url=health_url(host, port)
    )

    async def main() -> None:
        try:
            exchange, feed, runtime = await build(**kwargs)
        except RadarError as exc:
            out.write(f"error: {exc}\n")
            reactor.stop()  # type: ignore[attr-defined]
            return
        await notify.started(exchange, feed, runtime)
        try:
            await run_feed(exchange, feed, runtime, watchdog=watchdog)
        except Exception as exc:  # told (log, alert, /health/ degraded), never unretrieved
            out.write(
                f"error: the feed stopped: {type(exc).__name__}: {exc}\n"
                "The dashboard stays up and /health/ reports degraded (Ctrl+C to stop).\n"
            )
            return
        out.write("Replay finished; the dashboard stays up (Ctrl+C to stop).\n")

    reactor.callWhenRunning(  # type: ignore[attr-defined]
        lambda: twisted_loop.create_task(main())
    )
    # Before the loop stops (Ctrl+C, SIGTERM): the stop message, sent with what is queued.
    reactor.addSystemEventTrigger(  # type: ignore[attr-defined]
        "before",
        "shutdown",
        lambda: defer.Deferred.fromFuture(twisted_loop.create_task(notify.stop("stopped"))),
    )
    out.write(f"Dashboard: http://{host}:{port}/  (Ctrl+C to stop)\n")
    server = Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=True,
    )
    server.run()


def health_url(host: str, port: int) -> str:
    """This radar's ``/health/`` as a local process reaches it (a wildcard bind: loopback)."""
    local = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"http://[{local}]:{port}/health/" if ":" in local else f"http://{local}:{port}/health/"


def _feed_words(exchange: Any, feed: Any) -> str:
    symbols = ", ".join(feed.symbols)
    if isinstance(exchange, SimulatedExchange):
        return f"replay of {symbols}"
    fake = getattr(exchange, "scalpradar_fake", None)
    if fake is not None:
        return f"LIVE feed from a fake Bitget ({fake.clock.speed:g}×) for {symbols}"
    return f"LIVE feed from {exchange.id} for {symbols}"


def start_text(exchange: Any, feed: Any, runtime: Any, *, dashboard: str | None) -> str:
    """The radar's start message: what it runs on, the strategies, where to look."""
    names = [e.config.name for e in runtime.arena]
    live = [e.config.name for e in runtime.arena if getattr(e.config, "live", False)]
    lines = [
        f"🚀 Scalp Radar started: {_feed_words(exchange, feed)}",
        f"Strategies ({len(names)}): {', '.join(names) or 'none'}",
        f"Live trading: {', '.join(live) if live else 'none (paper only)'}",
        f"Dashboard: {dashboard}" if dashboard else "Headless: no dashboard",
        f"pid {os.getpid()} on {socket.gethostname()}",
    ]
    return "\n".join(lines)


def _enqueue_radar(text: str, level: str = "info") -> None:
    from common.notices import Notice
    from notify import outbox

    with transaction.atomic():
        outbox.enqueue(Notice(kind="radar", text=text, level=level, source="radar"))


class EmbeddedNotify:
    """Telegram inside the radar's process (module doc); inert without a token.

    ``dashboard``: the URL the start message gives (``None``: headless); ``health_url``: the
    ``/health/`` the dead-man subprocess probes (``None``: no dead-man, headless)."""

    def __init__(
        self, *, out: TextIO, dashboard: str | None = None, health_url: str | None = None
    ) -> None:
        from notify.telegram import telegram_enabled

        self.out = out
        self.enabled = telegram_enabled()
        self.dashboard = dashboard
        self.health_url = health_url
        self.service: Any = None
        self.deadman: subprocess.Popen[bytes] | None = None
        self._stopped = False

    async def started(self, exchange: Any, feed: Any, runtime: Any) -> None:
        """The radar is built: start the service, queue the start message, spawn the dead-man."""
        if not self.enabled:
            self.out.write("Telegram: off (no TELEGRAM_BOT_TOKEN)\n")
            return
        from notify.service import NotifyService

        mode = "replay" if isinstance(exchange, SimulatedExchange) else "live"
        self.service = NotifyService(commands=True, radar_mode=mode)
        await self.service.start()
        text = start_text(exchange, feed, runtime, dashboard=self.dashboard)
        await sync_to_async(_enqueue_radar, thread_sensitive=True)(text)
        self.service.wake()
        if self.health_url:
            self.deadman = spawn_deadman(self.health_url)
        chats = len(settings.TELEGRAM_CHAT_IDS)
        self.out.write(
            f"Telegram: on ({chats} chat{'s' if chats != 1 else ''}, "
            f"{len(settings.TELEGRAM_ALLOWED_USER_IDS)} allowed user(s)"
            + (f", dead-man pid {self.deadman.pid} watching /health/)\n" if self.deadman else ")\n")
        )

    async def stop(self, how: str) -> None:
        """Queue the stop message, send what waits (at most :data:`STOP_DRAIN_S`), mark the
        run stopped, then end the dead-man (a clean stop is not a death)."""
        if self.service is None or self._stopped:
            return
        self._stopped = True
        try:
            await sync_to_async(_enqueue_radar, thread_sensitive=True)(
                f"⏹ Scalp Radar {how} (pid {os.getpid()})"
            )
        except Exception as exc:
            log.warning("radar stop message not queued: %s: %s", type(exc).__name__, exc)
        sent = await self.service.stop(STOP_DRAIN_S)
        log.info("radar stop: %d notifications sent", sent)
        if self.deadman is not None:
            self.deadman.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.deadman.wait, 5)


def spawn_deadman(url: str) -> subprocess.Popen[bytes]:
    """``manage.py deadman --parent-pid <this pid> --health-url <url>`` as a process of its own
    session (a Ctrl+C in the terminal stops the radar, which ends it; a killed radar leaves it
    running to tell)."""
    manage = Path(settings.BASE_DIR) / "manage.py"
    command = [
        sys.executable,
        str(manage),
        "deadman",
        "--parent-pid",
        str(os.getpid()),
        "--health-url",
        url,
    ]
    return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        command,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # POSIX: not in the terminal's process group
        creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),  # Windows: same
    )
