"""1h swing baseline: EMA fast/slow cross with an ATR stop — the arena's benchmark.

On each closed 1h candle: long when EMA(``fast_ema``) crosses above EMA(``slow_ema``) on that
candle (fast ≤ slow one candle earlier, fast > slow now), short on the opposite cross. Entry
``entry_type`` (default MARKET, next open), stop/target in 1h ATRs. An open position is closed
(``ExitReason.SIGNAL_EXIT``) when the EMAs stand crossed against it.
"""

from __future__ import annotations

import math

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
    bracket_signal,
    candles_of,
    just_closed,
    last_atr,
    price,
)
from strategies.core.params import SwingBaselineParams
from strategies.core.scoring import ScoreParts, ramp
from trading.core.candles import C
from trading.core.types import ExitReason, Side


class SwingBaseline(Strategy):
    kind = "swing_baseline"
    Params = SwingBaselineParams
    inputs = Inputs(timeframes=("1h",))
    description = "1h EMA fast/slow cross with an ATR stop: the arena's benchmark."
    params: SwingBaselineParams

    def warmup_candles(self) -> dict[str, int]:
        p = self.params
        return {p.timeframe: max(p.slow_ema, p.atr_period) + 1}

    def _emas(self, market: MarketSnapshot) -> tuple[float, float, float, float] | None:
        """``(fast_prev, slow_prev, fast, slow)`` on the last two closed candles."""
        p = self.params
        candles = candles_of(market.candles, p.timeframe, self.kind)
        if len(candles) < self.warmup_candles()[p.timeframe]:
            return None
        fast = indicators.ema(candles[:, C], p.fast_ema)
        slow = indicators.ema(candles[:, C], p.slow_ema)
        values = (float(fast[-2]), float(slow[-2]), float(fast[-1]), float(slow[-1]))
        return values if all(math.isfinite(v) for v in values) else None

    def decide(self, market: MarketSnapshot) -> Signal | None:
        p = self.params
        emas = self._emas(market)
        candles = candles_of(market.candles, p.timeframe, self.kind)
        if emas is None or not just_closed(candles, p.timeframe, market.now_ms):
            return None
        fast_prev, slow_prev, fast, slow = emas
        if fast_prev <= slow_prev and fast > slow:
            side = Side.LONG
        elif fast_prev >= slow_prev and fast < slow:
            side = Side.SHORT
        else:
            return None
        atr_value = last_atr(candles, p.atr_period)
        if not atr_value > 0:
            return None
        close = float(candles[-1, C])
        parts = ScoreParts(
            # EMA gap of a quarter ATR after the cross = full strength.
            condition=ramp(abs(fast - slow) / atr_value, 0.0, 0.25),
            trend=1.0 if (close - slow) * side.sign > 0 else 0.0,
        )
        word = "above" if side is Side.LONG else "below"
        reason = (
            f"EMA({p.fast_ema}) {price(fast)} crossed {word} EMA({p.slow_ema}) {price(slow)} "
            f"(was {price(fast_prev)} vs {price(slow_prev)})"
        )
        return bracket_signal(side, close, atr_value, p, p.timeframe, parts, (reason,))

    def should_exit(self, position: PositionView, market: MarketSnapshot) -> ExitDecision | None:
        """Close when the EMAs stand crossed against the position (fast below slow for a long)."""
        emas = self._emas(market)
        if emas is None:
            return None
        _, _, fast, slow = emas
        if (fast - slow) * position.side.sign < 0:
            p = self.params
            return ExitDecision(
                ExitReason.SIGNAL_EXIT,
                f"EMA({p.fast_ema}) {price(fast)} crossed against the {position.side.value} "
                f"(EMA({p.slow_ema}) {price(slow)})",
            )
        return None
