"""Serving the dashboard and the radar in one process: Daphne on the Twisted asyncio loop, the
feed and runtime (``radar.launch``) as tasks on that same loop — the in-memory channel layer
works because publisher and consumers share it. Wiring: the ``radar`` command calls it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from radar.launch import RadarError, build, run_feed, run_headless


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
    if headless:
        asyncio.run(run_headless(**kwargs))
        return
    serve(host=host, port=port, **kwargs)


def serve(*, host: str, port: int, **kwargs: Any) -> None:
    """Daphne on the twisted asyncio loop, with the feed and runtime as tasks on that loop."""
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server, twisted_loop
    from twisted.internet import reactor

    from scalpradar.asgi import application

    out: TextIO = kwargs["out"]

    async def main() -> None:
        try:
            exchange, feed, runtime = await build(**kwargs)
        except RadarError as exc:
            out.write(f"error: {exc}\n")
            reactor.stop()  # type: ignore[attr-defined]
            return
        try:
            await run_feed(exchange, feed, runtime)
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
    out.write(f"Dashboard: http://{host}:{port}/  (Ctrl+C to stop)\n")
    server = Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=True,
    )
    server.run()
