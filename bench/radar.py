"""Benchmark: the radar's whole pipeline on a max-speed replay of the bundled sample.

    .venv/bin/python bench/radar.py                                  # SQLite, in-memory layer
    .venv/bin/python bench/radar.py --database-url postgres://postgres@127.0.0.1:5432/x \\
        --redis-url redis://127.0.0.1:6379/11                        # PostgreSQL + Redis
    .venv/bin/python bench/radar.py --candles 3000 --profile /tmp/radar.prof
    .venv/bin/python bench/radar.py --repeat 6                       # memory over 42 days

SimulatedExchange -> MarketFeed -> RadarRuntime with every enabled strategy of
``config/strategies.yaml``, exactly as ``manage.py radar --replay --speed max --headless``
builds it (``radar.launch.build``), on a scratch database: a temp SQLite file, or a
PostgreSQL database this script creates and drops (the URL's database name is replaced).

Prints closed candles/s (feed start to feed end), the latency from the moment the runtime
receives a closed candle (``RadarRuntime.on_closed_candle``, which queues it for the writer) to
the moment its transaction committed and its events went to the channel layer (the runtime
then tells the health registry, ``candle_processed``), p50/p99/max, the process RSS
(``/proc/self/status`` VmRSS) every 2,000 candles and a verdict on memory: the RSS growth over
the second half of the replay. ``--repeat 6`` replays the 7-day sample 6 times end to end (42
days: longer than the 21-day window a kernel keeps, so the second half shows the steady state).
``--checkpoint-every-s 0`` saves every kernel's state with every candle (the runtime before
checkpoints) and ``--max-batch 1`` commits every candle alone (before group commit), for
comparison.
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
from array import array
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RSS_EVERY = 2_000
MINUTE_MS = 60_000
# RSS growth over the second half of a replay still called flat: allocator noise (before the
# fix: ~750 KB per 1,000 candles).
FLAT_KB_PER_1000 = 50


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_replay(files: list[Path], folder: Path, *, candles: int, repeat: int) -> list[Path]:
    """The sample ``repeat`` times end to end (each copy's prices scaled to open at the previous
    copy's last close, times shifted), cut to the first ``candles`` minutes overall (0: all);
    funding shifted the same way. Returns the 1m files, written into ``folder``."""
    folder.mkdir()
    per_symbol = candles // len(files) if candles else None
    sample_ms = 0
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            header, *lines = stream.read().splitlines()
        rows = [[float(x) for x in line.split(",")] for line in lines]
        sample_ms = int(rows[-1][0] - rows[0][0]) + MINUTE_MS
        out: list[list[float]] = []
        scale = 1.0
        for k in range(repeat):
            if k:
                scale *= out[-1][4] / (rows[0][1] * scale)
            out.extend(
                [row[0] + k * sample_ms, *(x * scale for x in row[1:5]), row[5]] for row in rows
            )
        text = [header, *(",".join(f"{x:.10g}" for x in row) for row in out[:per_symbol])]
        target = folder / path.name.replace(".csv.gz", ".csv")
        target.write_text("\n".join(text) + "\n", encoding="utf-8")
    for funding in Path(files[0]).parent.glob("*_funding_*.csv*"):
        with gzip.open(funding, "rt", encoding="utf-8") as stream:
            header, *lines = stream.read().splitlines()
        shifted = [
            f"{int(line.split(',')[0]) + k * sample_ms},{line.split(',')[1]}"
            for k in range(repeat)
            for line in lines
        ]
        target = folder / funding.name.replace(".csv.gz", ".csv")
        target.write_text("\n".join([header, *shifted]) + "\n", encoding="utf-8")
    return sorted(folder.glob("*_1m_*.csv"))


def run_child(args: argparse.Namespace) -> None:
    """In the child process, once DATABASE_URL / REDIS_URL / SCALPRADAR_DATA_DIR are set."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
    import django

    django.setup()
    import logging

    from django.core.management import call_command
    from django.db import connection

    from radar import launch as radar

    logging.disable(logging.INFO)  # one JSON line per trade would time the terminal
    call_command("migrate", verbosity=0)
    call_command("load_config", stdout=StringIO())
    files = radar.sample_candle_files()
    if args.candles or args.repeat > 1:
        folder = Path(os.environ["SCALPRADAR_DATA_DIR"]) / "replay"
        files = write_replay(files, folder, candles=args.candles, repeat=args.repeat)

    received: dict[tuple[str, int], float] = {}
    latencies_ms = array("d")  # 8 bytes a candle: the benchmark's own growth stays negligible
    rss: list[tuple[int, float]] = [(0, rss_mb())]
    trades_held: list[int] = [0]  # closed trades the ledgers hold (until the next checkpoint)

    class TimedStatus:
        """The health registry, timing each candle from its arrival to ``candle_processed``
        (called by the runtime once the candle's transaction committed and its events went
        to the channel layer)."""

        def __init__(self, inner: Any, runtime: Any) -> None:
            self.inner = inner
            self.runtime = runtime

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def candle_processed(self, symbol: str, open_ms: int) -> None:
            self.inner.candle_processed(symbol, open_ms)
            arrived = received.pop((symbol, open_ms))
            latencies_ms.append((time.perf_counter() - arrived) * 1000)
            if len(latencies_ms) % RSS_EVERY == 0:
                rss.append((len(latencies_ms), rss_mb()))
                trades_held.append(
                    sum(
                        len(e.kernel.ledger.closed) + len(e.kernel.shadow_ledger.closed)
                        for e in self.runtime.arena
                    )
                )

    async def main() -> tuple[int, float]:
        exchange, feed, rt = await radar.build(
            replay_paths=files, speed=None, fallback_to_replay=False, out=StringIO()
        )
        if args.checkpoint_every_s is not None:
            rt.checkpoint_every_s = args.checkpoint_every_s
        if args.max_batch is not None:
            rt.max_batch = args.max_batch
        rt.status = TimedStatus(rt.status, rt)  # type: ignore[assignment]
        queue = rt.on_closed_candle

        async def on_closed_candle(symbol: str, row: tuple[float, ...]) -> None:
            received[(symbol, int(row[0]))] = time.perf_counter()
            await queue(symbol, row)

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
    ordered = sorted(latencies_ms)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    layer = "Redis" if os.environ.get("REDIS_URL") else "in-memory"
    print(f"backend: {connection.vendor} + {layer} channel layer")
    print(f"closed candles: {candles} in {elapsed:.1f} s = {candles / elapsed:,.0f} candles/s")
    print(
        f"candle received -> committed and its events sent: p50 {pct(50):.2f} ms, "
        f"p99 {pct(99):.2f} ms, max {ordered[-1]:.2f} ms ({len(ordered)} candles)"
    )
    halves = [
        sorted(latencies_ms[: len(latencies_ms) // 2]),
        sorted(latencies_ms[len(latencies_ms) // 2 :]),
    ]
    if all(halves):
        print(
            "p99 by half of the replay: "
            + " / ".join(f"{h[min(len(h) - 1, int(0.99 * len(h)))]:.2f} ms" for h in halves)
        )
    print("RSS (MB) by candles processed: " + ", ".join(f"{n}: {mb:.0f}" for n, mb in rss))
    print(memory_verdict(rss, trades_held))


def memory_verdict(rss: list[tuple[int, float]], trades_held: list[int]) -> str:
    """RSS growth over the second half of the replay (the first half holds the warm-up: each
    kernel's candle history filling up to its window, the allocator's pools, Django's caches),
    and the closed trades the ledgers held at both points (stored as rows, summed in the state
    and dropped from memory at each checkpoint: they should not grow)."""
    if len(rss) < 5:
        return f"memory: too short to judge (needs {4 * RSS_EVERY:,} candles or more)"
    end = len(rss) - 1
    mid = min(range(len(rss)), key=lambda i: abs(rss[i][0] - rss[end][0] / 2))
    (mid_n, mid_mb), (end_n, end_mb) = rss[mid], rss[end]
    per_1000 = (end_mb - mid_mb) * 1024 / (end_n - mid_n) * 1000
    verdict = "FLAT" if per_1000 <= FLAT_KB_PER_1000 else "GROWING"
    return (
        f"memory: RSS {mid_mb:.0f} MB at {mid_n:,} -> {end_mb:.0f} MB at {end_n:,} candles "
        f"({end_mb - mid_mb:+.1f} MB, {per_1000:+.0f} KB per 1,000 candles; closed trades "
        f"held {trades_held[mid]:,} -> {trades_held[end]:,}): {verdict} "
        f"(flat: at most {FLAT_KB_PER_1000} KB per 1,000 candles)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to benchmark (scratch DB)")
    parser.add_argument("--redis-url", help="Redis channel layer (default: in-memory)")
    parser.add_argument("--candles", type=int, default=0, help="closed candles (0: all)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="replay the sample N times end to end (memory)"
    )
    parser.add_argument("--checkpoint-every-s", type=float, default=None)
    parser.add_argument("--max-batch", type=int, default=None, help="group commit size cap")
    parser.add_argument("--profile", help="write cProfile stats to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return 0
    child = [
        sys.executable,
        __file__,
        "--child",
        f"--candles={args.candles}",
        f"--repeat={args.repeat}",
    ]
    if args.checkpoint_every_s is not None:
        child.append(f"--checkpoint-every-s={args.checkpoint_every_s}")
    if args.max_batch is not None:
        child.append(f"--max-batch={args.max_batch}")
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
            # template0 takes no connections: a concurrent test run on template1 cannot make
            # the CREATE fail with "source database is being accessed by other users".
            admin.execute(f'CREATE DATABASE "{scratch}" TEMPLATE template0')
        try:
            env["DATABASE_URL"] = with_database(args.database_url, scratch)
            return subprocess.call(child, env=env)  # noqa: S603 - our own interpreter
        finally:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
