"""Writes of market data: bulk upserts keyed by the natural key.

An upsert inserts new rows, updates stored rows whose values differ and leaves identical rows
alone: importing the same data twice writes nothing the second time (not even a row lock).

PostgreSQL: the rows go through ``COPY`` into a session temp table; one ``UPDATE ... FROM``
rewrites the stored rows whose values differ, one plain ``INSERT ... SELECT`` adds the keys not
stored yet. A plain insert is 2-3x faster than ``INSERT ... ON CONFLICT``, whose speculative
insertion costs on every row; when a concurrent writer stored one of the keys in the meantime
the insert fails on the unique key, is rolled back to its savepoint and the batch is retried
with ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <values differ>``.

SQLite: the stored rows of the batch's time range are read in one indexed range scan and
compared in Python; ``executemany`` inserts the new rows and updates the changed ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Model

from trading.core.csvdata import CandleRow, FundingRow
from trading.models import Candle, FundingRate


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What an upsert did, in rows: ``inserted + updated + unchanged`` = distinct keys given."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )

    @property
    def written(self) -> int:
        return self.inserted + self.updated


_Row = tuple[int | float, ...]  # (time_ms, *values): a CandleRow or a FundingRow


@dataclass(frozen=True, slots=True)
class _Series:
    """One upsert's target: the model's table, the fixed part of the key, the row columns."""

    model: type[Model]
    fixed_key: dict[str, str]  # column -> value shared by every row (exchange, symbol, ...)
    time_column: str  # the varying part of the natural key, first item of every row
    value_columns: tuple[str, ...]  # the other items of every row, in order
    value_sql_types: tuple[str, ...]


def candles_upsert(
    *, rows: Sequence[CandleRow], exchange: str, symbol: str, timeframe: str
) -> UpsertResult:
    """Insert or update candles ``(open_time_ms, open, high, low, close, volume)`` of one
    series; identical stored candles are not touched. A repeated open time keeps its last row."""
    series = _Series(
        model=Candle,
        fixed_key={"exchange": exchange, "symbol": symbol, "timeframe": timeframe},
        time_column="open_time_ms",
        value_columns=("open", "high", "low", "close", "volume"),
        value_sql_types=("float8",) * 5,
    )
    return _upsert(series, rows)


def funding_upsert(*, rows: Sequence[FundingRow], exchange: str, symbol: str) -> UpsertResult:
    """Insert or update funding settlements ``(funding_time_ms, rate)`` of one symbol; the
    stored ``mark_price`` of an existing settlement is kept."""
    series = _Series(
        model=FundingRate,
        fixed_key={"exchange": exchange, "symbol": symbol},
        time_column="funding_time_ms",
        value_columns=("rate",),
        value_sql_types=("float8",),
    )
    return _upsert(series, rows)


def _upsert(series: _Series, rows: Sequence[_Row]) -> UpsertResult:
    if not rows:
        return UpsertResult()
    # ON CONFLICT DO UPDATE may not touch one row twice in a statement: keep the last row per key.
    unique_rows = list({row[0]: row for row in rows}.values())
    with transaction.atomic():
        if connection.vendor == "postgresql":
            inserted, updated = _upsert_postgresql(series, unique_rows)
        elif connection.vendor == "sqlite":
            inserted, updated = _upsert_sqlite(series, unique_rows)
        else:
            raise NotImplementedError(
                f"bulk upsert supports PostgreSQL and SQLite, not {connection.vendor}"
            )
    return UpsertResult(inserted, updated, len(unique_rows) - inserted - updated)


def _names(series: _Series) -> tuple[str, list[str], list[str], list[str]]:
    """Quoted table name, fixed key columns, row columns (time first) and value columns."""
    quote = connection.ops.quote_name
    table = quote(series.model._meta.db_table)
    fixed = [quote(column) for column in series.fixed_key]
    row_columns = [quote(series.time_column), *(quote(c) for c in series.value_columns)]
    values = [quote(column) for column in series.value_columns]
    return table, fixed, row_columns, values


def _upsert_postgresql(series: _Series, rows: list[_Row]) -> tuple[int, int]:
    table, fixed, row_columns, values = _names(series)
    time_column = row_columns[0]
    buffer = connection.ops.quote_name(f"import_{series.model._meta.db_table}")
    fixed_params = list(series.fixed_key.values())
    same_key = " AND ".join(
        [f"t.{column} = %s" for column in fixed] + [f"t.{time_column} = b.{time_column}"]
    )
    differs = " OR ".join(f"t.{c} IS DISTINCT FROM b.{c}" for c in values)
    insert_columns = ", ".join([*fixed, *row_columns])
    placeholders = ", ".join(["%s"] * len(fixed))
    incoming_columns = ", ".join(f"b.{c}" for c in row_columns)
    select_incoming = f"SELECT {placeholders}, {incoming_columns} FROM {buffer} b"  # noqa: S608
    with connection.cursor() as cursor:
        # A session temp table emptied at every commit; TRUNCATE also empties it inside an
        # enclosing transaction that has not committed yet (tests, nested imports).
        column_types = ("int8", *series.value_sql_types)
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {buffer} ("
            + ", ".join(
                f"{column} {sql_type} NOT NULL"
                for column, sql_type in zip(row_columns, column_types, strict=True)
            )
            + ") ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {buffer}")
        with cursor.cursor.copy(
            f"COPY {buffer} ({', '.join(row_columns)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(list(column_types))
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"UPDATE {table} t SET {', '.join(f'{c} = b.{c}' for c in values)} "  # noqa: S608
            f"FROM {buffer} b WHERE {same_key} AND ({differs})",
            fixed_params,
        )
        updated = cursor.rowcount
        try:
            with transaction.atomic():
                cursor.execute(
                    f"INSERT INTO {table} ({insert_columns}) {select_incoming} "  # noqa: S608
                    f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same_key})",
                    [*fixed_params, *fixed_params],
                )
                return cursor.rowcount, updated
        except IntegrityError:
            pass  # a concurrent writer stored some of these keys: take the conflict-safe path
        excluded_differs = " OR ".join(f"t.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in values)
        cursor.execute(
            f"""
            WITH upserted AS (
                INSERT INTO {table} AS t ({insert_columns}) {select_incoming}
                ON CONFLICT ({", ".join([*fixed, time_column])}) DO UPDATE
                SET {", ".join(f"{c} = EXCLUDED.{c}" for c in values)}
                WHERE {excluded_differs}
                RETURNING (t.xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
            FROM upserted
            """,  # noqa: S608 - identifiers are quoted model names, values are parameters
            fixed_params,
        )
        inserted, updated_on_retry = cursor.fetchone()
    return int(inserted), updated + int(updated_on_retry)


def _upsert_sqlite(series: _Series, rows: list[_Row]) -> tuple[int, int]:
    table, fixed, row_columns, values = _names(series)
    time_column = row_columns[0]
    fixed_params = list(series.fixed_key.values())
    key_filter = " AND ".join(f"{column} = %s" for column in fixed)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(row_columns)} FROM {table} "  # noqa: S608 - quoted model names
            f"WHERE {key_filter} AND {time_column} BETWEEN %s AND %s",
            [*fixed_params, min(row[0] for row in rows), max(row[0] for row in rows)],
        )
        stored = {row[0]: row for row in cursor.fetchall()}
        new_rows = [(*fixed_params, *row) for row in rows if row[0] not in stored]
        changed_rows = [
            (*row[1:], *fixed_params, row[0])
            for row in rows
            if row[0] in stored and tuple(stored[row[0]]) != tuple(row)
        ]
        if new_rows:
            columns = [*fixed, *row_columns]
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - quoted names
                f"VALUES ({', '.join(['%s'] * len(columns))})",
                new_rows,
            )
        if changed_rows:
            cursor.executemany(
                f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in values)} "  # noqa: S608
                f"WHERE {key_filter} AND {time_column} = %s",
                changed_rows,
            )
    return len(new_rows), len(changed_rows)
