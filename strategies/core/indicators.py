"""Technical indicators for strategy authors: vectorised functions and incremental twins.

Every function takes numpy float arrays (one value per CLOSED candle, oldest first) and returns
arrays of the same length, NaN while the indicator is warming up. The warm-up ("lookback")
equals TA-Lib's for the same indicator, and after it the numbers agree with TA-Lib to ~1e-12
relative on real candles (the tests check 1e-9):

=====================================  ===========================================
indicator                              leading NaN (input without leading NaN)
=====================================  ===========================================
``sma(x, n)``, ``volume_sma``          n - 1
``ema(x, n)``                          n - 1
``rsi(close, n)``                      n
``atr(high, low, close, n)``           n
``adx(...)`` -> adx / +DI / -DI        2n - 1 / n / n
``bollinger(close, n, k)``             n - 1 (all three bands)
``donchian(high, low, n)``             n - 1 (all three lines)
``vwap_rolling(..., n)``               n - 1 (also NaN where the window traded 0 volume)
``vwap_session(...)``                  0 (NaN only while the session has traded 0 volume)
``percentile_rank(x, n)``              n - 1 (no TA-Lib twin; used by the regime)
=====================================  ===========================================

Leading NaN in an input (e.g. an EMA of an RSI) shift the start like TA-Lib does: the
computation begins at the first index where every input is a number, and the warm-up counts
from there. Inputs must be finite after that point.

Each indicator also has an incremental class (``SMA(n).update(x)`` ...) for the live runtime:
O(1) per closed candle (O(1) amortised for the rolling windows), NaN during the same warm-up,
and BIT-IDENTICAL to the vectorised function, so a backtest and live trading take the same
decision even on a threshold. Recursions (EMA, RSI, ATR, ADX, VWAPSession) repeat the
vectorised arithmetic operation for operation. On the vectorised side EMA, RSI, ATR and ADX are
the one non-numpy step: a sequential float loop per indicator, written once in
:mod:`strategies.core.recursions` and compiled by numba when it is installed (the same bits as
CPython gives, tested). Rolling windows (SMA, VolumeSMA, Bollinger, VWAPRolling) use the same
running sum on both sides: exactly rounded (math.fsum) every n windows, then
``sum += new - old``; rounding drift is thus bounded to n - 1 additions. ``PercentileRank``
(used by the regime) counts, so it is exact too.

Deliberate differences from TA-Lib, all in degenerate cases: TA-Lib treats any value below
1e-8 as zero (which breaks sub-cent coins); here only an exact zero is zero. A perfectly flat
market gives RSI 50 (TA-Lib: 0, which would read as "oversold" during an exchange halt).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from strategies.core import recursions

FloatArray = NDArray[np.float64]
NAN: Final = math.nan
DAY_MS: Final = 86_400_000


# --- helpers


def _as_float_array(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of floats, got shape {array.shape}")
    return array


def _check_period(n: int, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < minimum:
        raise ValueError(f"period must be an integer ≥ {minimum}, got {n!r}")
    return int(n)


def _same_length(*arrays: FloatArray) -> int:
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"input arrays must have the same length, got lengths {sorted(lengths)}")
    return lengths.pop()


def _first_valid(*arrays: FloatArray) -> int:
    """First index at which every input is a number (TA-Lib skips leading NaN the same way)."""
    start = 0
    for array in arrays:
        if len(array) and not math.isnan(array[0]):  # the usual case: starts with a number
            continue
        valid = np.flatnonzero(~np.isnan(array))
        start = max(start, int(valid[0]) if len(valid) else len(array))
    return start


def _window_sums(values: FloatArray, n: int) -> FloatArray:
    """Sum of each window of n consecutive values (len - n + 1 sums), as a running sum.

    S[j] = fsum(values[j..j+n-1]) (exactly rounded) when j % n == 0, else
    S[j] = S[j-1] + (values[j+n-1] - values[j-1]). Re-summing every n windows bounds rounding
    drift to n - 1 additions; the incremental classes make the same float operations in the
    same order (cumsum adds left to right), so both agree bit for bit.
    """
    count = len(values) - n + 1
    steps = np.empty(count)
    steps[1:] = values[n:] - values[: len(values) - n]
    firsts = sliding_window_view(values, n)[::n].tolist()
    steps[::n] = [math.fsum(window) for window in firsts]
    return _cumsum_per_segment(steps, n)


def _cumsum_per_segment(steps: FloatArray, n: int) -> FloatArray:
    """Left-to-right cumulative sums restarting every n elements."""
    count = len(steps)
    padded = np.zeros(-(-count // n) * n)
    padded[:count] = steps
    return np.cumsum(padded.reshape(-1, n), axis=1).ravel()[:count]


class _RunningWindowSum:
    """Incremental twin of ``_window_sums``: push a value, get the sum of the last n (or NaN)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.window: deque[float] = deque()
        self._full_windows = 0
        self._sum = NAN

    def push(self, x: float) -> float:
        window = self.window
        window.append(x)
        if len(window) < self.n:
            return NAN
        old = window.popleft() if len(window) > self.n else NAN
        if self._full_windows % self.n == 0:
            self._sum = math.fsum(window)
        else:
            self._sum = self._sum + (x - old)
        self._full_windows += 1
        return self._sum


def _true_range_one(high: float, low: float, prev_close: float) -> float:
    greatest = high - low
    to_high = abs(high - prev_close)
    if to_high > greatest:
        greatest = to_high
    to_low = abs(low - prev_close)
    if to_low > greatest:
        greatest = to_low
    return greatest


def _directional_moves_one(
    high: float, low: float, prev_high: float, prev_low: float
) -> tuple[float, float]:
    up = high - prev_high
    down = prev_low - low
    plus_dm = up if up > 0 and up > down else 0.0
    minus_dm = down if down > 0 and down > up else 0.0
    return plus_dm, minus_dm


def _typical_price(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    return (high + low + close) / 3.0


# --- vectorised


def sma(x: ArrayLike, n: int) -> FloatArray:
    """Simple moving average: SMA[i] = (x[i-n+1] + ... + x[i]) / n, in the units of x.

    NaN for the first n - 1 values (TA-Lib SMA lookback).
    """
    values = _as_float_array(x, "x")
    n = _check_period(n)
    out = np.full(len(values), NAN)
    start = _first_valid(values)
    if len(values) - start >= n:
        out[start + n - 1 :] = _window_sums(values[start:], n) / n
    return out


def volume_sma(volume: ArrayLike, n: int) -> FloatArray:
    """Average volume of the last n candles (base units per candle); n - 1 leading NaN.

    A volume spike is ``volume[i] / volume_sma(volume, n)[i - 1]``: compare with the average of
    the candles BEFORE the one being judged.
    """
    return sma(volume, n)


def ema(x: ArrayLike, n: int) -> FloatArray:
    """Exponential moving average with k = 2 / (n + 1), in the units of x.

    Seeded like TA-Lib: EMA[n-1] = mean(x[0..n-1]); then EMA[i] = (x[i] - EMA[i-1]) * k +
    EMA[i-1]. NaN for the first n - 1 values.
    """
    values = _as_float_array(x, "x")
    n = _check_period(n)
    out = np.full(len(values), NAN)
    start = _first_valid(values)
    if len(values) - start < n:
        return out
    (out[start:],) = recursions.ema(values[start:], n)
    return out


def _rsi_value(avg_gain: float, avg_loss: float) -> float:
    total = avg_gain + avg_loss
    return 100.0 * (avg_gain / total) if total != 0.0 else 50.0


def rsi(close: ArrayLike, n: int = 14) -> FloatArray:
    """Wilder's Relative Strength Index, 0..100.

    d[i] = close[i] - close[i-1]; the first averages are the plain means of gains and losses
    over d[1..n]; then avg = (avg * (n - 1) + today's gain or loss) / n.
    RSI = 100 * avg_gain / (avg_gain + avg_loss) (= 100 - 100 / (1 + RS)); 50 when both are 0.
    NaN for the first n values (one extra for the first difference).
    """
    values = _as_float_array(close, "close")
    n = _check_period(n, 2)
    out = np.full(len(values), NAN)
    start = _first_valid(values)
    if len(values) - start <= n:
        return out
    (out[start:],) = recursions.rsi(values[start:], n)
    return out


def rsi_last(close: ArrayLike, n: int = 14) -> float:
    """``rsi(close, n)[-1]`` (for a decision that reads only the last closed candle); NaN while
    warming up."""
    series = rsi(close, n)
    return float(series[-1]) if len(series) else NAN


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> FloatArray:
    """Wilder's Average True Range, in price units (USDT).

    TR[i] = max(high - low, |high - prev close|, |low - prev close|) for i ≥ 1;
    ATR[n] = mean(TR[1..n]); then ATR[i] = (ATR[i-1] * (n - 1) + TR[i]) / n.
    NaN for the first n values.
    """
    h, lo, c = (
        _as_float_array(a, name) for a, name in ((high, "high"), (low, "low"), (close, "close"))
    )
    length = _same_length(h, lo, c)
    n = _check_period(n)
    out = np.full(length, NAN)
    start = _first_valid(h, lo, c)
    if length - start <= n:
        return out
    (ranges,) = recursions.true_range(h[start:], lo[start:], c[start:])
    (out[start:],) = recursions.atr(ranges, n)
    return out


def atr_last(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> float:
    """``atr(high, low, close, n)[-1]`` (for a decision that reads only the last closed
    candle); NaN while warming up."""
    series = atr(high, low, close, n)
    return float(series[-1]) if len(series) else NAN


def adx(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Wilder's Average Directional Index with its directional indicators, all 0..100.

    With Wilder sums S = S - S / n + today's value (the first S is a plain sum over bars
    1..n-1 before the first update at bar n) of TR, +DM and -DM:
    +DI = 100 * S(+DM) / S(TR), -DI = 100 * S(-DM) / S(TR),
    DX = 100 * |+DI - -DI| / (+DI + -DI); ADX[2n-1] = mean(DX[n..2n-1]), then
    ADX[i] = (ADX[i-1] * (n - 1) + DX[i]) / n (unchanged on a bar where +DI + -DI = 0).
    Returns ``(adx, plus_di, minus_di)``: NaN for the first 2n - 1 / n / n values.
    """
    return adx_with_sums(high, low, close, n)[:3]


def adx_with_sums(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`adx` and the Wilder sums behind it: ``(adx, plus_di, minus_di, S(TR), S(+DM),
    S(-DM))``, the sums in price units (USDT), NaN for the first n values (the same arrays
    ``adx`` computes; bounds on a window's ADX read them)."""
    h, lo, c = (
        _as_float_array(a, name) for a, name in ((high, "high"), (low, "low"), (close, "close"))
    )
    _same_length(h, lo, c)
    n = _check_period(n, 2)
    start = _first_valid(h, lo, c)
    hs, ls = h[start:], lo[start:]
    (ranges,) = recursions.true_range(hs, ls, c[start:])
    computed = recursions.adx(hs, ls, ranges, n)
    if start > 0:  # leading NaN in an input: NaN there too
        computed = tuple(np.concatenate([np.full(start, NAN), part]) for part in computed)
    adx_values, plus_di, minus_di, tr_sum, plus_sum, minus_sum = computed
    return adx_values, plus_di, minus_di, tr_sum, plus_sum, minus_sum


def bollinger(
    close: ArrayLike, n: int = 20, k: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger bands ``(upper, middle, lower)`` in price units.

    middle = SMA(close, n); sigma = population standard deviation of the same n closes
    (divide by n, as TA-Lib); upper = middle + k * sigma; lower = middle - k * sigma.
    NaN for the first n - 1 values.
    """
    values = _as_float_array(close, "close")
    n = _check_period(n)
    upper = np.full(len(values), NAN)
    middle = np.full(len(values), NAN)
    lower = np.full(len(values), NAN)
    start = _first_valid(values)
    if len(values) - start < n:
        return upper, middle, lower
    tail = values[start:]
    mean = _window_sums(tail, n) / n
    deviation_sq_sums = _shifted_square_window_sums(tail, n)
    variance = np.maximum(deviation_sq_sums[1] / n - np.square(deviation_sq_sums[0] / n), 0.0)
    width = np.sqrt(variance) * k
    middle[start + n - 1 :] = mean
    upper[start + n - 1 :] = mean + width
    lower[start + n - 1 :] = mean - width
    return upper, middle, lower


def _shifted_square_window_sums(values: FloatArray, n: int) -> tuple[FloatArray, FloatArray]:
    """Window sums of d and d^2 with d = x - c, c = first value of the window at each exact
    re-sum (every n windows). Shifting keeps E[d^2] - E[d]^2 free of the catastrophic
    cancellation that E[x^2] - E[x]^2 suffers at prices of 1e5."""
    count = len(values) - n + 1
    shift = values[(np.arange(count) // n) * n]
    new_dev = values[n - 1 :] - shift
    old_dev = np.empty(count)
    old_dev[1:] = values[: count - 1] - shift[1:]
    steps = new_dev - old_dev
    steps_sq = new_dev * new_dev - old_dev * old_dev
    firsts = sliding_window_view(values, n)[::n] - shift[::n, None]
    steps[::n] = [math.fsum(window) for window in firsts.tolist()]
    steps_sq[::n] = [math.fsum(window) for window in (firsts * firsts).tolist()]
    return _cumsum_per_segment(steps, n), _cumsum_per_segment(steps_sq, n)


def donchian(high: ArrayLike, low: ArrayLike, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Donchian channel ``(upper, lower, middle)`` in price units.

    upper[i] = max(high[i-n+1..i]), lower[i] = min(low[i-n+1..i]) (TA-Lib MAX / MIN),
    middle = (upper + lower) / 2. The window INCLUDES candle i: a breakout test on candle i
    compares its close with ``upper[i - 1]``. NaN for the first n - 1 values.
    """
    h = _as_float_array(high, "high")
    lo = _as_float_array(low, "low")
    length = _same_length(h, lo)
    n = _check_period(n)
    upper = np.full(length, NAN)
    lower = np.full(length, NAN)
    start = _first_valid(h, lo)
    if length - start >= n:
        upper[start + n - 1 :] = sliding_window_view(h[start:], n).max(axis=1)
        lower[start + n - 1 :] = sliding_window_view(lo[start:], n).min(axis=1)
    return upper, lower, (upper + lower) / 2.0


def vwap_rolling(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, n: int
) -> FloatArray:
    """Volume-weighted average price of the last n candles, in price units.

    typical = (high + low + close) / 3; VWAP[i] = sum(typical * volume) / sum(volume) over
    candles i-n+1..i. NaN for the first n - 1 values and where the window traded no volume.
    """
    h, lo, c, v = (
        _as_float_array(a, name)
        for a, name in ((high, "high"), (low, "low"), (close, "close"), (volume, "volume"))
    )
    length = _same_length(h, lo, c, v)
    n = _check_period(n)
    out = np.full(length, NAN)
    start = _first_valid(h, lo, c, v)
    if length - start < n:
        return out
    vs = v[start:]
    traded = _window_sums(vs, n)
    weighted = _window_sums(_typical_price(h[start:], lo[start:], c[start:]) * vs, n)
    has_volume = sliding_window_view(vs != 0.0, n).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[start + n - 1 :] = np.where(has_volume, weighted / traded, NAN)
    return out


def vwap_session(
    open_time_ms: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    session_ms: int = DAY_MS,
) -> FloatArray:
    """VWAP anchored at each session start (default: 00:00 UTC), in price units.

    Session of a candle = floor(open_time_ms / session_ms). VWAP[i] = cumulative
    sum(typical * volume) / cumulative sum(volume) from the session's first candle to i,
    typical = (high + low + close) / 3. No warm-up; NaN only while the session has traded no
    volume. Open times must be increasing.
    """
    t, h, lo, c, v = (
        _as_float_array(a, name)
        for a, name in (
            (open_time_ms, "open_time_ms"),
            (high, "high"),
            (low, "low"),
            (close, "close"),
            (volume, "volume"),
        )
    )
    _same_length(t, h, lo, c, v)
    session_ms = _check_period(session_ms)
    sessions = np.floor_divide(t, session_ms)
    if (np.diff(sessions) < 0).any():
        raise ValueError("open_time_ms must be increasing for vwap_session")
    # Left-to-right running sums per session, bit-identical to VWAPSession's.
    (vwap,) = recursions.session_vwap(sessions, h, lo, c, v)
    return vwap


def percentile_rank(x: ArrayLike, n: int) -> FloatArray:
    """Rolling percentile rank: 100 * count(x[i-n+1..i] ≤ x[i]) / n, 0..100.

    NaN for the first n - 1 values after the input's leading NaN.
    """
    values = _as_float_array(x, "x")
    n = _check_period(n)
    out = np.full(len(values), NAN)
    start = _first_valid(values)
    if len(values) - start >= n:
        tail = values[start:]
        windows = sliding_window_view(tail, n)
        counts = np.empty(len(windows), dtype=np.int64)
        # Chunks bound the (rows x n) comparison matrix to a few MB.
        step = max(1, 4_000_000 // n)
        for begin in range(0, len(windows), step):
            chunk = windows[begin : begin + step]
            counts[begin : begin + step] = (chunk <= chunk[:, -1:]).sum(axis=1)
        out[start + n - 1 :] = 100.0 * counts / n
    return out


def percentile_rank_last(x: ArrayLike, n: int) -> float:
    """``percentile_rank(x, n)[-1]`` bit for bit, comparing only the last window (for a
    decision, which needs the newest value alone)."""
    values = _as_float_array(x, "x")
    n = _check_period(n)
    if len(values) - _first_valid(values) < n:
        return NAN
    window = values[-n:]
    return 100.0 * int(np.count_nonzero(window <= window[-1])) / n
