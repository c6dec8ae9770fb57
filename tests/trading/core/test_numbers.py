"""The one number formatter (trading.core.numbers): worked examples a trader would read."""

from __future__ import annotations

import math

import pytest

from trading.core import numbers as n

M = "\u2212"  # typographic minus


@pytest.mark.parametrize(
    "value,tick,expected",
    [
        (104131.4083, 0.1, "104,131.4"),  # the example: off the 0.1 tick
        (104131.46, 0.1, "104,131.5"),  # nearest tick
        (2500, 0.01, "2,500.00"),  # ETH: tick decimals kept
        (145.1234, 0.001, "145.123"),  # SOL
        (0.1 + 0.2, 0.1, "0.3"),  # float noise gone
        (104000.5, 0.5, "104,000.5"),  # a 0.5 tick
        (104003, 5, "104,005"),  # a tick of 5: rounded to a multiple of 5
        (104131.4083, None, "104,131.4083"),  # no tick known: 4 decimals, zeros cut
        (0.000123456, None, "0.00012346"),  # below 1 USDT: 8 decimals
        (-5.25, 0.01, f"{M}5.25"),
    ],
)
def test_prices_sit_on_the_instruments_tick(value, tick, expected):
    assert n.fmt_price(value, tick) == expected


def test_csv_prices_are_plain_numbers():
    assert n.fmt_price(104131.4083, 0.1, grouping=False) == "104131.4"
    assert n.fmt_price(-5.25, 0.01, grouping=False) == "-5.25"
    assert float(n.fmt_price(104131.4083, 0.1, grouping=False)) == pytest.approx(104131.4)
    assert n.fmt_price(None, 0.1, grouping=False) == ""


@pytest.mark.parametrize(
    "value,step,expected",
    [(0.0123, 0.001, "0.012"), (1.5, 0.01, "1.50"), (1200, 1, "1,200"), (0.5, None, "0.5")],
)
def test_quantities_sit_on_the_lot(value, step, expected):
    assert n.fmt_qty(value, step) == expected


def test_money_has_two_decimals_sign_and_unit():
    assert n.fmt_money(-1234.5, "USDT") == f"{M}1,234.50 USDT"
    assert n.fmt_money(12.3, signed=True) == "+12.30"
    assert n.fmt_money(0.0, signed=True) == "0.00"  # zero has no sign
    assert n.fmt_money(-0.001) == "0.00"  # never "-0.00"
    assert n.fmt_money(1_000_000) == "1,000,000.00"


def test_percentages_are_signed_unless_a_share():
    assert n.fmt_pct(1.2345) == "+1.23 %"
    assert n.fmt_pct(-0.4) == f"{M}0.40 %"
    assert n.fmt_pct(0.0) == "0.00 %"
    assert n.fmt_pct(55.0, signed=False, places=1) == "55.0 %"
    assert n.fmt_pct(0.01234, places=4) == "+0.0123 %"  # a funding rate


def test_counts_ratios_and_durations():
    assert n.fmt_count(3.0) == "3"
    assert n.fmt_count(1204) == "1,204"
    assert n.fmt_ratio(1.849) == "1.85"
    assert n.fmt_ratio(-0.42) == f"{M}0.42"
    assert [n.fmt_duration(s) for s in (0, 45, 725, 3725, 2 * 86_400 + 4 * 3600 + 59)] == [
        "0s",
        "45s",
        "12m 05s",
        "1h 02m",
        "2d 04h",
    ]


@pytest.mark.parametrize("bad", [None, "", "abc", math.nan, math.inf, -math.inf, True])
def test_no_number_is_a_dash_never_a_silent_zero(bad):
    assert n.fmt_price(bad, 0.1) == "—"
    assert n.fmt_qty(bad, 0.001) == "—"
    assert n.fmt_money(bad) == "—"
    assert n.fmt_pct(bad) == "—"
    assert n.fmt_count(bad) == "—"
    assert n.fmt_duration(bad) == "—"
