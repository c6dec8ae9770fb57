"""How the candle table is stored on PostgreSQL: monthly range partitions (or a hypertable).

SQLite keeps one plain table. On PostgreSQL, migration ``0008_candle_partitions`` turns
``trading_candle`` into

* a **TimescaleDB hypertable** (7-day chunks of ``open_time_ms``) when the server can load the
  extension (``timescaledb`` in ``pg_available_extensions`` and in
  ``shared_preload_libraries``, or already installed): Timescale creates its chunks itself;
* otherwise a **natively range-partitioned table** ``PARTITION BY RANGE (open_time_ms)``: one
  partition per UTC calendar month, bounds in epoch milliseconds (``trading_candle_y2026m01``
  holds ``[1767225600000, 1769904000000)``), plus the DEFAULT partition
  ``trading_candle_default`` so a row of a month without its partition is never refused.

Both need every unique constraint to contain the partition column, so the database's primary
key is ``(id, open_time_ms)`` (Django's model state keeps ``id`` as the pk: ``id`` stays unique
through its identity sequence) and the natural key ``(exchange, symbol, timeframe,
open_time_ms)`` stays. A BRIN index on ``open_time_ms`` (one per partition, through the
parent's partitioned index) serves whole-range scans; the natural key's btree serves the
per-symbol ranges, pruned to the months asked for.

Partitions are created ahead: :func:`ensure_partitions_ahead` (the beat task
``trading.tasks.create_candle_partitions``, daily) creates the current month and the next
:data:`MONTHS_AHEAD`; :func:`ensure_partitions` creates the months of a batch before the upsert
writes it (``trading.services``). A month whose rows already sit in the DEFAULT partition (a
row written before its partition existed) gets them moved into its new partition in the same
transaction: PostgreSQL refuses to create a partition over rows the DEFAULT one holds.
Creating a partition briefly locks the parent table (ACCESS EXCLUSIVE until the transaction
commits): that is why the beat task runs ahead of the data.

All functions are idempotent and are no-ops on SQLite, on a hypertable and on a plain table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connections, transaction

TABLE = "trading_candle"
DEFAULT_PARTITION = f"{TABLE}_default"
MONTHS_AHEAD = 3  # months created beyond the current one by the beat task
BRIN_PAGES_PER_RANGE = 32
# A batch spanning more months than this is scanned row by row for its months (a few
# stray rows years apart must not create every month between them).
_MAX_SPAN_MONTHS = 24
# Lock key of partition creation (pg_advisory_xact_lock): two importers never race.
_LOCK_KEY = 0x7C4D_1E50

# Months known to have their partition, per database alias; filled only after a commit
# (a partition created in a transaction that rolls back must not be remembered).
_known: dict[str, set[int]] = {}
# Aliases whose candle table is not natively partitioned (hypertable, plain): nothing to do.
_unpartitioned: set[str] = set()


def forget() -> None:
    """Drop the memo of existing partitions (tests that drop or recreate tables)."""
    _known.clear()
    _unpartitioned.clear()


# -- month arithmetic in epoch milliseconds (UTC) ----------------------------------------------


def month_start_ms(time_ms: int) -> int:
    """Start (epoch ms, UTC) of the calendar month holding ``time_ms``."""
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp() * 1000)


def next_month_ms(month_ms: int) -> int:
    """Start (epoch ms) of the month after the one starting at ``month_ms``."""
    moment = datetime.fromtimestamp(month_ms / 1000, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


def months_between(first_ms: int, last_ms: int) -> list[int]:
    """Starts (epoch ms) of every month from the one holding ``first_ms`` to the one holding
    ``last_ms``, both included."""
    months = []
    month = month_start_ms(first_ms)
    while month <= last_ms:
        months.append(month)
        month = next_month_ms(month)
    return months


def partition_name(month_ms: int) -> str:
    """``trading_candle_y2026m01`` for the month starting at ``month_ms``."""
    moment = datetime.fromtimestamp(month_ms / 1000, UTC)
    return f"{TABLE}_y{moment.year:04d}m{moment.month:02d}"


def batch_months(times_ms: Iterable[int]) -> set[int]:
    """Months (starts, epoch ms) a batch of open times falls in."""
    times = list(times_ms)
    if not times:
        return set()
    first, last = min(times), max(times)
    span = months_between(first, last)
    if len(span) <= _MAX_SPAN_MONTHS:
        return set(span)
    return {month_start_ms(t) for t in times}


# -- what the table is --------------------------------------------------------------------------


def storage(using: str = "default") -> str:
    """How the candle table is stored: ``sqlite``, ``hypertable``, ``partitioned`` or
    ``plain`` (PostgreSQL without partitions: before migration 0008)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return connection.vendor
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relkind, "
            "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') "
            "FROM pg_class c WHERE c.oid = to_regclass(%s)",
            [TABLE],
        )
        found = cursor.fetchone()
        if found is None:
            return "missing"
        relkind, timescale = found
        if relkind == "p":
            return "partitioned"
        if timescale:
            cursor.execute(
                "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s",
                [TABLE],
            )
            if cursor.fetchone() is not None:
                return "hypertable"
        return "plain"


def partitions(using: str = "default") -> dict[str, str]:
    """The candle table's partitions on PostgreSQL: ``{name: bound expression}`` (``DEFAULT``
    or ``FOR VALUES FROM (a) TO (b)``); empty when the table is not partitioned."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname, pg_get_expr(child.relpartbound, child.oid) "
            "FROM pg_inherits i JOIN pg_class child ON child.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s) ORDER BY child.relname",
            [TABLE],
        )
        return dict(cursor.fetchall())


# -- creating partitions ---------------------------------------------------------------------


def ensure_partitions(months_ms: Iterable[int], *, using: str = "default") -> list[str]:
    """Create the monthly partitions of ``months_ms`` (month starts, epoch ms; any time inside
    a month names that month) that do not exist yet; rows of those months waiting in the
    DEFAULT partition move into them. Returns the names created. A no-op (empty list) unless
    the candle table is natively partitioned."""
    connection = connections[using]
    if connection.vendor != "postgresql" or using in _unpartitioned:
        return []
    known = _known.setdefault(using, set())
    wanted = {month_start_ms(m) for m in months_ms} - known
    if not wanted:
        return []
    created: list[str] = []
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)", [TABLE])
        found = cursor.fetchone()
        if found is None or found[0] != "p":
            # Plain table, hypertable (Timescale makes its chunks) or no table yet.
            if found is not None:
                transaction.on_commit(lambda: _unpartitioned.add(using), using=using)
            return []
        existing = set(partitions(using))
        missing = sorted(m for m in wanted if partition_name(m) not in existing)
        if missing:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            existing = set(partitions(using))  # another process may have made them meanwhile
            for month in missing:
                if partition_name(month) not in existing:
                    _create_partition(cursor, month)
                    created.append(partition_name(month))
        transaction.on_commit(lambda: known.update(wanted), using=using)
    return created


def ensure_partitions_ahead(
    months_ahead: int = MONTHS_AHEAD, *, now_ms: int | None = None, using: str = "default"
) -> list[str]:
    """Create the partitions of the current UTC month and the next ``months_ahead``; returns
    the names created (the beat task's job)."""
    month = month_start_ms(int(time.time() * 1000) if now_ms is None else now_ms)
    months = [month]
    for _ in range(months_ahead):
        month = next_month_ms(month)
        months.append(month)
    return ensure_partitions(months, using=using)


def _create_partition(cursor: object, month_ms: int) -> None:
    """Create one month's partition; rows of that month found in the DEFAULT partition are
    moved into it first (a partition cannot be created over them)."""
    name = partition_name(month_ms)
    end_ms = next_month_ms(month_ms)
    cursor.execute(  # type: ignore[attr-defined]
        f"SELECT 1 FROM {DEFAULT_PARTITION} "  # noqa: S608 - constant names
        "WHERE open_time_ms >= %s AND open_time_ms < %s LIMIT 1",
        [month_ms, end_ms],
    )
    if cursor.fetchone() is None:  # type: ignore[attr-defined]
        cursor.execute(  # type: ignore[attr-defined]
            f"CREATE TABLE {name} PARTITION OF {TABLE} "
            f"FOR VALUES FROM ({int(month_ms)}) TO ({int(end_ms)})"
        )
        return
    # Built outside the table, filled from DEFAULT, then attached (which checks the bounds).
    cursor.execute(  # type: ignore[attr-defined]
        f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    cursor.execute(  # type: ignore[attr-defined]
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608 - constant names
        "WHERE open_time_ms >= %s AND open_time_ms < %s RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved",
        [month_ms, end_ms],
    )
    cursor.execute(  # type: ignore[attr-defined]
        f"ALTER TABLE {TABLE} ATTACH PARTITION {name} "
        f"FOR VALUES FROM ({int(month_ms)}) TO ({int(end_ms)})"
    )
