"""Typed parameter schemas of the built-in strategies.

Defaults here are the product's defaults; ``config/strategies.yaml`` restates them (commented)
and is the source the database is seeded from. Each field carries its unit in its name or its
description; bounds refuse values that make no trading sense.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from strategies.core.base import StrategyParams

EntryTF = Literal["1m", "5m", "15m", "1h"]


class ExitParams(StrategyParams):
    """Shared stop/target/holding rules, in ATR multiples of the entry timeframe."""

    atr_period: int = Field(14, ge=2, le=200, description="ATR period (candles)")
    stop_atr_mult: float = Field(1.5, gt=0, le=20, description="stop distance in ATRs")
    target_atr_mult: float = Field(2.0, gt=0, le=50, description="target distance in ATRs")
    max_hold_minutes: int = Field(240, ge=1, le=60 * 24 * 30, description="time stop")
    entry_type: Literal["limit", "market"] = Field("limit", description="preferred entry order")


class VwapRsiParams(ExitParams):
    timeframe: EntryTF = "5m"
    rsi_period: int = Field(14, ge=2, le=100)
    rsi_long_below: float = Field(25.0, gt=0, lt=50)
    rsi_short_above: float = Field(75.0, gt=50, lt=100)
    vwap_window: int = Field(
        0, ge=0, le=2000, description="rolling VWAP window in candles; 0 = UTC-session VWAP"
    )
    volume_window: int = Field(20, ge=2, le=500)
    volume_spike_mult: float = Field(1.5, ge=1.0, le=20.0)
    trend_timeframe: EntryTF = "15m"
    trend_ema_period: int = Field(50, ge=2, le=500)
    adx_period: int = Field(14, ge=2, le=100)
    adx_range_max: float = Field(20.0, gt=0, lt=100, description="ADX below = ranging")
    stop_atr_mult: float = Field(1.0, gt=0, le=20)
    target_atr_mult: float = Field(1.5, gt=0, le=50)
    max_hold_minutes: int = Field(60, ge=1, le=60 * 24 * 30)


class MomentumBreakoutParams(ExitParams):
    timeframe: EntryTF = "5m"
    range_lookback: int = Field(20, ge=3, le=500, description="Donchian range length (candles)")
    volume_window: int = Field(20, ge=2, le=500)
    volume_mult: float = Field(2.0, ge=1.0, le=20.0)
    confirm_timeframes: tuple[EntryTF, ...] = ("15m", "1h")
    confirm_ema_period: int = Field(20, ge=2, le=500)
    require_high_volatility: bool = False
    entry_type: Literal["limit", "market"] = "market"
    stop_atr_mult: float = Field(1.0, gt=0, le=20)
    target_atr_mult: float = Field(2.0, gt=0, le=50)
    max_hold_minutes: int = Field(120, ge=1, le=60 * 24 * 30)


class FundingArbitrageParams(ExitParams):
    timeframe: EntryTF = "1h"
    extreme_rate: float = Field(
        0.0005, gt=0, lt=0.03, description="|funding rate| per period that counts as extreme"
    )
    max_rate_age_hours: float = Field(8.0, gt=0, le=72)
    stop_atr_mult: float = Field(2.0, gt=0, le=20)
    target_atr_mult: float = Field(3.0, gt=0, le=50)
    max_hold_minutes: int = Field(8 * 60, ge=1, le=60 * 24 * 30)


class LiquidationZonesParams(ExitParams):
    timeframe: EntryTF = "5m"
    oi_lookback_hours: float = Field(24.0, gt=0, le=24 * 14)
    oi_growth_min_pct: float = Field(
        0.5, gt=0, le=100, description="OI growth over one step that marks new positions (%)"
    )
    leverages: tuple[int, ...] = (10, 20, 25, 50, 100)
    zone_bin_pct: float = Field(0.1, gt=0, le=5, description="price bin width for zones (%)")
    approach_pct: float = Field(0.3, gt=0, le=10, description="distance to a zone that arms (%)")
    min_zone_share: float = Field(
        0.15, gt=0, le=1, description="share of estimated liquidations a zone must hold"
    )
    maintenance_margin_rate: float = Field(
        0.004, ge=0, lt=0.5, description="maintenance margin rate assumed for the liquidations"
    )
    stop_atr_mult: float = Field(1.0, gt=0, le=20)
    target_atr_mult: float = Field(2.0, gt=0, le=50)
    entry_type: Literal["limit", "market"] = "market"
    max_hold_minutes: int = Field(60, ge=1, le=60 * 24 * 30)

    @model_validator(mode="after")
    def _leverages_positive(self) -> LiquidationZonesParams:
        if not self.leverages or any(lev < 1 or lev > 125 for lev in self.leverages):
            raise ValueError("leverages must be a non-empty list of values between 1 and 125")
        if self.maintenance_margin_rate >= 1 / max(self.leverages):
            raise ValueError(
                f"maintenance_margin_rate ({self.maintenance_margin_rate}) must be below "
                f"1/leverage for every leverage (1/{max(self.leverages)})"
            )
        return self


class OrderFlowParams(StrategyParams):
    book_levels: int = Field(10, ge=1, le=100, description="levels per side in the imbalance")
    imbalance_threshold: float = Field(
        1.5, gt=1.0, le=20, description="bid/ask depth ratio that counts as imbalance"
    )
    large_order_mult: float = Field(
        5.0, gt=1, le=100, description="a level this many times the median size is large"
    )
    delta_window_seconds: int = Field(
        60,
        ge=1,
        le=3600,
        description="trades window of the volume delta; also the oldest book used",
    )
    delta_threshold: float = Field(
        0.2, gt=0, le=1, description="|buy − sell| / taker volume that counts as one-sided flow"
    )
    absorption_max_move_pct: float = Field(
        0.02,
        ge=0,
        le=5,
        description="largest price move (%) that one-sided flow can make and "
        "still count as absorbed",
    )
    max_adjustment: float = Field(
        0.2, ge=0, le=1, description="largest score change the filter applies"
    )


class SwingBaselineParams(ExitParams):
    timeframe: EntryTF = "1h"
    fast_ema: int = Field(20, ge=2, le=500)
    slow_ema: int = Field(50, ge=3, le=1000)
    entry_type: Literal["limit", "market"] = "market"
    stop_atr_mult: float = Field(2.0, gt=0, le=20)
    target_atr_mult: float = Field(4.0, gt=0, le=50)
    max_hold_minutes: int = Field(60 * 24 * 3, ge=1, le=60 * 24 * 30)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SwingBaselineParams:
        if self.fast_ema >= self.slow_ema:
            raise ValueError(f"fast_ema ({self.fast_ema}) must be below slow_ema ({self.slow_ema})")
        return self
