"""Slippage: walk the book when known, else the estimate; always adverse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.slippage import InsufficientDepth, SlippageModel, walk_book
from trading.core.types import OrderSide

ASKS = [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)]


def test_walking_the_asks_averages_the_levels_a_buy_consumes() -> None:
    """Buy 2: 1 @ 100 + 1 @ 101 = 201 → average 100.5 over 2 levels."""
    assert walk_book(ASKS, 2) == (pytest.approx(100.5), 2)


def test_an_order_that_fits_the_best_level_uses_one_level() -> None:
    assert walk_book(ASKS, 0.4) == (pytest.approx(100.0), 1)


def test_a_book_thinner_than_the_order_raises_insufficient_depth() -> None:
    with pytest.raises(InsufficientDepth, match="9 wanted, only 8 visible"):
        walk_book(ASKS, 9)


def test_the_estimate_moves_a_buy_up_and_a_sell_down() -> None:
    """2 ETH at 2,000, 0.05 %: buy 2,001 (cost 1 × 2 = 2 USDT); sell 1,999 (cost 2 USDT)."""
    model = SlippageModel()
    buy = model.fill_price(OrderSide.BUY, 2_000, 2)
    sell = model.fill_price(OrderSide.SELL, 2_000, 2)
    assert (buy.price, buy.slippage_usdt) == (pytest.approx(2_001), pytest.approx(2.0))
    assert (sell.price, sell.slippage_usdt) == (pytest.approx(1_999), pytest.approx(2.0))


def test_high_volatility_doubles_the_estimate() -> None:
    """0.05 % × 2 = 0.1 %: 2,000 → 2,002, cost 2 × 2 = 4 USDT."""
    fill = SlippageModel().fill_price(OrderSide.BUY, 2_000, 2, high_volatility=True)
    assert (fill.price, fill.slippage_usdt) == (pytest.approx(2_002), pytest.approx(4.0))


def test_a_book_walk_prices_a_market_buy_and_reports_its_cost() -> None:
    """Reference 100 (best ask), buy 3: 100 + 101 × 2 = 302 → 100.6667; cost 0.6667 × 3 = 2."""
    fill = SlippageModel().fill_price(OrderSide.BUY, 100, 3, book=ASKS)
    assert fill.price == pytest.approx(302 / 3)
    assert fill.slippage_usdt == pytest.approx(2.0)
    assert fill.levels_used == 2


def test_a_thin_book_fills_the_rest_past_the_worst_visible_level() -> None:
    """Sell 3 BTC, reference 50,000, bids 49,990 × 1 and 49,980 × 1; third BTC at
    49,980 × 0.9995 = 49,955.01 → avg 149,925.01 / 3 = 49,975.0033; cost 24.9967 × 3 = 74.99."""
    bids = [(49_990.0, 1.0), (49_980.0, 1.0)]
    fill = SlippageModel().fill_price(OrderSide.SELL, 50_000, 3, book=bids)
    assert fill.price == pytest.approx(149_925.01 / 3)
    assert fill.slippage_usdt == pytest.approx(74.99)


@given(
    side=st.sampled_from(OrderSide),
    reference=st.floats(min_value=1, max_value=1e5),
    qty=st.floats(min_value=1e-3, max_value=50),
    high_vol=st.booleans(),
    use_book=st.booleans(),
)
def test_slippage_is_never_in_the_traders_favour(
    side: OrderSide, reference: float, qty: float, high_vol: bool, use_book: bool
) -> None:
    book = [(reference * (1 + side.sign * i * 1e-4), 1.0) for i in range(10)] if use_book else None
    fill = SlippageModel().fill_price(side, reference, qty, book, high_vol)
    assert side.sign * (fill.price - reference) >= 0
    assert fill.slippage_usdt == pytest.approx(abs(fill.price - reference) * qty)
