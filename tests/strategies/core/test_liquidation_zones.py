"""Liquidation zones: levels from past OI build-ups, firing on real candles, skipped without OI."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.core.base import EntryType, StrategySkipped
from strategies.core.catalog import build_params, strategy_class
from strategies.core.liquidation_zones import liquidation_zones, oi_build_ups
from strategies.core.snapshot import SnapshotBuilder
from tests.strategies.core.factories import (
    candles,
    close_of,
    eth_1m,
    recorded_style_open_interest,
    snapshot,
)
from trading.core.types import Side

FIVE_MIN = 300_000


def flat_then_rise(last_closes: tuple[float, ...] = (100.2, 100.4)) -> np.ndarray:
    """20 5m candles at 100 (wicks 0.05), then ``last_closes``."""
    return candles([100.0] * 20 + list(last_closes), spread=0.05)


def open_interest_for(rows: np.ndarray, build_up_index: int | None = 5) -> np.ndarray:
    """One OI sample at each candle's open: flat 1,000 with +10 (+1 %) at ``build_up_index``."""
    oi = np.full(len(rows), 1000.0)
    if build_up_index is not None:
        oi[build_up_index:] += 10.0
    return np.column_stack([rows[:, 0], oi])


def test_liquidation_prices_follow_leverage_and_maintenance_margin() -> None:
    """Entry 100 at 50× with m = 0.4 %: long 100 × (1 − 0.02 + 0.004) = 98.4, short
    100 × (1 + 0.02 − 0.004) = 101.6; the zone of each holds 1/5 of the 10 contracts added."""
    rows = flat_then_rise()
    market = snapshot({"5m": rows}, open_interest=open_interest_for(rows))
    params = build_params("liquidation_zones", {"leverages": [50], "zone_bin_pct": 0.01})
    zones = liquidation_zones(market, rows, params)  # type: ignore[arg-type]
    by_side = {zone.liquidated_side: zone for zone in zones}
    assert by_side[Side.LONG].low <= 98.4 < by_side[Side.LONG].high
    assert by_side[Side.SHORT].low <= 101.6 < by_side[Side.SHORT].high
    assert by_side[Side.SHORT].weight == pytest.approx(10.0)
    assert by_side[Side.SHORT].share == pytest.approx(1.0)


def test_a_build_up_is_an_oi_step_of_at_least_the_minimum_growth() -> None:
    """1000 → 1010 is +1.0 % ≥ 0.5 %: one build-up of 10 at the close of the candle holding
    the sample (100); 1010 → 1012 (+0.2 %) is not one."""
    rows = flat_then_rise()
    oi = open_interest_for(rows)
    oi[8:, 1] += 2.0
    prices, weights, _ = oi_build_ups(oi, rows, close_of(rows, "5m"), 24.0, 0.5)
    assert prices.tolist() == [100.0]
    assert weights.tolist() == [10.0]


def test_zones_do_not_move_with_the_current_price() -> None:
    """Same OI history, last close 100.4 or 100.1: the same zones (the predecessor's zones were
    computed from the current price and could never be reached)."""
    params = build_params("liquidation_zones", {})
    maps = []
    for last in (100.4, 100.1):
        rows = flat_then_rise((100.2, last))
        market = snapshot({"5m": rows}, open_interest=open_interest_for(rows))
        maps.append(liquidation_zones(market, rows, params))  # type: ignore[arg-type]
    assert maps[0] == maps[1]


def test_rising_toward_a_dense_short_liquidation_zone_goes_long() -> None:
    """Build-up at 100: the 100× shorts liquidate at 100 × (1 + 0.01 − 0.004) = 100.6, a zone
    holding 1/5 = 20 % ≥ 15 % of the short map. Close 100.4 > previous 100.2 and the zone starts
    within 0.3 % above → long at market (forced short covering pushes price up)."""
    rows = flat_then_rise()
    market = snapshot({"5m": rows}, open_interest=open_interest_for(rows))
    signal = strategy_class("liquidation_zones")().decide(market)
    assert signal is not None
    assert (signal.side, signal.entry_type, signal.entry_price) == (
        Side.LONG,
        EntryType.MARKET,
        100.4,
    )
    assert "short liquidations estimated at 100.5" in signal.reasons[0]


def test_a_level_already_traded_through_is_consumed() -> None:
    """A later candle's high reached 100.7 ≥ 100.6: those shorts are gone, nothing to hunt."""
    rows = flat_then_rise()
    rows[15, 2] = 100.7
    market = snapshot({"5m": rows}, open_interest=open_interest_for(rows))
    assert strategy_class("liquidation_zones")().decide(market) is None


def test_without_an_oi_build_up_there_is_no_zone_and_no_trade() -> None:
    rows = flat_then_rise()
    market = snapshot({"5m": rows}, open_interest=open_interest_for(rows, None))
    assert strategy_class("liquidation_zones")().decide(market) is None


def test_without_open_interest_it_reports_skipped_with_a_reason() -> None:
    market = snapshot({"5m": flat_then_rise()})
    strategy = strategy_class("liquidation_zones")()
    assert strategy.missing_inputs(market) == "no open-interest history"
    with pytest.raises(StrategySkipped, match="liquidation_zones skipped: no open-interest"):
        strategy.decide(market)


ETH_START, ETH_END = 1_749_686_400_000, 1_750_118_400_000
BUILD_UP_MS = 1_749_854_400_000  # 2025-06-13 22:40 UTC


def test_it_fires_on_real_eth_candles_with_a_recorded_style_oi_series() -> None:
    """Real ETH 5m candles; synthetic OI (no real OI history exists for the period): 2,000,000
    ETH with +20,000 (+1 %) at 22:40 UTC on 2025-06-13, inside the candle 22:40–22:45 that
    closed at 2,560.29. 100× shorts liquidate at 2,560.29 × 1.006 = 2,575.65 (zone
    2,573.63–2,576.21, 20 % of the short map). At 22:50 the close 2,568.63 rose from 2,560.29
    and the zone is (2,573.63 − 2,568.63) / 2,568.63 = 0.19 % above → long; ATR(14) 6.41185 →
    stop 2,568.63 − 6.41185 = 2,562.2182, target 2,568.63 + 2 × 6.41185 = 2,581.4537."""
    oi = recorded_style_open_interest(ETH_START, ETH_END, {BUILD_UP_MS: 20_000.0})
    builder = SnapshotBuilder("ETH/USDT:USDT", eth_1m(), ("5m",), open_interest=oi)
    strategy = strategy_class("liquidation_zones")()
    fired = [
        int(t)
        for t in builder.close_times_ms("5m")
        if BUILD_UP_MS - 3_600_000 <= t <= BUILD_UP_MS + 3_600_000
        and strategy.decide(builder.at(int(t)))
    ]
    assert fired[0] == BUILD_UP_MS + 2 * FIVE_MIN
    signal = strategy.decide(builder.at(fired[0]))
    assert signal is not None
    assert signal.side is Side.LONG
    assert signal.entry_price == pytest.approx(2568.63, abs=1e-9)
    assert signal.stop_loss == pytest.approx(2562.21815103064, abs=1e-9)
    assert signal.take_profit == pytest.approx(2581.453697938721, abs=1e-9)
    assert signal.reasons[0].startswith("short liquidations estimated at 2,573.63–2,576.21")


def test_the_same_real_candles_without_a_build_up_never_fire() -> None:
    oi = recorded_style_open_interest(ETH_START, ETH_END, {})
    builder = SnapshotBuilder("ETH/USDT:USDT", eth_1m(), ("5m",), open_interest=oi)
    strategy = strategy_class("liquidation_zones")()
    assert not any(strategy.decide(builder.at(int(t))) for t in builder.close_times_ms("5m"))
