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
from strategies.core.base import EntryType, MarketSnapshot, Signal, StrategyError
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
    return float(indicators.atr_last(candles[:, H], candles[:, L], candles[:, C], period))


def last_session_vwap(candles: np.ndarray) -> float:
    """``indicators.vwap_session`` of the last candle (UTC sessions), bit for bit, from the
    candles of its session only: the session sums start at its first candle either way."""
    session_open = int(candles[-1, T]) // indicators.DAY_MS * indicators.DAY_MS
    first = int(np.searchsorted(candles[:, T], session_open, side="left"))
    rows = candles[first:]
    return float(
        indicators.vwap_session(rows[:, T], rows[:, H], rows[:, L], rows[:, C], rows[:, V])[-1]
    )


def adx_of(
    market: MarketSnapshot, candles: np.ndarray, timeframe: str, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``indicators.adx`` of the snapshot's ``timeframe`` candles (``candles``), read-only and
    cached per snapshot: the strategy's ADX and the kernel's regime label share it."""

    def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        arrays = indicators.adx(candles[:, H], candles[:, L], candles[:, C], n)
        for array in arrays:
            array.flags.writeable = False
        return arrays

    return market.derived(("adx", timeframe, n), compute)


def volume_ratio(candles: np.ndarray, window: int) -> float:
    """Last candle's volume over the mean volume of the ``window`` candles BEFORE it.

    Volumes 10, 10, 10, 10 then 25 with window 4 → 25 / 10 = 2.5. NaN if the average is 0 or
    there are fewer than ``window + 1`` candles.
    """
    if len(candles) < window + 1:
        return math.nan
    # sum / count is what np.mean computes (the same pairwise sum), minus its call overhead.
    average = float(candles[-window - 1 : -1, V].sum()) / window
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
    ``CANDIDATE_SLACK``. A window that starts at the series' first row is its prefix: the same
    float operations, the same EMA bit for bit (spread 0).
    """
    nan = np.full(len(rows), np.nan)
    if len(values) == 0:
        return nan, nan
    every, running_high, running_low = spans or ema_spans(values, n)
    usable = (rows >= 0) & (counts >= n)
    at = np.where(usable, rows, 0)
    steps = np.where(usable, counts - n, 0)
    spread = (1.0 - 2.0 / (n + 1)) ** steps * (running_high[at] - running_low[at])
    spread[rows - counts + 1 == 0] = 0.0  # the window starts at the series' first row
    return (
        np.where(usable, every[at] - spread, np.nan),
        np.where(usable, every[at] + spread, np.nan),
    )


ADX_BOUND_SLACK = 1e-6  # ADX points: far above the ~1e-12 float error of the two recursions


def adx_spans(candles: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-row parts of :func:`adx_bounds`: ``(ADX(n) of the whole series, Σ_{j≤k} Q_j)``
    with ``Q_k = max((M⁺_k + M⁻_k) / (S⁺_k + S⁻_k), M_TR,k / S_TR,k)``: the Wilder sums S of
    the whole series at row k over the largest move up to k (M⁺ ≥ +DM: |Δhigh|, M⁻ ≥ −DM:
    |Δlow|, M_TR: true range). Q is 0 before the sums start (row n) and +inf where a sum is 0
    (no bound then)."""
    length = len(candles)
    if length < 2:
        return np.full(length, np.nan), np.zeros(length)
    h, lo, c = candles[:, H], candles[:, L], candles[:, C]
    every, _, _, s_tr, s_plus, s_minus = indicators.adx_with_sums(h, lo, c, n)
    top_tr = np.zeros(length)
    top_tr[1:] = np.maximum.accumulate(
        np.maximum(h[1:] - lo[1:], np.maximum(np.abs(h[1:] - c[:-1]), np.abs(lo[1:] - c[:-1])))
    )
    top_moves = np.zeros(length)
    top_moves[1:] = np.maximum.accumulate(np.abs(np.diff(h))) + np.maximum.accumulate(
        np.abs(np.diff(lo))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.maximum(top_moves / (s_plus + s_minus), top_tr / s_tr)
    q[np.isnan(q)] = np.inf
    q[: min(n, length)] = 0.0
    return every, np.cumsum(q)


def adx_bounds(
    candles: np.ndarray,
    rows: np.ndarray,
    counts: np.ndarray,
    n: int,
    spans: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``(low, high)`` of ``indicators.adx(window, n)[0][-1]`` for the snapshot window
    that ends at row ``rows[i]`` of ``candles`` and holds ``counts[i]`` of them; NaN where it
    holds fewer than 2n (the window's ADX is NaN there too) or no bound is known. ``spans`` =
    :func:`adx_spans` (computed when not given); ``ADX_BOUND_SLACK`` is included.

    The window starts at row w = rows − counts + 1. The Wilder sums of TR, +DM and −DM of the
    window and of the whole series follow the same recursion S_k = ρ·S_{k−1} + x_k (ρ = 1 − 1/n)
    from row w + n on; at row w + n − 1 both are sums of at most n moves ≥ 0, so they differ by
    at most n × the largest move M there, and by ρ^(k−w−n+1) × that at row k. DX = 100·|S⁺ −
    S⁻| / (S⁺ + S⁻) moves by at most 200 × (|ΔS⁺| + |ΔS⁻|) / (S⁺ + S⁻) (and by at most 100
    when either DX is undefined, only possible when that ratio or |ΔS_TR| / S_TR reaches 1).
    ADX_k = ρ·ADX_{k−1} + D_k / n (D = DX, or ADX_{k−1} on an undefined DX) from its seed at row
    w + 2n − 1, where the two ADX, both in [0, 100], differ by at most 100. Summed:
    |window ADX − whole-series ADX| ≤ 100·ρ^(counts − 2n) + 200·ρ^(counts − n) × Σ_{k≤row} Q_k
    (:func:`adx_spans`). Example: n = 14, a 500-candle window → ρ^486 ≈ 2e-16: the bound is
    ~1e-10 ADX points on the bundled data. The float recursions agree with it to ~1e-12. A
    window that starts at the series' first row is its prefix: the same ADX bit for bit.
    """
    nan = np.full(len(rows), np.nan)
    if len(candles) == 0:
        return nan, nan
    every, q_sums = spans or adx_spans(candles, n)
    usable = (rows >= 0) & (counts >= 2 * n)
    at = np.where(usable, rows, 0)
    rho = 1.0 - 1.0 / n
    steps = np.where(usable, counts, 2 * n)
    with np.errstate(invalid="ignore", over="ignore"):
        bound = 100.0 * rho ** (steps - 2 * n) + 200.0 * rho ** (steps - n) * q_sums[at]
        bound = np.where(rows - counts + 1 == 0, 0.0, bound) + ADX_BOUND_SLACK
        known = usable & np.isfinite(bound) & np.isfinite(every[at])
        return (
            np.where(known, every[at] - bound, np.nan),
            np.where(known, every[at] + bound, np.nan),
        )
