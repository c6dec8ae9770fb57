"""The built-in strategies. Importing this module registers each of them (one line each)."""

from __future__ import annotations

from strategies.core import (  # noqa: F401
    funding_arbitrage,
    liquidation_zones,
    momentum_breakout,
    order_flow,
    swing_baseline,
    vwap_rsi,
)
