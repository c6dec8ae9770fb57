"""What a strategy may know at ``now_ms``: the one function runtime and backtester both use.

The rule (DESIGN §6: no look-ahead, no forming candle, no unclosed higher-timeframe bar):

* a candle of timeframe ``tf`` opened at ``t`` is visible at ``now_ms`` iff it is CLOSED,
  ``t + timeframe_ms(tf) <= now_ms``, and COMPLETE (all its 1m candles exist; the aggregation
  rule of :func:`trading.core.candles.aggregate_candles`). At 12:07 the last 15m candle is the
  one opened at 11:45 (closed 12:00), never the forming 12:00 bucket;
* the window per timeframe is the last ``max_candles`` periods: candles whose open time is at
  least ``floor(now_ms / tf) * tf - max_candles * tf`` — ``max_candles`` candles when the feed has
  no gap, fewer when it has one. Defined by time, not by count, so a snapshot is the same
  whether it is cut from the full history or from history up to ``now_ms``;
* funding rates, open interest and trades are the rows with ``time_ms <= now_ms``; the order
  book is the latest snapshot with ``time_ms <= now_ms``.

Two ways to build one, with identical results (tested):

* :func:`snapshot_at` — one-off (live runtime, tests): aggregates only the window it needs;
* :class:`SnapshotBuilder` — per-candle loops (backtester) and the live feed: aggregates the
  whole history once, then each :meth:`SnapshotBuilder.at` is a few ``searchsorted`` calls
  (O(log n)) returning read-only VIEWS, never copies of the history; ``append_candle`` adds a
  closed 1m candle as it arrives (``CandleNotClosed`` for a forming one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any

import numpy as np

from strategies.core.base import MINUTE_MS, MarketSnapshot, OrderBook, StrategyError
from strategies.core.regime import RegimeThresholds
from strategies.core.series import Series, SeriesError, SeriesTrack
from trading.core.candles import (
    CANDLE_COLUMNS,
    CandleNotClosed,
    OutOfOrderCandle,
    StreamingAggregator,
    aggregate_candles,
    timeframe_ms,
    validate_candles,
)

DEFAULT_MAX_CANDLES = 500


class LookAheadError(StrategyError):
    """Data stamped after ``now_ms`` was handed to a snapshot as if it were known."""


def window_start_ms(now_ms: int, timeframe: str, max_candles: int) -> int:
    """Earliest open time kept for ``timeframe``: ``floor(now/tf)*tf - max_candles*tf`` (ms).

    At 12:07 with 15m and 4 candles: floor(12:07/15m) = 12:00, minus 4×15m = 11:00; the visible
    15m candles are then 11:00, 11:15, 11:30, 11:45 (12:00 has not closed).
    """
    step = timeframe_ms(timeframe)
    return (now_ms // step) * step - max_candles * step


def _visible_slice(open_times: np.ndarray, step_ms: int, now_ms: int, start_ms: int) -> slice:
    """Rows with ``start_ms <= open`` and ``open + step_ms <= now_ms`` (open times sorted)."""
    lo = int(np.searchsorted(open_times, start_ms, side="left"))
    hi = int(np.searchsorted(open_times, now_ms - step_ms, side="right"))
    return slice(lo, max(lo, hi))


def _upto(rows: np.ndarray | None, now_ms: int) -> np.ndarray | None:
    """Rows of a time-sorted ``[time_ms, ...]`` array stamped at or before ``now_ms`` (a view)."""
    if rows is None:
        return None
    rows = np.asarray(rows, dtype=np.float64)
    return _readonly(rows[: int(np.searchsorted(rows[:, 0], now_ms, side="right"))])


def _readonly(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def _check_book(order_book: OrderBook | None, now_ms: int) -> OrderBook | None:
    if order_book is not None and order_book.time_ms > now_ms:
        raise LookAheadError(
            f"order book stamped {order_book.time_ms} ms is after now ({now_ms} ms)"
        )
    return order_book


def snapshot_at(
    symbol: str,
    now_ms: int,
    history_1m: np.ndarray,
    timeframes: Iterable[str],
    funding: np.ndarray | None = None,
    open_interest: np.ndarray | None = None,
    order_book: OrderBook | None = None,
    trades: np.ndarray | None = None,
    max_candles: int = DEFAULT_MAX_CANDLES,
) -> MarketSnapshot:
    """The market as known at ``now_ms`` (ms, UTC), built from closed 1m candles.

    ``history_1m`` is an (N, 6) 1m candle array, sorted; rows after ``now_ms`` may be present
    (a backtester's full history) and are ignored: only 1m candles with
    ``open + 60_000 <= now_ms`` enter the aggregation. Each requested timeframe holds the
    complete, closed candles of the last ``max_candles`` periods (see the module docstring).
    ``funding`` (M, 2), ``open_interest`` (K, 2) and ``trades`` (T, 3) are time-sorted arrays
    cut at ``now_ms``; an ``order_book`` stamped after ``now_ms`` raises :class:`LookAheadError`.

    Cost: O(max_candles × the largest timeframe in minutes) per call (it aggregates only the
    window it returns). For a loop over every candle use :class:`SnapshotBuilder`.
    """
    history = np.asarray(history_1m, dtype=np.float64).reshape(-1, CANDLE_COLUMNS)
    closed_end = int(np.searchsorted(history[:, 0], now_ms - MINUTE_MS, side="right"))
    candles: dict[str, np.ndarray] = {}
    for tf in dict.fromkeys(timeframes):
        start = window_start_ms(now_ms, tf, max_candles)
        first = int(np.searchsorted(history[:closed_end, 0], start, side="left"))
        window = validate_candles(history[first:closed_end], "1m")
        aggregated = window if tf == "1m" else aggregate_candles(window, tf)
        cut = _visible_slice(aggregated[:, 0], timeframe_ms(tf), now_ms, start)
        candles[tf] = _readonly(aggregated[cut])
    return MarketSnapshot(
        symbol=symbol,
        now_ms=now_ms,
        candles=candles,
        funding=_upto(funding, now_ms),
        open_interest=_upto(open_interest, now_ms),
        order_book=_check_book(order_book, now_ms),
        trades=_upto(trades, now_ms),
        series_source=_whole_history_series(history[:closed_end], now_ms),
    )


def _whole_history_series(closed_1m: np.ndarray, now_ms: int) -> Callable[[Series], float]:
    """A one-off snapshot's series: computed (vectorised) over EVERY closed candle it was
    given, from the first — the kernel's definition (:mod:`strategies.core.series`), so a
    snapshot cut from the same history start reads the kernel's values bit for bit."""
    computed: dict[Series, float] = {}
    closed: dict[str, np.ndarray] = {}  # timeframe -> its closed candles, aggregated once

    def rows_of(tf: str) -> np.ndarray:
        if tf not in closed:
            minutes = closed.get("1m")
            if minutes is None:
                minutes = closed["1m"] = validate_candles(closed_1m, "1m")
            rows = minutes if tf == "1m" else aggregate_candles(minutes, tf)
            closed[tf] = rows[_visible_slice(rows[:, 0], timeframe_ms(tf), now_ms, -(2**62))]
        return closed[tf]

    def value(series: Series) -> float:
        if series not in computed:
            rows = rows_of(series.timeframe)
            computed[series] = float(series.vectorised(rows)[-1]) if len(rows) else math.nan
        return computed[series]

    return value


@dataclass(frozen=True, slots=True)
class History:
    """The WHOLE preloaded history of one symbol, for vectorised necessary-condition filters.

    ``candles[tf]`` holds every complete candle of ``tf`` aggregated from the preloaded 1m rows
    (future rows included: a filter computed from it must be causal row by row, and the
    kernel's tests compare its decisions with and without the filter); the other arrays are
    the time-sorted inputs, or ``None``; ``max_candles`` is the snapshot window (periods).
    """

    candles: Mapping[str, np.ndarray]
    funding: np.ndarray | None = None
    open_interest: np.ndarray | None = None
    trades: np.ndarray | None = None
    max_candles: int = DEFAULT_MAX_CANDLES
    memo: dict[Hashable, Any] | None = field(default=None, compare=False, repr=False)
    series_values: Callable[[Series], np.ndarray] | None = field(
        default=None, compare=False, repr=False
    )

    def series(self, series: Series) -> np.ndarray:
        """A declared series' value after each candle of ``candles[series.timeframe]``, the
        values the snapshots read (:meth:`MarketSnapshot.value`), bit for bit."""
        if self.series_values is None:
            raise SeriesError(f"this history carries no indicator series (asked {series.key})")
        return self.series_values(series)

    def derived[V](self, key: Hashable, compute: Callable[[], V]) -> V:
        """``compute()``, a whole-history array derived from ``candles`` alone and from the
        parameters in ``key`` (e.g. ``("volume_ratios", "5m", 20)``); cached in the
        :class:`CandleSet` memo when the history is one (the runs of a sweep share it)."""
        if self.memo is None:
            return compute()
        key = ("history", key)
        if key not in self.memo:
            value = compute()
            for array in value if isinstance(value, tuple) else (value,):
                if isinstance(array, np.ndarray):
                    array.flags.writeable = False  # shared by every run: never edited
            self.memo[key] = value
        return self.memo[key]

    def window_counts(self, timeframe: str, rows: np.ndarray, now_ms: np.ndarray) -> np.ndarray:
        """Candles a snapshot at each ``now_ms`` holds for ``timeframe`` when its last one is
        row ``rows[i]`` of ``candles[timeframe]`` (the window rule of :func:`window_start_ms`)."""
        opens = self.candles[timeframe][:, 0]
        first = np.searchsorted(opens, self.window_starts_ms(timeframe, now_ms), side="left")
        return np.asarray(rows, np.int64) - first + 1

    def window_starts_ms(self, timeframe: str, now_ms: np.ndarray) -> np.ndarray:
        """Earliest open time a snapshot at each ``now_ms`` holds (:func:`window_start_ms`)."""
        step = timeframe_ms(timeframe)
        return (np.asarray(now_ms, np.int64) // step) * step - self.max_candles * step


class _GrowableRows:
    """An (n, width) float array with amortised O(1) appends; ``rows`` views the filled part.

    The initial rows are shared, never copied, until the first append (copy on write): a
    builder made from a :class:`CandleSet` costs no copy of its candles.
    """

    def __init__(self, initial: np.ndarray, width: int) -> None:
        self._data = np.asarray(initial, dtype=np.float64).reshape(-1, width)
        self._size = len(self._data)
        self._owned = False

    @property
    def rows(self) -> np.ndarray:
        return self._data[: self._size]

    def append(self, row: np.ndarray) -> None:
        if not self._owned or self._size == len(self._data):
            grown = np.empty((max(16, 2 * self._size), self._data.shape[1]), np.float64)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
            self._owned = True
        self._data[self._size] = row
        self._size += 1


class CandleSet:
    """Validated closed 1m candles of one symbol, aggregated once per timeframe and shared.

    A read-only copy of ``history_1m`` (checked by :func:`validate_candles`); ``candles(tf)``
    aggregates on first use (:func:`aggregate_candles`) and keeps the read-only result. Every
    :class:`SnapshotBuilder` made from the set reads these arrays without copying them, so the
    runs of a parameter sweep aggregate the data once, not once per parameter set.

    ``memo`` holds values computed from the candles ALONE (never from funding, open interest,
    trades or books, never from parameters that are not in the key): the whole-history arrays
    of :meth:`History.derived` and the per-snapshot values of
    :meth:`strategies.core.base.MarketSnapshot.derived`. The candles cannot change (read-only
    copy), so a cached value is the value a fresh computation returns.
    """

    def __init__(self, history_1m: np.ndarray) -> None:
        minutes = np.array(validate_candles(history_1m, "1m"), dtype=np.float64)
        self.minutes = _readonly(minutes)
        self._by_timeframe: dict[str, np.ndarray] = {"1m": self.minutes}
        self.memo: dict[Hashable, Any] = {}

    def __len__(self) -> int:
        return len(self.minutes)

    def candles(self, timeframe: str) -> np.ndarray:
        """Every complete ``timeframe`` candle of the set (read-only)."""
        if timeframe not in self._by_timeframe:
            self._by_timeframe[timeframe] = _readonly(aggregate_candles(self.minutes, timeframe))
        return self._by_timeframe[timeframe]


class SnapshotBuilder:
    """Pre-aggregated candles of one symbol; ``at(now_ms)`` is O(log n) and returns views.

    ``history_1m`` is validated (sorted, unique, aligned) and aggregated once into every
    timeframe with :func:`aggregate_candles`. ``at(now_ms)`` then slices each timeframe with
    ``searchsorted`` (the same visibility rule as :func:`snapshot_at`, which it equals on every
    input). Live, ``append_candle(candle, now_ms=...)`` adds one closed 1m candle and the
    higher-timeframe candles it completes (through :class:`StreamingAggregator`, bit-identical to
    ``aggregate_candles``); a forming candle raises ``CandleNotClosed``.

    Returned arrays are read-only views: valid until the next ``append_candle``/``set_*`` call
    (a live runtime decides on the snapshot before appending the next candle). Every snapshot
    carries ``regime_rules`` (the kernel's regime thresholds; default ``RegimeThresholds()``).
    Indicator series (:mod:`strategies.core.series`) are kept per
    declared :class:`Series`; with ``series_on_demand`` (the default, for tests and one-off
    uses) a series first read is declared then, with the same values; the kernel's builders
    refuse an undeclared one.
    """

    def __init__(
        self,
        symbol: str,
        history_1m: np.ndarray | CandleSet,
        timeframes: Iterable[str],
        *,
        funding: np.ndarray | None = None,
        open_interest: np.ndarray | None = None,
        trades: np.ndarray | None = None,
        order_books: Sequence[OrderBook] = (),
        max_candles: int = DEFAULT_MAX_CANDLES,
        regime_rules: RegimeThresholds | None = None,
        series_on_demand: bool = True,
    ) -> None:
        if max_candles < 1:
            raise ValueError(f"max_candles must be at least 1, got {max_candles}")
        self.symbol = symbol
        self.max_candles = max_candles
        self.regime_rules = regime_rules if regime_rules is not None else RegimeThresholds()
        self.timeframes = tuple(dict.fromkeys(timeframes))
        shared = history_1m if isinstance(history_1m, CandleSet) else CandleSet(history_1m)
        # Values derived from the shared candles stay valid until a candle is appended.
        self._shared: CandleSet | None = shared
        history = shared.minutes
        self._last_minute_ms: int | None = int(history[-1, 0]) if len(history) else None
        self._candles = {tf: _GrowableRows(shared.candles(tf), 6) for tf in self.timeframes}
        self._step_ms = {tf: timeframe_ms(tf) for tf in self.timeframes}
        self._aggregator: StreamingAggregator | None = None
        longest = max(self._step_ms.values(), default=MINUTE_MS) // MINUTE_MS
        self._tail = history[-longest:]  # the minutes of the buckets still open
        self._tracks: dict[Series, SeriesTrack] = {}
        self._tracks_by_tf: dict[str, list[SeriesTrack]] = {}
        self._series_on_demand = series_on_demand
        self.set_inputs(funding=funding, open_interest=open_interest, trades=trades)
        self.set_order_books(order_books)

    def _streaming(self) -> StreamingAggregator | None:
        """The live aggregator of the higher timeframes, made on the first append: it replays
        the history's last minutes so streaming resumes mid-bucket."""
        higher = [tf for tf in self.timeframes if tf != "1m"]
        if self._aggregator is None and higher:
            self._aggregator = StreamingAggregator(higher)
            if len(self._tail):
                last_open = int(self._tail[-1, 0])
                for row in self._tail:
                    self._aggregator.push(row, now_ms=last_open + MINUTE_MS)
        return self._aggregator

    def set_inputs(
        self,
        *,
        funding: np.ndarray | None = None,
        open_interest: np.ndarray | None = None,
        trades: np.ndarray | None = None,
    ) -> None:
        """Replace the funding (M, 2), open-interest (K, 2), trades (T, 3) arrays (time-sorted)."""
        self._funding = None if funding is None else np.asarray(funding, np.float64)
        self._open_interest = (
            None if open_interest is None else np.asarray(open_interest, np.float64)
        )
        self._trades = None if trades is None else np.asarray(trades, np.float64)

    def set_order_books(self, order_books: Sequence[OrderBook]) -> None:
        """Replace the time-sorted order-book snapshots ``at`` picks from."""
        self._books = list(order_books)
        self._book_times = np.array([b.time_ms for b in self._books], dtype=np.int64)

    def append_candle(self, candle_1m: np.ndarray, *, now_ms: int) -> None:
        """Add one CLOSED 1m candle (``open + 60_000 <= now_ms``, else ``CandleNotClosed``)."""
        row = np.asarray(candle_1m, dtype=np.float64).reshape(CANDLE_COLUMNS)
        if row[0] + MINUTE_MS > now_ms:
            raise CandleNotClosed(
                f"1m candle opened at {int(row[0])} ms closes at {int(row[0]) + MINUTE_MS} ms, "
                f"after now ({now_ms} ms): a forming candle never reaches a strategy"
            )
        if self._last_minute_ms is not None and row[0] <= self._last_minute_ms:
            raise OutOfOrderCandle(
                f"1m candle opened at {int(row[0])} ms is not after the last one held "
                f"({self._last_minute_ms} ms)"
            )
        aggregator = self._streaming()
        emitted = aggregator.push(row, now_ms=now_ms) if aggregator is not None else []
        self._shared = None  # the history changed: nothing derived from the set applies
        self._last_minute_ms = int(row[0])
        if "1m" in self._candles:
            self._append_row("1m", row)
        for tf, candle in emitted:
            self._append_row(tf, candle)

    def _append_row(self, timeframe: str, row: np.ndarray) -> None:
        """Hold one closed candle of ``timeframe`` and advance the series tracks on it."""
        held = self._candles[timeframe]
        before = held.rows
        for track in self._tracks_by_tf.get(timeframe, ()):
            track.append(row, before)
        held.append(row)

    # -- indicator series (strategies.core.series) ---------------------------------------------

    def declare_series(self, series: Iterable[Series]) -> None:
        """Keep each series up to date from now on: vectorised over the candles held (shared
        by every builder of the same candle set), then one incremental step per appended
        candle of its timeframe (which must be one of the builder's timeframes)."""
        for one in series:
            if one in self._tracks:
                continue
            if one.timeframe not in self._candles:
                raise SeriesError(
                    f"series {one.key} needs {one.timeframe} candles, which this snapshot "
                    f"does not hold (timeframes {', '.join(self.timeframes)})"
                )
            compute = partial(one.vectorised, self._candles[one.timeframe].rows)
            base = self.history().derived(("series", one), compute)
            track = SeriesTrack(one, base)
            self._tracks[one] = track
            self._tracks_by_tf.setdefault(one.timeframe, []).append(track)

    def _track(self, series: Series) -> SeriesTrack:
        """The track of ``series``; an undeclared one is declared now when the builder
        computes series on demand (the same values: vectorised over the held candles, then
        stepped), and refused otherwise (the kernel's builders: what a strategy reads must be
        declared, so that a checkpoint carries it)."""
        track = self._tracks.get(series)
        if track is None:
            if not self._series_on_demand:
                raise SeriesError(
                    f"series {series.key} was not declared (declared: "
                    f"{', '.join(s.key for s in self._tracks) or 'none'})"
                )
            self.declare_series((series,))
            track = self._tracks[series]
        return track

    def series_value(self, series: Series, now_ms: int) -> float:
        """``series`` after the last candle of its timeframe closed at ``now_ms``."""
        track = self._track(series)
        opens = self._candles[series.timeframe].rows[:, 0]
        step = self._step_ms[series.timeframe]
        return track.value_at(int(np.searchsorted(opens, now_ms - step, side="right")) - 1)

    def series_history(self, series: Series) -> np.ndarray:
        """A declared series' value after every held candle of its timeframe."""
        return self._track(series).values(len(self._candles[series.timeframe].rows))

    def series_states(self) -> dict[str, Any]:
        """Every track's state after the last held candle (:meth:`SeriesTrack.export`),
        JSON-safe, by series key: the part of a checkpoint that resumes the series exactly."""
        out: dict[str, Any] = {}
        for series, track in self._tracks.items():
            saved = track.export(self._candles[series.timeframe].rows)
            if saved is not None:
                out[series.key] = saved
        return out

    def restore_series(self, saved: Mapping[str, Any]) -> list[str]:
        """Continue the checkpointed tracks (:meth:`series_states`); the keys that could not
        be (not declared now, or the held history does not end where the checkpoint did)."""
        declared = {s.key for s in self._tracks}
        missed = [key for key in saved if key not in declared]
        for series, track in self._tracks.items():
            raw = saved.get(series.key)
            if raw is None:
                continue
            if not track.restore(raw, self._candles[series.timeframe].rows):
                missed.append(series.key)
        return missed

    def candles_at(self, timeframe: str, now_ms: int) -> np.ndarray:
        """Visible candles of one timeframe at ``now_ms`` (a read-only view)."""
        rows = self._candles[timeframe].rows
        start = window_start_ms(now_ms, timeframe, self.max_candles)
        return _readonly(rows[_visible_slice(rows[:, 0], self._step_ms[timeframe], now_ms, start)])

    def at(self, now_ms: int, *, order_book: OrderBook | None = None) -> MarketSnapshot:
        """The snapshot at ``now_ms``; the book is ``order_book`` or the latest one held."""
        if order_book is None and len(self._books):
            index = int(np.searchsorted(self._book_times, now_ms, side="right")) - 1
            order_book = self._books[index] if index >= 0 else None
        memo: dict[Hashable, Any] = {}
        candles: Mapping[str, np.ndarray] | None = None
        if self._shared is not None:
            # Same candle set, time and window: the same candles, whichever run asks (the
            # read-only views themselves are shared too).
            memo = self._shared.memo.setdefault(("snapshot", now_ms, self.max_candles), memo)
            candles = memo.get(("candles", self.timeframes))
        if candles is None:
            candles = {tf: self.candles_at(tf, now_ms) for tf in self.timeframes}
            if self._shared is not None:
                candles = memo[("candles", self.timeframes)] = MappingProxyType(candles)
        return MarketSnapshot(
            symbol=self.symbol,
            now_ms=now_ms,
            candles=candles,
            funding=_upto(self._funding, now_ms),
            open_interest=_upto(self._open_interest, now_ms),
            order_book=_check_book(order_book, now_ms),
            trades=_upto(self._trades, now_ms),
            memo=memo,
            regime_rules=self.regime_rules,
            series_source=lambda series: self.series_value(series, now_ms),
        )

    def history(self) -> History:
        """Every candle and input held now (read-only views): see :class:`History`."""
        return History(
            candles={tf: _readonly(rows.rows) for tf, rows in self._candles.items()},
            funding=self._funding,
            open_interest=self._open_interest,
            trades=self._trades,
            max_candles=self.max_candles,
            memo=self._shared.memo if self._shared is not None else None,
            series_values=self.series_history,
        )

    def close_times_ms(self, timeframe: str = "1m") -> np.ndarray:
        """Close times of every candle held for ``timeframe``: the ``now_ms`` values a backtest
        steps through (a decision per closed candle)."""
        return self._candles[timeframe].rows[:, 0] + self._step_ms[timeframe]
