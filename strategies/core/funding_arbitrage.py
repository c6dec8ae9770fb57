"""Funding-rate arbitrage (DESIGN §5.5): fade an extreme funding rate; slow (1h candles).

A large positive funding rate means longs are crowded (they pay shorts); a large negative
one means shorts are. On each closed 1h candle, with the LAST SETTLED rate (the newest row of
``market.funding`` stamped at or before ``now_ms``; a predicted rate is never used):

* rate ≤ −``extreme_rate`` → long;  rate ≥ +``extreme_rate`` → short;
* only while the settlement is recent: ``now_ms − settled_at ≤ max_rate_age_hours``.

The signal repeats on every candle of that window; the engine holds one position per strategy
and symbol. Entry ``entry_type`` at the candle's close, stop/target in 1h ATRs.
"""

from __future__ import annotations

import numpy as np

from strategies.core.base import (
    Inputs,
    MarketSnapshot,
    Signal,
    Strategy,
)
from strategies.core.levels import (
    bracket_signal,
    decision_candles,
    last_atr,
)
from strategies.core.params import FundingArbitrageParams
from strategies.core.scoring import ScoreParts, ramp
from strategies.core.snapshot import History
from trading.core.candles import C
from trading.core.types import Side

HOUR_MS = 3_600_000


class FundingArbitrage(Strategy):
    kind = "funding_arbitrage"
    Params = FundingArbitrageParams
    inputs = Inputs(timeframes=("1h",), funding=True)
    description = (
        "Fade extreme settled funding rates: long when shorts pay heavily, short when longs do."
    )
    params: FundingArbitrageParams

    def warmup_candles(self) -> dict[str, int]:
        return {self.params.timeframe: self.params.atr_period + 1}

    def signal_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray:
        """Necessary condition of a signal at each decision time: the last rate settled at or
        before it is extreme (|rate| ≥ ``extreme_rate``) and at most ``max_rate_age_hours`` old.
        Exact (one row of the funding series per time). Where no rate has settled yet the
        decision is kept: the kernel reports the strategy as skipped there."""
        p = self.params
        times = np.asarray(decision_times_ms, dtype=np.int64)
        funding = history.funding
        if funding is None or len(funding) == 0:
            return np.ones(len(times), dtype=bool)
        last = np.searchsorted(funding[:, 0], times, side="right") - 1
        row = np.maximum(last, 0)
        rate = funding[row, 1]
        age_hours = (times - funding[row, 0].astype(np.int64)) / HOUR_MS
        extreme = (rate <= -p.extreme_rate) | (rate >= p.extreme_rate)
        return (last < 0) | (extreme & (age_hours <= p.max_rate_age_hours))

    def decide(self, market: MarketSnapshot) -> Signal | None:
        p = self.params
        self.require_inputs(market)
        assert market.funding is not None  # noqa: S101  (require_inputs checked it)
        warmup = self.warmup_candles()[p.timeframe]
        candles = decision_candles(market.candles, p.timeframe, self.kind, warmup, market.now_ms)
        if candles is None:
            return None
        settled_at, rate = int(market.funding[-1, 0]), float(market.funding[-1, 1])
        age_hours = (market.now_ms - settled_at) / HOUR_MS
        if age_hours > p.max_rate_age_hours:
            return None
        if rate <= -p.extreme_rate:
            side = Side.LONG
        elif rate >= p.extreme_rate:
            side = Side.SHORT
        else:
            return None
        atr_value = last_atr(candles, p.atr_period)
        if not atr_value > 0:
            return None
        close = float(candles[-1, C])
        parts = ScoreParts(
            # Three times the extreme = full strength; a fresher rate scores higher.
            condition=ramp(abs(rate), p.extreme_rate, 3 * p.extreme_rate),
            trend=ramp(age_hours, p.max_rate_age_hours, 0.0),
        )
        crowded = "shorts pay longs" if side is Side.LONG else "longs pay shorts"
        reasons = (
            f"settled funding {rate * 100:+.4f} % ({crowded}) beyond ±{p.extreme_rate * 100:.4f} %",
            f"settled {age_hours:.1f} h ago (≤ {p.max_rate_age_hours:g} h)",
        )
        return bracket_signal(side, close, atr_value, p, p.timeframe, parts, reasons)
