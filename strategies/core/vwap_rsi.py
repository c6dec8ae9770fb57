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
    register,
)
from strategies.core.levels import (
    bracket_signal,
    candles_of,
    just_closed,
    last_atr,
    price,
    volume_ratio,
)
from strategies.core.params import VwapRsiParams
from strategies.core.scoring import ScoreParts, ramp
from trading.core.candles import C, H, L, T, V
from trading.core.types import ExitReason, Side


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


@register
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

    def read(self, market: MarketSnapshot) -> VwapRsiReading | None:
        """Indicator values at ``market.now_ms``, or ``None`` while warming up."""
        p = self.params
        warmup = self.warmup_candles()
        candles = candles_of(market.candles, p.timeframe, self.kind)
        trend = candles_of(market.candles, p.trend_timeframe, self.kind)
        if len(candles) < warmup[p.timeframe] or len(trend) < warmup[p.trend_timeframe]:
            return None
        if not just_closed(candles, p.timeframe, market.now_ms):
            return None
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

    def decide(self, market: MarketSnapshot) -> Signal | None:
        p = self.params
        r = self.read(market)
        if r is None or r.adx >= p.adx_range_max or r.volume_ratio <= p.volume_spike_mult:
            return None
        if r.close <= r.vwap and r.rsi < p.rsi_long_below and r.trend_close >= r.trend_ema:
            side, rsi_depth = Side.LONG, p.rsi_long_below - r.rsi
            rsi_reason = f"RSI({p.rsi_period}) {r.rsi:.1f} < {p.rsi_long_below:g}"
            vwap_reason = f"close {price(r.close)} ≤ VWAP {price(r.vwap)}"
            trend_reason = (
                f"{p.trend_timeframe} close {price(r.trend_close)} ≥ EMA({p.trend_ema_period}) "
                f"{price(r.trend_ema)}: trend not bearish"
            )
        elif r.close >= r.vwap and r.rsi > p.rsi_short_above and r.trend_close <= r.trend_ema:
            side, rsi_depth = Side.SHORT, r.rsi - p.rsi_short_above
            rsi_reason = f"RSI({p.rsi_period}) {r.rsi:.1f} > {p.rsi_short_above:g}"
            vwap_reason = f"close {price(r.close)} ≥ VWAP {price(r.vwap)}"
            trend_reason = (
                f"{p.trend_timeframe} close {price(r.trend_close)} ≤ EMA({p.trend_ema_period}) "
                f"{price(r.trend_ema)}: trend not bullish"
            )
        else:
            return None
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
        candles = candles_of(market.candles, p.timeframe, self.kind)
        if len(candles) < 2 * p.adx_period:
            return None
        value = float(
            indicators.adx(candles[:, H], candles[:, L], candles[:, C], p.adx_period)[0][-1]
        )
        if np.isfinite(value) and value >= p.adx_range_max:
            return ExitDecision(
                ExitReason.REGIME_CHANGE,
                f"ADX({p.adx_period}) {value:.1f} ≥ {p.adx_range_max:g}: the market is trending",
            )
        return None
