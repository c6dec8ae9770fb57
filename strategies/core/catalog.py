"""The strategy registry: every built-in strategy kind, one line each.

The registry is a plain table built here from the strategy modules, which import only
``strategies.core.base``: no import runs back (base never imports this module).
Registering a new strategy is one line in :data:`BUILT_IN`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from strategies.core.base import (
    InvalidParams,
    Strategy,
    StrategyParams,
    UnknownStrategy,
    format_validation_errors,
)
from strategies.core.funding_arbitrage import FundingArbitrage
from strategies.core.liquidation_zones import LiquidationZones
from strategies.core.momentum_breakout import MomentumBreakout
from strategies.core.order_flow import OrderFlow
from strategies.core.swing_baseline import SwingBaseline
from strategies.core.vwap_rsi import VwapRsi

BUILT_IN: tuple[type[Strategy], ...] = (
    VwapRsi,
    LiquidationZones,
    OrderFlow,
    MomentumBreakout,
    FundingArbitrage,
    SwingBaseline,
)
REGISTRY: dict[str, type[Strategy]] = {cls.kind: cls for cls in BUILT_IN}


def strategy_class(kind: str) -> type[Strategy]:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise UnknownStrategy(kind, sorted(REGISTRY)) from None


def build_params(
    kind: str, params: Mapping[str, Any], override: Mapping[str, Any] | None = None
) -> StrategyParams:
    """Validate ``params`` merged with a per-symbol ``override`` against ``kind``'s schema.

    The override is merged key by key over the defaults, then the whole result is validated,
    so a symbol runs with exactly the parameters that were validated for it.
    """
    schema = strategy_class(kind).Params
    merged = {**params, **(override or {})}
    try:
        return schema.model_validate(merged)
    except ValidationError as exc:
        raise InvalidParams(kind, format_validation_errors(exc)) from None


def build_strategy(
    kind: str, params: Mapping[str, Any], override: Mapping[str, Any] | None = None
) -> Strategy:
    return strategy_class(kind)(build_params(kind, params, override))
