"""Writes of market data: bulk upserts keyed by the natural key.

An upsert inserts new rows, updates stored rows whose values differ and leaves identical rows
alone: importing the same data twice writes nothing the second time (not even a row lock).

PostgreSQL: when nothing is stored yet in the batch's time range of its series (the usual case of
a history download), the rows are ``COPY``-ed straight into the table; a unique-key violation
there (a concurrent writer got in between the range check and the copy) rolls the copy back to
its savepoint and the batch takes the general path. The general path: ``COPY`` into a session
temp table; one ``UPDATE ... FROM``
rewrites the stored rows whose values differ, one plain ``INSERT ... SELECT`` adds the keys not
stored yet. A plain insert is 2-3x faster than ``INSERT ... ON CONFLICT``, whose speculative
insertion costs on every row; when a concurrent writer stored one of the keys in the meantime
the insert fails on the unique key, is rolled back to its savepoint and the batch is retried
with ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <values differ>``.

On PostgreSQL the candle table is range-partitioned by month or a TimescaleDB hypertable
(:mod:`trading.partitions`): a candle batch's months get their partitions before it is written,
and the ``ON CONFLICT`` statement counts inserts without ``xmax`` (refused there).

SQLite: the stored rows of the batch's time range are read in one indexed range scan and
compared in Python; ``executemany`` inserts the new rows and updates the changed ones.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from common.notices import emit, trade_closed_notice, trade_opened_notice
from trading import partitions
from trading.config import checked_capital_weight, field_errors, session_problems
from trading.core.csvdata import CandleRow, FundingRow
from trading.core.ledger import ClosedTrade, OpenPosition
from trading.models import Candle, FundingRate, OpenInterest, Position, TradingSession

log = logging.getLogger(__name__)


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
    # Written on every inserted or updated row, not part of the key: where the values came
    # from ("" = not recorded). An unchanged row keeps the source it was stored with.
    source: str = ""


def _candle_series(exchange: str, symbol: str, timeframe: str, source: str = "") -> _Series:
    return _Series(
        model=Candle,
        fixed_key={"exchange": exchange, "symbol": symbol, "timeframe": timeframe},
        time_column="open_time_ms",
        value_columns=("open", "high", "low", "close", "volume"),
        value_sql_types=("float8",) * 5,
        source=source,
    )


def candles_upsert(
    *, rows: Sequence[CandleRow], exchange: str, symbol: str, timeframe: str, source: str = ""
) -> UpsertResult:
    """Insert or update candles ``(open_time_ms, open, high, low, close, volume)`` of one
    series; identical stored candles are not touched. A repeated open time keeps its last row.
    ``source`` is recorded on every row written (``Candle.source``)."""
    return _upsert(_candle_series(exchange, symbol, timeframe, source), rows)


def candles_upsert_many(
    *,
    rows: Mapping[str, Sequence[CandleRow]],
    exchange: str,
    timeframe: str,
    source: str = "",
) -> UpsertResult:
    """:func:`candles_upsert` of several symbols (``rows`` by symbol) at once: on PostgreSQL,
    up to ``_FEW_ROWS`` rows in all are stored by ONE statement (the live runtime's group
    commit), otherwise symbol by symbol."""
    parts = [
        (_candle_series(exchange, symbol, timeframe, source), _last_per_key(symbol_rows))
        for symbol, symbol_rows in rows.items()
        if symbol_rows
    ]
    count = sum(len(part_rows) for _, part_rows in parts)
    if connection.vendor == "postgresql" and 0 < count <= _FEW_ROWS:
        _ensure_candle_partitions(row[0] for _, part_rows in parts for row in part_rows)
        inserted, updated = _upsert_postgresql_few(parts)
        return UpsertResult(inserted, updated, count - inserted - updated)
    total = UpsertResult()
    for series, part_rows in parts:
        total += _upsert(series, part_rows)
    return total


def funding_upsert(
    *, rows: Sequence[FundingRow], exchange: str, symbol: str, source: str = ""
) -> UpsertResult:
    """Insert or update funding settlements ``(funding_time_ms, rate)`` of one symbol; the
    stored ``mark_price`` of an existing settlement is kept. ``source`` is recorded on every
    row written."""
    series = _Series(
        model=FundingRate,
        fixed_key={"exchange": exchange, "symbol": symbol},
        time_column="funding_time_ms",
        value_columns=("rate",),
        value_sql_types=("float8",),
        source=source,
    )
    return _upsert(series, rows)


def funding_mark_prices_set(*, exchange: str, symbol: str, mark_prices: Mapping[int, float]) -> int:
    """Store the mark price (USDT) at stored settlements, ``{funding_time_ms: mark_price}``;
    a time with no stored settlement is skipped. Returns how many rows changed."""
    changed = 0
    with transaction.atomic():
        for funding_time_ms, mark_price in mark_prices.items():
            changed += (
                FundingRate.objects.filter(
                    exchange=exchange, symbol=symbol, funding_time_ms=funding_time_ms
                )
                .exclude(mark_price=mark_price)
                .update(mark_price=mark_price)
            )
    return changed


def _upsert(series: _Series, rows: Sequence[_Row]) -> UpsertResult:
    if not rows:
        return UpsertResult()
    unique_rows = _last_per_key(rows)
    if connection.vendor == "postgresql" and series.model is Candle:
        _ensure_candle_partitions(row[0] for row in unique_rows)
    if connection.vendor == "postgresql" and len(unique_rows) <= _FEW_ROWS:
        # One statement is atomic on its own: no savepoint (two more round trips) around it.
        inserted, updated = _upsert_postgresql_few([(series, unique_rows)])
        return UpsertResult(inserted, updated, len(unique_rows) - inserted - updated)
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


def _ensure_candle_partitions(times_ms: Iterable[int]) -> None:
    """Create the monthly partitions the candles about to be written fall in (PostgreSQL with
    a natively partitioned candle table; otherwise nothing happens): a row whose month has no
    partition would land in the DEFAULT partition (stored all the same, but unpruned)."""
    partitions.ensure_partitions(partitions.batch_months(times_ms), using=connection.alias)


def _last_per_key(rows: Sequence[_Row]) -> list[_Row]:
    # ON CONFLICT DO UPDATE may not touch one row twice in a statement: keep the last row per key.
    return list({row[0]: row for row in rows}.values())


def _names(series: _Series) -> tuple[str, list[str], list[str], list[str]]:
    """Quoted table name, fixed key columns, row columns (time first) and value columns."""
    quote = connection.ops.quote_name
    table = quote(series.model._meta.db_table)
    fixed = [quote(column) for column in series.fixed_key]
    row_columns = [quote(series.time_column), *(quote(c) for c in series.value_columns)]
    values = [quote(column) for column in series.value_columns]
    return table, fixed, row_columns, values


# Up to this many rows (the live runtime stores one candle at a time) a plain INSERT ... ON
# CONFLICT beats the temp-table COPY path, whose set-up costs ~10 ms per call.
_FEW_ROWS = 50


def _upsert_postgresql_few(parts: Sequence[tuple[_Series, list[_Row]]]) -> tuple[int, int]:
    """Insert or update a few rows of one or more series of the same table in one statement;
    unchanged rows are not written."""
    _, fixed, row_columns, _ = _names(parts[0][0])
    placeholders = ", ".join(["%s"] * (len(fixed) + len(row_columns) + 1))  # + source
    rows = [row for _, part_rows in parts for row in part_rows]
    params = [
        value
        for series, part_rows in parts
        for row in part_rows
        for value in (*series.fixed_key.values(), *row, series.source)
    ]
    source = "VALUES " + ", ".join(f"({placeholders})" for _ in rows)
    with connection.cursor() as cursor:
        return _insert_on_conflict(cursor, parts[0][0], source, params)


def _insert_on_conflict(
    cursor: Any, series: _Series, source: str, params: Sequence[Any]
) -> tuple[int, int]:
    """``INSERT INTO <table> <source> ON CONFLICT <natural key> DO UPDATE`` the rows whose
    values differ; ``source`` (``VALUES ...`` or ``SELECT ...``) yields the fixed key columns,
    the row columns, then the data source. Returns (inserted, updated); unchanged rows are not
    written.

    Inserted and updated rows are told apart by the keys stored before the statement (the
    ``stored`` CTE sees the statement's snapshot), not by ``RETURNING (xmax = 0)``: PostgreSQL
    refuses system columns in ``RETURNING`` on a partitioned table (``trading.partitions``)."""
    table, fixed, row_columns, values = _names(series)
    origin = connection.ops.quote_name("source")
    columns = ", ".join([*fixed, *row_columns, origin])
    key = [*fixed, row_columns[0]]

    def same(a: str, b: str) -> str:
        return " AND ".join(f"{a}.{c} = {b}.{c}" for c in key)

    differs = " OR ".join(f"t.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in values)
    cursor.execute(
        f"""
        WITH incoming ({columns}) AS ({source}),
        stored AS (
            SELECT {", ".join(f"i.{c}" for c in key)}
            FROM incoming i JOIN {table} t ON {same("i", "t")}
        ),
        upserted AS (
            INSERT INTO {table} AS t ({columns}) SELECT {columns} FROM incoming
            ON CONFLICT ({", ".join(key)}) DO UPDATE
            SET {", ".join(f"{c} = EXCLUDED.{c}" for c in [*values, origin])}
            WHERE {differs}
            RETURNING {", ".join(f"t.{c}" for c in key)}
        )
        SELECT count(*) FILTER (WHERE s.{key[-1]} IS NULL),
               count(*) FILTER (WHERE s.{key[-1]} IS NOT NULL)
        FROM upserted u LEFT JOIN stored s ON {same("u", "s")}
        """,  # noqa: S608 - identifiers are quoted model names, values are parameters
        params,
    )
    inserted, updated = cursor.fetchone()
    return int(inserted), int(updated)


def _upsert_postgresql(series: _Series, rows: list[_Row]) -> tuple[int, int]:
    if not _stored_in_range(series, rows) and _copy_fresh_rows(series, rows):
        return len(rows), 0
    table, fixed, row_columns, values = _names(series)
    time_column = row_columns[0]
    buffer = connection.ops.quote_name(f"import_{series.model._meta.db_table}")
    fixed_params = list(series.fixed_key.values())
    same_key = " AND ".join(
        [f"t.{column} = %s" for column in fixed] + [f"t.{time_column} = b.{time_column}"]
    )
    differs = " OR ".join(f"t.{c} IS DISTINCT FROM b.{c}" for c in values)
    origin = connection.ops.quote_name("source")
    insert_columns = ", ".join([*fixed, *row_columns, origin])
    placeholders = ", ".join(["%s"] * len(fixed))
    incoming_columns = ", ".join(f"b.{c}" for c in row_columns)
    select_incoming = f"SELECT {placeholders}, {incoming_columns}, %s FROM {buffer} b"  # noqa: S608
    incoming_params = [*fixed_params, series.source]
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
            f"UPDATE {table} t SET {', '.join(f'{c} = b.{c}' for c in values)}, "  # noqa: S608
            f"{origin} = %s FROM {buffer} b WHERE {same_key} AND ({differs})",
            [series.source, *fixed_params],
        )
        updated = cursor.rowcount
        try:
            with transaction.atomic():
                cursor.execute(
                    f"INSERT INTO {table} ({insert_columns}) {select_incoming} "  # noqa: S608
                    f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same_key})",
                    [*incoming_params, *fixed_params],
                )
                return cursor.rowcount, updated
        except IntegrityError:
            pass  # a concurrent writer stored some of these keys: take the conflict-safe path
        inserted, updated_on_retry = _insert_on_conflict(
            cursor, series, select_incoming, incoming_params
        )
    return inserted, updated + updated_on_retry


def _stored_in_range(series: _Series, rows: list[_Row]) -> bool:
    """Whether the series holds any row between the batch's first and last time (one probe
    of the natural-key index)."""
    table, fixed, row_columns, _ = _names(series)
    times = [row[0] for row in rows]
    where = " AND ".join(f"{column} = %s" for column in fixed)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {table} WHERE {where} "  # noqa: S608 - quoted model names
            f"AND {row_columns[0]} BETWEEN %s AND %s LIMIT 1",
            [*series.fixed_key.values(), min(times), max(times)],
        )
        return cursor.fetchone() is not None


def _copy_fresh_rows(series: _Series, rows: list[_Row]) -> bool:
    """``COPY`` rows whose keys are not stored straight into the table, under a savepoint.
    False (nothing written) when a concurrent writer stored one of the keys meanwhile."""
    import psycopg  # the PostgreSQL driver; absent from SQLite-only code paths

    table, fixed, row_columns, _ = _names(series)
    columns = ", ".join([*fixed, *row_columns, connection.ops.quote_name("source")])
    fixed_values = tuple(series.fixed_key.values())
    source = (series.source,)
    column_types = ["text"] * len(fixed) + ["int8", *series.value_sql_types, "text"]
    try:
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(column_types)
            for row in rows:
                copy.write_row(fixed_values + row + source)
    except (IntegrityError, psycopg.errors.UniqueViolation):
        return False
    return True


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
        source = series.source
        new_rows = [(*fixed_params, *row, source) for row in rows if row[0] not in stored]
        changed_rows = [
            (*row[1:], source, *fixed_params, row[0])
            for row in rows
            if row[0] in stored and tuple(stored[row[0]]) != tuple(row)
        ]
        origin = connection.ops.quote_name("source")
        if new_rows:
            columns = [*fixed, *row_columns, origin]
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - quoted names
                f"VALUES ({', '.join(['%s'] * len(columns))})",
                new_rows,
            )
        if changed_rows:
            assignments = ", ".join(f"{c} = %s" for c in [*values, origin])
            cursor.executemany(
                f"UPDATE {table} SET {assignments} "  # noqa: S608 - quoted names
                f"WHERE {key_filter} AND {time_column} = %s",
                changed_rows,
            )
    return len(new_rows), len(changed_rows)


OpenInterestRow = tuple[int, float, float | None]  # (time_ms, open_interest base, value usdt)


def open_interest_upsert(
    *, rows: Sequence[OpenInterestRow], exchange: str, symbol: str, source: str = ""
) -> UpsertResult:
    """Insert or update open-interest samples ``(time_ms, open_interest, open_interest_usdt)``
    of one symbol; identical stored samples are not touched. A repeated time keeps its last row.
    ``source`` is recorded on every row written.

    A poll writes one row per symbol, so this uses the ORM rather than the bulk path of
    :func:`candles_upsert` (whose columns are NOT NULL; ``open_interest_usdt`` may be null)."""
    unique = {row[0]: row for row in rows}
    if not unique:
        return UpsertResult()
    with transaction.atomic():
        stored = {
            oi.time_ms: oi
            for oi in OpenInterest.objects.select_for_update().filter(
                exchange=exchange, symbol=symbol, time_ms__in=list(unique)
            )
        }
        changed = []
        for time_ms, amount, value_usdt in unique.values():
            oi = stored.get(time_ms)
            if oi is None or (oi.open_interest, oi.open_interest_usdt) == (amount, value_usdt):
                continue
            oi.open_interest, oi.open_interest_usdt, oi.source = amount, value_usdt, source
            changed.append(oi)
        new = [
            OpenInterest(
                exchange=exchange,
                symbol=symbol,
                time_ms=time_ms,
                open_interest=amount,
                open_interest_usdt=value_usdt,
                source=source,
            )
            for time_ms, amount, value_usdt in unique.values()
            if time_ms not in stored
        ]
        # A concurrent poll may store the same key between the read and the insert: the
        # conflict then updates that row with the same values instead of failing.
        OpenInterest.objects.bulk_create(
            new,
            update_conflicts=True,
            unique_fields=["exchange", "symbol", "time_ms"],
            update_fields=["open_interest", "open_interest_usdt", "source"],
        )
        OpenInterest.objects.bulk_update(changed, ["open_interest", "open_interest_usdt", "source"])
    return UpsertResult(len(new), len(changed), len(unique) - len(new) - len(changed))


_PollRead = Callable[[Any, str], Awaitable[Any]]


# -- sessions and paper positions (the radar's recorder writes through these) ------------------


def session_start(*, strategy_name: str, mode: str, initial_capital_usdt: float) -> TradingSession:
    """The running session of ``strategy_name`` ("" = the account) in ``mode``, created on first
    use with ``initial_capital_usdt`` (a restart finds the same row)."""
    with transaction.atomic():
        session = (
            TradingSession.objects.filter(strategy_name=strategy_name, mode=mode)
            .exclude(status=TradingSession.Status.ENDED)
            .first()
        )
        if session is None:
            session = TradingSession.objects.create(
                strategy_name=strategy_name,
                mode=mode,
                initial_capital_usdt=initial_capital_usdt,
                peak_equity_usdt=initial_capital_usdt,
                equity_usdt=initial_capital_usdt,
            )
        return session


def session_checkpoint(*, session: TradingSession, fields: Sequence[str]) -> None:
    """Save ``fields`` of ``session`` as the runtime holds them (only those: a control written
    concurrently by the dashboard is never overwritten). A capital weight outside its bounds
    raises ``trading.config.InvalidStoredValue`` and nothing is saved."""
    if "capital_weight" in fields:
        checked_capital_weight(session)
    with transaction.atomic():
        session.save(update_fields=list(fields))


def session_capital_weight_set(*, session: TradingSession, capital_weight: float) -> None:
    """Set a session's capital weight (the admin's one edit of a session), checked by
    ``trading.config.session_problems``; only that column is written, so a status or equity the
    radar stored meanwhile is never overwritten with the form's stale copy. Raises
    ``ValidationError`` (field ``capital_weight``) and saves nothing when refused."""
    problems = session_problems({"capital_weight": capital_weight})
    if problems:
        raise ValidationError(field_errors(problems))
    with transaction.atomic():
        session.capital_weight = capital_weight
        session.save(update_fields=["capital_weight"])


def session_kill_switch_trip(
    *, session: TradingSession, reason: str, state: Mapping[str, Any] | None = None
) -> None:
    """Record a tripped kill switch on ``session`` (status killed, reason, time; ``state`` =
    the switch's dict, kept in ``ledger_state["kill_switch"]`` for an account session). Only a
    recorded reset (``strategies.services.kill_switch_reset``) clears it."""
    with transaction.atomic():
        session.status = TradingSession.Status.KILLED
        session.kill_switch_tripped = True
        session.kill_switch_reason = reason
        session.kill_switch_tripped_at = timezone.now()
        fields = ["status", "kill_switch_tripped", "kill_switch_reason", "kill_switch_tripped_at"]
        if state is not None:
            session.ledger_state = {**(session.ledger_state or {}), "kill_switch": dict(state)}
            fields.append("ledger_state")
        session.save(update_fields=fields)


def session_error(*, session: TradingSession, reason: str) -> None:
    """Record that ``session``'s strategy stopped with an error (status errored, reason, time).
    Only a recorded Resume (``strategies.services.strategy_resume``) lets it trade again."""
    with transaction.atomic():
        session.status = TradingSession.Status.ERRORED
        session.error_reason = reason
        session.errored_at = timezone.now()
        session.save(update_fields=["status", "error_reason", "errored_at"])


def _ledger_id(position_id: str, shadow: bool) -> str:
    return str(position_id) + (":shadow" if shadow else "")


def position_create(
    *,
    session: TradingSession,
    strategy_name: str,
    exchange: str,
    position: OpenPosition,
    shadow: bool,
    client_order_id: str = "",
) -> Position:
    """Store a paper position opened by a kernel (idempotent on ``(session, ledger id)``);
    ``client_order_id`` is its entry intent's, the key its live twin carries."""
    with transaction.atomic():
        stored, created = Position.objects.get_or_create(
            session=session,
            ledger_id=_ledger_id(position.position_id, shadow),
            defaults={
                "strategy_name": strategy_name,
                "exchange": exchange,
                "symbol": position.symbol,
                "side": position.side.value,
                "shadow": shadow,
                "qty": position.qty,
                "leverage": position.leverage,
                "margin_mode": position.margin_mode.value,
                "entry_price": position.entry_price,
                "entry_time_ms": position.entry_time_ms,
                "entry_fee": position.entry_fee,
                "entry_liquidity": position.entry_liquidity.value,
                "stop_loss": position.stop_loss,
                "take_profit": position.take_profit,
                "liquidation_price": position.liquidation_price,
                "slippage_usdt": position.slippage_cost,
                "funding_usdt": position.funding,
                "entry_client_id": client_order_id,
            },
        )
        if created and not shadow:  # shadow trades (a killed strategy's) stay off the phone
            emit(
                trade_opened_notice(
                    mode="paper",
                    strategy=strategy_name,
                    side=position.side.value,
                    symbol=position.symbol,
                    qty=position.qty,
                    price=position.entry_price,
                )
            )
        return stored


def position_close(*, session: TradingSession, trade: ClosedTrade, shadow: bool) -> int:
    """Store the exit of a paper position (its full cost breakdown); returns rows changed.

    The close of an open, non-shadow position is told to ``common.notices`` (gross / fees /
    net); a close replayed after a restart is stored again but not told twice.
    """
    fields = {
        "status": Position.Status.CLOSED,
        "exit_price": trade.exit_price,
        "exit_time_ms": trade.exit_time_ms,
        "exit_fee": trade.exit_fee,
        "exit_liquidity": trade.exit_liquidity.value,
        "exit_reason": trade.exit_reason.value,
        "funding_usdt": trade.funding,
        "slippage_usdt": trade.slippage_cost,
        "gross_pnl": trade.gross_pnl,
        "net_pnl": trade.net_pnl,
    }
    with transaction.atomic():
        rows = Position.objects.filter(
            session=session, ledger_id=_ledger_id(trade.position_id, shadow)
        )
        changed = rows.filter(status=Position.Status.OPEN).update(**fields)
        if not changed:
            return rows.update(**fields)
        if not shadow:  # shadow trades (a killed strategy's) stay off the phone
            emit(
                trade_closed_notice(
                    mode="paper",
                    strategy=session.strategy_name,
                    side=trade.side.value,
                    symbol=trade.symbol,
                    qty=trade.qty,
                    price=trade.exit_price,
                    reason=trade.exit_reason.value,
                    gross_usdt=trade.gross_pnl,
                    fees_usdt=trade.fees,
                    funding_usdt=trade.funding,
                    net_usdt=trade.net_pnl,
                )
            )
        return changed


def position_funding_update(
    *, session: TradingSession, positions: Sequence[OpenPosition], shadow: bool
) -> None:
    """Store the funding each open position has paid so far (USDT, > 0 paid) after a
    settlement, so the Positions page shows it before the position closes."""
    with transaction.atomic():
        for position in positions:
            Position.objects.filter(
                session=session, ledger_id=_ledger_id(position.position_id, shadow)
            ).update(funding_usdt=position.funding)
