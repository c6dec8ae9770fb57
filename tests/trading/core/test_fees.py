"""Fees: one rule, fee = qty × price × rate (USDT)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.fees import BITGET_VIP0, FeeSchedule, Liquidity, fee_for_fill
from trading.core.types import TradingCoreError

quantities = st.floats(min_value=1e-6, max_value=1e4, allow_nan=False)
prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False)


def test_one_btc_at_40000_costs_24_usdt_as_taker_and_8_usdt_as_maker() -> None:
    """Bitget's example (ref §1): 1 × 40,000 × 0.0006 = 24; 1 × 40,000 × 0.0002 = 8."""
    assert fee_for_fill(1, 40_000, Liquidity.TAKER) == pytest.approx(24.0)
    assert fee_for_fill(1, 40_000, Liquidity.MAKER) == pytest.approx(8.0)


def test_half_an_eth_at_3000_costs_0_9_usdt_as_taker() -> None:
    """0.5 × 3,000 = 1,500 notional; × 0.0006 = 0.9 USDT."""
    assert fee_for_fill(0.5, 3_000, Liquidity.TAKER, BITGET_VIP0) == pytest.approx(0.9)


@given(qty=quantities, price=prices, k=st.floats(min_value=0.01, max_value=100))
def test_fee_is_linear_in_quantity(qty: float, price: float, k: float) -> None:
    for liquidity in Liquidity:
        assert fee_for_fill(k * qty, price, liquidity) == pytest.approx(
            k * fee_for_fill(qty, price, liquidity), rel=1e-12
        )


@given(qty=quantities, price=prices)
def test_round_trip_maker_in_taker_out_costs_0_08_percent_of_notional(
    qty: float, price: float
) -> None:
    """0.0002 + 0.0006 = 0.0008 of notional when entry and exit prices are equal."""
    round_trip = fee_for_fill(qty, price, Liquidity.MAKER) + fee_for_fill(
        qty, price, Liquidity.TAKER
    )
    assert round_trip == pytest.approx(0.0008 * qty * price, rel=1e-12)


def test_a_negative_quantity_is_refused() -> None:
    with pytest.raises(TradingCoreError, match="fill quantity"):
        fee_for_fill(-1, 40_000, Liquidity.TAKER)


def test_a_maker_rebate_larger_than_the_taker_fee_is_refused() -> None:
    with pytest.raises(TradingCoreError, match="rebate"):
        FeeSchedule(maker_rate=-0.001, taker_rate=0.0006)
