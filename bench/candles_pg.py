"""Benchmark: 10 million 1m candles into the partitioned PostgreSQL candle table, one
symbol-month read back.

    .venv/bin/python bench/candles_pg.py                       # local PostgreSQL, trust auth
    .venv/bin/python bench/candles_pg.py --rows 1000000 --runs 20
    .venv/bin/python bench/candles_pg.py --database-url postgres://user@host:5432/any

A scratch database is created (the URL's database name is replaced) and dropped at the end
(``--keep`` keeps it); ``migrate`` builds the candle table as production would (monthly
partitions here, a hypertable where TimescaleDB is loadable). Candles are synthetic random
walks (``--symbols`` series of ``rows / symbols`` consecutive minutes from 2025-01-01 UTC),
generated batch by batch (``--batch-size``, the ``import_candles`` default) and written through
``trading.services.candles_upsert``, the service ``import_candles`` calls: on a fresh range it
``COPY``-s the batch straight into the table, creating the months' partitions first.

Printed: rows, seconds and candles/s of the import (the upsert calls alone, and wall time with
the data generation), then the one-month 1m range query of one symbol (44,640 candles of
March 2025) over ``--runs`` runs, p50 / p95 / max in ms: through the ORM into the ``(N, 6)``
array the backtests read (``Candle.objects...as_array()``), as a raw Django cursor
``fetchall``, and the server's own execution time (``EXPLAIN ANALYZE``).
``--random-page-cost 1.1`` (the usual SSD setting) lets the planner pick the ordered index
scan instead of a bitmap scan + sort.
Targets (issue 16): import >= 150,000 candles/s; one-month range query <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
T0_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MARCH_MS = (1_740_787_200_000, 1_743_465_600_000)  # [2025-03-01, 2025-04-01) UTC
MINUTE_MS = 60_000
IMPORT_TARGET = 150_000  # candles/s
QUERY_TARGET_MS = 50.0


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def batches(symbol_index: int, count: int, batch_size: int, seed: int):
    """``count`` consecutive 1m candles of one synthetic series, ``batch_size`` at a time."""
    import numpy as np

    rng = np.random.default_rng(seed + symbol_index)
    price = 100.0 * (symbol_index + 1)
    for start in range(0, count, batch_size):
        n = min(batch_size, count - start)
        times = T0_MS + (start + np.arange(n, dtype=np.int64)) * MINUTE_MS
        closes = price * np.exp(np.cumsum(rng.normal(0.0, 0.0005, n)))
        opens = np.concatenate(([price], closes[:-1]))
        spread = np.abs(rng.normal(0.0, 0.0003, n)) * closes
        highs = np.maximum(opens, closes) + spread
        lows = np.minimum(opens, closes) - spread
        volumes = rng.gamma(2.0, 50.0, n)
        price = float(closes[-1])
        yield list(
            zip(
                times.tolist(),
                opens.tolist(),
                highs.tolist(),
                lows.tolist(),
                closes.tolist(),
                volumes.tolist(),
                strict=True,
            )
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(args: argparse.Namespace, url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from trading import partitions
    from trading.models import Candle
    from trading.services import candles_upsert

    call_command("migrate", verbosity=0, skip_checks=True)
    storage = partitions.storage()
    per_symbol = args.rows // args.symbols
    symbols = [f"B{i:02d}/USDT:USDT" for i in range(args.symbols)]

    upsert_s = 0.0
    inserted = 0
    wall_start = time.perf_counter()
    for index, symbol in enumerate(symbols):
        for batch in batches(index, per_symbol, args.batch_size, args.seed):
            start = time.perf_counter()
            result = candles_upsert(rows=batch, exchange="binance", symbol=symbol, timeframe="1m")
            upsert_s += time.perf_counter() - start
            inserted += result.inserted
        print(f"  {symbol}: {inserted:,} rows so far", file=sys.stderr, flush=True)
    wall_s = time.perf_counter() - wall_start
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE trading_candle")
    analyze_s = time.perf_counter() - start

    symbol = symbols[0]
    series = Candle.objects.filter(
        exchange="binance",
        symbol=symbol,
        timeframe="1m",
        open_time_ms__gte=MARCH_MS[0],
        open_time_ms__lt=MARCH_MS[1],
    ).order_by("open_time_ms")
    raw_sql = (
        "SELECT open_time_ms, open, high, low, close, volume FROM trading_candle "
        "WHERE exchange = %s AND symbol = %s AND timeframe = %s "
        "AND open_time_ms >= %s AND open_time_ms < %s ORDER BY open_time_ms"
    )
    raw_params = ["binance", symbol, "1m", *MARCH_MS]
    if args.random_page_cost is not None:
        with connection.cursor() as cursor:
            cursor.execute(f"SET random_page_cost = {float(args.random_page_cost)}")
    orm_ms: list[float] = []
    raw_ms: list[float] = []
    server_ms: list[float] = []
    month_rows = 0
    for _ in range(args.runs):
        start = time.perf_counter()
        month_rows = len(series.as_array())
        orm_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(raw_sql, raw_params)
            cursor.fetchall()
        raw_ms.append((time.perf_counter() - start) * 1000)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + raw_sql, raw_params)
            server_ms.append(float(cursor.fetchone()[0][0]["Execution Time"]))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + raw_sql, raw_params)
        plan = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT count(*) FROM trading_candle")
        stored = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'trading_candle'::regclass"
        )
        partition_count = cursor.fetchone()[0]
        in_default = 0
        if storage == "partitioned":
            cursor.execute("SELECT count(*) FROM trading_candle_default")
            in_default = cursor.fetchone()[0]

    rate = inserted / upsert_s if upsert_s else 0.0
    wall_rate = inserted / wall_s if wall_s else 0.0
    print()
    print(f"PostgreSQL {connection.pg_version}, candle table: {storage}, ", end="")
    print(f"{partition_count} partitions, {in_default} rows in DEFAULT")
    print(f"{'measure':<44} {'value':>14}  target")
    print(f"{'rows imported (inserted)':<44} {inserted:>14,}")
    print(f"{'rows stored':<44} {stored:>14,}")
    print(f"{'import seconds (candles_upsert calls)':<44} {upsert_s:>14.1f}")
    ok = "ok" if rate >= IMPORT_TARGET else "MISSED"
    print(f"{'import candles/s (candles_upsert calls)':<44} {rate:>14,.0f}  >= 150,000 {ok}")
    print(f"{'wall seconds (with data generation)':<44} {wall_s:>14.1f}")
    print(f"{'wall candles/s (with data generation)':<44} {wall_rate:>14,.0f}")
    print(f"{'ANALYZE seconds':<44} {analyze_s:>14.1f}")
    print(f"{'one symbol-month rows (March 2025, 1m)':<44} {month_rows:>14,}")
    rpc = "server default" if args.random_page_cost is None else str(args.random_page_cost)
    print(f"{'random_page_cost':<44} {rpc:>14}")
    measures = (
        ("ORM as_array", orm_ms),
        ("raw cursor fetchall", raw_ms),
        ("server execution", server_ms),
    )
    for label, times in measures:
        for name, value in (
            ("p50", statistics.median(times)),
            ("p95", percentile(times, 0.95)),
            ("max", max(times)),
        ):
            mark = ""
            if name in ("p50", "p95"):
                mark = "<= 50 ms " + ("ok" if value <= QUERY_TARGET_MS else "MISSED")
            print(
                f"{f'month query {label} {name} ms ({args.runs} runs)':<44} {value:>14.1f}  {mark}"
            )
    print("plan of the month query:")
    for line in plan:
        print("   ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=LOCAL_POSTGRES)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--random-page-cost",
        type=float,
        help="SET random_page_cost for the queries (1.1 = SSD; default: the server's, 4)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    name = f"scalpradar_bench_candles_{uuid.uuid4().hex[:8]}"
    admin_execute(args.database_url, f"CREATE DATABASE {name}")
    try:
        run(args, with_database(args.database_url, name))
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"kept database {name}")
        else:
            admin_execute(args.database_url, f"DROP DATABASE IF EXISTS {name}")


if __name__ == "__main__":
    main()
