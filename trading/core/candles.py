"""Candle arrays, timeframes, aggregation of closed 1m candles and rolling candle buffers.

A candle array is a float64 numpy array of shape ``(N, 6)`` whose columns are
``[open_time_ms, open, high, low, close, volume]`` (indexes ``T, O, H, L, C, V``).
``open_time_ms`` is the candle's OPEN time in UTC epoch milliseconds; a candle of timeframe
``tf`` covers ``[open_time_ms, open_time_ms + timeframe_ms(tf))`` and is CLOSED once the clock
reaches its end. Prices are in quote currency (USDT), volume in base units (contracts = coins
for USDT-M perpetuals).

Missing-minute rule (one rule for the vectorised and the streaming path): a higher-timeframe
candle is emitted only if EVERY one of its 1m candles is present. A bucket with a missing
minute is dropped, never emitted from a partial set of minutes. A gap in our own feed must not
produce a candle whose high/low silently misses the minutes we did not see; the price is that a
bucket straddling an exchange outage (which the exchange itself prints from the minutes that
traded) is absent from our series until its minutes are healed from the REST history.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

T: Final = 0
O: Final = 1  # noqa: E741 - column names mirror the OHLCV convention
H: Final = 2
L: Final = 3
C: Final = 4
V: Final = 5
CANDLE_COLUMNS: Final = 6

MINUTE_MS: Final = 60_000
TIMEFRAME_MS: Final[dict[str, int]] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
CSV_HEADER: Final = "timestamp_ms,open,high,low,close,volume"

_TIMEFRAME_RE = re.compile(r"^([1-9][0-9]*)([mhd])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
_KNOWN_MS: dict[str, int] = {}  # valid timeframes parsed so far


class CandleError(ValueError):
    """Candle data that cannot be used as it is (wrong shape, misaligned, not finite...)."""


class OutOfOrderCandle(CandleError):
    """A candle whose open time is not after the last one accepted (or a conflicting repeat)."""


class CandleNotClosed(CandleError):
    """A candle that is still forming: its close time is after the caller's clock."""


def timeframe_ms(timeframe: str) -> int:
    """Duration of a timeframe in milliseconds: ``"<n>m"``, ``"<n>h"`` or ``"<n>d"`` with n ≥ 1.

    ``timeframe_ms("15m") == 900_000``. Raises ``ValueError`` for anything else (``"1w"``,
    ``"0m"``, ``"5"``, ``"1M"``...).
    """
    if isinstance(timeframe, str) and timeframe in _KNOWN_MS:
        return _KNOWN_MS[timeframe]  # parsed before (a strategy asks at every decision)
    match = _TIMEFRAME_RE.match(timeframe) if isinstance(timeframe, str) else None
    if match is None:
        raise ValueError(
            f"unknown timeframe {timeframe!r}: expected <n>m, <n>h or <n>d with n ≥ 1, e.g. "
            '"1m", "5m", "15m", "1h", "4h", "1d"'
        )
    duration = int(match.group(1)) * _UNIT_MS[match.group(2)]
    _KNOWN_MS[timeframe] = duration
    return duration


def _as_candle_array(candles: ArrayLike) -> FloatArray:
    array = np.asarray(candles, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != CANDLE_COLUMNS:
        raise CandleError(
            f"candles must have shape (N, 6) [open_time_ms, open, high, low, close, volume], "
            f"got {array.shape}"
        )
    return array


def validate_candles(candles: ArrayLike, timeframe: str = "1m") -> FloatArray:
    """Check a candle array and return it as float64 ``(N, 6)``.

    Checks: shape ``(N, 6)``, every value finite, open times whole milliseconds aligned to the
    timeframe (``open_time_ms % timeframe_ms == 0``) and strictly increasing (no duplicates).
    Raises ``CandleError`` (``OutOfOrderCandle`` for ordering) naming the first bad row.
    """
    array = _as_candle_array(candles)
    if len(array) == 0:
        return array
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise CandleError(f"candle row {row} holds a NaN or infinite value: {array[row]}")
    step_ms = timeframe_ms(timeframe)
    open_times = array[:, T]
    as_int = open_times.astype(np.int64)
    bad = (as_int != open_times) | (as_int % step_ms != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CandleError(
            f"candle row {row} opens at {open_times[row]!r} ms, which is not aligned to the "
            f"{timeframe} grid (multiples of {step_ms} ms since the UTC epoch)"
        )
    not_increasing = np.diff(as_int) <= 0
    if not_increasing.any():
        row = int(np.flatnonzero(not_increasing)[0]) + 1
        raise OutOfOrderCandle(
            f"candle row {row} opens at {as_int[row]} ms, not after row {row - 1} "
            f"({as_int[row - 1]} ms): candles must be sorted by open time without duplicates"
        )
    return array


def aggregate_candles(
    candles: ArrayLike, timeframe: str, *, base_timeframe: str = "1m"
) -> FloatArray:
    """Aggregate closed ``base_timeframe`` candles into COMPLETE ``timeframe`` candles.

    Buckets are aligned to multiples of ``timeframe_ms(timeframe)`` since the UTC epoch
    (a 1h bucket opens at hh:00, a 1d bucket at 00:00 UTC). For a bucket of k base candles:
    open = first open, high = max(high), low = min(low), close = last close,
    volume = sum(volume) added in time order (the same float sum the streaming aggregator makes).

    Only buckets holding all k base candles are returned ("incomplete buckets are dropped"):
    a bucket with a missing minute, and the still-forming last bucket, never appear.
    Runs in O(N) numpy operations (no Python loop per candle).
    """
    base = validate_candles(candles, base_timeframe)
    base_ms = timeframe_ms(base_timeframe)
    target_ms = timeframe_ms(timeframe)
    if target_ms % base_ms != 0:
        raise ValueError(
            f"cannot build {timeframe} candles from {base_timeframe} candles: "
            f"{target_ms} ms is not a multiple of {base_ms} ms"
        )
    per_bucket = target_ms // base_ms
    if len(base) == 0:
        return np.empty((0, CANDLE_COLUMNS), dtype=np.float64)
    open_times = base[:, T].astype(np.int64)
    buckets = open_times - open_times % target_ms
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    counts = np.diff(np.r_[starts, len(base)])
    # Rows are unique, sorted and aligned, so a bucket is complete iff it holds k rows.
    complete_starts = starts[counts == per_bucket]
    rows = complete_starts[:, None] + np.arange(per_bucket)
    out = np.empty((len(complete_starts), CANDLE_COLUMNS), dtype=np.float64)
    out[:, T] = buckets[complete_starts]
    out[:, O] = base[complete_starts, O]
    out[:, H] = base[rows, H].max(axis=1)
    out[:, L] = base[rows, L].min(axis=1)
    out[:, C] = base[rows[:, -1], C]
    # cumsum is a left-to-right sum: bit-identical to the streaming aggregator's running total.
    out[:, V] = np.cumsum(base[rows, V], axis=1)[:, -1]
    return out


def _as_candle_row(candle: ArrayLike) -> FloatArray:
    row = np.array(candle, dtype=np.float64).reshape(-1)
    if row.shape != (CANDLE_COLUMNS,):
        raise CandleError(
            f"a candle is 6 numbers [open_time_ms, open, high, low, close, volume], got {row!r}"
        )
    if not np.isfinite(row).all():
        raise CandleError(f"candle holds a NaN or infinite value: {row}")
    return row


def _check_closed_and_aligned(row: FloatArray, step_ms: int, timeframe: str, now_ms: int) -> int:
    open_time = row[T]
    open_ms = int(open_time)
    if open_ms != open_time or open_ms % step_ms != 0:
        raise CandleError(
            f"candle opens at {open_time!r} ms, not on the {timeframe} grid "
            f"(multiples of {step_ms} ms since the UTC epoch)"
        )
    if open_ms + step_ms > now_ms:
        raise CandleNotClosed(
            f"the {timeframe} candle opened at {open_ms} ms closes at {open_ms + step_ms} ms, "
            f"after now ({now_ms} ms): only closed candles may drive aggregation and strategies"
        )
    return open_ms


@dataclass
class _Bucket:
    open_ms: int
    count: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class StreamingAggregator:
    """Builds higher-timeframe candles from closed 1m candles, one candle at a time.

    ``push`` returns ``[(timeframe, candle_row), ...]`` for every bucket whose LAST minute has
    just been pushed, in the order of ``timeframes`` sorted by duration; each higher-timeframe
    candle is emitted exactly once. The missing-minute rule is the one of
    ``aggregate_candles``: a bucket that lacks any minute is dropped, so on the same input the
    streamed rows equal ``aggregate_candles`` bit for bit.

    Closedness is asserted from the caller's clock: ``push(candle, now_ms=...)`` raises
    ``CandleNotClosed`` when ``open_time_ms + 60_000 > now_ms`` (the forming candle may move the
    price ticker, never the aggregation). Ordering: an earlier open time raises
    ``OutOfOrderCandle``; the same minute pushed again with identical values is ignored (a
    websocket replay after a reconnect), with different values it raises ``OutOfOrderCandle``.
    """

    def __init__(self, timeframes: Iterable[str] = ("5m", "15m", "1h")) -> None:
        durations = {tf: timeframe_ms(tf) for tf in timeframes}
        if not durations:
            raise ValueError("StreamingAggregator needs at least one timeframe")
        for tf, ms in durations.items():
            if ms % MINUTE_MS != 0:
                raise ValueError(f"timeframe {tf} is not a whole number of minutes")
        self.timeframes: tuple[str, ...] = tuple(sorted(durations, key=durations.__getitem__))
        self._duration_ms = durations
        self._buckets: dict[str, _Bucket | None] = dict.fromkeys(self.timeframes)
        self._last: FloatArray | None = None

    @property
    def last_open_time_ms(self) -> int | None:
        """Open time of the last 1m candle accepted, or None before the first."""
        return None if self._last is None else int(self._last[T])

    def push(self, candle_1m: ArrayLike, *, now_ms: int) -> list[tuple[str, FloatArray]]:
        """Add one CLOSED 1m candle; return the higher-timeframe candles it completes."""
        row = _as_candle_row(candle_1m)
        open_ms = _check_closed_and_aligned(row, MINUTE_MS, "1m", now_ms)
        if self._last is not None:
            last_ms = int(self._last[T])
            if open_ms == last_ms and np.array_equal(row, self._last):
                return []
            if open_ms <= last_ms:
                raise OutOfOrderCandle(
                    f"1m candle opened at {open_ms} ms arrives after the one opened at "
                    f"{last_ms} ms" + (" with different values" if open_ms == last_ms else "")
                )
        self._last = row
        emitted: list[tuple[str, FloatArray]] = []
        for tf in self.timeframes:
            duration = self._duration_ms[tf]
            bucket_ms = open_ms - open_ms % duration
            bucket = self._buckets[tf]
            if bucket is None or bucket.open_ms != bucket_ms:
                # A bucket left unfinished lost a minute: dropped, as aggregate_candles does.
                bucket = _Bucket(
                    bucket_ms,
                    0,
                    float(row[O]),
                    float(row[H]),
                    float(row[L]),
                    float(row[C]),
                    float(row[V]),
                )
            else:
                bucket.high = max(bucket.high, float(row[H]))
                bucket.low = min(bucket.low, float(row[L]))
                bucket.close = float(row[C])
                bucket.volume += float(row[V])
            bucket.count += 1
            if bucket.count == duration // MINUTE_MS:
                emitted.append(
                    (
                        tf,
                        np.array(
                            [
                                bucket_ms,
                                bucket.open,
                                bucket.high,
                                bucket.low,
                                bucket.close,
                                bucket.volume,
                            ],
                            dtype=np.float64,
                        ),
                    )
                )
                self._buckets[tf] = None
            else:
                self._buckets[tf] = bucket
        return emitted


class CandleBuffer:
    """Bounded rolling window of the last ``maxlen`` CLOSED candles of one (symbol, timeframe).

    Backed by a preallocated ``(2 * maxlen, 6)`` array: ``append`` writes one row and, once
    every ``maxlen`` appends, slides the window back to the front, so appends are O(1)
    amortised. ``last(n)`` returns a COPY (a view would change under the caller at the next
    slide). Open times must be aligned to the timeframe and strictly increasing
    (``OutOfOrderCandle`` otherwise) and the candle must be closed at ``now_ms``
    (``CandleNotClosed`` otherwise).
    """

    def __init__(self, maxlen: int = 500, *, timeframe: str = "1m", symbol: str = "") -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        self.maxlen = maxlen
        self.timeframe = timeframe
        self.symbol = symbol
        self._step_ms = timeframe_ms(timeframe)
        self._data = np.empty((2 * maxlen, CANDLE_COLUMNS), dtype=np.float64)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def last_open_time_ms(self) -> int | None:
        """Open time of the newest candle held, or None when empty."""
        return None if self._end == self._start else int(self._data[self._end - 1, T])

    def append(self, candle: ArrayLike, *, now_ms: int) -> None:
        """Add one closed candle after the newest one held."""
        row = _as_candle_row(candle)
        open_ms = _check_closed_and_aligned(row, self._step_ms, self.timeframe, now_ms)
        last_ms = self.last_open_time_ms
        if last_ms is not None and open_ms <= last_ms:
            raise OutOfOrderCandle(
                f"{self.symbol or 'candle'} {self.timeframe}: candle opened at {open_ms} ms is "
                f"not after the newest one held ({last_ms} ms)"
            )
        if self._end == len(self._data):
            keep = self.maxlen - 1
            self._data[:keep] = self._data[self._end - keep : self._end]
            self._start, self._end = 0, keep
        self._data[self._end] = row
        self._end += 1
        if self._end - self._start > self.maxlen:
            self._start += 1

    def extend(self, candles: ArrayLike, *, now_ms: int) -> None:
        """Append several closed candles (e.g. history loaded at start-up), oldest first."""
        array = validate_candles(candles, self.timeframe)
        for row in array[-self.maxlen :] if len(self) == 0 else array:
            self.append(row, now_ms=now_ms)

    def last(self, n: int | None = None) -> FloatArray:
        """Copy of the newest ``n`` candles held (all of them when ``n`` is None), oldest first."""
        count = len(self) if n is None else min(n, len(self))
        if count < 0:
            raise ValueError(f"n must be ≥ 0, got {n}")
        return self._data[self._end - count : self._end].copy()


def read_candles_csv(path: str | Path) -> FloatArray:
    """Read an OHLCV CSV (``.csv`` or ``.csv.gz``) with header
    ``timestamp_ms,open,high,low,close,volume`` into a float64 ``(N, 6)`` candle array.

    The header must match exactly (a file of another kind fails loudly, not silently).
    The rows are returned as stored; call ``validate_candles`` to check ordering and alignment.
    """
    file_path = Path(path)
    opener = gzip.open if file_path.name.endswith(".gz") else open
    with opener(file_path, "rt", encoding="utf-8", newline="") as stream:
        header = stream.readline().strip()
        if header != CSV_HEADER:
            raise CandleError(f"{file_path.name}: header is {header!r}, expected {CSV_HEADER!r}")
        body = stream.read()
    if not body.strip():
        return np.empty((0, CANDLE_COLUMNS), dtype=np.float64)
    return _as_candle_array(np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2))
