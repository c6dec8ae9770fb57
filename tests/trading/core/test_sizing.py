"""Sizing from the stop: qty = capital × risk / (distance + fees + slippage), rounded down."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.fees import Liquidity
from trading.core.sizing import (
    InvalidStop,
    MarketRules,
    PositionTooSmall,
    cost_per_unit,
    market_rules_for,
    size_position,
)
from trading.core.types import Side

BTC = market_rules_for("BTC/USDT:USDT")


def test_a_long_btc_with_a_200_usdt_stop_risks_at_most_one_percent() -> None:
    """10,000 × 1 % = 100 USDT. Per BTC: 200 + 23.88 (exit fee) + 24 (taker entry fee)
    + 39.9 (slippage 19.9 + 20) = 287.78. 100 / 287.78 = 0.34749 → 0.347 BTC;
    notional 13,880; risk 0.347 × 287.78 = 99.85966 USDT."""
    size = size_position(
        side=Side.LONG,
        entry_price=40_000,
        stop_price=39_800,
        capital_usdt=10_000,
        max_risk_pct=1.0,
        rules=BTC,
    )
    assert size.cost_per_unit == pytest.approx(287.78)
    assert size.qty == 0.347
    assert size.notional_usdt == pytest.approx(13_880)
    assert size.risk_usdt == pytest.approx(99.85966)
    assert size.stop_distance_pct == pytest.approx(0.5)


def test_a_maker_entry_costs_less_per_unit_so_it_buys_more() -> None:
    """Maker entry: 200 + 23.88 + 8 + 19.9 (no entry slippage) = 251.78 → 0.39717 → 0.397."""
    size = size_position(
        side=Side.LONG,
        entry_price=40_000,
        stop_price=39_800,
        capital_usdt=10_000,
        max_risk_pct=1.0,
        entry_liquidity=Liquidity.MAKER,
        rules=BTC,
    )
    assert size.cost_per_unit == pytest.approx(251.78)
    assert size.qty == 0.397


def test_a_short_needs_its_stop_above_the_entry() -> None:
    with pytest.raises(InvalidStop, match="short stop must be above the entry"):
        size_position(
            side=Side.SHORT,
            entry_price=3_000,
            stop_price=2_990,
            capital_usdt=10_000,
            max_risk_pct=1.0,
        )


def test_a_budget_below_the_exchange_minimum_is_refused_with_the_numbers() -> None:
    """10 × 1 % = 0.1 USDT / 287.78 = 0.00035 BTC → 0 after the 0.001 step."""
    with pytest.raises(PositionTooSmall, match=r"0\.10 USDT .* minimum of 0\.001"):
        size_position(
            side=Side.LONG,
            entry_price=40_000,
            stop_price=39_800,
            capital_usdt=10,
            max_risk_pct=1.0,
            rules=BTC,
        )


def test_a_notional_below_the_exchange_minimum_is_refused() -> None:
    """No step, min 5 USDT: capital 3 × 1 % = 0.03 USDT / 287.78 = 0.00010425 BTC,
    × 40,000 = 4.17 USDT notional < 5 → refused."""
    with pytest.raises(PositionTooSmall, match=r"4\.17 USDT notional .* minimum of 5 USDT"):
        size_position(
            side=Side.LONG,
            entry_price=40_000,
            stop_price=39_800,
            capital_usdt=3,
            max_risk_pct=1.0,
            rules=MarketRules(min_notional_usdt=5),
        )


def test_a_notional_cap_shrinks_the_position_and_its_risk() -> None:
    """Cap 4,000 USDT → 0.1 BTC; risk 0.1 × 287.78 = 28.778 USDT."""
    size = size_position(
        side=Side.LONG,
        entry_price=40_000,
        stop_price=39_800,
        capital_usdt=10_000,
        max_risk_pct=1.0,
        rules=BTC,
        max_notional_usdt=4_000,
    )
    assert size.capped_by_notional
    assert size.qty == 0.1
    assert size.risk_usdt == pytest.approx(28.778)


@given(
    side=st.sampled_from(Side),
    entry=st.floats(min_value=1, max_value=200_000),
    stop_pct=st.floats(min_value=0.01, max_value=20),
    capital=st.floats(min_value=100, max_value=1e6),
    risk_pct=st.floats(min_value=0.1, max_value=5),
    liquidity=st.sampled_from(Liquidity),
    step=st.sampled_from([0.0, 0.001, 0.01, 0.1, 1.0]),
)
def test_sizing_never_risks_more_than_the_limit_and_respects_the_step(
    side: Side,
    entry: float,
    stop_pct: float,
    capital: float,
    risk_pct: float,
    liquidity: Liquidity,
    step: float,
) -> None:
    stop = entry * (1 - side.sign * stop_pct / 100)
    try:
        size = size_position(
            side=side,
            entry_price=entry,
            stop_price=stop,
            capital_usdt=capital,
            max_risk_pct=risk_pct,
            entry_liquidity=liquidity,
            rules=MarketRules(min_qty=step, qty_step=step),
        )
    except PositionTooSmall:
        per_unit, *_ = cost_per_unit(
            side=side, entry_price=entry, stop_price=stop, entry_liquidity=liquidity
        )
        assert capital * risk_pct / 100 / per_unit < step * (1 + 1e-6)
        return
    assert size.risk_usdt <= size.max_risk_usdt * (1 + 1e-9)
    assert size.qty >= step
    if step:
        assert size.qty / step == pytest.approx(round(size.qty / step), abs=1e-6)
        assert size.raw_qty - size.qty < step * (1 + 1e-6)
