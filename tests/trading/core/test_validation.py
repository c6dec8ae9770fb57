"""The one set of market-data rules (trading.core.validation): no database, no framework."""

from __future__ import annotations

import math

import pytest

from trading.core.validation import (
    candle_checker,
    candle_problem,
    funding_problem,
    future_candle_problem,
    open_interest_problem,
    price_jump_problem,
)

T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC
MINUTE = 60_000
NOW = T0 + 10 * MINUTE + 30_000  # 00:10:30: the current minute opened at 00:10
GOOD = (T0, 100.0, 101.0, 99.0, 100.5, 3.0)


def test_a_good_candle_has_no_problem() -> None:
    assert candle_problem(GOOD, now_ms=NOW) is None
    assert candle_checker(now_ms=NOW)(GOOD) is None


def test_the_candle_of_the_current_minute_is_not_in_the_future_but_the_next_one_is() -> None:
    """Now 00:10:30: a candle opening 00:10 is the forming one; 00:11 is a minute ahead."""
    assert future_candle_problem(T0 + 10 * MINUTE, now_ms=NOW) is None
    problem = future_candle_problem(T0 + 11 * MINUTE, now_ms=NOW)
    assert problem is not None and "2025-06-17 00:11 UTC) is in the future" in problem


def test_a_year_3000_candle_is_in_the_future() -> None:
    row = (32_503_680_000_000, 100.0, 101.0, 99.0, 100.5, 3.0)
    problem = candle_problem(row, now_ms=NOW)
    assert problem == (
        "timestamp_ms 32503680000000 (3000-01-01 00:00 UTC) is in the future "
        "(now 2025-06-17 00:10 UTC)"
    )
    assert candle_checker(now_ms=NOW)(row) == problem


def test_a_timestamp_above_2_to_the_63_is_refused_without_an_overflow() -> None:
    huge = (2**63 // MINUTE + 1) * MINUTE
    problem = candle_problem((huge, 100.0, 101.0, 99.0, 100.5, 3.0), now_ms=NOW)
    assert problem is not None and "is in the future" in problem


def test_a_candle_before_the_listing_is_refused() -> None:
    problem = candle_problem(GOOD, now_ms=NOW, listed_ms=T0 + MINUTE)
    assert problem is not None and "before the exchange listed the symbol" in problem
    assert candle_problem(GOOD, now_ms=NOW, listed_ms=T0) is None


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ((T0, 1e300, 1e300, 1e300, 1e300, 1.0), "open 1e+300 is above 1e+12 (not a price)"),
        ((T0, 100.0, math.nan, 99.0, 100.5, 1.0), "high nan is not a finite number"),
        ((T0, 100.0, 101.0, 99.0, 100.5, math.inf), "volume inf is not a finite number"),
        ((T0, 100.0, 101.0, -1.0, 100.5, 1.0), "low -1.0 is not positive"),
        ((T0, 100.0, 100.2, 99.0, 100.5, 1.0), "high 100.2 < close 100.5"),
        ((T0, 100.0, 101.0, 100.2, 100.5, 1.0), "low 100.2 > open 100.0"),
        ((T0, 100.0, 101.0, 99.0, 100.5, -1.0), "volume -1.0 is negative"),
        ((T0, 100.0, 101.0, 99.0, 100.5, 1e19), "volume 1e+19 is above 1e+18"),
        ((T0 + 1, 100.0, 101.0, 99.0, 100.5, 1.0), "not aligned to the 1m grid"),
    ],
)
def test_each_absurd_value_is_named(row: tuple[float, ...], reason: str) -> None:
    problem = candle_problem(row, now_ms=NOW)
    assert problem is not None and reason in problem
    assert candle_checker(now_ms=NOW)(row) == problem


def test_a_candle_100_times_away_from_the_previous_close_is_a_spike() -> None:
    """Previous close 1.0: a high of 101 is 101× above it; 99 stays within 100×."""
    spike = (T0, 100.0, 101.0, 99.0, 100.5, 3.0)
    problem = candle_problem(spike, now_ms=NOW, previous_close=1.0)
    assert problem == "price 101 is more than 100× away from its neighbours (close 1)"
    assert candle_problem((T0, 1.0, 99.0, 1.0, 1.0, 3.0), now_ms=NOW, previous_close=1.0) is None


def test_a_spike_needs_more_than_half_of_its_neighbours_against_it() -> None:
    """Neighbours 100, 100, 1e5, 1e5 (a level that moved): a row at 1e5 is far from 2 of 4,
    a tie, so it is kept; against 100, 100, 100, 1e5 it is far from 3 of 4: a spike."""
    assert price_jump_problem(1e5, 1e5, [100.0, 100.0, 1e5, 1e5]) is None
    assert price_jump_problem(1e5, 1e5, [100.0, 100.0, 100.0, 1e5]) is not None
    assert price_jump_problem(1e5, 1e5, []) is None


def test_funding_rules() -> None:
    assert funding_problem((T0, 0.0001), now_ms=NOW) is None
    assert "is in the future" in str(funding_problem((T0 + 8 * 60 * MINUTE, 0.0001), now_ms=NOW))
    assert "before the exchange listed" in str(
        funding_problem((T0, 0.0001), now_ms=NOW, listed_ms=T0 + 1)
    )
    assert "beyond ±0.1 per period" in str(funding_problem((T0, 0.5), now_ms=NOW))
    assert "not a finite number" in str(funding_problem((T0, math.nan), now_ms=NOW))


def test_open_interest_rules() -> None:
    assert open_interest_problem((T0, 1234.5, None), now_ms=NOW) is None
    assert "is negative" in str(open_interest_problem((T0, -1.0, None), now_ms=NOW))
    assert "above 1e+18" in str(open_interest_problem((T0, 1e300, None), now_ms=NOW))
    assert "USDT is not a finite" in str(open_interest_problem((T0, 1.0, -5.0), now_ms=NOW))
    assert "is in the future" in str(
        open_interest_problem((32_503_680_000_000, 1.0, None), now_ms=NOW)
    )
