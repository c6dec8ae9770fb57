"""Tick and lot rounding and the exchange minimums: one rounding for every engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trading.core.orders import (
    BUNDLED_ASSET_RULES,
    InstrumentRules,
    MissingInstrumentRules,
    Rounding,
    round_to_step,
    rules_for,
)

BTC = InstrumentRules(price_tick=0.1, qty_step=0.001, min_qty=0.001, min_notional_usdt=5.0)


def test_a_quantity_rounds_down_to_the_step_without_float_noise() -> None:
    """0.1 + 0.2 = 0.30000000000000004 → 0.3 on a 0.1 step; 0.3 / 0.1 = 2.9999999999999996
    still counts 3 steps; 0.34749 → 0.347 on a 0.001 step."""
    sol = InstrumentRules(qty_step=0.1)
    assert sol.round_qty(0.1 + 0.2) == 0.3
    assert sol.round_qty(0.3) == 0.3
    assert BTC.round_qty(0.34749) == 0.347
    assert BTC.round_qty(1.0 - 1e-12) == 1.0


def test_a_price_rounds_to_the_tick_in_the_direction_asked() -> None:
    """64,123.47 on a 0.1 tick: down 64,123.4, up 64,123.5; a price on the grid stays."""
    assert BTC.round_price(64_123.47, Rounding.DOWN) == 64_123.4
    assert BTC.round_price(64_123.47, Rounding.UP) == 64_123.5
    assert BTC.round_price(64_123.4, Rounding.UP) == 64_123.4
    assert round_to_step(0.7, 0.0, Rounding.UP) == 0.7


def test_the_minimums_refuse_with_a_reason_a_trader_reads() -> None:
    """0.0005 BTC < 0.001 minimum; 0.001 BTC at 4,000 = 4 USDT < 5 USDT; 0.002 × 4,000 = 8 ok."""
    assert "below the exchange minimum of 0.001" in (BTC.check_minimums(0.0005, 40_000) or "")
    reason = BTC.check_minimums(0.001, 4_000) or ""
    assert "4.00 USDT notional" in reason and "minimum of 5 USDT" in reason
    assert BTC.check_minimums(0.002, 4_000) is None


def test_a_symbol_without_rules_is_refused_not_guessed() -> None:
    with pytest.raises(MissingInstrumentRules, match="no market rules for XRP/USDT:USDT"):
        rules_for(BUNDLED_ASSET_RULES, "XRP/USDT:USDT")
    assert rules_for(BUNDLED_ASSET_RULES, "BTCUSDT") is BUNDLED_ASSET_RULES["BTC/USDT:USDT"]


def test_the_bundled_rules_are_the_ones_assets_yaml_states() -> None:
    path = Path(__file__).resolve().parents[3] / "config" / "assets.yaml"
    assets = {a["symbol"]: a for a in yaml.safe_load(path.read_text())["assets"]}
    for symbol, rules in BUNDLED_ASSET_RULES.items():
        a = assets[symbol]
        assert (rules.price_tick, rules.qty_step, rules.min_qty) == (
            a["price_tick"],
            a["qty_step"],
            a["min_qty"],
        )
        assert rules.min_notional_usdt == a["min_notional_usdt"]
        assert rules.max_leverage == a["max_leverage"]
