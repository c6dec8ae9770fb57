"""The candle table at scale on PostgreSQL: a TimescaleDB hypertable when the server can load
the extension, otherwise a table range-partitioned by month of ``open_time_ms``
(:mod:`trading.partitions`). SQLite: nothing changes.

Django's model state does not change either (``id`` stays the model's pk): only the database's
primary key becomes ``(id, open_time_ms)``, as both partitioning schemes require every unique
constraint to hold the partition column. The natural key ``candle_natural_key`` and the check
constraints keep their names. The stored rows are copied into the new table, ids included.
Reversing turns the table back into a plain one (rows kept).
"""

from django.db import migrations

from trading.partitions import (
    BRIN_PAGES_PER_RANGE,
    DEFAULT_PARTITION,
    TABLE,
    batch_months,
    ensure_partitions,
    ensure_partitions_ahead,
    forget,
)

OLD = f"{TABLE}_unpartitioned"
NATURAL_KEY = "UNIQUE (exchange, symbol, timeframe, open_time_ms)"
CHUNK_MS = 7 * 24 * 3600 * 1000  # Timescale chunk: 7 days of open_time_ms


def timescale_loadable(cursor) -> bool:
    """Whether ``CREATE EXTENSION timescaledb`` can work here: installed already, or available
    and preloaded (the extension refuses to load otherwise)."""
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if cursor.fetchone() is not None:
        return True
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if cursor.fetchone() is None:
        return False
    cursor.execute("SELECT current_setting('shared_preload_libraries')")
    return "timescaledb" in cursor.fetchone()[0]


def to_hypertable(cursor) -> None:
    cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    cursor.execute(
        f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_pkey, "
        f"ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, open_time_ms)"
    )
    # The legacy signature: accepted by every 2.x release (by_range() needs >= 2.13).
    cursor.execute(
        "SELECT create_hypertable(%s, 'open_time_ms', chunk_time_interval => %s::bigint, "
        "migrate_data => true)",
        [TABLE, CHUNK_MS],
    )
    # Integer time: retention / compression / continuous aggregates need "now" in epoch ms.
    cursor.execute(
        f"CREATE OR REPLACE FUNCTION {TABLE}_now_ms() RETURNS bigint LANGUAGE sql STABLE "  # noqa: S608
        "AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$"
    )
    cursor.execute("SELECT set_integer_now_func(%s, %s)", [TABLE, f"{TABLE}_now_ms"])


def to_partitioned(cursor, schema_editor) -> None:
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT {TABLE}_pkey TO {OLD}_pkey")
    cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT candle_natural_key TO {OLD}_key")
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY "
        f"INCLUDING CONSTRAINTS INCLUDING STORAGE, "
        f"CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, open_time_ms), "
        f"CONSTRAINT candle_natural_key {NATURAL_KEY}) PARTITION BY RANGE (open_time_ms)"
    )
    cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    cursor.execute(
        f"CREATE INDEX {TABLE}_open_time_brin ON {TABLE} USING brin (open_time_ms) "
        f"WITH (pages_per_range = {BRIN_PAGES_PER_RANGE})"
    )
    # Partitions for the stored rows' months and the months ahead, before the rows go in.
    cursor.execute(
        f"SELECT DISTINCT (extract(epoch FROM date_trunc('month', "  # noqa: S608
        f"to_timestamp(open_time_ms / 1000.0) AT TIME ZONE 'UTC')) * 1000)::bigint FROM {OLD}"
    )
    months = batch_months(row[0] for row in cursor.fetchall())
    alias = schema_editor.connection.alias
    forget()
    ensure_partitions(months, using=alias)
    ensure_partitions_ahead(using=alias)
    columns = _columns(cursor, OLD)
    cursor.execute(
        f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {OLD}"  # noqa: S608
    )
    _restart_identity(cursor)
    cursor.execute(f"DROP TABLE {OLD}")
    cursor.execute(f"ANALYZE {TABLE}")


def _columns(cursor, table: str) -> str:
    cursor.execute(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        [table],
    )
    return cursor.fetchone()[0]


def _restart_identity(cursor) -> None:
    """The new table's identity continues after the largest copied id."""
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "  # noqa: S608
        f"COALESCE((SELECT max(id) FROM {TABLE}), 0) + 1, false)",
        [TABLE],
    )


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite: one plain table, unchanged
    with schema_editor.connection.cursor() as cursor:
        if timescale_loadable(cursor):
            to_hypertable(cursor)
        else:
            to_partitioned(cursor, schema_editor)
    forget()


def backwards(apps, schema_editor):
    """Back to one plain table with ``PRIMARY KEY (id)`` (hypertable or partitions alike)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT {TABLE}_pkey TO {OLD}_pkey")
        cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT candle_natural_key TO {OLD}_key")
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY "
            f"INCLUDING CONSTRAINTS INCLUDING STORAGE, "
            f"CONSTRAINT {TABLE}_pkey PRIMARY KEY (id), "
            f"CONSTRAINT candle_natural_key {NATURAL_KEY})"
        )
        columns = _columns(cursor, OLD)
        cursor.execute(
            f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {OLD}"  # noqa: S608
        )
        _restart_identity(cursor)
        cursor.execute(f"DROP TABLE {OLD} CASCADE")
        cursor.execute(f"DROP FUNCTION IF EXISTS {TABLE}_now_ms()")
    forget()


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0007_market_data_source"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
