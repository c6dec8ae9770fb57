"""The six built-in strategies are registered with their schemas and declared inputs."""

from __future__ import annotations

import pytest

from strategies.core.base import InvalidParams, Role
from strategies.core.catalog import build_params, strategy_class
from strategies.core.params import LiquidationZonesParams

KINDS = {
    "vwap_rsi": Role.SIGNAL,
    "momentum_breakout": Role.SIGNAL,
    "funding_arbitrage": Role.SIGNAL,
    "liquidation_zones": Role.SIGNAL,
    "order_flow": Role.CONFIRMATION,
    "swing_baseline": Role.SIGNAL,
}


@pytest.mark.parametrize(("kind", "role"), KINDS.items())
def test_every_built_in_kind_is_registered_with_a_description(kind: str, role: Role) -> None:
    cls = strategy_class(kind)
    assert cls.kind == kind
    assert cls.role is role
    assert cls.description
    assert isinstance(cls(), cls)


def test_funding_and_open_interest_are_declared_where_they_are_needed() -> None:
    assert strategy_class("funding_arbitrage").inputs.funding
    assert strategy_class("liquidation_zones").inputs.open_interest
    order_flow = strategy_class("order_flow").inputs
    assert order_flow.order_book and order_flow.trades


def test_warmup_names_the_timeframes_the_parameters_use() -> None:
    """vwap_rsi on 1m with a 1h trend filter needs 1m and 1h candles, not the class defaults."""
    strategy = strategy_class("vwap_rsi")(
        build_params("vwap_rsi", {"timeframe": "1m", "trend_timeframe": "1h"})  # type: ignore[arg-type]
    )
    assert set(strategy.warmup_candles()) == {"1m", "1h"}


def test_a_maintenance_margin_at_or_above_one_over_leverage_is_refused() -> None:
    """At 125× the initial margin is 0.8 %: a 0.8 % maintenance margin liquidates at entry."""
    with pytest.raises(InvalidParams, match="maintenance_margin_rate"):
        build_params("liquidation_zones", {"leverages": [125], "maintenance_margin_rate": 0.008})
    assert isinstance(build_params("liquidation_zones", {}), LiquidationZonesParams)
