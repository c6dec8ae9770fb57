"""Liquidation-zone hunting (DESIGN §5.2): trade the cascade as price nears a dense zone.

The liquidation map is built from PAST open-interest growth only — never from the current
price (the predecessor's zones moved with price and so could never be reached, DESIGN §6):

1. Each step of the open-interest series (within ``oi_lookback_hours``) where OI grew by at
   least ``oi_growth_min_pct`` marks new positions; their entry price is the close of the
   closed candle containing the OI sample's time (the last close before it if that candle has
   not closed), their weight the OI added (base units).
2. Every new contract has a long and a short side; for each leverage L in ``leverages`` (equal
   shares of the weight) and maintenance-margin rate m:
   long liquidation ≈ entry × (1 − 1/L + m), short liquidation ≈ entry × (1 + 1/L − m).
   Entry 100 000, L = 50, m = 0.004 → long 98 400, short 101 600.
3. A level already traded through since its positions opened (a later low ≤ a long level, a
   later high ≥ a short level, the last candle included) is consumed: those were liquidated.
4. Levels are binned into zones of ``zone_bin_pct`` on a log-price grid fixed to zero (bin k
   covers [(1+w)^k, (1+w)^(k+1))), so zones do not depend on where price is. A zone's share
   is its weight over the weight of all live levels of the same side.

On each closed candle: if price fell (close < previous close) to within ``approach_pct`` of
the top of a long-liquidation zone holding ≥ ``min_zone_share`` → short (forced sells will
push it through); if it rose to within ``approach_pct`` below a short-liquidation zone →
long. Entry ``entry_type`` (default MARKET, next open), stop/target in ATRs.

Without open interest the strategy cannot work: ``missing_inputs`` says so and ``decide``
raises :class:`StrategySkipped` (the engine shows it as skipped, not as silent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    price,
    volume_ratio,
)
from strategies.core.params import LiquidationZonesParams
from strategies.core.scoring import ScoreParts, ramp
from trading.core.candles import C, H, L, T
from trading.core.types import Side

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class LiquidationZone:
    """A price band where positions of one side are estimated to be liquidated.

    ``liquidated_side`` is the side of the positions that get liquidated there (LONG zones lie
    below the entries). ``share`` is the zone's weight over all live levels of that side.
    """

    liquidated_side: Side
    low: float
    high: float
    weight: float
    share: float


def oi_build_ups(
    open_interest: np.ndarray,
    candles: np.ndarray,
    now_ms: int,
    lookback_hours: float,
    growth_min_pct: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(entry_prices, weights, candle_index)`` of each OI step that grew ≥ ``growth_min_pct``.

    OI 1000 → 1010 is +1.0 %: with the default 0.5 % it is a build-up of weight 10 (base
    units), entered at the close of the closed candle containing the sample time.
    """
    since = now_ms - lookback_hours * HOUR_MS
    oi = open_interest[(open_interest[:, 0] >= since) & (open_interest[:, 0] <= now_ms)]
    if len(oi) < 2 or len(candles) == 0:
        empty = np.empty(0)
        return empty, empty, np.empty(0, dtype=np.int64)
    before, after = oi[:-1, 1], oi[1:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        growth_pct = np.where(before > 0, (after - before) / before * 100.0, 0.0)
    steps = np.flatnonzero(growth_pct >= growth_min_pct) + 1
    index = np.searchsorted(candles[:, T], oi[steps, 0], side="right") - 1
    known = index >= 0
    steps, index = steps[known], index[known]
    return candles[index, C], oi[steps, 1] - oi[steps - 1, 1], index


def liquidation_zones(
    market: MarketSnapshot, candles: np.ndarray, params: LiquidationZonesParams
) -> list[LiquidationZone]:
    """The live liquidation map at ``market.now_ms`` (both sides), densest first."""
    assert market.open_interest is not None  # noqa: S101  (callers check missing_inputs)
    entries, weights, index = oi_build_ups(
        market.open_interest,
        candles,
        market.now_ms,
        params.oi_lookback_hours,
        params.oi_growth_min_pct,
    )
    if len(entries) == 0:
        return []
    leverages = np.asarray(params.leverages, dtype=np.float64)
    mmr = params.maintenance_margin_rate
    per_level = np.repeat(weights / len(leverages), len(leverages))
    after = np.repeat(index + 1, len(leverages))
    # Lowest low / highest high of the candles AFTER each entry candle (inf when none).
    lows_after = np.r_[np.minimum.accumulate(candles[::-1, L])[::-1], np.inf]
    highs_after = np.r_[np.maximum.accumulate(candles[::-1, H])[::-1], -np.inf]
    long_levels = np.outer(entries, 1 - 1 / leverages + mmr).ravel()
    short_levels = np.outer(entries, 1 + 1 / leverages - mmr).ravel()
    zones: list[LiquidationZone] = []
    for side, levels, live in (
        (Side.LONG, long_levels, lows_after[after] > long_levels),
        (Side.SHORT, short_levels, highs_after[after] < short_levels),
    ):
        zones.extend(_bin(side, levels[live], per_level[live], params.zone_bin_pct))
    return sorted(zones, key=lambda zone: -zone.share)


def _bin(
    side: Side, levels: np.ndarray, weights: np.ndarray, bin_pct: float
) -> list[LiquidationZone]:
    total = float(weights.sum())
    if len(levels) == 0 or total <= 0:
        return []
    step = math.log1p(bin_pct / 100.0)
    bins = np.floor(np.log(levels) / step).astype(np.int64)
    unique, inverse = np.unique(bins, return_inverse=True)
    mass = np.bincount(inverse, weights=weights)
    return [
        LiquidationZone(
            side, math.exp(k * step), math.exp((k + 1) * step), float(w), float(w) / total
        )
        for k, w in zip(unique.tolist(), mass.tolist(), strict=True)
    ]


class LiquidationZones(Strategy):
    kind = "liquidation_zones"
    Params = LiquidationZonesParams
    inputs = Inputs(timeframes=("5m",), open_interest=True)
    description = (
        "Trade the liquidation cascade when price nears a dense zone of liquidation prices "
        "estimated from past open-interest build-ups."
    )
    params: LiquidationZonesParams

    def warmup_candles(self) -> dict[str, int]:
        return {self.params.timeframe: self.params.atr_period + 1}

    def decide(self, market: MarketSnapshot) -> Signal | None:
        p = self.params
        self.require_inputs(market)
        warmup = self.warmup_candles()[p.timeframe]
        candles = decision_candles(market.candles, p.timeframe, self.kind, warmup, market.now_ms)
        if candles is None:
            return None
        close, previous = float(candles[-1, C]), float(candles[-2, C])
        target_zone: LiquidationZone | None = None
        distance_pct = math.inf
        for zone in liquidation_zones(market, candles, p):
            if zone.share < p.min_zone_share:
                break
            if zone.liquidated_side is Side.LONG and close < previous and zone.high < close:
                distance_pct = (close - zone.high) / close * 100.0
            elif zone.liquidated_side is Side.SHORT and close > previous and zone.low > close:
                distance_pct = (zone.low - close) / close * 100.0
            else:
                continue
            if distance_pct <= p.approach_pct:
                target_zone = zone
                break
        if target_zone is None:
            return None
        atr_value = last_atr(candles, p.atr_period)
        if not atr_value > 0:
            return None
        # Liquidated longs sell into the market: go short with them, and vice versa.
        side = target_zone.liquidated_side.opposite
        ratio = volume_ratio(candles, min(20, len(candles) - 1))
        parts = ScoreParts(
            condition=ramp(target_zone.share, p.min_zone_share, 2 * p.min_zone_share),
            volume=ramp(ratio, 1.0, 2.0) if math.isfinite(ratio) else 0.5,
            trend=ramp(distance_pct, p.approach_pct, 0.0),
        )
        where = "below" if side is Side.SHORT else "above"
        moving = "falling" if side is Side.SHORT else "rising"
        reasons = (
            f"{target_zone.liquidated_side.value} liquidations estimated at "
            f"{price(target_zone.low)}–{price(target_zone.high)} "
            f"({target_zone.share * 100:.1f} % of the live map, needs ≥ "
            f"{p.min_zone_share * 100:g} %)",
            f"price {moving}: close {price(close)} (previous {price(previous)}), zone "
            f"{distance_pct:.2f} % {where} (arms within {p.approach_pct:g} %)",
        )
        return bracket_signal(side, close, atr_value, p, p.timeframe, parts, reasons)
