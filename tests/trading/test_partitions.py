"""The candle table at scale (``trading.partitions``, migration 0008): monthly partitions in
epoch ms on PostgreSQL, created on import and ahead by the beat task, with the upserts' counts
unchanged; SQLite keeps its plain table.

The PostgreSQL tests skip on SQLite; CI's second pass runs them against PostgreSQL
(``DATABASE_URL=postgres://...``). The TimescaleDB path cannot run here (no extension)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from trading import partitions
from trading.models import Candle
from trading.partitions import (
    batch_months,
    month_start_ms,
    months_between,
    next_month_ms,
    partition_name,
)
from trading.services import UpsertResult, candles_upsert, candles_upsert_many
from trading.tasks import create_candle_partitions

JAN_2026 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FEB_2026 = 1_769_904_000_000
DEC_2026 = 1_796_083_200_000
JAN_2027 = 1_798_761_600_000
MAY_2031 = 1_935_360_000_000  # far from every other test's data: no partition yet
JUN_2031 = 1_938_038_400_000
MINUTE_MS = 60_000

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="native range partitions exist on PostgreSQL only (SQLite keeps one plain table)",
)


def row(time_ms: int, close: float = 100.0) -> tuple[int, float, float, float, float, float]:
    return (time_ms, 100.0, 101.0, 99.0, close, 5.0)


def minutes(start_ms: int, count: int) -> list[tuple[int, float, float, float, float, float]]:
    return [row(start_ms + i * MINUTE_MS) for i in range(count)]


def rows_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - test constant names
        return cursor.fetchone()[0]


def test_month_bounds_are_utc_calendar_months_in_epoch_ms():
    """January 2026 = [1767225600000, 1769904000000); December rolls over into January."""
    assert month_start_ms(JAN_2026) == JAN_2026
    assert month_start_ms(FEB_2026 - 1) == JAN_2026
    assert next_month_ms(JAN_2026) == FEB_2026
    assert next_month_ms(DEC_2026) == JAN_2027
    assert partition_name(DEC_2026 + 5 * MINUTE_MS) == "trading_candle_y2026m12"
    assert months_between(JAN_2026 + 1, FEB_2026 + 1) == [JAN_2026, FEB_2026]


def test_a_batch_names_its_months_and_stray_rows_do_not_create_the_years_between():
    assert batch_months([JAN_2026 + 1, FEB_2026 + 10]) == {JAN_2026, FEB_2026}
    assert batch_months([JAN_2026, MAY_2031]) == {JAN_2026, MAY_2031}  # 65 months apart
    assert batch_months([]) == set()


def test_the_beat_task_is_scheduled_daily():
    entry = settings.CELERY_BEAT_SCHEDULE["create-candle-partitions"]
    assert entry["task"] == "trading.tasks.create_candle_partitions"
    assert entry["schedule"] == 86_400.0


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's unchanged plain table")
def test_sqlite_keeps_one_plain_table_and_partitioning_is_a_no_op():
    assert partitions.storage() == "sqlite"
    assert partitions.ensure_partitions([MAY_2031]) == []
    assert create_candle_partitions() == []
    assert candles_upsert(
        rows=minutes(MAY_2031, 3), exchange="binance", symbol="BTC/USDT:USDT", timeframe="1m"
    ) == UpsertResult(3, 0, 0)


@postgresql_only
@pytest.mark.django_db
def test_migrated_table_is_range_partitioned_with_the_time_in_every_unique_key():
    assert partitions.storage() == "partitioned"
    assert partitions.partitions()[partitions.DEFAULT_PARTITION] == "DEFAULT"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'trading_candle'::regclass AND contype IN ('p', 'u')"
        )
        keys = dict(cursor.fetchall())
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'trading_candle' "
            "AND indexdef LIKE '%USING brin%'"
        )
        brin = [r[0] for r in cursor.fetchall()]
    assert keys == {
        "trading_candle_pkey": "PRIMARY KEY (id, open_time_ms)",
        "candle_natural_key": "UNIQUE (exchange, symbol, timeframe, open_time_ms)",
    }
    assert len(brin) == 1
    assert "(open_time_ms)" in brin[0]


@postgresql_only
@pytest.mark.django_db
def test_an_import_creates_its_months_and_the_copy_and_temp_table_paths_keep_their_counts():
    """200 fresh candles at the end of May 2031 and into June (the COPY path): both months'
    partitions appear and hold them. Again with one close changed (the temp-table path):
    1 updated, 199 unchanged; nothing lands in DEFAULT."""
    batch = minutes(JUN_2031 - 100 * MINUTE_MS, 200)
    kwargs = {"exchange": "binance", "symbol": "BTC/USDT:USDT", "timeframe": "1m"}
    assert candles_upsert(rows=batch, **kwargs) == UpsertResult(200, 0, 0)
    may, june = partition_name(MAY_2031), partition_name(JUN_2031)
    assert {may, june} <= set(partitions.partitions())
    assert (rows_in(may), rows_in(june), rows_in(partitions.DEFAULT_PARTITION)) == (100, 100, 0)
    changed = [*batch[:-1], row(batch[-1][0], close=123.0)]
    assert candles_upsert(rows=changed, **kwargs) == UpsertResult(0, 1, 199)
    assert Candle.objects.get(open_time_ms=batch[-1][0]).close == 123.0


@postgresql_only
@pytest.mark.django_db
def test_the_few_rows_upsert_counts_inserted_and_updated_on_the_partitioned_table():
    """The live path's single statement (``INSERT ... ON CONFLICT``, no ``xmax``): 2 symbols
    inserted, then one updated, one unchanged and one new."""
    first = {"BTC/USDT:USDT": [row(MAY_2031)], "ETH/USDT:USDT": [row(MAY_2031)]}
    assert candles_upsert_many(rows=first, exchange="bitget", timeframe="1m") == UpsertResult(
        2, 0, 0
    )
    second = {
        "BTC/USDT:USDT": [row(MAY_2031, close=101.0)],
        "ETH/USDT:USDT": [row(MAY_2031)],
        "SOL/USDT:USDT": [row(MAY_2031)],
    }
    assert candles_upsert_many(rows=second, exchange="bitget", timeframe="1m") == UpsertResult(
        1, 1, 1
    )
    assert rows_in(partition_name(MAY_2031)) == 3


@postgresql_only
@pytest.mark.django_db
def test_rows_waiting_in_default_move_into_their_new_partition():
    """A candle written before its month had a partition (the ORM does not create them) sits
    in DEFAULT, stored all the same; creating the month moves it there, id and values kept."""
    candle = Candle.objects.create(
        exchange="binance",
        symbol="BTC/USDT:USDT",
        timeframe="1m",
        **dict(
            zip(
                ("open_time_ms", "open", "high", "low", "close", "volume"),
                row(MAY_2031),
                strict=True,
            )
        ),
    )
    assert rows_in(partitions.DEFAULT_PARTITION) == 1
    assert partitions.ensure_partitions([MAY_2031]) == [partition_name(MAY_2031)]
    assert rows_in(partitions.DEFAULT_PARTITION) == 0
    assert rows_in(partition_name(MAY_2031)) == 1
    moved = Candle.objects.get(pk=candle.pk)
    assert (moved.open_time_ms, moved.close) == (MAY_2031, 100.0)
    assert partitions.ensure_partitions([MAY_2031]) == []  # idempotent


@postgresql_only
@pytest.mark.django_db
def test_the_beat_task_creates_this_month_and_three_ahead_once():
    made = partitions.ensure_partitions_ahead(now_ms=MAY_2031 + 5 * MINUTE_MS)
    assert made == [
        "trading_candle_y2031m05",
        "trading_candle_y2031m06",
        "trading_candle_y2031m07",
        "trading_candle_y2031m08",
    ]
    bounds = partitions.partitions()["trading_candle_y2031m05"]
    assert bounds == f"FOR VALUES FROM ('{MAY_2031}') TO ('{JUN_2031}')"
    assert partitions.ensure_partitions_ahead(now_ms=MAY_2031) == []
    assert isinstance(create_candle_partitions(), list)  # today's months: made or already there


@pytest.mark.django_db
def test_as_array_reads_across_months_in_order_with_the_exact_values():
    """The (N, 6) array the backtests read (one packed bytea, or a binary COPY for another
    order, on PostgreSQL) equals the stored rows, across a month boundary, in the queryset's
    order, limited."""
    batch = [
        (JUN_2031 + (i - 60) * MINUTE_MS, 100.0 + i / 7, 102.0 + i, 99.0, 100.0 + i / 3, i * 0.1)
        for i in range(120)
    ]
    candles_upsert(rows=batch, exchange="binance", symbol="BTC/USDT:USDT", timeframe="1m")
    series = Candle.objects.filter(symbol="BTC/USDT:USDT", timeframe="1m")
    assert series.order_by("open_time_ms").as_array().tolist() == [list(r) for r in batch]
    newest = series.order_by("-open_time_ms").as_array(3)
    assert newest[:, 0].tolist() == [batch[-1][0], batch[-2][0], batch[-3][0]]
    assert series.none().as_array().shape == (0, 6)
    # In time order PostgreSQL packs the rows server-side (one bytea): limited, and empty.
    assert series.order_by("open_time_ms").as_array(5).tolist() == [list(r) for r in batch[:5]]
    nothing = series.filter(open_time_ms__lt=0).order_by("open_time_ms")
    assert nothing.as_array().shape == (0, 6)
