"""Prices are shown on the instrument's tick, thousands grouped, in pages and in pushed partials
(the ``desk`` filters over ``trading.core.numbers``; worked examples in
tests/trading/core/test_numbers.py)."""

from __future__ import annotations

import pytest

from common.presenters import render_event
from trading.models import Asset


@pytest.mark.django_db
def test_a_live_price_tick_renders_on_the_tick_with_its_raw_value() -> None:
    Asset.objects.create(
        symbol="BTC/USDT:USDT", base="BTC", price_tick=0.1, qty_step=0.001, min_qty=0.001
    )
    html = render_event(
        "market.price",
        {"symbol": "BTC/USDT:USDT", "price": 104_321.5083, "time_ms": 1_750_118_460_000},
    )
    assert ">104,321.5</b>" in html, html
    # The page scripts (positions.js) read the raw value, never the formatted text.
    assert 'data-price="104321.5083"' in html


@pytest.mark.django_db
def test_without_a_known_tick_a_price_keeps_its_significant_decimals() -> None:
    html = render_event(
        "market.price",
        {"symbol": "XRP/USDT:USDT", "price": 0.52345678, "time_ms": 1_750_118_460_000},
    )
    assert ">0.52345678</b>" in html, html
