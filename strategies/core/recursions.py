"""The sequential float recursions behind the Wilder and EMA indicators, compiled when possible.

An indicator of a snapshot window (RSI, ATR, ADX, EMA) is a recursion over the window's values:
each step needs the previous step's rounded result, so numpy cannot vectorise it, and in CPython
it costs ~0.1 µs per step (~50 µs per 500-candle window, ~200 µs for the four of ADX). A
backtest decision reads several of them, so they were most of a run's time.

Each recursion is written ONCE below, as a plain loop over indexable values that fills its
outputs (:class:`CompiledLoop`). When numba is installed (a project dependency) it compiles that
same function to machine code, cached on disk: ~1 µs per 500 steps. numba is used without
``fastmath``, so every ``+ - * /`` stays the IEEE-754 double operation CPython performs, in the
same order, with no fused multiply-add and no reassociation: the compiled and the interpreted
loop give the same bits (tests/strategies/core/test_recursions.py runs both on real candles and
on random series), and a process may switch from one to the other at any call.

When: importing numba and loading the compiled code costs ~1 s per process, more than a
one-off backtest of a few weeks spends in these loops. So a process runs them interpreted
until it has run ``STEPS_BEFORE_COMPILING`` steps, then compiled; long jobs (the radar, a
sweep job, the benchmarks) switch at start with :func:`warm_up`. Without numba, or
with the environment variable ``SCALPRADAR_JIT=0``, they always run in CPython.

Each loop takes 1-D float64 arrays without NaN (the callers strip leading NaN first) and
returns new float64 arrays as long; the formulas and units are those of the indicator that
calls it (see ``indicators``).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, MutableSequence, Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Loop = Callable[..., None]
log = logging.getLogger(__name__)


def _jit_wanted() -> bool:
    return os.environ.get("SCALPRADAR_JIT", "1").strip().lower() not in {"0", "false", "no", "off"}


@functools.cache
def _compiler() -> Callable[[Loop], Loop] | None:
    """A function compiling a loop with numba (no fastmath), or None when numba is absent or
    disabled. numba is imported here, at the first loop run, not with this module (importing
    it takes ~0.5 s)."""
    if not _jit_wanted():
        return None
    try:
        import numba  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # an interpreter numba does not support yet: interpreted loops
        return None

    def compile_loop(loop: Loop) -> Loop:
        try:
            compiled: Loop = numba.njit(cache=True)(loop)
        except RuntimeError as exc:  # nowhere to write the cache (read-only install, no home)
            _warn_uncached(str(exc))
            compiled = numba.njit(cache=False)(loop)
        return compiled

    return compile_loop


@functools.cache
def _warn_uncached(reason: str) -> None:
    """Once per process and reason."""
    log.warning(
        "numba cannot cache the compiled indicator loops (%s): they are compiled again in each "
        "process (~1 s); set NUMBA_CACHE_DIR to a writable directory to keep them",
        reason.split(":", 1)[-1].strip(),  # "no locator available for file ...", per file
    )


# --- the loops (one definition each; compiled or interpreted)
#
# Each takes its input arrays (no NaN: the caller strips leading NaN), the period n and its
# output arrays of the same length, filled with NaN by the caller; it fills what is computable.


def _ema_loop(values: Sequence[float], n: int, out: MutableSequence[float]) -> None:
    k = 2.0 / (n + 1)
    total = 0.0
    for i in range(min(n, len(values))):
        total += values[i]
    if len(values) < n:
        return
    previous = total / n
    out[n - 1] = previous
    for i in range(n, len(values)):
        previous = (values[i] - previous) * k + previous
        out[i] = previous


def _rsi_loop(close: Sequence[float], n: int, out: MutableSequence[float]) -> None:
    gain_total = 0.0
    loss_total = 0.0
    avg_gain = 0.0
    avg_loss = 0.0
    keep = n - 1
    for i in range(1, len(close)):
        d = close[i] - close[i - 1]
        gain = d if d > 0 else 0.0
        loss = -d if d < 0 else 0.0
        if i < n:
            gain_total += gain
            loss_total += loss
            continue
        if i == n:
            avg_gain = (gain_total + gain) / n
            avg_loss = (loss_total + loss) / n
        else:
            avg_gain = (avg_gain * keep + gain) / n
            avg_loss = (avg_loss * keep + loss) / n
        total = avg_gain + avg_loss
        out[i] = 100.0 * (avg_gain / total) if total != 0.0 else 50.0


def _true_range_loop(
    high: Sequence[float], low: Sequence[float], close: Sequence[float], out: MutableSequence[float]
) -> None:
    for i in range(1, len(close)):
        greatest = high[i] - low[i]
        to_high = abs(high[i] - close[i - 1])
        if to_high > greatest:
            greatest = to_high
        to_low = abs(low[i] - close[i - 1])
        if to_low > greatest:
            greatest = to_low
        out[i] = greatest


def _session_vwap_loop(
    session: Sequence[float],
    high: Sequence[float],
    low: Sequence[float],
    close: Sequence[float],
    volume: Sequence[float],
    out: MutableSequence[float],
) -> None:
    traded = 0.0
    weighted = 0.0
    for i in range(len(session)):
        if i == 0 or session[i] != session[i - 1]:  # a new session: the sums restart
            traded = 0.0
            weighted = 0.0
        traded += volume[i]
        weighted += (high[i] + low[i] + close[i]) / 3.0 * volume[i]
        if traded != 0.0:
            out[i] = weighted / traded


def _atr_loop(true_range: Sequence[float], n: int, out: MutableSequence[float]) -> None:
    total = 0.0
    average = 0.0
    keep = n - 1
    for i in range(1, len(true_range)):  # TR[0] is undefined (no previous close)
        if i < n:
            total += true_range[i]
            continue
        # the first average is the mean of TR[1..n]; then Wilder's smoothing
        average = (total + true_range[i]) / n if i == n else (average * keep + true_range[i]) / n
        out[i] = average


def _adx_loop(
    high: Sequence[float],
    low: Sequence[float],
    true_range: Sequence[float],
    n: int,
    adx_out: MutableSequence[float],
    plus_di_out: MutableSequence[float],
    minus_di_out: MutableSequence[float],
    tr_sum_out: MutableSequence[float],
    plus_sum_out: MutableSequence[float],
    minus_sum_out: MutableSequence[float],
) -> None:
    s_tr = 0.0
    s_plus = 0.0
    s_minus = 0.0
    dx_total = 0.0
    adx = 0.0
    keep = n - 1
    for i in range(1, len(true_range)):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        plus_dm = up if up > 0 and up > down else 0.0
        minus_dm = down if down > 0 and down > up else 0.0
        if i < n:  # bars 1 .. n - 1: plain sums
            s_tr += true_range[i]
            s_plus += plus_dm
            s_minus += minus_dm
            continue
        s_tr = s_tr - s_tr / n + true_range[i]
        s_plus = s_plus - s_plus / n + plus_dm
        s_minus = s_minus - s_minus / n + minus_dm
        plus_di = 100.0 * (s_plus / s_tr) if s_tr != 0.0 else 0.0
        minus_di = 100.0 * (s_minus / s_tr) if s_tr != 0.0 else 0.0
        tr_sum_out[i] = s_tr
        plus_sum_out[i] = s_plus
        minus_sum_out[i] = s_minus
        plus_di_out[i] = plus_di
        minus_di_out[i] = minus_di
        di_sum = plus_di + minus_di
        defined = di_sum != 0.0  # else DX is undefined: skipped, the ADX holds
        dx = 100.0 * (abs(minus_di - plus_di) / di_sum) if defined else 0.0
        if i < 2 * n - 1:
            if defined:
                dx_total += dx
            continue
        if i == 2 * n - 1:
            if defined:
                dx_total += dx
            adx = dx_total / n
        elif defined:
            adx = (adx * keep + dx) / n
        adx_out[i] = adx


_LOOPS: list[CompiledLoop] = []  # every loop made, for warm_up
_SAMPLE: Final = np.linspace(1.0, 2.0, 8)
STEPS_BEFORE_COMPILING: Final = 2_000_000
"""Loop steps a process runs interpreted before it compiles (~0.3 s of CPython loops, a third
of what importing numba and loading the compiled code costs): a one-off backtest of a few
weeks stays interpreted and starts at once; a sweep, a long backtest or a worker compiles."""


class _Switch:
    """Whether this process runs the loops compiled: from :func:`warm_up`, or once
    ``STEPS_BEFORE_COMPILING`` interpreted steps have run."""

    compiling = False
    interpreted_steps = 0


class CompiledLoop:
    """A loop run compiled (numba, on arrays) or interpreted (CPython, on lists); both give the
    same bits, so a process may switch at any call (:class:`_Switch`).

    Called with its input arrays (the same length, no NaN) then its scalar parameters (a
    period, thresholds); returns its ``outputs`` arrays, as long as the inputs, NaN where the
    loop wrote nothing. The loop receives ``(*inputs, *parameters, *outputs)``.
    """

    def __init__(self, loop: Loop, outputs: int, sample: tuple[FloatArray | float, ...]) -> None:
        """``sample``: small arguments of the right types, for :func:`warm_up`."""
        self.loop = loop
        self.outputs = outputs
        self.sample = sample
        self._compiled: Loop | None = None
        _LOOPS.append(self)

    def __call__(self, *args: FloatArray | float) -> tuple[FloatArray, ...]:
        if self._compiled is None and not _Switch.compiling:
            _Switch.interpreted_steps += len(args[0])  # type: ignore[arg-type]
            if _Switch.interpreted_steps < STEPS_BEFORE_COMPILING or _compiler() is None:
                return self.interpreted(*args)
            _Switch.compiling = True  # only ever set where numba is available
        return self.compiled(*args)

    def compiled(self, *args: FloatArray | float) -> tuple[FloatArray, ...]:
        """The loop run as numba machine code (compiled, or loaded from the disk cache, at the
        first call). Raises ``RuntimeError`` when numba is absent or ``SCALPRADAR_JIT=0``."""
        if self._compiled is None:
            compile_loop = _compiler()
            if compile_loop is None:
                raise RuntimeError("numba is not installed or SCALPRADAR_JIT=0")
            self._compiled = compile_loop(self.loop)
        outs = np.full((self.outputs, len(args[0])), np.nan)  # type: ignore[arg-type]
        self._compiled(*(_contiguous(a) for a in args), *outs)
        return tuple(outs)

    def interpreted(self, *args: FloatArray | float) -> tuple[FloatArray, ...]:
        """The loop run by CPython (the reference the compiled loop is checked against)."""
        length = len(args[0])  # type: ignore[arg-type]
        outs: list[list[Any]] = [[math.nan] * length for _ in range(self.outputs)]
        plain = [a.tolist() if isinstance(a, np.ndarray) else a for a in args]
        self.loop(*plain, *outs)
        return tuple(np.array(out, dtype=np.float64) for out in outs)


def _contiguous(value: FloatArray | float) -> FloatArray | float:
    """An input array as numba compiles the loop for (C-contiguous float64: one compiled
    version); scalars as they are (an int period stays an int)."""
    if isinstance(value, np.ndarray):
        if value.dtype == np.float64 and value.flags.c_contiguous:
            return value
        return np.ascontiguousarray(value, dtype=np.float64)
    return value


true_range: Final = CompiledLoop(_true_range_loop, outputs=1, sample=(_SAMPLE, _SAMPLE, _SAMPLE))
"""``(tr,)`` of ``high, low, close`` (price units): TR[i] = max(high[i] - low[i],
|high[i] - close[i-1]|, |low[i] - close[i-1]|) for i ≥ 1; TR[0] is NaN (no previous close), as
in TA-Lib's TRANGE. The input of :data:`atr` and :data:`adx`."""

session_vwap: Final = CompiledLoop(_session_vwap_loop, outputs=1, sample=(_SAMPLE,) * 5)
"""``(vwap,)`` of ``session, high, low, close, volume``: from each session's first candle
(where ``session`` changes), cumulative sums left to right of typical price × volume (typical =
(high + low + close) / 3) and of volume; VWAP = their ratio, NaN while the session has traded
no volume."""

ema: Final = CompiledLoop(_ema_loop, outputs=1, sample=(_SAMPLE, 2))
"""``(ema,)`` of ``values``: k = 2 / (n + 1), e[n - 1] = mean(values[:n]) (summed left to
right), then e[i] = (values[i] - e[i - 1]) * k + e[i - 1]; NaN before n - 1."""

rsi: Final = CompiledLoop(_rsi_loop, outputs=1, sample=(_SAMPLE, 2))
"""``(rsi,)`` of ``close``: d[i] = close[i] - close[i - 1]; average gain and loss = plain means
over d[1..n], then avg = (avg * (n - 1) + gain or loss) / n; RSI = 100 * avg_gain /
(avg_gain + avg_loss), 50 when both are 0; NaN before n."""

atr: Final = CompiledLoop(_atr_loop, outputs=1, sample=(_SAMPLE, 2))
"""``(atr,)`` of the true ranges (:func:`true_range`, price units): ATR[n] = mean(TR[1..n]),
then ATR[i] = (ATR[i - 1] * (n - 1) + TR[i]) / n; NaN before n."""

adx: Final = CompiledLoop(_adx_loop, outputs=6, sample=(_SAMPLE, _SAMPLE, _SAMPLE, 2))
"""``(adx, +DI, -DI, S(TR), S(+DM), S(-DM))`` of ``high, low, true_range`` (:func:`true_range`):
+DM = up if up > 0 and up > down else 0 with up = high[i] - high[i - 1], down = low[i - 1] -
low[i] (-DM likewise); Wilder sums S = S - S / n + today's value from
bar n (a plain sum over bars 1..n-1 before), +DI = 100 * S(+DM) / S(TR) (0 when S(TR) = 0),
DX = 100 * |+DI - -DI| / (+DI + -DI) (undefined when that sum is 0: skipped, the ADX holds),
ADX[2n - 1] = sum of the defined DX of bars n..2n-1 / n, then ADX = (ADX * (n - 1) + DX) / n.
NaN before 2n - 1 (ADX) and n (the others)."""


def warm_up() -> bool:
    """Switch this process to the compiled loops now and compile every loop made so far (or
    load it from numba's disk cache: ~1 s the first time in a process, mostly importing numba),
    rather than after ``STEPS_BEFORE_COMPILING`` interpreted steps or in the middle of a live
    candle. Long jobs call it (the radar before its first candle, each sweep job, the
    benchmarks). Returns :func:`is_compiled`; without numba it does nothing."""
    if _compiler() is None:
        return False
    _Switch.compiling = True
    for loop in _LOOPS:
        loop.compiled(*loop.sample)
    return True


def is_compiled() -> bool:
    """True when this process runs the loops as numba machine code."""
    return _Switch.compiling
