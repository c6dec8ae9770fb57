"""Benchmark: candles/s of ``import_candles`` into SQLite and PostgreSQL.

    .venv/bin/python bench/import_candles.py                 # SQLite only
    .venv/bin/python bench/import_candles.py --postgres      # + local PostgreSQL (trust auth)
    .venv/bin/python bench/import_candles.py --database-url postgres://user@host:5432/any

Each backend runs in a fresh process on a scratch database: a temp SQLite file, or a PostgreSQL
database this script creates and drops (the URL's database name is replaced). The bundled 1m
sample (3 symbols x 10,080 candles) is imported ``--copies`` times under shifted symbols
(``BTC/USDT:USDT``, ``BTC1/USDT:USDT``, ...) to reach a meaningful size, twice:

* ``command``: ``import_candles`` end to end (gunzip + parse + validate + upsert);
* ``service``: ``candles_upsert`` alone on rows parsed beforehand.

Each is timed for the first import (all rows inserted) and the idempotent re-import (nothing
written).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "sample"
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


def sample_files() -> list[Path]:
    files = sorted(SAMPLE_DIR.glob("binance-usdm_*-USDT_1m_*.csv.gz"))
    if not files:
        sys.exit(f"no 1m sample files in {SAMPLE_DIR}")
    return files


def shifted_symbol(base: str, copy: int) -> str:
    return f"{base}/USDT:USDT" if copy == 0 else f"{base}{copy}/USDT:USDT"


def run_child(copies: int, batch_size: int) -> None:
    """Runs in the child process, once DATABASE_URL and SCALPRADAR_DATA_DIR are set."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from trading.core.csvdata import CandleCsvReader, open_data_file
    from trading.models import Candle
    from trading.services import UpsertResult, candles_upsert

    call_command("migrate", verbosity=0, skip_checks=True)
    files = sample_files()
    jobs = [
        (path, shifted_symbol(path.name.split("_")[1].split("-")[0], copy))
        for copy in range(copies)
        for path in files
    ]
    devnull = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115, PTH123 - kept for the whole run
    label = (
        f"{connection.vendor} {connection.pg_version if connection.vendor == 'postgresql' else ''}"
    )

    def timed_command() -> tuple[float, int]:
        start = time.perf_counter()
        for path, symbol in jobs:
            call_command(
                "import_candles",
                str(path),
                symbol=symbol,
                quiet=True,
                batch_size=batch_size,
                stdout=devnull,
                stderr=devnull,
            )
        return time.perf_counter() - start, Candle.objects.count()

    results: list[tuple[str, str, int, float]] = []
    first, stored = timed_command()
    results.append(("command", "first import", stored, first))
    again, stored_again = timed_command()
    assert stored_again == stored
    results.append(("command", "re-import", stored, again))

    # Start the service phase from empty storage too (freed pages would flatter it).
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {Candle._meta.db_table}")
        else:
            cursor.execute(f"DELETE FROM {Candle._meta.db_table}")  # noqa: S608
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM")
    start = time.perf_counter()
    parsed = []
    for path, symbol in jobs:
        with open_data_file(path) as stream:
            parsed.append((symbol, list(CandleCsvReader(stream, timeframe="1m"))))
    parse_s = time.perf_counter() - start
    rows_total = sum(len(rows) for _, rows in parsed)
    results.append(("parse only", "gunzip+parse+validate", rows_total, parse_s))

    for phase in ("first import", "re-import"):
        total = UpsertResult()
        start = time.perf_counter()
        for symbol, rows in parsed:
            for offset in range(0, len(rows), batch_size):
                total += candles_upsert(
                    rows=rows[offset : offset + batch_size],
                    exchange="bench",
                    symbol=symbol,
                    timeframe="1m",
                )
        elapsed = time.perf_counter() - start
        expected = (rows_total, 0) if phase == "first import" else (0, 0)
        assert (total.inserted, total.updated) == expected, total
        results.append(("service", phase, rows_total, elapsed))

    print(f"\n{label.strip()}: {len(jobs)} files, batch size {batch_size}")
    for what, phase, rows, seconds in results:
        print(
            f"  {what:<10} {phase:<22} {rows:>8} candles {seconds:7.2f} s "
            f"{rows / seconds:>10,.0f}/s"
        )


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def run_backend(database_url: str | None, copies: int, batch_size: int) -> int:
    with tempfile.TemporaryDirectory(prefix="scalpradar-bench-") as data_dir:
        env = {**os.environ, "SCALPRADAR_DATA_DIR": data_dir, "SCALPRADAR_ENV": "embedded"}
        env.pop("REDIS_URL", None)
        if database_url is None:
            # No DATABASE_URL: the embedded default, SQLite in SCALPRADAR_DATA_DIR with the
            # settings' WAL and synchronous=NORMAL pragmas, as the radar runs it.
            env.pop("DATABASE_URL", None)
            return subprocess.call(  # noqa: S603 - our own interpreter and script
                [
                    sys.executable,
                    __file__,
                    "--child",
                    f"--copies={copies}",
                    f"--batch-size={batch_size}",
                ],
                env=env,
            )
        import psycopg

        scratch = f"scalpradar_bench_{uuid.uuid4().hex[:8]}"
        admin_url = with_database(database_url, "postgres")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{scratch}"')
        try:
            env["DATABASE_URL"] = with_database(database_url, scratch)
            return subprocess.call(  # noqa: S603 - our own interpreter and script
                [
                    sys.executable,
                    __file__,
                    "--child",
                    f"--copies={copies}",
                    f"--batch-size={batch_size}",
                ],
                env=env,
            )
        finally:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to benchmark (scratch DB)")
    parser.add_argument("--postgres", action="store_true", help=f"use {LOCAL_POSTGRES}")
    parser.add_argument("--copies", type=int, default=4, help="imports under shifted symbols")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.copies, args.batch_size)
        return 0
    status = run_backend(None, args.copies, args.batch_size)
    postgres_url = args.database_url or (LOCAL_POSTGRES if args.postgres else None)
    if postgres_url:
        status = run_backend(postgres_url, args.copies, args.batch_size) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
