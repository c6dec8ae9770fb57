"""Benchmark: the radar's whole pipeline on a max-speed replay of the bundled sample.

    .venv/bin/python bench/radar.py                                  # SQLite, in-memory layer
    .venv/bin/python bench/radar.py --database-url postgres://postgres@127.0.0.1:5432/x \\
        --redis-url redis://127.0.0.1:6379/11                        # PostgreSQL + Redis
    .venv/bin/python bench/radar.py --candles 3000 --profile /tmp/radar.prof

SimulatedExchange -> MarketFeed -> RadarRuntime with every enabled strategy of
``config/strategies.yaml``, exactly as ``manage.py radar --replay --speed max --headless``
builds it (``strategies.radar.build``), on a scratch database: a temp SQLite file, or a
PostgreSQL database this script creates and drops (the URL's database name is replaced).

Prints closed candles/s (feed start to feed end), the latency from the moment the runtime
receives a closed candle to the moment its ``market.candle`` event has been sent to the channel
layer (after the commit: ``RadarRuntime.on_closed_candle``), p50/p99/max, and the process RSS
(``/proc/self/status`` VmRSS) every 2,000 candles. ``--checkpoint-every-s 0`` saves every
kernel's state with every candle (the runtime before checkpoints) for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gzip
import os
import subprocess
import sys
import tempfile
import time
import uuid
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RSS_EVERY = 2_000


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(args: argparse.Namespace) -> None:
    """In the child process, once DATABASE_URL / REDIS_URL / SCALPRADAR_DATA_DIR are set."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
    import django

    django.setup()
    import logging

    from django.core.management import call_command
    from django.db import connection

    from strategies import radar, runtime

    logging.disable(logging.INFO)  # one JSON line per trade would time the terminal
    call_command("migrate", verbosity=0)
    call_command("load_config", stdout=StringIO())
    files = radar.sample_candle_files()
    if args.candles:  # the first N market minutes of every symbol, sliced into a temp folder
        folder = Path(os.environ["SCALPRADAR_DATA_DIR"]) / "replay"
        folder.mkdir()
        per_symbol = args.candles // len(files)
        for path in files:
            with gzip.open(path, "rt") as stream:
                lines = stream.read().splitlines()[: 1 + per_symbol]  # header + rows
            target = folder / path.name.replace(".csv.gz", ".csv")
            target.write_text("\n".join(lines) + "\n")
        for funding in Path(files[0]).parent.glob("*_funding_*.csv*"):
            (folder / funding.name).write_bytes(funding.read_bytes())
        files = sorted(folder.glob("*_1m_*.csv"))

    received: list[float] = []
    latencies_ms: list[float] = []
    rss: list[tuple[int, float]] = [(0, rss_mb())]
    done = [0]  # candles processed (the feed's symbols run as concurrent tasks)
    original_publish = runtime.apublish

    async def timed_publish(group: str, event_type: str, payload: dict) -> None:
        await original_publish(group, event_type, payload)
        if event_type == "market.candle":  # sent to the channel layer, after the commit
            latencies_ms.append((time.perf_counter() - received[-1]) * 1000)

    runtime.apublish = timed_publish

    async def main() -> tuple[int, float]:
        exchange, feed, rt = await radar.build(
            replay_paths=files, speed=None, fallback_to_replay=False, out=StringIO()
        )
        if args.checkpoint_every_s is not None:
            rt.checkpoint_every_s = args.checkpoint_every_s
        process = rt.on_closed_candle

        async def on_closed_candle(symbol: str, row: tuple[float, ...]) -> None:
            received.append(time.perf_counter())
            await process(symbol, row)
            done[0] += 1
            if done[0] % RSS_EVERY == 0:
                rss.append((done[0], rss_mb()))

        rt.on_closed_candle = on_closed_candle  # type: ignore[method-assign]
        started = time.perf_counter()
        await radar.run_feed(exchange, feed, rt)
        return rt.summary.candles, time.perf_counter() - started

    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    candles, elapsed = asyncio.run(main())
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    latencies_ms.sort()

    def pct(p: float) -> float:
        return latencies_ms[min(len(latencies_ms) - 1, int(p / 100 * len(latencies_ms)))]

    layer = "Redis" if os.environ.get("REDIS_URL") else "in-memory"
    print(f"backend: {connection.vendor} + {layer} channel layer")
    print(f"closed candles: {candles} in {elapsed:.1f} s = {candles / elapsed:,.0f} candles/s")
    print(
        f"candle received -> market.candle sent: p50 {pct(50):.2f} ms, p99 {pct(99):.2f} ms, "
        f"max {latencies_ms[-1]:.2f} ms ({len(latencies_ms)} events)"
    )
    print("RSS (MB) by candles processed: " + ", ".join(f"{n}: {mb:.0f}" for n, mb in rss))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to benchmark (scratch DB)")
    parser.add_argument("--redis-url", help="Redis channel layer (default: in-memory)")
    parser.add_argument("--candles", type=int, default=0, help="closed candles (0: all)")
    parser.add_argument("--checkpoint-every-s", type=float, default=None)
    parser.add_argument("--profile", help="write cProfile stats to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return 0
    child = [sys.executable, __file__, "--child", f"--candles={args.candles}"]
    if args.checkpoint_every_s is not None:
        child.append(f"--checkpoint-every-s={args.checkpoint_every_s}")
    if args.profile:
        child.append(f"--profile={args.profile}")
    with tempfile.TemporaryDirectory(prefix="scalpradar-bench-") as data_dir:
        env = {**os.environ, "SCALPRADAR_DATA_DIR": data_dir, "SCALPRADAR_ENV": "embedded"}
        env.pop("REDIS_URL", None)
        env.pop("DATABASE_URL", None)
        if args.redis_url:
            env["REDIS_URL"] = args.redis_url
        if not args.database_url:
            return subprocess.call(child, env=env)  # noqa: S603 - our own interpreter
        import psycopg

        scratch = f"scalpradar_bench_{uuid.uuid4().hex[:8]}"
        admin_url = with_database(args.database_url, "postgres")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{scratch}"')
        try:
            env["DATABASE_URL"] = with_database(args.database_url, scratch)
            return subprocess.call(child, env=env)  # noqa: S603 - our own interpreter
        finally:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
