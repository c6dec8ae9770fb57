"""Benchmark: live fan-out under load — trading pace, frames per socket, refusals, page p99.

    .venv/bin/python bench/fanout.py                                   # SQLite + in-memory
    .venv/bin/python bench/fanout.py --redis-url redis://127.0.0.1:6379/12   # SQLite + Redis
    .venv/bin/python bench/fanout.py --clients 200 --pages 20 --rate 30 --candles 900

On a scratch SQLite database (temp dir): the radar (``radar.launch.build``, every enabled
strategy of ``config/strategies.yaml``) replays ``--candles`` bundled 1m candles paced at
``--rate`` candles/s (the replay's speed, 3 symbols), once alone (the unloaded pace), then
with ``--clients`` authenticated websocket clients on the real ASGI app
(``scalpradar.asgi.application``, Channels' communicators, in this process as the embedded
mode serves them) subscribed to what the dashboard joins, connecting WHILE ``--pages``
concurrent page loops (radar, arena, positions, signals, alerts) run through the same ASGI app.

Prints: trading pace loaded vs unloaded (target >= 95 %), frames received per client vs frames
numbered for its groups (target: every client every frame, in order — the consumer cuts a
socket that misses one, so "in order" is "not cut and the count matches"), refused
connections (target 0), page p99 (target <= 500 ms). In-process communicators skip the socket
write (Daphne's framing + TCP), so a client's cost here is the layer and the consumer only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GROUPS = "arena,signals,positions,alerts,session,market.BTC-USDT,market.ETH-USDT,market.SOL-USDT"
PAGES = ["/", "/arena/", "/positions/", "/signals/", "/alerts/"]


def setup(tmp: str, redis_url: str | None) -> None:
    os.environ["SCALPRADAR_DATA_DIR"] = tmp
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    import logging

    from django.core.management import call_command

    logging.disable(logging.INFO)
    call_command("migrate", verbosity=0)
    call_command("load_config", stdout=StringIO())


async def replay(files: list[Path], rate: float) -> tuple[int, float]:
    """Run the radar over ``files`` paced at ``rate`` candles/s; (candles, seconds)."""
    from radar import launch

    speed = rate * 60.0 / len(files)  # market minutes per second, over every symbol
    exchange, feed, runtime = await launch.build(
        replay_paths=files, speed=speed, fallback_to_replay=False, out=StringIO(), warmup_hours=0
    )
    started = time.perf_counter()
    await launch.run_feed(exchange, feed, runtime)
    return runtime.summary.candles, time.perf_counter() - started


class Client:
    """One websocket client: counts its frames, notes a close."""

    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator
        self.frames = 0
        self.closed: int | None = None

    async def read(self, stop: asyncio.Event) -> None:
        while not (stop.is_set() and self.communicator.output_queue.empty()):
            try:
                message = await asyncio.wait_for(self.communicator.output_queue.get(), 0.5)
            except TimeoutError:
                continue
            if message["type"] == "websocket.close":
                self.closed = message.get("code")
                return
            self.frames += 1


async def page_loop(cookie: bytes, stop: asyncio.Event, times: list[float], errors: list) -> None:
    from channels.testing import HttpCommunicator

    from scalpradar.asgi import application

    i = 0
    while not stop.is_set():
        path = PAGES[i % len(PAGES)]
        i += 1
        comm = HttpCommunicator(
            application, "GET", path, headers=[(b"host", b"localhost"), (b"cookie", cookie)]
        )
        start = time.perf_counter()
        response = await comm.get_response(timeout=30)
        times.append((time.perf_counter() - start) * 1000)
        if response["status"] != 200:
            errors.append((path, response["status"]))


async def loaded(files: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client as DjangoClient

    from common import events
    from scalpradar.asgi import application

    numbered: dict[str, int] = {}  # frames with HTML per group (what a socket forwards)
    build = events.build_frame

    def counting_build(
        sequencer: Any, group: str, event_type: str, payload: dict, **kwargs: Any
    ) -> Any:
        frame = build(sequencer, group, event_type, payload, **kwargs)
        if frame["html"]:
            numbered[group] = numbered.get(group, 0) + 1
        return frame

    events.build_frame = counting_build  # type: ignore[assignment]

    def cookie() -> bytes:
        user = User.objects.create_user("bench-fanout")
        client = DjangoClient()
        client.force_login(user)
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}".encode()

    session = await sync_to_async(cookie)()
    stop_pages, stop_reading = asyncio.Event(), asyncio.Event()
    page_ms: list[float] = []
    page_errors: list = []
    pages = [
        asyncio.create_task(page_loop(session, stop_pages, page_ms, page_errors))
        for _ in range(args.pages)
    ]
    await asyncio.sleep(1.0)  # the page load is on before the sockets connect
    headers = [(b"origin", b"http://localhost"), (b"cookie", session)]
    comms = [
        WebsocketCommunicator(application, f"/ws/live/?groups={GROUPS}", headers=headers)
        for _ in range(args.clients)
    ]
    connect_start = time.perf_counter()
    results = await asyncio.gather(
        *(c.connect(timeout=args.connect_timeout) for c in comms), return_exceptions=True
    )
    connect_s = time.perf_counter() - connect_start
    clients = [Client(c) for c, r in zip(comms, results, strict=True) if r is not True and r[0]]
    refused = args.clients - len(clients)
    readers = [asyncio.create_task(c.read(stop_reading)) for c in clients]
    candles, elapsed = await replay(files, args.rate)
    await events.aflush()
    await asyncio.sleep(1.0)
    stop_pages.set()
    stop_reading.set()
    await asyncio.gather(*readers, *pages)
    events.build_frame = build  # type: ignore[assignment]
    expected = sum(numbered.get(g, 0) for g in GROUPS.split(","))
    ordered = sorted(page_ms)
    return {
        "candles": candles,
        "elapsed": elapsed,
        "refused": refused,
        "connect_s": connect_s,
        "expected": expected,
        "received": [c.frames for c in clients],
        "cut": sum(1 for c in clients if c.closed is not None),
        "pages": len(page_ms),
        "page_p50": statistics.median(ordered) if ordered else float("nan"),
        "page_p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0,
        "page_errors": page_errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--pages", type=int, default=20, help="concurrent page loops")
    parser.add_argument("--rate", type=float, default=30.0, help="replay pace, candles/s")
    parser.add_argument("--candles", type=int, default=900, help="candles per run (3 symbols)")
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="seconds")
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scalpradar-fanout-") as tmp:
        setup(tmp, args.redis_url)
        import importlib.util

        from radar import launch

        spec = importlib.util.spec_from_file_location("bench_radar", ROOT / "bench" / "radar.py")
        assert spec is not None and spec.loader is not None
        bench_radar = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench_radar)
        files = bench_radar.write_replay(
            launch.sample_candle_files(), Path(tmp) / "replay", candles=args.candles, repeat=1
        )
        candles0, elapsed0 = asyncio.run(replay(files, args.rate))
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)  # the same candles, new again
        call_command("load_config", stdout=StringIO())
        figures = asyncio.run(loaded(files, args))
    unloaded = candles0 / elapsed0
    pace = figures["candles"] / figures["elapsed"]
    received = figures["received"]
    every = sum(1 for r in received if r == figures["expected"])
    layer = "Redis" if args.redis_url else "in-memory"
    print(f"backend: SQLite + {layer} channel layer; {args.clients} clients, {args.pages} pages")
    rows = [
        ("unloaded pace", f"{unloaded:.1f} candles/s ({candles0} candles)", ""),
        (
            "loaded pace",
            f"{pace:.1f} candles/s = {pace / unloaded * 100:.1f} % of unloaded",
            "ok" if pace >= 0.95 * unloaded else "FAIL",
        ),
        (
            "frames per client",
            f"{min(received, default=0)}..{max(received, default=0)} of "
            f"{figures['expected']}; {every}/{len(received)} got every frame, "
            f"{figures['cut']} cut",
            "ok" if every == len(received) == args.clients else "FAIL",
        ),
        (
            "refused connections",
            f"{figures['refused']} (all connected in {figures['connect_s']:.1f} s)",
            "ok" if figures["refused"] == 0 else "FAIL",
        ),
        (
            "page p99",
            f"{figures['page_p99']:.0f} ms (p50 {figures['page_p50']:.0f} ms, "
            f"{figures['pages']} pages, {len(figures['page_errors'])} errors)",
            "ok" if figures["page_p99"] <= 500 and not figures["page_errors"] else "FAIL",
        ),
    ]
    for name, value, verdict in rows:
        print(f"{name:<22}{value:<78}{verdict}")
    return 0 if all(v != "FAIL" for _, _, v in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
