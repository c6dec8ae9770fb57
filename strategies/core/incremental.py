"""Incremental indicator states: one value per new bar, O(1) (amortised) per update.

Each class gives, bar by bar, the same values as its vectorised twin in
``strategies.core.indicators`` (tested to the bit on real and random series). The live kernel
recomputes windows today; these states are kept for the O(1) decision work (the backtests at
the scalper's speed issue).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque

from strategies.core.indicators import (
    DAY_MS,
    NAN,
    _check_period,
    _directional_moves_one,
    _rsi_value,
    _RunningWindowSum,
    _true_range_one,
)


class SMA:
    """Incremental ``sma``: ``update(x)`` with each closed value returns the current SMA.

    O(1) amortised (running sum, re-summed exactly every n updates); bit-identical to ``sma``.
    """

    def __init__(self, n: int) -> None:
        self.n = _check_period(n)
        self._sum = _RunningWindowSum(self.n)
        self.value = NAN

    def update(self, x: float) -> float:
        x = float(x)
        if not self._sum.window and math.isnan(x):
            return NAN
        self.value = self._sum.push(x) / self.n
        return self.value


class VolumeSMA(SMA):
    """Incremental ``volume_sma``: average volume of the last n candles."""


class EMA:
    """Incremental ``ema`` (TA-Lib seeding); bit-identical to the vectorised function."""

    def __init__(self, n: int) -> None:
        self.n = _check_period(n)
        self.k = 2.0 / (self.n + 1)
        self._count = 0
        self._total = 0.0
        self.value = NAN

    def update(self, x: float) -> float:
        x = float(x)
        if self._count == 0 and math.isnan(x):
            return NAN
        self._count += 1
        if self._count < self.n:
            self._total += x
        elif self._count == self.n:
            self._total += x
            self.value = self._total / self.n
        else:
            self.value = (x - self.value) * self.k + self.value
        return self.value


class RSI:
    """Incremental Wilder ``rsi``; bit-identical to the vectorised function."""

    def __init__(self, n: int = 14) -> None:
        self.n = _check_period(n, 2)
        self._prev_close = NAN
        self._diffs = 0
        self._avg_gain = 0.0
        self._avg_loss = 0.0
        self.value = NAN

    def update(self, close: float) -> float:
        close = float(close)
        if math.isnan(self._prev_close):
            self._prev_close = close
            return NAN
        d = close - self._prev_close
        self._prev_close = close
        self._diffs += 1
        n = self.n
        if self._diffs <= n:
            if d < 0:
                self._avg_loss -= d
            else:
                self._avg_gain += d
            if self._diffs < n:
                return NAN
            self._avg_loss /= n
            self._avg_gain /= n
        else:
            self._avg_loss *= n - 1
            self._avg_gain *= n - 1
            if d < 0:
                self._avg_loss -= d
            else:
                self._avg_gain += d
            self._avg_loss /= n
            self._avg_gain /= n
        self.value = _rsi_value(self._avg_gain, self._avg_loss)
        return self.value


class ATR:
    """Incremental Wilder ``atr``; bit-identical to the vectorised function."""

    def __init__(self, n: int = 14) -> None:
        self.n = _check_period(n)
        self._prev_close = NAN
        self._count = 0
        self._total = 0.0
        self.value = NAN

    def update(self, high: float, low: float, close: float) -> float:
        prev_close = self._prev_close
        self._prev_close = float(close)
        if math.isnan(prev_close):
            return NAN
        tr = _true_range_one(float(high), float(low), prev_close)
        self._count += 1
        if self._count <= self.n:
            self._total += tr
            if self._count == self.n:
                self.value = self._total / self.n
        else:
            self.value = (self.value * (self.n - 1) + tr) / self.n
        return self.value


class ADX:
    """Incremental Wilder ``adx``: ``update(high, low, close) -> (adx, plus_di, minus_di)``.

    Bit-identical to the vectorised function.
    """

    def __init__(self, n: int = 14) -> None:
        self.n = _check_period(n, 2)
        self._prev: tuple[float, float, float] | None = None
        self._bar = 0
        self._s_tr = self._s_plus = self._s_minus = 0.0
        self._sum_dx = 0.0
        self.value: tuple[float, float, float] = (NAN, NAN, NAN)

    def update(self, high: float, low: float, close: float) -> tuple[float, float, float]:
        high, low, close = float(high), float(low), float(close)
        prev = self._prev
        self._prev = (high, low, close)
        if prev is None:
            return self.value
        self._bar += 1
        n, i = self.n, self._bar
        plus_dm, minus_dm = _directional_moves_one(high, low, prev[0], prev[1])
        tr = _true_range_one(high, low, prev[2])
        if i < n:
            self._s_plus += plus_dm
            self._s_minus += minus_dm
            self._s_tr += tr
            return self.value
        self._s_plus = self._s_plus - self._s_plus / n + plus_dm
        self._s_minus = self._s_minus - self._s_minus / n + minus_dm
        self._s_tr = s_tr = self._s_tr - self._s_tr / n + tr
        if s_tr != 0.0:
            p = 100.0 * (self._s_plus / s_tr)
            m = 100.0 * (self._s_minus / s_tr)
            di_sum = p + m
            dx = 100.0 * (abs(m - p) / di_sum) if di_sum != 0.0 else NAN
        else:
            p = m = 0.0
            dx = NAN
        adx_value = self.value[0]
        if i < 2 * n - 1:
            if dx == dx:
                self._sum_dx += dx
        elif i == 2 * n - 1:
            if dx == dx:
                self._sum_dx += dx
            adx_value = self._sum_dx / n
        elif dx == dx:
            adx_value = (adx_value * (n - 1) + dx) / n
        self.value = (adx_value, p, m)
        return self.value


class Bollinger:
    """Incremental ``bollinger``: ``update(close) -> (upper, middle, lower)``.

    O(1) amortised; bit-identical to ``bollinger`` (same running sums of x, x - c and
    (x - c)^2, re-summed exactly every n updates).
    """

    def __init__(self, n: int = 20, k: float = 2.0) -> None:
        self.n = _check_period(n)
        self.k = float(k)
        self._sum = _RunningWindowSum(self.n)
        self._window: deque[float] = deque()
        self._full_windows = 0
        self._shift = self._dev_sum = self._dev_sq_sum = NAN
        self.value: tuple[float, float, float] = (NAN, NAN, NAN)

    def update(self, close: float) -> tuple[float, float, float]:
        x = float(close)
        window = self._window
        if not window and math.isnan(x):
            return self.value
        total = self._sum.push(x)
        window.append(x)
        if len(window) < self.n:
            return self.value
        old = window.popleft() if len(window) > self.n else NAN
        if self._full_windows % self.n == 0:
            self._shift = shift = window[0]
            deviations = [value - shift for value in window]
            self._dev_sum = math.fsum(deviations)
            self._dev_sq_sum = math.fsum([d * d for d in deviations])
        else:
            new_dev = x - self._shift
            old_dev = old - self._shift
            self._dev_sum = self._dev_sum + (new_dev - old_dev)
            self._dev_sq_sum = self._dev_sq_sum + (new_dev * new_dev - old_dev * old_dev)
        self._full_windows += 1
        n = self.n
        mean_dev = self._dev_sum / n
        variance = max(self._dev_sq_sum / n - mean_dev * mean_dev, 0.0)
        middle = total / n
        width = math.sqrt(variance) * self.k
        self.value = (middle + width, middle, middle - width)
        return self.value


class _MonotonicWindow:
    """Max (or min) of the last n values in O(1) amortised (monotonic deque of (index, value))."""

    def __init__(self, n: int, *, largest: bool) -> None:
        self.n = n
        self.largest = largest
        self._queue: deque[tuple[int, float]] = deque()
        self._index = -1

    def push(self, value: float) -> float:
        self._index += 1
        queue = self._queue
        if self.largest:
            while queue and queue[-1][1] <= value:
                queue.pop()
        else:
            while queue and queue[-1][1] >= value:
                queue.pop()
        queue.append((self._index, value))
        if queue[0][0] <= self._index - self.n:
            queue.popleft()
        return queue[0][1] if self._index >= self.n - 1 else NAN


class Donchian:
    """Incremental ``donchian``: ``update(high, low) -> (upper, lower, middle)``; exact."""

    def __init__(self, n: int) -> None:
        self.n = _check_period(n)
        self._highs = _MonotonicWindow(self.n, largest=True)
        self._lows = _MonotonicWindow(self.n, largest=False)
        self.value: tuple[float, float, float] = (NAN, NAN, NAN)

    def update(self, high: float, low: float) -> tuple[float, float, float]:
        upper = self._highs.push(float(high))
        lower = self._lows.push(float(low))
        self.value = (upper, lower, (upper + lower) / 2.0)
        return self.value


class VWAPRolling:
    """Incremental ``vwap_rolling``: ``update(high, low, close, volume) -> vwap``.

    O(1) amortised; bit-identical to ``vwap_rolling`` (same running sums, re-summed exactly
    every n updates; a count of candles with volume makes a zero-volume window NaN).
    """

    def __init__(self, n: int) -> None:
        self.n = _check_period(n)
        self._weighted = _RunningWindowSum(self.n)
        self._traded = _RunningWindowSum(self.n)
        self._has_volume: deque[bool] = deque()
        self._with_volume = 0
        self.value = NAN

    def update(self, high: float, low: float, close: float, volume: float) -> float:
        v = float(volume)
        weighted = self._weighted.push((float(high) + float(low) + float(close)) / 3.0 * v)
        traded = self._traded.push(v)
        self._has_volume.append(v != 0.0)
        self._with_volume += v != 0.0
        if len(self._has_volume) > self.n:
            self._with_volume -= self._has_volume.popleft()
        if len(self._has_volume) < self.n or self._with_volume == 0:
            self.value = NAN
        else:
            self.value = weighted / traded
        return self.value


class VWAPSession:
    """Incremental ``vwap_session``: ``update(open_time_ms, high, low, close, volume)``.

    Sums restart at each session boundary; bit-identical to the vectorised function.
    """

    def __init__(self, session_ms: int = DAY_MS) -> None:
        self.session_ms = _check_period(session_ms)
        self._session: float | None = None
        self._weighted = self._traded = 0.0
        self.value = NAN

    def update(
        self, open_time_ms: float, high: float, low: float, close: float, volume: float
    ) -> float:
        session = float(open_time_ms) // self.session_ms
        if self._session is not None and session < self._session:
            raise ValueError("open_time_ms must be increasing for VWAPSession")
        v = float(volume)
        weighted = (float(high) + float(low) + float(close)) / 3.0 * v
        if session != self._session:
            self._session = session
            self._weighted, self._traded = weighted, v
        else:
            self._weighted += weighted
            self._traded += v
        self.value = self._weighted / self._traded if self._traded != 0.0 else NAN
        return self.value


class PercentileRank:
    """Percentile rank of each new value among the last n values (itself included), 0..100.

    rank = 100 * count(window values ≤ x) / n; NaN until n values were seen. O(log n) search
    plus an O(n) memmove in a sorted list (fast in C for the windows used here, n ≤ ~1000).
    """

    def __init__(self, n: int) -> None:
        self.n = _check_period(n)
        self._window: deque[float] = deque()
        self._sorted: list[float] = []
        self.value = NAN

    def update(self, x: float) -> float:
        x = float(x)
        if math.isnan(x):
            return NAN
        self._window.append(x)
        insort(self._sorted, x)
        if len(self._window) > self.n:
            old = self._window.popleft()
            del self._sorted[bisect_left(self._sorted, old)]
        if len(self._window) < self.n:
            return NAN
        self.value = 100.0 * bisect_right(self._sorted, x) / self.n
        return self.value
