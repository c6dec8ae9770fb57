"""Prices are shown as quoted: no padding zeros, no float noise (the ``price`` filter)."""

from __future__ import annotations

import pytest

from common.presenters import render_event
from strategies.templatetags.prices import price


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (104_321.5, "104321.5"),
        (104_000.10000000001, "104000.1"),
        (2_500.0, "2500"),
        (151.234, "151.234"),
        (0.00012345678, "0.00012346"),
        (-0.00001, "-0.00001"),
        (0.0, "0"),
        (None, "None"),
        (float("nan"), "nan"),
        ("n/a", "n/a"),
    ],
)
def test_price_filter(value: object, shown: str) -> None:
    assert price(value) == shown


def test_a_live_price_tick_renders_without_padding_zeros() -> None:
    html = render_event(
        "market.price",
        {"symbol": "BTC/USDT:USDT", "price": 104_321.5, "time_ms": 1_750_118_460_000},
    )
    assert ">104321.5</b>" in html, html
