"""VWAP + RSI mean reversion (DESIGN §5.1), on the entry timeframe (default 5m).

On the candle that just closed:

* long  when close ≤ VWAP and RSI < ``rsi_long_below``  (default 25);
* short when close ≥ VWAP and RSI > ``rsi_short_above`` (default 75);
* and volume > ``volume_spike_mult`` × the average of the ``volume_window`` candles before it;
* and the market ranges: ADX(``adx_period``) < ``adx_range_max``;
* and no long while the trend timeframe (15m) closes below its EMA(``trend_ema_period``), no
  short while it closes above it.

Entry: ``entry_type`` (default LIMIT) at the signal candle's close, stop/target at
``stop_atr_mult`` / ``target_atr_mult`` ATRs of the entry timeframe. An open position is
left (``ExitReason.REGIME_CHANGE``) as soon as ADX reaches ``adx_range_max``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from strategies.core import indicators
from strategies.core.base import (
    ExitDecision,
    Inputs,
    MarketSnapshot,
    PositionView,
    Signal,
    Strategy,
)
from strategies.core.levels import (
    CANDIDATE_SLACK,
    bracket_signal,
    candles_of,
    certainly_at_most,
    decision_rows,
    just_closed,
    last_closed_rows,
    last_session_vwap,
    price,
    session_vwap_at,
    session_vwaps,
    volume_ratio,
    volume_ratios,
)
from strategies.core.params import VwapRsiParams
from strategies.core.scoring import ScoreParts, ramp
from strategies.core.series import Series
from strategies.core.snapshot import History
from trading.core.candles import C, H, L, V
from trading.core.types import ExitReason, Side


class VwapRsiSeries(NamedTuple):
    """The series :class:`VwapRsi` reads (its parameters' periods and timeframes)."""

    rsi: Series
    adx: Series
    atr: Series
    trend_ema: Series


@dataclass(frozen=True, slots=True)
class VwapRsiReading:
    """The indicator values on the last closed candle of the entry timeframe."""

    close: float
    vwap: float
    rsi: float
    adx: float
    atr: float
    volume_ratio: float
    trend_close: float
    trend_ema: float


class VwapRsi(Strategy):
    kind = "vwap_rsi"
    Params = VwapRsiParams
    inputs = Inputs(timeframes=("5m", "15m"))
    description = (
        "Mean reversion to VWAP on RSI extremes with a volume spike, in a ranging market only, "
        "never against the 15m trend."
    )
    params: VwapRsiParams

    def warmup_candles(self) -> dict[str, int]:
        p = self.params
        entry = max(2 * p.adx_period, p.rsi_period, p.atr_period, p.volume_window, p.vwap_window)
        counts: dict[str, int] = {p.timeframe: entry + 1}
        counts[p.trend_timeframe] = max(counts.get(p.trend_timeframe, 0), p.trend_ema_period)
        return counts

    def _closed_windows(self, market: MarketSnapshot) -> tuple[np.ndarray, np.ndarray] | None:
        """The entry and trend candles when both are warm and an entry candle just closed."""
        p = self.params
        warmup = self.warmup_candles()
        candles = candles_of(market.candles, p.timeframe, self.kind)
        trend = candles_of(market.candles, p.trend_timeframe, self.kind)
        if len(candles) < warmup[p.timeframe] or len(trend) < warmup[p.trend_timeframe]:
            return None
        if not just_closed(candles, p.timeframe, market.now_ms):
            return None
        return candles, trend

    @cached_property
    def _series(self) -> VwapRsiSeries:
        p = self.params
        return VwapRsiSeries(
            rsi=Series("rsi", p.timeframe, p.rsi_period),
            adx=Series("adx", p.timeframe, p.adx_period),
            atr=Series("atr", p.timeframe, p.atr_period),
            trend_ema=Series("ema", p.trend_timeframe, p.trend_ema_period),
        )

    def series(self) -> tuple[Series, ...]:
        """RSI, ADX and ATR of the entry timeframe and the trend timeframe's EMA: read as the
        kernel's running values (:mod:`strategies.core.series`), O(1) per decision."""
        return tuple(self._series)

    def _vwap(self, market: MarketSnapshot, candles: np.ndarray) -> float:
        """The VWAP of the last entry candle: the UTC session's (``vwap_window`` 0) or the
        rolling one over ``vwap_window`` candles (exact sums over fixed rows, cached per
        snapshot)."""
        p = self.params
        if p.vwap_window == 0:
            return market.derived(("vwap_session", p.timeframe), lambda: last_session_vwap(candles))
        h, lo, c, v = candles[:, H], candles[:, L], candles[:, C], candles[:, V]
        return market.derived(
            ("vwap_rolling", p.timeframe, p.vwap_window),
            lambda: float(indicators.vwap_rolling(h, lo, c, v, p.vwap_window)[-1]),
        )

    def read(self, market: MarketSnapshot) -> VwapRsiReading | None:
        """Indicator values at ``market.now_ms``, or ``None`` while warming up."""
        p = self.params
        windows = self._closed_windows(market)
        if windows is None:
            return None
        candles, trend = windows
        s = self._series
        reading = VwapRsiReading(
            close=float(candles[-1, C]),
            vwap=self._vwap(market, candles),
            rsi=market.value(s.rsi),
            adx=market.value(s.adx),
            atr=market.value(s.atr),
            volume_ratio=volume_ratio(candles, p.volume_window),
            trend_close=float(trend[-1, C]),
            trend_ema=market.value(s.trend_ema),
        )
        values = (reading.vwap, reading.rsi, reading.adx, reading.atr, reading.volume_ratio)
        if not all(math.isfinite(x) for x in (*values, reading.trend_ema)) or reading.atr <= 0:
            return None
        return reading

    def _read_if_signal(self, market: MarketSnapshot) -> VwapRsiReading | None:
        """:meth:`read` when its values make a signal (``decide``'s conditions), else ``None``.

        The same values as :meth:`read`, read cheapest-first and abandoned at the first
        failed condition (volume, then RSI, then VWAP side, trend, ADX, ATR): ``decide``
        returns exactly what the read-everything version returns.
        """
        p = self.params
        windows = self._closed_windows(market)
        if windows is None:
            return None
        candles, trend = windows
        s = self._series
        ratio = volume_ratio(candles, p.volume_window)
        if not math.isfinite(ratio) or ratio <= p.volume_spike_mult:
            return None
        rsi = market.value(s.rsi)
        if not math.isfinite(rsi) or not (rsi < p.rsi_long_below or rsi > p.rsi_short_above):
            return None
        vwap = self._vwap(market, candles)
        close = float(candles[-1, C])
        long_side = close <= vwap and rsi < p.rsi_long_below
        if not math.isfinite(vwap) or not (
            long_side or (close >= vwap and rsi > p.rsi_short_above)
        ):
            return None
        trend_close = float(trend[-1, C])
        trend_ema = market.value(s.trend_ema)
        if not math.isfinite(trend_ema):
            return None
        if (trend_close - trend_ema) * (1 if long_side else -1) < 0:
            return None
        adx = market.value(s.adx)
        if not math.isfinite(adx) or adx >= p.adx_range_max:
            return None
        atr = market.value(s.atr)
        if not math.isfinite(atr) or atr <= 0:
            return None
        return VwapRsiReading(close, vwap, rsi, adx, atr, ratio, trend_close, trend_ema)

    def signal_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray:
        """Where a signal is possible at each decision time, over the whole history.

        The series (RSI, ADX, ATR, trend EMA) are the values the decision reads, bit for bit
        (:meth:`History.series`), so their conditions are exact: a long needs RSI below
        ``rsi_long_below`` and the trend close ≥ its EMA, a short RSI above
        ``rsi_short_above`` and the trend close ≤ its EMA, both ADX below ``adx_range_max`` and
        a positive ATR. Exact too: the entry candle closing at that time exists, the
        snapshot windows hold the warm-up counts of both timeframes
        (:meth:`History.window_counts`). The volume ratio (a mean over fixed rows) and, with
        the session VWAP (``vwap_window`` 0) and a window holding the whole session, the
        VWAP side (:func:`strategies.core.levels.session_vwap_at`) are summed in another
        order than the decision's: they rule out only with a margin (``CANDIDATE_SLACK``).
        A rolling VWAP's side is left to the decision.
        """
        p = self.params
        times = np.asarray(decision_times_ms, np.int64)
        if len(history.candles[p.timeframe]) == 0 or len(history.candles[p.trend_timeframe]) == 0:
            return np.zeros(len(times), dtype=bool)  # no candle, no decision
        # The arrays below depend on the candles, the times and the periods only: the runs of
        # a sweep that share a candle set compute them once (History.derived).
        key = (
            "vwap_rsi_candidates",
            p.timeframe,
            p.trend_timeframe,
            p.volume_window,
            p.vwap_window,
            tuple(sorted(self.warmup_candles().items())),
            times.tobytes(),
        )
        exact_rows, at, ratios, close, vwap, trend_at, trend_close = history.derived(
            key, lambda: self._candidate_parts(history, times)
        )
        s = self._series
        rsi = history.series(s.rsi)[at]
        adx = history.series(s.adx)[at]
        atr = history.series(s.atr)[at]
        trend_ema = history.series(s.trend_ema)[trend_at]
        long_possible = (rsi < p.rsi_long_below) & (trend_close >= trend_ema)
        short_possible = (rsi > p.rsi_short_above) & (trend_close <= trend_ema)
        if p.vwap_window == 0:
            margin = np.abs(vwap) * CANDIDATE_SLACK
            long_possible &= ~(close > vwap + margin)  # NaN (unknown) compares False: kept
            short_possible &= ~(close < vwap - margin)
        ranging = (adx < p.adx_range_max) & (atr > 0)
        volume = ~certainly_at_most(ratios, p.volume_spike_mult)
        return exact_rows & volume & ranging & (long_possible | short_possible)

    def _candidate_parts(self, history: History, times: np.ndarray) -> tuple[np.ndarray, ...]:
        """The parameter-free inputs of :meth:`signal_candidates` at each decision time: rows
        with the entry candle and the warm-up, the entry row, volume ratio, close and session
        VWAP, the trend row and close."""
        p = self.params
        tf, trend_tf = p.timeframe, p.trend_timeframe
        candles = history.candles[tf]
        trend = history.candles[trend_tf]
        rows = decision_rows(candles, tf, times)
        at = np.maximum(rows, 0)
        counts = history.window_counts(tf, at, times)
        trend_rows = last_closed_rows(trend, trend_tf, times)
        trend_at = np.maximum(trend_rows, 0)
        trend_counts = np.where(
            trend_rows >= 0, history.window_counts(trend_tf, trend_at, times), 0
        )
        warmup = self.warmup_candles()
        warm = (counts >= warmup[tf]) & (trend_counts >= warmup[trend_tf])
        ratios = history.derived(
            ("volume_ratios", tf, p.volume_window), lambda: volume_ratios(candles, p.volume_window)
        )[at]
        close = candles[at, C]
        vwap = np.full(len(times), np.nan)
        if p.vwap_window == 0:
            every = history.derived(("session_vwaps", tf), lambda: session_vwaps(candles))
            vwap = session_vwap_at(candles, rows, history.window_starts_ms(tf, times), every)
        trend_close = trend[trend_at, C]
        exact_rows = (rows >= 0) & warm
        return exact_rows, at, ratios, close, vwap, trend_at, trend_close

    def exit_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray:
        """Where :meth:`should_exit` leaves a position, over the whole history: exactly where
        the ADX after the last closed entry candle (the series it reads) is ≥
        ``adx_range_max``."""
        p = self.params
        times = np.asarray(decision_times_ms, np.int64)
        candles = history.candles[p.timeframe]
        if len(candles) == 0:
            return np.zeros(len(times), dtype=bool)  # no candle: should_exit returns None
        rows = last_closed_rows(candles, p.timeframe, times)
        adx = history.series(self._series.adx)[np.maximum(rows, 0)]
        return (rows >= 0) & (adx >= p.adx_range_max)

    def decide(self, market: MarketSnapshot) -> Signal | None:
        r = self._read_if_signal(market)
        if r is None:
            return None
        p = self.params
        if r.close <= r.vwap and r.rsi < p.rsi_long_below and r.trend_close >= r.trend_ema:
            side, rsi_depth = Side.LONG, p.rsi_long_below - r.rsi
            rsi_reason = f"RSI({p.rsi_period}) {r.rsi:.1f} < {p.rsi_long_below:g}"
            vwap_reason = f"close {price(r.close)} ≤ VWAP {price(r.vwap)}"
            trend_reason = (
                f"{p.trend_timeframe} close {price(r.trend_close)} ≥ EMA({p.trend_ema_period}) "
                f"{price(r.trend_ema)}: trend not bearish"
            )
        else:
            side, rsi_depth = Side.SHORT, r.rsi - p.rsi_short_above
            rsi_reason = f"RSI({p.rsi_period}) {r.rsi:.1f} > {p.rsi_short_above:g}"
            vwap_reason = f"close {price(r.close)} ≥ VWAP {price(r.vwap)}"
            trend_reason = (
                f"{p.trend_timeframe} close {price(r.trend_close)} ≤ EMA({p.trend_ema_period}) "
                f"{price(r.trend_ema)}: trend not bullish"
            )
        trend_gap_pct = abs(r.trend_close - r.trend_ema) / r.trend_ema * 100.0
        parts = ScoreParts(
            # RSI 10 points past the threshold (15 for a long at the default 25) = full.
            condition=ramp(rsi_depth, 0.0, 10.0),
            volume=ramp(r.volume_ratio, p.volume_spike_mult, 2 * p.volume_spike_mult),
            regime=ramp(r.adx, p.adx_range_max, p.adx_range_max / 2),
            trend=0.5 + 0.5 * ramp(trend_gap_pct, 0.0, 0.5),
        )
        reasons = (
            rsi_reason,
            vwap_reason,
            f"volume {r.volume_ratio:.2f}× the {p.volume_window}-candle average "
            f"(needs > {p.volume_spike_mult:g}×)",
            f"ADX({p.adx_period}) {r.adx:.1f} < {p.adx_range_max:g}: ranging",
            trend_reason,
        )
        return bracket_signal(side, r.close, r.atr, p, p.timeframe, parts, reasons)

    def should_exit(self, position: PositionView, market: MarketSnapshot) -> ExitDecision | None:
        """Leave when the regime turns trending: ADX ≥ ``adx_range_max`` on the entry timeframe."""
        p = self.params
        value = market.value(self._series.adx)
        if math.isfinite(value) and value >= p.adx_range_max:
            return ExitDecision(
                ExitReason.REGIME_CHANGE,
                f"ADX({p.adx_period}) {value:.1f} ≥ {p.adx_range_max:g}: the market is trending",
            )
        return None
