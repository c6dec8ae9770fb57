"""Funding: signed cash flow to the holder; settlements at 00:00/08:00/16:00 UTC."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.funding import HOUR_MS, funding_payment, settlement_times_ms
from trading.core.types import Side, TradingCoreError

JAN_1_2024_MS = 1_704_067_200_000  # 2024-01-01 00:00:00 UTC


def test_a_long_pays_and_a_short_receives_when_the_rate_is_positive() -> None:
    """0.1 BTC × 100,000 mark × 0.0001 = 1 USDT: the long pays 1, the short receives 1."""
    assert funding_payment(Side.LONG, 0.1, 100_000, 0.0001) == pytest.approx(-1.0)
    assert funding_payment(Side.SHORT, 0.1, 100_000, 0.0001) == pytest.approx(1.0)


def test_a_short_pays_when_the_rate_is_negative() -> None:
    """2 ETH × 3,000 × −0.0003 = −1.8 USDT of rate: the short pays 1.8, the long gets 1.8."""
    assert funding_payment(Side.SHORT, 2, 3_000, -0.0003) == pytest.approx(-1.8)
    assert funding_payment(Side.LONG, 2, 3_000, -0.0003) == pytest.approx(1.8)


@given(
    qty=st.floats(min_value=0, max_value=1e3),
    mark=st.floats(min_value=0.01, max_value=1e6),
    rate=st.floats(min_value=-0.03, max_value=0.03),
)
def test_funding_between_a_long_and_a_short_of_the_same_size_sums_to_zero(
    qty: float, mark: float, rate: float
) -> None:
    assert funding_payment(Side.LONG, qty, mark, rate) + funding_payment(
        Side.SHORT, qty, mark, rate
    ) == pytest.approx(0.0, abs=1e-9)


def test_settlements_fall_at_08_and_16_utc_inside_a_window_from_07_to_16() -> None:
    """Window (07:00, 16:00] on 2024-01-01 holds 08:00 (…096,000,000) and 16:00 (…124,800,000)."""
    start = JAN_1_2024_MS + 7 * HOUR_MS
    end = JAN_1_2024_MS + 16 * HOUR_MS
    assert settlement_times_ms(start, end) == [1_704_096_000_000, 1_704_124_800_000]


def test_a_position_opened_exactly_at_a_settlement_does_not_pay_it_but_one_open_at_it_does() -> (
    None
):
    at_8 = JAN_1_2024_MS + 8 * HOUR_MS
    assert settlement_times_ms(at_8, at_8 + 7 * HOUR_MS) == []
    assert settlement_times_ms(at_8 - 1, at_8) == [at_8]


def test_a_whole_day_has_three_eight_hour_settlements_starting_at_midnight() -> None:
    """(23:00 Dec 31, 23:00 Jan 1] holds 00:00, 08:00, 16:00 UTC of Jan 1."""
    start = JAN_1_2024_MS - HOUR_MS
    times = settlement_times_ms(start, start + 24 * HOUR_MS)
    assert times == [JAN_1_2024_MS, JAN_1_2024_MS + 8 * HOUR_MS, JAN_1_2024_MS + 16 * HOUR_MS]


def test_a_four_hour_symbol_settles_six_times_a_day() -> None:
    assert len(settlement_times_ms(JAN_1_2024_MS, JAN_1_2024_MS + 24 * HOUR_MS, 4)) == 6


def test_an_interval_that_does_not_divide_a_day_is_refused() -> None:
    with pytest.raises(TradingCoreError, match="dividing 24"):
        settlement_times_ms(JAN_1_2024_MS, JAN_1_2024_MS + HOUR_MS, interval_h=5)
