"""The sequential float recursions behind the Wilder and EMA indicators, compiled when possible.

An indicator of a snapshot window (RSI, ATR, ADX, EMA) is a recursion over the window's values:
each step needs the previous step's rounded result, so numpy cannot vectorise it, and in CPython
it costs ~0.1 µs per step (~50 µs per 500-candle window, ~200 µs for the four of ADX). A
backtest decision reads several of them, so they were most of a run's time.

Each recursion is written ONCE below, as a plain loop over indexable values that fills ``out``.
When numba is installed (a project dependency) it compiles that same function to machine code,
lazily at the first call and cached on disk: ~1 µs per 500 steps. numba is used without
``fastmath``, so every ``+ - * /`` stays the IEEE-754 double operation CPython performs, in the
same order, with no fused multiply-add and no reassociation: the compiled and the interpreted
loop give the same bits (tests/strategies/test_recursions.py runs both on real candles and on
random series). Without numba, or with the environment variable ``SCALPRADAR_JIT=0``, the same
loops run in CPython over lists.

Every function takes a 1-D float64 array without NaN (the callers strip leading NaN first) and
returns a new float64 array; the formulas and units are those of the indicator that calls it
(see ``indicators``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, MutableSequence, Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Loop = Callable[..., None]


def _jit_wanted() -> bool:
    return os.environ.get("SCALPRADAR_JIT", "1").strip().lower() not in {"0", "false", "no", "off"}


@functools.cache
def _compiler() -> Callable[[Loop], Loop] | None:
    """numba's ``njit(cache=True)`` (no fastmath), or None when numba is absent or disabled.

    Imported at the first recursion, not with this module (importing numba takes ~0.5 s)."""
    if not _jit_wanted():
        return None
    try:
        import numba  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # an interpreter numba does not support yet: interpreted loops
        return None
    compile_loop: Callable[[Loop], Loop] = numba.njit(cache=True)
    return compile_loop


# --- the loops (one definition each; compiled or interpreted)


def _wilder_average_loop(values: Sequence[float], n: int, out: MutableSequence[float]) -> None:
    total = 0.0
    for i in range(n):
        total += values[i]
    average = total / n
    out[0] = average
    keep = n - 1
    for i in range(n, len(values)):
        average = (average * keep + values[i]) / n
        out[i - n + 1] = average


def _wilder_sum_loop(values: Sequence[float], n: int, out: MutableSequence[float]) -> None:
    total = 0.0
    for i in range(n - 1):
        total += values[i]
    for i in range(n - 1, len(values)):
        total = total - total / n + values[i]
        out[i - n + 1] = total


def _adx_from_dx_loop(dx: Sequence[float], n: int, out: MutableSequence[float]) -> None:
    total = 0.0
    for i in range(n):
        value = dx[i]
        if value == value:  # NaN DX (+DI + -DI = 0) is skipped
            total += value
    average = total / n
    out[0] = average
    keep = n - 1
    for i in range(n, len(dx)):
        value = dx[i]
        if value == value:
            average = (average * keep + value) / n
        out[i - n + 1] = average


def _ema_loop(values: Sequence[float], n: int, out: MutableSequence[float]) -> None:
    k = 2.0 / (n + 1)
    total = 0.0
    for i in range(n):
        total += values[i]
    previous = total / n
    out[0] = previous
    for i in range(n, len(values)):
        previous = (values[i] - previous) * k + previous
        out[i - n + 1] = previous


class _Recursion:
    """One loop, run compiled (on arrays) or interpreted (on lists); both return
    ``len(values) - n + 1`` results (none when there are fewer than n values)."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self._compiled: Loop | None = None
        self._resolved = False

    def __call__(self, values: FloatArray, n: int) -> FloatArray:
        if not self._resolved:
            compile_loop = _compiler()
            self._compiled = compile_loop(self.loop) if compile_loop is not None else None
            self._resolved = True
        if self._compiled is None:
            return self.interpreted(values, n)
        out = np.empty(max(0, len(values) - n + 1))
        if len(out):
            self._compiled(np.ascontiguousarray(values, dtype=np.float64), int(n), out)
        return out

    def interpreted(self, values: FloatArray, n: int) -> FloatArray:
        """The loop run by CPython (the reference the compiled loop is checked against)."""
        results: list[Any] = [0.0] * max(0, len(values) - n + 1)
        if results:
            self.loop(np.asarray(values, dtype=np.float64).tolist(), int(n), results)
        return np.array(results, dtype=np.float64)


wilder_average: Final = _Recursion(_wilder_average_loop)
"""Wilder's smoothing: a = mean(values[:n]) (summed left to right), then a = (a * (n - 1) +
value) / n for each later value; ``len(values) - n + 1`` averages."""

wilder_sum: Final = _Recursion(_wilder_sum_loop)
"""Wilder's running sum (TA-Lib's TR / DM smoothing for ADX): s = sum(values[:n - 1]), then
s = s - s / n + value for each later value; ``len(values) - n + 1`` sums."""

adx_from_dx: Final = _Recursion(_adx_from_dx_loop)
"""ADX from DX values (NaN DX skipped: the ADX holds): first = sum(DX[:n]) / n, then
ADX = (ADX * (n - 1) + DX) / n; ``len(dx) - n + 1`` values."""

ema_seeded: Final = _Recursion(_ema_loop)
"""EMA with k = 2 / (n + 1) seeded by the mean of the first n values, then
e = (value - e) * k + e; ``len(values) - n + 1`` values."""


def is_compiled() -> bool:
    """True when the recursions run as numba machine code (for the benchmarks' report)."""
    return _compiler() is not None
