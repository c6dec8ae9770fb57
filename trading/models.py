"""Markets and money: assets, market data, trading sessions and positions.

Market data is keyed by its natural key and upserted, so a feed or an import delivered twice
changes nothing. Money is stored in USDT as float64, the type the core computes with (see
``trading.core``), so a stored trade is bit-for-bit the trade the core produced.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import connections, models
from django.db.models import Q
from django.utils import timezone

from common.yamlcheck import Problem
from trading.config import (
    MAX_ASSET_LEVERAGE,
    MAX_CAPITAL_WEIGHT,
    MAX_MIN_NOTIONAL_USDT,
    AssetContext,
    asset_problems,
    field_errors,
    session_problems,
)
from trading.core.types import ExitReason, Side

TIMEFRAMES = ["1m", "5m", "15m", "1h", "4h", "1d"]
TIMEFRAME_CHOICES = [(tf, tf) for tf in TIMEFRAMES]


class MarginMode(models.TextChoices):
    ISOLATED = "isolated", "Isolated"
    CROSS = "cross", "Cross"


class Asset(models.Model):
    """A tradable perpetual contract on one exchange, with the exchange's market rules.

    ``price_tick``, ``qty_step``, ``min_qty``, ``min_notional_usdt`` and ``max_leverage`` are
    the values sizing and rounding use in backtest, paper and live
    (``strategies.kernel_config.kernel_config_from``); ``rules_source`` says where they come from.
    ``clean()`` checks the row with ``trading.config.asset_problems``, the YAML loader's function.
    """

    exchange = models.CharField(max_length=32, default="bitget")
    symbol = models.CharField(max_length=40, help_text="ccxt unified symbol, e.g. BTC/USDT:USDT")
    base = models.CharField(max_length=16)
    quote = models.CharField(max_length=16, default="USDT")
    price_tick = models.FloatField(help_text="smallest price increment (USDT)")
    qty_step = models.FloatField(help_text="smallest quantity increment (base units)")
    min_qty = models.FloatField(help_text="smallest order quantity (base units)")
    min_notional_usdt = models.FloatField(default=5.0)
    max_leverage = models.PositiveSmallIntegerField(default=125)
    rules_source = models.CharField(
        max_length=64,
        default="assets.yaml",
        help_text='where the five market rules come from: "assets.yaml", '
        '"exchange load_markets <UTC time>" or "admin <user> <UTC time>"',
    )
    correlation_group = models.CharField(max_length=40, blank=True)
    listed_at_ms = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="when the exchange listed the contract (epoch ms, from load_markets): "
        "candles before it are refused",
    )
    enabled = models.BooleanField(default=True)

    # Not a column: the groups and exchanges ``clean()`` checks against (``None`` = not checked).
    validation_context: AssetContext | None = None

    class Meta:
        ordering = ["exchange", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["exchange", "symbol"], name="asset_unique_symbol"),
            models.CheckConstraint(condition=Q(price_tick__gt=0), name="asset_tick_positive"),
            models.CheckConstraint(condition=Q(qty_step__gt=0), name="asset_step_positive"),
            models.CheckConstraint(condition=Q(min_qty__gte=0), name="asset_min_qty_non_negative"),
            models.CheckConstraint(
                condition=Q(min_notional_usdt__gte=0, min_notional_usdt__lte=MAX_MIN_NOTIONAL_USDT),
                name="asset_min_notional_in_bounds",
            ),
            models.CheckConstraint(
                condition=Q(max_leverage__gte=1, max_leverage__lte=MAX_ASSET_LEVERAGE),
                name="asset_max_leverage_in_bounds",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} @ {self.exchange}"

    def as_entry(self) -> dict[str, Any]:
        """The row as its ``assets.yaml`` entry (``export_config`` omits ``exchange`` when it is
        the file's)."""
        return {
            "symbol": self.symbol,
            "exchange": self.exchange,
            "base": self.base,
            "quote": self.quote,
            "price_tick": self.price_tick,
            "qty_step": self.qty_step,
            "min_qty": self.min_qty,
            "min_notional_usdt": self.min_notional_usdt,
            "max_leverage": self.max_leverage,
            "correlation_group": self.correlation_group,
            "enabled": self.enabled,
        }

    def problems(self, context: AssetContext | None = None) -> list[Problem]:
        """What :func:`trading.config.asset_problems` refuses in this row (``context``: the
        correlation groups and exchanges it must name; ``None`` = not checked)."""
        return asset_problems(self.as_entry(), context=context)

    def clean(self) -> None:
        # Groups and exchanges live in the YAML files: the admin sets the context of the
        # configuration directory; load_config has checked them in the files it loads.
        problems = self.problems(self.validation_context)
        if problems:
            raise ValidationError(field_errors(problems))

    @property
    def slug(self) -> str:
        """``BTC/USDT:USDT`` -> ``BTC-USDT`` (URLs, group names)."""
        return f"{self.base}-{self.quote}"


# One row of ``COPY ... TO STDOUT (FORMAT BINARY)`` of the six NOT NULL candle columns: a
# field count (int16), then per field its length (int32) and value, big-endian.
_COPY_ROW = np.dtype(
    [("fields", ">i2"), ("n0", ">i4"), ("open_time_ms", ">i8")]
    + [
        item
        for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1)
        for item in ((f"n{i}", ">i4"), (name, ">f8"))
    ]
)
_COPY_HEADER = 19  # signature (11 bytes), flags (4), header extension length (4)
_CANDLE_COLUMNS = ("open_time_ms", "open", "high", "low", "close", "volume")


def source_field() -> models.CharField:
    """The ``source`` column of the market-data rows (candles, funding, open interest)."""
    return models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",  # raw inserts that name no source (bulk COPY, older writers) store ""
        help_text="where the row came from, e.g. rest (fetch_history from the exchange's REST "
        "API), rest@127.0.0.1:8765 (another server speaking its API); empty = not recorded",
    )


class CandleQuerySet(models.QuerySet["Candle"]):
    def as_array(self, limit: int | None = None) -> np.ndarray:
        """The candles, in the queryset's order (the first ``limit``), as the ``(N, 6)``
        float64 array ``[open_time_ms, open, high, low, close, volume]`` the core reads.

        On PostgreSQL no Python object is made per row: in time order (the backtests' and the
        chart's case) the server packs the rows into ONE ``bytea`` value that numpy reads as
        is (:func:`_aggregated_array`); in any other order they come as one binary ``COPY``
        (:func:`_copied_array`). A month of 1m candles (44,640 rows) reads in about 30 ms
        instead of ~100 ms through row tuples (docs/data.md, ``bench/candles_pg.py``)."""
        rows = self.values_list(*_CANDLE_COLUMNS)
        if limit is not None:
            rows = rows[:limit]
        connection = connections[rows.db]
        if connection.vendor == "postgresql":
            if tuple(rows.query.order_by) == ("open_time_ms",):
                return _aggregated_array(rows, connection)
            return _copied_array(rows, connection)
        return np.array(list(rows), dtype=np.float64).reshape(-1, 6)


# The six candle columns of one row as ``int8send || float8send × 5``: 48 big-endian bytes.
_PACKED_ROW = np.dtype([("open_time_ms", ">i8")] + [(name, ">f8") for name in _CANDLE_COLUMNS[1:]])
_PACK_SQL = (
    "SELECT string_agg(int8send(s.open_time_ms) || float8send(s.open) || float8send(s.high)"
    " || float8send(s.low) || float8send(s.close) || float8send(s.volume), ''::bytea)"
    " FROM ({}) AS s"
)


def _aggregated_array(rows: models.QuerySet[Any], connection: Any) -> np.ndarray:
    """The rows of ``rows`` (ordered by open time) packed server-side into one ``bytea``.

    The aggregate reads the ordered subquery's rows in order — what PostgreSQL does for a
    sorted subquery, though the SQL standard does not promise it — so the times are checked
    and, should a plan ever deliver them out of order, put back in order (a stable sort: the
    queryset's own order, ties as they came)."""
    try:
        sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    except EmptyResultSet:
        return np.empty((0, 6), dtype=np.float64)
    # A binary cursor on Django's own psycopg connection (same transaction): the bytea comes
    # as raw bytes, not as 4 MB of hex text to decode.
    # (Django's cursors bind on the client, which psycopg allows for text results only.)
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_PACK_SQL.format(sql), params, binary=True)
        packed = cursor.fetchone()[0]
    if not packed:
        return np.empty((0, 6), dtype=np.float64)
    records = np.frombuffer(packed, dtype=_PACKED_ROW)
    array = np.empty((len(records), 6), dtype=np.float64)
    for column, name in enumerate(_CANDLE_COLUMNS):
        array[:, column] = records[name]
    times = array[:, 0]
    if len(times) > 1 and bool(np.any(times[1:] < times[:-1])):
        array = array[np.argsort(times, kind="stable")]
    return array


def _copied_array(rows: models.QuerySet[Any], connection: Any) -> np.ndarray:
    try:
        sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    except EmptyResultSet:
        return np.empty((0, 6), dtype=np.float64)
    # psycopg merges the parameters into the COPY statement on the client side.
    statement = f"COPY ({sql}) TO STDOUT (FORMAT BINARY)"
    data = bytearray()
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        for block in copy:  # one row per block, as libpq hands them over
            data += block
    count = (len(data) - _COPY_HEADER - 2) // _COPY_ROW.itemsize  # 2: the -1 trailer
    records = np.frombuffer(data, dtype=_COPY_ROW, count=count, offset=_COPY_HEADER)
    array = np.empty((count, 6), dtype=np.float64)
    for column, name in enumerate(_CANDLE_COLUMNS):
        array[:, column] = records[name]
    return array


class Candle(models.Model):
    """A CLOSED OHLCV candle, keyed by its open time in UTC milliseconds."""

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=40)
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    open_time_ms = models.BigIntegerField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField(help_text="base-asset volume")
    source = source_field()

    objects = CandleQuerySet.as_manager()

    class Meta:
        ordering = ["exchange", "symbol", "timeframe", "open_time_ms"]
        constraints = [
            # The natural key; its index also serves every range query (symbol, tf, time).
            models.UniqueConstraint(
                fields=["exchange", "symbol", "timeframe", "open_time_ms"],
                name="candle_natural_key",
            ),
            models.CheckConstraint(
                condition=Q(high__gte=models.F("low")), name="candle_high_gte_low"
            ),
            models.CheckConstraint(condition=Q(volume__gte=0), name="candle_volume_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.open_time_ms}"


class FundingRate(models.Model):
    """A funding settlement: ``rate`` per period (0.0001 = 0.01 %), longs pay when > 0."""

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=40)
    funding_time_ms = models.BigIntegerField()
    rate = models.FloatField()
    mark_price = models.FloatField(null=True, blank=True)
    source = source_field()

    class Meta:
        ordering = ["exchange", "symbol", "funding_time_ms"]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "symbol", "funding_time_ms"], name="funding_natural_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.symbol} funding {self.rate:+.6f} @ {self.funding_time_ms}"


class OpenInterest(models.Model):
    """Open interest sample: contracts outstanding in base units (and USDT value if known)."""

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=40)
    time_ms = models.BigIntegerField()
    open_interest = models.FloatField(help_text="base units")
    open_interest_usdt = models.FloatField(null=True, blank=True)
    source = source_field()

    class Meta:
        ordering = ["exchange", "symbol", "time_ms"]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "symbol", "time_ms"], name="open_interest_natural_key"
            ),
            models.CheckConstraint(condition=Q(open_interest__gte=0), name="oi_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} OI {self.open_interest} @ {self.time_ms}"


class TradingMode(models.TextChoices):
    PAPER = "paper", "Paper"
    LIVE = "live", "Live"


class TradingSession(models.Model):
    """One strategy's ledger in the arena (or the whole account when ``strategy_name`` is "").

    Trading sits below strategies in the dependency stack, so a session names its strategy
    by its configuration name instead of a foreign key.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        KILLED = "killed", "Killed"
        SHADOW = "shadow", "Shadow"
        ERRORED = "errored", "Errored"  # its kernel raised: it stopped alone (error_reason)
        ENDED = "ended", "Ended"

    strategy_name = models.CharField(max_length=64, blank=True, db_index=True)
    mode = models.CharField(max_length=8, choices=TradingMode.choices, default=TradingMode.PAPER)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    initial_capital_usdt = models.FloatField(default=10_000.0)
    capital_weight = models.FloatField(
        default=1.0,
        help_text="the selector's multiplier of the risk per trade, in "
        f"(0, {MAX_CAPITAL_WEIGHT:g}]",
    )
    realised_gross_pnl = models.FloatField(default=0.0)
    realised_net_pnl = models.FloatField(default=0.0)
    fees_usdt = models.FloatField(default=0.0)
    funding_usdt = models.FloatField(default=0.0, help_text="net funding paid (+) / received (-)")
    slippage_usdt = models.FloatField(default=0.0)
    trades_count = models.PositiveIntegerField(default=0)
    wins_count = models.PositiveIntegerField(default=0)
    peak_equity_usdt = models.FloatField(default=10_000.0)
    equity_usdt = models.FloatField(
        default=10_000.0,
        help_text="mark-to-market equity: capital + realised net + unrealised net (USDT)",
    )
    kill_switch_tripped = models.BooleanField(default=False)
    kill_switch_reason = models.TextField(blank=True)
    kill_switch_tripped_at = models.DateTimeField(null=True, blank=True)
    error_reason = models.TextField(
        blank=True, help_text="why the strategy stopped with an error (errored status)"
    )
    errored_at = models.DateTimeField(null=True, blank=True)
    ledger_state = models.JSONField(default=dict, blank=True, help_text="core ledger snapshot")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["mode", "status"], name="session_mode_status")]
        constraints = [
            # At most one running session per strategy and mode.
            models.UniqueConstraint(
                fields=["strategy_name", "mode"],
                condition=~Q(status="ended"),
                name="one_running_session_per_strategy",
            ),
            models.CheckConstraint(
                condition=Q(initial_capital_usdt__gt=0), name="session_capital_positive"
            ),
            # The risk per trade is max_risk_per_trade_pct × capital_weight: bounded by the
            # selector's cap it stays inside the risk gate's (0, 100] % (trading.config).
            models.CheckConstraint(
                condition=Q(capital_weight__gt=0, capital_weight__lte=MAX_CAPITAL_WEIGHT),
                name="session_capital_weight_in_bounds",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["active", "paused", "killed", "shadow", "errored", "ended"]
                ),
                name="session_status_known",
            ),
        ]

    def __str__(self) -> str:
        who = self.strategy_name or "account"
        return f"{who} ({self.mode}, {self.status})"

    def clean(self) -> None:
        problems = session_problems({"capital_weight": self.capital_weight})
        if problems:
            raise ValidationError(field_errors(problems))

    @property
    def win_rate(self) -> float | None:
        return self.wins_count / self.trades_count if self.trades_count else None


class Position(models.Model):
    """A paper or live position; once closed it is a trade with its full cost breakdown.

    ``gross_pnl`` = side × (exit − entry) × qty; ``net_pnl`` = gross − entry_fee − exit_fee −
    funding (funding > 0 means paid). All amounts in USDT.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Liquidity(models.TextChoices):
        MAKER = "maker", "Maker"
        TAKER = "taker", "Taker"

    session = models.ForeignKey(TradingSession, on_delete=models.PROTECT, related_name="positions")
    strategy_name = models.CharField(max_length=64)
    exchange = models.CharField(max_length=32, default="bitget")
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=5, choices=[(s.value, s.value) for s in Side])
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN)
    shadow = models.BooleanField(default=False, help_text="taken while the strategy was paused")
    ledger_id = models.CharField(max_length=64, help_text="position id inside the core ledger")
    entry_client_id = models.CharField(
        max_length=50, blank=True, db_index=True, help_text="its entry intent's client order id"
    )
    qty = models.FloatField(help_text="base units")
    leverage = models.FloatField()
    margin_mode = models.CharField(max_length=8, choices=MarginMode.choices, default="isolated")
    entry_price = models.FloatField()
    entry_time_ms = models.BigIntegerField()
    entry_fee = models.FloatField()
    entry_liquidity = models.CharField(max_length=5, choices=Liquidity.choices)
    stop_loss = models.FloatField()
    take_profit = models.FloatField()
    liquidation_price = models.FloatField()
    exit_price = models.FloatField(null=True, blank=True)
    exit_time_ms = models.BigIntegerField(null=True, blank=True)
    exit_fee = models.FloatField(null=True, blank=True)
    exit_liquidity = models.CharField(max_length=5, choices=Liquidity.choices, blank=True)
    exit_reason = models.CharField(
        max_length=16, choices=[(r.value, r.value) for r in ExitReason], blank=True
    )
    funding_usdt = models.FloatField(default=0.0)
    slippage_usdt = models.FloatField(default=0.0)
    gross_pnl = models.FloatField(null=True, blank=True)
    net_pnl = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-entry_time_ms"]
        indexes = [
            models.Index(fields=["status", "symbol"], name="position_status_symbol"),
            models.Index(fields=["strategy_name", "-exit_time_ms"], name="position_strategy_exit"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["session", "ledger_id"], name="position_ledger_id"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="position_qty_positive"),
            models.CheckConstraint(condition=Q(leverage__gte=1), name="position_leverage_min_1"),
            models.CheckConstraint(
                condition=Q(status="open") | Q(exit_price__isnull=False, net_pnl__isnull=False),
                name="closed_position_has_exit",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy_name} {self.side} {self.qty} {self.symbol} @ {self.entry_price}"

    @property
    def fees_usdt(self) -> float:
        return self.entry_fee + (self.exit_fee or 0.0)


class Alert(models.Model):
    """A warning for the trader (feed disconnect, stale data, kill switch trip, skipped strategy).

    Written by ``trading.alerts.alert_create``, which also pushes it live (``alert.new``).
    """

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    level = models.CharField(max_length=7, choices=Level.choices, default=Level.WARNING)
    source = models.CharField(max_length=64, blank=True, help_text="strategy, feed, symbol…")
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict, blank=True, help_text="details, JSON")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at"], name="alert_created_desc")]

    def __str__(self) -> str:
        return f"{self.level}: {self.message[:60]}"

    @property
    def time_ms(self) -> int:
        return int(self.created_at.timestamp() * 1000)

    def as_event(self) -> dict[str, Any]:
        """The complete ``alert.new`` payload; the Alerts page renders history from it too."""
        return {
            "id": self.pk,
            "level": self.level,
            "source": self.source,
            "message": self.message,
            "time_ms": self.time_ms,
            "payload": self.payload,
        }


class LivePosition(models.Model):
    """A position held on the exchange for a live strategy, beside its paper twin.

    ``entry_client_id`` is the entry order's client id, which is the kernel's intent id: the
    same id the paper ledger's position was opened by, so the twin is found by it. ``qty`` is
    the exchange's current size (base units); prices in USDT; P&L fields are filled from the
    fills when the position closes: ``gross_pnl`` = Σ side × (exit − entry) × qty,
    ``net_pnl`` = gross − ``fees_usdt`` − ``funding_usdt`` (funding > 0 = paid).
    ``protected`` is true once the stop is confirmed held on the exchange.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    strategy_name = models.CharField(max_length=64, db_index=True)
    exchange = models.CharField(max_length=32, default="bitget")
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=5, choices=[(s.value, s.value) for s in Side])
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN)
    entry_client_id = models.CharField(max_length=50, blank=True, db_index=True)
    adopted = models.BooleanField(default=False, help_text="found on the exchange, not opened")
    qty = models.FloatField(help_text="base units, as the exchange holds it")
    entry_price = models.FloatField(help_text="average entry (USDT)")
    leverage = models.FloatField(default=1)
    stop_loss = models.FloatField(null=True, blank=True)
    take_profit = models.FloatField(null=True, blank=True)
    protected = models.BooleanField(default=False, help_text="stop confirmed on the exchange")
    liquidation_price = models.FloatField(null=True, blank=True, help_text="the exchange's")
    mark_price = models.FloatField(null=True, blank=True)
    opened_ms = models.BigIntegerField()
    closed_ms = models.BigIntegerField(null=True, blank=True)
    exit_price = models.FloatField(null=True, blank=True)
    exit_reason = models.CharField(max_length=32, blank=True)
    gross_pnl = models.FloatField(null=True, blank=True)
    fees_usdt = models.FloatField(default=0.0)
    funding_usdt = models.FloatField(
        null=True,
        blank=True,
        help_text="funding paid (+) / received (−) while open; empty = not fetched from the "
        "exchange (net_pnl is then before funding)",
    )
    net_pnl = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_ms"]
        indexes = [models.Index(fields=["status", "symbol"], name="liveposition_status_symbol")]
        constraints = [
            models.CheckConstraint(condition=Q(qty__gte=0), name="liveposition_qty_not_negative"),
        ]

    def __str__(self) -> str:
        return f"live {self.strategy_name} {self.side} {self.qty} {self.symbol}"


class Order(models.Model):
    """One live order, keyed by its client id, written BEFORE its request is sent.

    ``status`` follows :mod:`trading.core.execution`'s state machine; ``role`` says what it is
    for. Latency stamps (epoch ms, wall clock): ``signal_ms`` (the decision), ``submitted_ms``
    (request sent), ``acknowledged_ms`` (the exchange's answer), ``filled_ms`` (last fill).
    ``not_found`` counts "not found" answers to look-ups of an order whose request timed out.
    """

    client_id = models.CharField(max_length=50, unique=True)
    exchange_order_id = models.CharField(max_length=64, blank=True, db_index=True)
    live_position = models.ForeignKey(
        LivePosition, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    strategy_name = models.CharField(max_length=64, db_index=True)
    exchange = models.CharField(max_length=32, default="bitget")
    symbol = models.CharField(max_length=40)
    role = models.CharField(max_length=9)
    side = models.CharField(max_length=4, help_text="buy / sell")
    order_type = models.CharField(max_length=6, help_text="limit / market")
    qty = models.FloatField(help_text="base units")
    price = models.FloatField(null=True, blank=True, help_text="limit price (USDT)")
    trigger_price = models.FloatField(null=True, blank=True, help_text="stop / target (USDT)")
    reduce_only = models.BooleanField(default=False)
    post_only = models.BooleanField(default=False)
    status = models.CharField(max_length=16, default="pending_submit", db_index=True)
    filled_qty = models.FloatField(default=0.0)
    average_price = models.FloatField(null=True, blank=True)
    fee_usdt = models.FloatField(default=0.0)
    attempts = models.PositiveSmallIntegerField(default=0)
    not_found = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    intent = models.JSONField(default=dict, blank=True, help_text="the kernel's intent, JSON")
    expires_at_ms = models.BigIntegerField(null=True, blank=True)
    signal_ms = models.BigIntegerField(null=True, blank=True)
    submitted_ms = models.BigIntegerField(null=True, blank=True)
    acknowledged_ms = models.BigIntegerField(null=True, blank=True)
    filled_ms = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(qty__gt=0), name="order_qty_positive"),
            models.CheckConstraint(
                condition=Q(filled_qty__gte=0), name="order_filled_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.role} {self.side} {self.qty} {self.symbol} {self.status}"


class Fill(models.Model):
    """One execution reported by the exchange (``trade_id`` is the exchange's, unique per
    exchange, so a fill seen on the stream and again in a REST poll is stored once).
    ``fee_usdt`` > 0 is paid; ``realised_pnl`` is the exchange's own P&L of a closing fill."""

    exchange = models.CharField(max_length=32, default="bitget")
    trade_id = models.CharField(max_length=64)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="fills"
    )
    live_position = models.ForeignKey(
        LivePosition, null=True, blank=True, on_delete=models.PROTECT, related_name="fills"
    )
    client_id = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=4)
    qty = models.FloatField(help_text="base units")
    price = models.FloatField(help_text="USDT")
    fee_usdt = models.FloatField(default=0.0)
    liquidity = models.CharField(max_length=5, blank=True, help_text="maker / taker")
    realised_pnl = models.FloatField(null=True, blank=True)
    time_ms = models.BigIntegerField()

    class Meta:
        ordering = ["time_ms", "id"]
        constraints = [
            models.UniqueConstraint(fields=["exchange", "trade_id"], name="fill_exchange_trade_id"),
        ]

    def __str__(self) -> str:
        return f"fill {self.trade_id} {self.side} {self.qty} {self.symbol} @ {self.price}"
