"""P&L: gross, net = gross − fees − funding, fee share of gross."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.pnl import fees_share_of_gross, gross_pnl, net_pnl, unrealised_pnl
from trading.core.types import Side

prices = st.floats(min_value=0.01, max_value=1e6)
money = st.floats(min_value=-1e5, max_value=1e5)


def test_a_long_earns_the_rise_times_the_quantity() -> None:
    """0.5 BTC from 40,000 to 40,400: 0.5 × 400 = 200 USDT."""
    assert gross_pnl(Side.LONG, 0.5, 40_000, 40_400) == pytest.approx(200)


def test_a_short_earns_the_fall_times_the_quantity() -> None:
    """2 ETH short from 3,000 to 2,970: −1 × 2 × (−30) = +60 USDT."""
    assert gross_pnl(Side.SHORT, 2, 3_000, 2_970) == pytest.approx(60)


def test_net_pnl_of_the_worked_example_subtracts_fees_and_funding_paid() -> None:
    """200 − 4 (maker in) − 12.12 (taker out: 0.5 × 40,400 × 0.0006) − 2 (funding) = 181.88;
    fee share 16.12 / 200 = 0.0806."""
    assert net_pnl(200, 4, 12.12, 2) == pytest.approx(181.88)
    assert fees_share_of_gross(16.12, 200) == pytest.approx(0.0806)


def test_funding_received_adds_to_net_pnl() -> None:
    """Funding cost −3 (received 3): 200 − 4 − 12.12 + 3 = 186.88."""
    assert net_pnl(200, 4, 12.12, -3) == pytest.approx(186.88)


def test_fees_are_about_forty_percent_of_gross_at_twenty_times_on_a_0_3_percent_move() -> None:
    """1,000 margin × 20 = 20,000 notional; +0.3 % → gross 60; fees 20,000 × 0.0006 +
    20,060 × 0.0006 = 24.036 → 24.036 / 60 = 0.4006."""
    gross = gross_pnl(Side.LONG, 0.5, 40_000, 40_120)
    fees = 0.5 * 40_000 * 0.0006 + 0.5 * 40_120 * 0.0006
    assert gross == pytest.approx(60)
    assert fees_share_of_gross(fees, gross) == pytest.approx(0.4006)


def test_the_fee_share_is_of_the_gross_size_and_undefined_only_at_zero() -> None:
    """A losing trade shows its fees too: gross −50, fees 12 → 24 % of |gross| (the fees made
    a loss of 50 into one of 62)."""
    assert fees_share_of_gross(12, 0) is None
    assert fees_share_of_gross(12, -50) == pytest.approx(0.24)
    assert fees_share_of_gross(12, 50) == pytest.approx(0.24)


def test_unrealised_pnl_values_the_position_at_mark() -> None:
    """Long 0.1 BTC from 100,000 at mark 99,000: −100 USDT."""
    assert unrealised_pnl(Side.LONG, 0.1, 100_000, 99_000) == pytest.approx(-100)


@given(gross=money, entry_fee=money, exit_fee=money, funding=money)
def test_net_is_gross_minus_fees_minus_funding(
    gross: float, entry_fee: float, exit_fee: float, funding: float
) -> None:
    assert net_pnl(gross, entry_fee, exit_fee, funding) == pytest.approx(
        gross - (entry_fee + exit_fee) - funding, abs=1e-6
    )


@given(qty=st.floats(min_value=0, max_value=1e3), entry=prices, exit_=prices)
def test_a_long_and_a_short_over_the_same_prices_are_mirror_images(
    qty: float, entry: float, exit_: float
) -> None:
    assert gross_pnl(Side.LONG, qty, entry, exit_) == -gross_pnl(Side.SHORT, qty, entry, exit_)
