"""The replay's idle skipping changes nothing: every event, the equity curve and the final
kernel state equal those of the reference loop that sends EVERY candle through ``on_candle``
(what the live runtime does), for every strategy on the bundled real data."""

from __future__ import annotations

import numpy as np
import pytest

from backtests.core.engine import run_backtest
from strategies.core.kernel import KernelConfig, KillSwitchTripped
from tests.backtests.core.test_lookahead import BTC, BTC_FUNDING
from tests.strategies.core.factories import eth_1m, recorded_style_open_interest

RELAXED_VWAP = {"timeframe": "1m", "rsi_long_below": 35, "rsi_short_above": 65,
                "adx_range_max": 30}  # fmt: skip
CASES = {
    "vwap_rsi default": ("vwap_rsi", {}, {}, {}),
    "vwap_rsi 1m relaxed": ("vwap_rsi", RELAXED_VWAP, {}, {}),
    "momentum_breakout": ("momentum_breakout", {}, {}, {}),
    "funding_arbitrage": ("funding_arbitrage", {"extreme_rate": 0.00005},
                          {"funding": BTC_FUNDING}, {}),
    "swing_baseline": ("swing_baseline", {}, {}, {}),
    "liquidation_zones skipped": ("liquidation_zones", {}, {}, {}),
    "kill switch then shadow": ("momentum_breakout", {"volume_mult": 1.2}, {},
                                {"max_session_loss_pct": 0.3}),
}  # fmt: skip


def _both(kind: str, params: dict, inputs: dict, config: dict, candles: np.ndarray = BTC):
    cfg = KernelConfig(**config)
    skipped = run_backtest(kind, params, "BTC/USDT:USDT", candles, config=cfg, **inputs)
    every = run_backtest(kind, params, "BTC/USDT:USDT", candles, config=cfg, skip_idle=False,
                         **inputs)  # fmt: skip
    return skipped, every


@pytest.mark.parametrize("case", sorted(CASES))
def test_skipping_idle_candles_gives_the_same_run_as_feeding_every_candle(case: str) -> None:
    kind, params, inputs, config = CASES[case]
    fast, reference = _both(kind, params, inputs, config)
    assert [e.to_dict() for e in fast.events] == [e.to_dict() for e in reference.events]
    assert np.array_equal(fast.equity, reference.equity)
    assert np.array_equal(fast.in_position, reference.in_position)
    assert fast.final_state == reference.final_state
    assert fast.skipped_reason == reference.skipped_reason
    if case == "kill switch then shadow":
        assert any(isinstance(e, KillSwitchTripped) for e in fast.events)
        assert fast.shadow_trades


def test_liquidation_zones_with_open_interest_replay_identically() -> None:
    eth = eth_1m()
    oi = recorded_style_open_interest(int(eth[0, 0]), int(eth[-1, 0]) + 60_000,
                                      {1_749_854_400_000: 20_000.0})  # fmt: skip
    fast, reference = _both("liquidation_zones", {}, {"open_interest": oi}, {}, eth)
    assert fast.signals
    assert [e.to_dict() for e in fast.events] == [e.to_dict() for e in reference.events]
    assert fast.final_state == reference.final_state
