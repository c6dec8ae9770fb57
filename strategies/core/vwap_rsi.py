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
    adx_bounds,
    adx_of,
    adx_spans,
    bracket_signal,
    candles_of,
    certainly_at_most,
    decision_rows,
    ema_bounds,
    ema_spans,
    just_closed,
    last_atr,
    last_closed_rows,
    last_session_vwap,
    price,
    rsi_bounds,
    rsi_moves,
    session_vwap_at,
    session_vwaps,
    volume_ratio,
    volume_ratios,
)
from strategies.core.params import VwapRsiParams
from strategies.core.scoring import ScoreParts, ramp
from strategies.core.snapshot import History
from trading.core.candles import C, H, L, T, V
from trading.core.types import ExitReason, Side

RSI_BOUND_SLACK = 1e-6  # RSI points: far above the ~1e-11 float error of the bound


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

    def read(self, market: MarketSnapshot) -> VwapRsiReading | None:
        """Indicator values at ``market.now_ms``, or ``None`` while warming up."""
        p = self.params
        windows = self._closed_windows(market)
        if windows is None:
            return None
        candles, trend = windows
        h, lo, c, v = candles[:, H], candles[:, L], candles[:, C], candles[:, V]
        if p.vwap_window == 0:
            vwap = indicators.vwap_session(candles[:, T], h, lo, c, v)[-1]
        else:
            vwap = indicators.vwap_rolling(h, lo, c, v, p.vwap_window)[-1]
        reading = VwapRsiReading(
            close=float(c[-1]),
            vwap=float(vwap),
            rsi=float(indicators.rsi(c, p.rsi_period)[-1]),
            adx=float(indicators.adx(h, lo, c, p.adx_period)[0][-1]),
            atr=last_atr(candles, p.atr_period),
            volume_ratio=volume_ratio(candles, p.volume_window),
            trend_close=float(trend[-1, C]),
            trend_ema=float(indicators.ema(trend[:, C], p.trend_ema_period)[-1]),
        )
        values = (reading.vwap, reading.rsi, reading.adx, reading.atr, reading.volume_ratio)
        if not all(math.isfinite(x) for x in (*values, reading.trend_ema)) or reading.atr <= 0:
            return None
        return reading

    def _read_if_signal(self, market: MarketSnapshot) -> VwapRsiReading | None:
        """:meth:`read` when its values make a signal (``decide``'s conditions), else ``None``.

        The same values as :meth:`read`, computed cheapest-first and abandoned at the first
        failed condition (volume, then RSI, then VWAP side, trend, ADX, ATR): ``decide`` returns
        exactly what the read-everything version returns, at a fraction of the cost on the
        ~95 % of closes that fail early.
        """
        p = self.params
        windows = self._closed_windows(market)
        if windows is None:
            return None
        candles, trend = windows
        tf = p.timeframe
        ratio = volume_ratio(candles, p.volume_window)
        if not math.isfinite(ratio) or ratio <= p.volume_spike_mult:
            return None
        h, lo, c, v = candles[:, H], candles[:, L], candles[:, C], candles[:, V]
        # Each value is cached per snapshot (market.derived): the runs of a sweep that reach
        # the same close compute it once.
        rsi = market.derived(
            ("rsi", tf, p.rsi_period), lambda: indicators.rsi_last(c, p.rsi_period)
        )
        if not math.isfinite(rsi) or not (rsi < p.rsi_long_below or rsi > p.rsi_short_above):
            return None
        if p.vwap_window == 0:
            vwap = market.derived(("vwap_session", tf), lambda: last_session_vwap(candles))
        else:
            vwap = market.derived(
                ("vwap_rolling", tf, p.vwap_window),
                lambda: float(indicators.vwap_rolling(h, lo, c, v, p.vwap_window)[-1]),
            )
        close = float(c[-1])
        long_side = close <= vwap and rsi < p.rsi_long_below
        if not math.isfinite(vwap) or not (
            long_side or (close >= vwap and rsi > p.rsi_short_above)
        ):
            return None
        trend_close = float(trend[-1, C])
        trend_ema = market.derived(
            ("ema", p.trend_timeframe, p.trend_ema_period),
            lambda: float(indicators.ema(trend[:, C], p.trend_ema_period)[-1]),
        )
        if not math.isfinite(trend_ema):
            return None
        if (trend_close - trend_ema) * (1 if long_side else -1) < 0:
            return None
        adx = self._last_adx(market, candles)
        if not math.isfinite(adx) or adx >= p.adx_range_max:
            return None
        atr = market.derived(("atr", tf, p.atr_period), lambda: last_atr(candles, p.atr_period))
        if not math.isfinite(atr) or atr <= 0:
            return None
        return VwapRsiReading(close, vwap, rsi, adx, atr, ratio, trend_close, trend_ema)

    def signal_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray:
        """Necessary condition of a signal at each decision time, over the whole history.

        Exact: the entry candle closing at that time exists, the snapshot windows hold the
        warm-up counts of both timeframes (:meth:`History.window_counts`), and its volume
        exceeds ``volume_spike_mult`` × the mean of the ``volume_window`` candles before it (a
        mean of fixed rows, the same in any snapshot holding them); with the session VWAP
        (``vwap_window`` 0) and a window holding the whole session, a long needs close ≤ VWAP
        and a short close ≥ VWAP (:func:`strategies.core.levels.session_vwap_at`, the same
        float sums as the snapshot's). Seed-dependent values enter only through BOUNDS valid
        for the snapshot's window: RSI (:func:`strategies.core.levels.rsi_bounds`; a long needs
        the lower bound below ``rsi_long_below``, a short the upper bound above
        ``rsi_short_above``) and the trend EMA (:func:`strategies.core.levels.ema_bounds`; a
        long needs the trend close ≥ the lower bound, a short ≤ the upper bound) and ADX
        (:func:`strategies.core.levels.adx_bounds`; a signal needs the lower bound below
        ``adx_range_max``). Where the window starts at the history's first candle it is a
        prefix of the history and the whole-history RSI is the snapshot's, bit for bit (the
        bounds of EMA and ADX are then exact too). Every comparison of a bound keeps a margin
        (``RSI_BOUND_SLACK``, ``CANDIDATE_SLACK``, ``ADX_BOUND_SLACK``). ATR is not used. The
        comparisons are cheap; the whole-history arrays behind them are cached per candle set
        (:meth:`History.derived`).
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
            p.rsi_period,
            p.volume_window,
            p.vwap_window,
            p.trend_ema_period,
            tuple(sorted(self.warmup_candles().items())),
            times.tobytes(),
        )
        exact_rows, ratios, rsi_low, rsi_high, close, vwap, trend_close, ema_low, ema_high = (
            history.derived(key, lambda: self._candidate_parts(history, times))
        )
        exact = exact_rows & ~certainly_at_most(ratios, p.volume_spike_mult)
        long_possible = rsi_low < p.rsi_long_below + RSI_BOUND_SLACK
        short_possible = rsi_high > p.rsi_short_above - RSI_BOUND_SLACK
        if p.vwap_window == 0:
            margin = np.abs(vwap) * CANDIDATE_SLACK
            long_possible &= ~(close > vwap + margin)  # NaN (unknown) compares False: kept
            short_possible &= ~(close < vwap - margin)
        long_possible &= ~(trend_close < ema_low - np.abs(ema_low) * CANDIDATE_SLACK)
        short_possible &= ~(trend_close > ema_high + np.abs(ema_high) * CANDIDATE_SLACK)
        candidates = exact & (long_possible | short_possible)
        if candidates.any():
            adx_low, _ = self._adx_bounds_at(history, times, decision=True)
            candidates &= ~(adx_low >= p.adx_range_max)  # NaN (unknown) compares False: kept
        return candidates

    def _candidate_parts(self, history: History, times: np.ndarray) -> tuple[np.ndarray, ...]:
        """The parameter-free inputs of :meth:`signal_candidates` at each decision time: rows
        with the entry candle and the warm-up, volume ratio, RSI bounds (exact on prefix
        windows), close and session VWAP, trend close and EMA bounds."""
        p = self.params
        tf, trend_tf = p.timeframe, p.trend_timeframe
        candles = history.candles[tf]
        trend = history.candles[trend_tf]
        rows = decision_rows(candles, tf, times)
        at = np.maximum(rows, 0)
        counts = history.window_counts(tf, at, times)
        trend_rows = last_closed_rows(trend, trend_tf, times)
        trend_counts = np.where(
            trend_rows >= 0, history.window_counts(trend_tf, np.maximum(trend_rows, 0), times), 0
        )
        warmup = self.warmup_candles()
        warm = (counts >= warmup[tf]) & (trend_counts >= warmup[trend_tf])
        ratios = history.derived(
            ("volume_ratios", tf, p.volume_window), lambda: volume_ratios(candles, p.volume_window)
        )[at]
        moves = history.derived(
            ("rsi_moves", tf, p.rsi_period), lambda: rsi_moves(candles, p.rsi_period)
        )
        rsi_low, rsi_high = rsi_bounds(candles, at, counts, p.rsi_period, moves)
        # A window starting at the history's first candle is its prefix: the RSI of the whole
        # history there is the snapshot's, bit for bit.
        prefix = (rows >= 0) & warm & (at - counts + 1 == 0)
        if prefix.any():
            end = int(at[prefix].max()) + 1  # the RSI of a prefix is the prefix of the RSI
            exact_rsi = indicators.rsi(candles[:end, C], p.rsi_period)[np.minimum(at, end - 1)]
            rsi_low = np.where(prefix, exact_rsi, rsi_low)
            rsi_high = np.where(prefix, exact_rsi, rsi_high)
        close = candles[at, C]
        vwap = np.full(len(times), np.nan)
        if p.vwap_window == 0:
            every = history.derived(("session_vwaps", tf), lambda: session_vwaps(candles))
            vwap = session_vwap_at(candles, rows, history.window_starts_ms(tf, times), every)
        n = p.trend_ema_period
        spans = history.derived(("ema_spans", trend_tf, n), lambda: ema_spans(trend[:, C], n))
        ema_low, ema_high = ema_bounds(trend[:, C], trend_rows, trend_counts, n, spans)
        trend_close = trend[np.maximum(trend_rows, 0), C]
        exact_rows = (rows >= 0) & warm
        return exact_rows, ratios, rsi_low, rsi_high, close, vwap, trend_close, ema_low, ema_high

    def exit_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray:
        """Where :meth:`should_exit` may leave a position, over the whole history: False only
        where the window's ADX is certainly below ``adx_range_max`` (the upper bound of
        :func:`strategies.core.levels.adx_bounds`, margin included) — then ``should_exit``
        returns ``None`` whatever the position."""
        p = self.params
        times = np.asarray(decision_times_ms, np.int64)
        if len(history.candles[p.timeframe]) == 0:
            return np.zeros(len(times), dtype=bool)  # no candle: should_exit returns None
        _, adx_high = self._adx_bounds_at(history, times, decision=False)
        return ~(adx_high < p.adx_range_max)  # NaN (unknown) compares False: a candidate

    def _adx_bounds_at(
        self, history: History, times: np.ndarray, *, decision: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`strategies.core.levels.adx_bounds` of the snapshot window at each time:
        ending at the entry candle closing then (``decision``, NaN where none) or at the
        last closed one (what ``should_exit`` reads); cached per candle set."""
        tf, n = self.params.timeframe, self.params.adx_period
        candles = history.candles[tf]

        def compute() -> tuple[np.ndarray, np.ndarray]:
            if decision:
                rows = decision_rows(candles, tf, times)
            else:
                rows = last_closed_rows(candles, tf, times)
            at = np.maximum(rows, 0)
            counts = np.where(rows >= 0, history.window_counts(tf, at, times), 0)
            spans = history.derived(("adx_spans", tf, n), lambda: adx_spans(candles, n))
            return adx_bounds(candles, rows, counts, n, spans)

        return history.derived(("adx_bounds", tf, n, decision, times.tobytes()), compute)

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

    def _last_adx(self, market: MarketSnapshot, candles: np.ndarray) -> float:
        """ADX(``adx_period``) of the last entry-timeframe candle (cached per snapshot)."""
        return float(adx_of(market, candles, self.params.timeframe, self.params.adx_period)[0][-1])

    def should_exit(self, position: PositionView, market: MarketSnapshot) -> ExitDecision | None:
        """Leave when the regime turns trending: ADX ≥ ``adx_range_max`` on the entry timeframe."""
        p = self.params
        candles = candles_of(market.candles, p.timeframe, self.kind)
        if len(candles) < 2 * p.adx_period:
            return None
        value = self._last_adx(market, candles)
        if np.isfinite(value) and value >= p.adx_range_max:
            return ExitDecision(
                ExitReason.REGIME_CHANGE,
                f"ADX({p.adx_period}) {value:.1f} ≥ {p.adx_range_max:g}: the market is trending",
            )
        return None
