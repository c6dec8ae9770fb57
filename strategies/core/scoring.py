"""Signal scores in [0, 1], and the order-flow confirmation applied on top of them.

A score ranks signals across strategies (the arena, the risk gate's "best first") and is shown
to the trader. Every strategy builds it the same way, from four components each normalised
to [0, 1]:

* ``condition`` — how far past its trigger the setup is (RSI depth below 25, breakout size in
  ATRs, funding rate beyond the extreme, zone density...), 0 = just at the threshold;
* ``volume`` — volume confirmation (e.g. ratio to the average, 0 at the required multiple, 1 at
  twice it);
* ``regime`` — how well the market regime fits the strategy (ranging for mean reversion, high
  volatility for breakouts);
* ``trend`` — alignment with the higher-timeframe trend.

``score = Σ wᵢ·componentᵢ / Σ wᵢ`` with the default weights 0.4 / 0.2 / 0.2 / 0.2, clipped to
[0, 1]. A component that does not apply to a strategy is left at the neutral 0.5.
Example: condition 0.5, volume 1.0, regime 0.25, trend 0.5 →
0.4·0.5 + 0.2·1.0 + 0.2·0.25 + 0.2·0.5 = 0.2 + 0.2 + 0.05 + 0.1 = 0.55.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from strategies.core.base import ScoreAdjustment, Signal

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "condition": 0.4,
    "volume": 0.2,
    "regime": 0.2,
    "trend": 0.2,
}
NEUTRAL = 0.5


def ramp(value: float, start: float, full: float) -> float:
    """Linear normalisation: 0 at ``start``, 1 at ``full``, clipped to [0, 1].

    ``ramp(2.25, 1.5, 3.0) == 0.5`` (a volume 2.25× the average, required 1.5×, full at 3×).
    Works with ``full < start`` too (a falling scale): ``ramp(15, 20, 10) == 0.5``.
    """
    if full == start:
        return 1.0 if value >= full else 0.0
    return clip01((value - start) / (full - start))


def clip01(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


@dataclass(frozen=True, slots=True)
class ScoreParts:
    """The four normalised components of a score (each in [0, 1]; 0.5 = neutral)."""

    condition: float
    volume: float = NEUTRAL
    regime: float = NEUTRAL
    trend: float = NEUTRAL

    def score(self, weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> float:
        """Weighted mean of the components, clipped to [0, 1]."""
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("score weights must sum to a positive number")
        value = sum(weight * clip01(getattr(self, name)) for name, weight in weights.items())
        return clip01(value / total)

    def describe(self) -> str:
        return (
            f"score parts: condition {self.condition:.2f}, volume {self.volume:.2f}, "
            f"regime {self.regime:.2f}, trend {self.trend:.2f}"
        )


def apply_confirmation(signal: Signal, adjustments: Iterable[ScoreAdjustment]) -> Signal:
    """``signal`` with every confirmation's ``delta`` added to its score (clipped to [0, 1]).

    Reasons of the adjustments are appended to the signal's, so the trader sees why the score
    moved. Example: score 0.60, order flow +0.15 and another filter −0.05 → 0.70.
    """
    score = signal.score
    reasons = list(signal.reasons)
    for adjustment in adjustments:
        score += adjustment.delta
        reasons.extend(adjustment.reasons)
    return dataclasses.replace(signal, score=clip01(score), reasons=tuple(reasons))
