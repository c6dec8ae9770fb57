"""Momentum breakout (DESIGN §5.4): a range breakout on volume, confirmed on higher timeframes.

On the entry timeframe (default 5m), with the range = highest high / lowest low of the
``range_lookback`` candles BEFORE the one that just closed (the Donchian channel one candle
back, so the breakout candle never widens its own range):

* long  when close > range high, short when close < range low;
* and volume > ``volume_mult`` × the average of the ``volume_window`` candles before it;
* and on every ``confirm_timeframes`` (15m, 1h) the last CLOSED candle is on the same side
  of its EMA(``confirm_ema_period``) (close above for a long, below for a short);
* and, if ``require_high_volatility``, the regime classifier flags high volatility.

High volatility = ATR in % of price ranked ≥ 80th percentile of the last 200 candles
(:mod:`strategies.core.regime`). Entry: ``entry_type`` (default MARKET, filled at the next
candle's open), stop/target in ATRs.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cached_property

import numpy as np

from strategies.core.base import Inputs, MarketSnapshot, Signal, Strategy
from strategies.core.levels import (
    bracket_signal,
    candles_of,
    certainly_at_most,
    decision_candles,
    decision_rows,
    previous_extremes,
    price,
    volume_ratio,
    volume_ratios,
)
from strategies.core.params import MomentumBreakoutParams
from strategies.core.regime import Volatility, last_volatility
from strategies.core.scoring import ScoreParts, ramp
from strategies.core.series import Series
from strategies.core.snapshot import History
from trading.core.candles import C, H, L
from trading.core.types import Side

VOLATILITY_WINDOW = 200  # candles the ATR percentile is ranked over (fits a 500-candle snapshot)


class MomentumBreakout(Strategy):
    kind = "momentum_breakout"
    Params = MomentumBreakoutParams
    inputs = Inputs(timeframes=("5m", "15m", "1h"))
    description = (
        "Breakout of the recent range on a volume surge, confirmed by the 15m and 1h EMAs; "
        "best in high volatility."
    )
    params: MomentumBreakoutParams

    def warmup_candles(self) -> dict[str, int]:
        p = self.params
        counts: dict[str, int] = {
            p.timeframe: max(p.range_lookback, p.volume_window, p.atr_period) + 1
        }
        if p.require_high_volatility:
            counts[p.timeframe] = max(counts[p.timeframe], p.atr_period + VOLATILITY_WINDOW)
        for tf in p.confirm_timeframes:
            counts[tf] = max(counts.get(tf, 0), p.confirm_ema_period)
        return counts

    @cached_property
    def _atr(self) -> Series:
        return Series("atr", self.params.timeframe, self.params.atr_period)

    @cached_property
    def _confirm_emas(self) -> dict[str, Series]:
        p = self.params
        return {tf: Series("ema", tf, p.confirm_ema_period) for tf in p.confirm_timeframes}

    def series(self) -> tuple[Series, ...]:
        """The entry timeframe's ATR (stop, target, strength) and each confirming
        timeframe's EMA, read at every decision (O(1): the kernel keeps them)."""
        return (self._atr, *self._confirm_emas.values())

    def signal_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray:
        """Necessary condition of a signal at each decision time, over the whole history.

        Exact and window-independent: the entry candle closing then exists, closes beyond the
        high/low of the ``range_lookback`` candles before it (max/min of fixed rows: exact) and
        its volume exceeds ``volume_mult`` × the ``volume_window`` mean before it. The EMA
        confirmations and the volatility regime depend on the snapshot window: not used.
        """
        p = self.params
        candles = history.candles[p.timeframe]
        rows = decision_rows(candles, p.timeframe, decision_times_ms)
        if len(candles) == 0:
            return rows >= 0  # all False: no candle, no decision
        at = np.maximum(rows, 0)
        highs, lows = previous_extremes(candles, p.range_lookback)
        close = candles[at, C]
        breakout = (close > highs[at]) | (close < lows[at])
        ratios = volume_ratios(candles, p.volume_window)[at]
        return (rows >= 0) & breakout & ~certainly_at_most(ratios, p.volume_mult)

    def decide(self, market: MarketSnapshot) -> Signal | None:
        p = self.params
        warmup = self.warmup_candles()
        candles = decision_candles(
            market.candles, p.timeframe, self.kind, warmup[p.timeframe], market.now_ms
        )
        if candles is None:
            return None
        close = float(candles[-1, C])
        previous = candles[-p.range_lookback - 1 : -1]
        range_high = float(previous[:, H].max())
        range_low = float(previous[:, L].min())
        if close > range_high:
            side, broken = Side.LONG, range_high
        elif close < range_low:
            side, broken = Side.SHORT, range_low
        else:
            return None
        ratio = volume_ratio(candles, p.volume_window)
        atr_value = market.value(self._atr)
        if not (math.isfinite(ratio) and ratio > p.volume_mult) or not atr_value > 0:
            return None
        reasons = [
            f"close {price(close)} {'>' if side is Side.LONG else '<'} the "
            f"{p.range_lookback}-candle range {'high' if side is Side.LONG else 'low'} "
            f"{price(broken)}",
            f"volume {ratio:.2f}× the {p.volume_window}-candle average "
            f"(needs > {p.volume_mult:g}×)",
        ]
        for tf in p.confirm_timeframes:
            confirm = candles_of(market.candles, tf, self.kind)
            if len(confirm) < warmup[tf]:
                return None
            ema_value = market.value(self._confirm_emas[tf])
            tf_close = float(confirm[-1, C])
            if not np.isfinite(ema_value) or (tf_close - ema_value) * side.sign <= 0:
                return None
            reasons.append(
                f"{tf} close {price(tf_close)} {'>' if side is Side.LONG else '<'} "
                f"EMA({p.confirm_ema_period}) {price(ema_value)}"
            )
        # The kernel's volatility percentiles (risk.yaml ``regime:``) over this strategy's ATR
        # period and window (the window its warm-up holds).
        rules = replace(
            market.regime_rules, atr_period=p.atr_period, atr_percentile_window=VOLATILITY_WINDOW
        )
        volatility, atr_percentile = last_volatility(candles, rules)
        high_volatility = volatility is Volatility.HIGH
        if p.require_high_volatility and not high_volatility:
            return None
        if high_volatility:
            reasons.append(
                f"{p.timeframe} volatility high: ATR % at percentile "
                f"{atr_percentile:.0f} "
                f"of the last {VOLATILITY_WINDOW} candles"
            )
        parts = ScoreParts(
            # A close one ATR beyond the range = full strength.
            condition=ramp(abs(close - broken) / atr_value, 0.0, 1.0),
            volume=ramp(ratio, p.volume_mult, 2 * p.volume_mult),
            regime=1.0 if high_volatility else 0.5,
            trend=1.0,
        )
        return bracket_signal(side, close, atr_value, p, p.timeframe, parts, reasons)
