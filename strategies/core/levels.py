"""Helpers the built-in strategies share: entry reference, ATR stop/target, volume ratio.

Entry-price convention (every engine: backtest, paper, live). A strategy decides when a
candle has CLOSED, at ``now_ms``; it cannot trade inside that candle any more. Its
``Signal.entry_price`` is the signal candle's close, a REFERENCE:

* ``EntryType.LIMIT`` — the engine rests a limit order at ``entry_price`` from the NEXT candle
  on; it fills only if a later candle trades through it (long: ``low <= entry_price``);
* ``EntryType.MARKET`` — the engine fills at the NEXT candle's open (plus slippage).

``stop_loss`` and ``take_profit`` are absolute prices computed from the reference; the engine
keeps them as they are (a market fill that opens beyond the stop is refused by the risk gate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from strategies.core import indicators
from strategies.core.base import EntryType, Signal, StrategyError
from strategies.core.params import ExitParams
from strategies.core.scoring import ScoreParts
from trading.core.candles import C, H, L, T, V, timeframe_ms
from trading.core.types import Side


def atr_bracket(
    side: Side, entry: float, atr_value: float, stop_atr_mult: float, target_atr_mult: float
) -> tuple[float, float]:
    """``(stop_loss, take_profit)``: ``entry ∓ stop_mult·ATR`` and ``entry ± target_mult·ATR``.

    Long at 100 with ATR 2, 1.5 / 2.0 ATRs → stop 97, target 104. Short: stop 103, target 96.
    """
    sign = side.sign
    return entry - sign * stop_atr_mult * atr_value, entry + sign * target_atr_mult * atr_value


def bracket_signal(
    side: Side,
    close: float,
    atr_value: float,
    params: ExitParams,
    timeframe: str,
    parts: ScoreParts,
    reasons: Sequence[str],
) -> Signal:
    """The signal of an ATR-bracket strategy: entry reference ``close``, stop and target from
    :func:`atr_bracket` with the params' multiples, score from ``parts``; the strategy's own
    ``reasons`` come first, then the bracket and the score breakdown."""
    stop, target = atr_bracket(side, close, atr_value, params.stop_atr_mult, params.target_atr_mult)
    return Signal(
        side=side,
        entry_type=entry_type(params.entry_type),
        entry_price=close,
        stop_loss=stop,
        take_profit=target,
        score=parts.score(),
        reasons=(
            *reasons,
            f"stop {price(stop)} / target {price(target)} = {params.stop_atr_mult:g} / "
            f"{params.target_atr_mult:g} ATR({params.atr_period}) {price(atr_value)}",
            parts.describe(),
        ),
        timeframe=timeframe,
    )


def last_atr(candles: np.ndarray, period: int) -> float:
    """Wilder ATR of the last candle (USDT), NaN while warming up."""
    if len(candles) <= period:
        return math.nan
    return float(indicators.atr(candles[:, H], candles[:, L], candles[:, C], period)[-1])


def volume_ratio(candles: np.ndarray, window: int) -> float:
    """Last candle's volume over the mean volume of the ``window`` candles BEFORE it.

    Volumes 10, 10, 10, 10 then 25 with window 4 → 25 / 10 = 2.5. NaN if the average is 0 or
    there are fewer than ``window + 1`` candles.
    """
    if len(candles) < window + 1:
        return math.nan
    average = float(np.mean(candles[-window - 1 : -1, V]))
    return float(candles[-1, V]) / average if average > 0 else math.nan


def just_closed(candles: np.ndarray, timeframe: str, now_ms: int) -> bool:
    """True when the last candle of ``timeframe`` closed exactly at ``now_ms``.

    A strategy decides once per closed candle of ITS timeframe: a 1h strategy asked at 12:05
    (the 5m close) sees the 11:00 candle again and must not repeat its 12:00 decision.
    """
    return len(candles) > 0 and int(candles[-1, T]) + timeframe_ms(timeframe) == now_ms


def decision_candles(
    market_candles: Mapping[str, np.ndarray], timeframe: str, kind: str, warmup: int, now_ms: int
) -> np.ndarray | None:
    """The ``timeframe`` candles when a decision is due now — at least ``warmup`` of them and
    the last one closed exactly at ``now_ms`` (:func:`just_closed`) — else ``None``."""
    candles = candles_of(market_candles, timeframe, kind)
    if len(candles) < warmup or not just_closed(candles, timeframe, now_ms):
        return None
    return candles


def entry_type(value: str) -> EntryType:
    return EntryType(value)


def candles_of(market_candles: Mapping[str, np.ndarray], timeframe: str, kind: str) -> np.ndarray:
    """The snapshot's candles for ``timeframe``; a missing timeframe is a wiring error."""
    try:
        return market_candles[timeframe]
    except KeyError:
        raise StrategyError(
            f"{kind} needs {timeframe} candles but the snapshot has none: build it with the "
            f"timeframes of warmup_candles()"
        ) from None


def price(value: float) -> str:
    """A price for a reason string: 104,230.5 → '104,230.50'."""
    return f"{value:,.2f}" if value >= 100 else f"{value:,.6g}"


# -- vectorised necessary conditions (the kernel's decision pre-filter) ------------------------

CANDIDATE_SLACK = 1e-9  # relative margin of a pre-filter threshold (see certainly_at_most)


def decision_rows(candles: np.ndarray, timeframe: str, decision_times_ms: np.ndarray) -> np.ndarray:
    """Index of the ``timeframe`` candle closing exactly at each decision time, −1 where none.

    A decision at ``now`` sees that candle as its last one (:func:`just_closed`); without it
    (a gap in the data) ``decide`` returns ``None``.
    """
    times = np.asarray(decision_times_ms, dtype=np.int64)
    if len(candles) == 0:
        return np.full(len(times), -1, dtype=np.int64)
    opens = times - timeframe_ms(timeframe)
    index = np.searchsorted(candles[:, T], opens, side="left")
    clipped = np.minimum(index, len(candles) - 1)
    found = (index < len(candles)) & (candles[clipped, T] == opens)
    return np.where(found, clipped, -1).astype(np.int64)


def volume_ratios(candles: np.ndarray, window: int) -> np.ndarray:
    """:func:`volume_ratio` at every row (NaN for the first ``window`` rows or a zero mean).

    Row k: ``volume[k] / mean(volume[k − window : k])``; the mean is a different float
    reduction from ``np.mean`` of one slice, so compare it with :func:`certainly_at_most`.
    """
    volume = candles[:, V]
    out = np.full(len(volume), np.nan)
    if len(volume) > window:
        means = sliding_window_view(volume[:-1], window).mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[window:] = np.where(means > 0, volume[window:] / means, np.nan)
    return out


def previous_extremes(candles: np.ndarray, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """Highest high and lowest low of the ``lookback`` candles BEFORE each row (NaN before)."""
    highs = np.full(len(candles), np.nan)
    lows = np.full(len(candles), np.nan)
    if len(candles) > lookback:
        highs[lookback:] = sliding_window_view(candles[:-1, H], lookback).max(axis=1)
        lows[lookback:] = sliding_window_view(candles[:-1, L], lookback).min(axis=1)
    return highs, lows


def certainly_at_most(values: np.ndarray, threshold: float) -> np.ndarray:
    """True where ``value ≤ threshold`` holds with a relative margin of ``CANDIDATE_SLACK``.

    A pre-filter may only rule a decision out when the strategy's own (scalar) computation
    would also fail the test: the two sums can differ in the last bits, so the margin keeps
    the filter a NECESSARY condition. NaN is never "certainly" anything (kept).
    """
    return np.asarray(values) <= threshold - abs(threshold) * CANDIDATE_SLACK


def rsi_moves(candles: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """The per-row parts of :func:`rsi_bounds` (they depend on the candles and n only):
    ``(suffix_gain, suffix_loss, top_gain, top_loss)``, empty when there are ≤ 8n candles."""
    m = 8 * n
    close = candles[:, C]
    if len(close) <= m:
        return (np.empty(0),) * 4
    diffs = np.diff(close)  # diffs[i] = close[i + 1] − close[i], the move INTO row i + 1
    gains = np.where(diffs > 0, diffs, 0.0)
    losses = np.where(diffs < 0, -diffs, 0.0)
    alpha = 1.0 / n
    weights = alpha * (1.0 - alpha) ** np.arange(m)[::-1]  # oldest first
    suffix_gain = sliding_window_view(gains, m) @ weights  # index s covers diffs s..s+m−1
    suffix_loss = sliding_window_view(losses, m) @ weights
    return suffix_gain, suffix_loss, np.maximum.accumulate(gains), np.maximum.accumulate(losses)


def rsi_bounds(
    candles: np.ndarray,
    rows: np.ndarray,
    counts: np.ndarray,
    n: int,
    moves: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``(low, high)`` of ``indicators.rsi(close, n)[-1]`` over ANY snapshot whose last
    candle is row ``rows[i]`` and which holds ``counts[i]`` candles; ``(0, 100)`` where the
    snapshot is too short to bound. ``moves`` = :func:`rsi_moves` of the candles (computed
    when not given).

    With α = 1/n, Wilder's average after the last m = 8n gains g_k, g_k−1, ... is
    ``G = (1−α)^m·G₀ + Σ_{j<m} α(1−α)^j·g_{k−j}`` where the earlier average G₀ is a convex
    combination of the snapshot's gains, so 0 ≤ G₀ ≤ the largest gain up to row k; the same
    for losses. RSI = 100·G/(G+L) rises with G and falls with L:
    low = 100·A/(A + B + εL), high = 100·(A + εG)/(A + εG + B), A, B the suffix sums and
    ε = (1−α)^m × that largest move. It holds when the recursion has run m steps past its
    seed (counts − 1 ≥ n + m); the float recursion agrees with it to ~1e-11 RSI points.
    """
    low = np.zeros(len(rows))
    high = np.full(len(rows), 100.0)
    m = 8 * n
    if len(candles) <= m:
        return low, high
    suffix_gain, suffix_loss, top_gain, top_loss = moves or rsi_moves(candles, n)
    decay = (1.0 - 1.0 / n) ** m
    usable = (rows >= m) & (counts - 1 >= n + m)
    k = np.where(usable, rows, m)
    a, b = suffix_gain[k - m], suffix_loss[k - m]
    eps_gain, eps_loss = decay * top_gain[k - 1], decay * top_loss[k - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = 100.0 * a / (a + b + eps_loss)
        hi = 100.0 * (a + eps_gain) / (a + eps_gain + b)
    low = np.where(usable & np.isfinite(lo), lo, 0.0)
    high = np.where(usable & np.isfinite(hi), hi, 100.0)
    return low, high


def last_closed_rows(
    candles: np.ndarray, timeframe: str, decision_times_ms: np.ndarray
) -> np.ndarray:
    """Index of the last ``timeframe`` candle CLOSED at each decision time (−1 where none):
    the last row of that timeframe in the snapshot (``open + timeframe_ms <= now``)."""
    times = np.asarray(decision_times_ms, dtype=np.int64)
    if len(candles) == 0:
        return np.full(len(times), -1, dtype=np.int64)
    closed = np.searchsorted(candles[:, T], times - timeframe_ms(timeframe), side="right")
    return closed.astype(np.int64) - 1


def session_vwaps(candles: np.ndarray) -> np.ndarray:
    """``indicators.vwap_session`` over the whole series (UTC sessions)."""
    return indicators.vwap_session(
        candles[:, T], candles[:, H], candles[:, L], candles[:, C], candles[:, V]
    )


def session_vwap_at(
    candles: np.ndarray,
    rows: np.ndarray,
    window_starts_ms: np.ndarray,
    every: np.ndarray | None = None,
) -> np.ndarray:
    """``indicators.vwap_session`` of the snapshot window ending at each row, NaN where unknown;
    ``every`` = :func:`session_vwaps` of the candles (computed when not given).

    The session VWAP of row k is a left-to-right cumulative sum from the first candle of k's
    session: when the snapshot window starts at or before that session's open
    (``window_starts_ms``, ms), the window holds the same candles in the same order and the
    value is BIT-IDENTICAL to the one computed over the whole series. A window starting inside
    the session restarts the sums: NaN there (unknown, never compared).
    """
    if len(candles) == 0:
        return np.full(len(rows), np.nan)
    vwaps = session_vwaps(candles) if every is None else every
    at = np.maximum(rows, 0)
    session_open = (candles[at, T] // indicators.DAY_MS) * indicators.DAY_MS
    covered = (rows >= 0) & (window_starts_ms <= session_open)
    return np.where(covered, vwaps[at], np.nan)


def ema_spans(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-row parts of :func:`ema_bounds`: ``(ema(values, n), running max, running min)``."""
    if len(values) == 0:
        return (np.empty(0),) * 3
    return (
        indicators.ema(values, n),
        np.maximum.accumulate(values),
        np.minimum.accumulate(values),
    )


def ema_bounds(
    values: np.ndarray,
    rows: np.ndarray,
    counts: np.ndarray,
    n: int,
    spans: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``(low, high)`` of ``indicators.ema(window, n)[-1]`` for the snapshot window that
    ends at row ``rows[i]`` of ``values`` and holds ``counts[i]`` of them; NaN where it holds
    fewer than n (the EMA is NaN there too). ``spans`` = :func:`ema_spans` (computed when not
    given).

    The EMA is linear: with k = 2/(n+1), the window's EMA and the EMA F of the whole series
    both follow e_i = k·x_i + (1−k)·e_{i−1} for the m = counts − n steps after the window's
    seed, so at the end they differ by (1−k)^m × their difference at the seed. There both are
    averages of values up to the row, hence |window EMA − F| ≤ (1−k)^m × (running max −
    running min). Example: n = 50, a 500-candle window → m = 450, (49/51)^450 ≈ 1.5e-8 of the
    range. The float recursions agree with this to ~(n + 1) ulps; callers add
    ``CANDIDATE_SLACK``.
    """
    nan = np.full(len(rows), np.nan)
    if len(values) == 0:
        return nan, nan
    every, running_high, running_low = spans or ema_spans(values, n)
    usable = (rows >= 0) & (counts >= n)
    at = np.where(usable, rows, 0)
    steps = np.where(usable, counts - n, 0)
    spread = (1.0 - 2.0 / (n + 1)) ** steps * (running_high[at] - running_low[at])
    return (
        np.where(usable, every[at] - spread, np.nan),
        np.where(usable, every[at] + spread, np.nan),
    )
