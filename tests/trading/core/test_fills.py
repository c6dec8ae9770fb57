"""Limit fills (maker, probabilistic, partial) and market/stop fills (taker + slippage)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.fees import Liquidity
from trading.core.fills import LimitFillModel, market_fill, stop_trigger_price
from trading.core.types import OrderSide, PriceBar, TradingCoreError

MODEL = LimitFillModel()  # base 0.8, touch factor 0.25, clear depth 0.0005, min fraction 0.25


def bar(low: float, high: float, open_: float = 40_050.0, close: float = 40_020.0) -> PriceBar:
    return PriceBar(0, open_, high, low, close)


def test_a_limit_buy_does_not_fill_when_the_low_stays_above_it() -> None:
    result = MODEL.fill(OrderSide.BUY, 40_000, 1, bar(low=40_001, high=40_100), draw=0.0)
    assert result.fill is None
    assert result.unfilled_qty == 1
    assert result.probability == 0.0


def test_a_limit_buy_traded_through_fills_part_of_the_queue_as_maker() -> None:
    """Low 39,990 under 40,000: depth 10 / 40,000 = 0.00025 = half the clear depth 0.0005;
    fraction 0.25 + 0.75 × 0.5 = 0.625 BTC at 40,000; fee 0.625 × 40,000 × 0.0002 = 5 USDT."""
    result = MODEL.fill(OrderSide.BUY, 40_000, 1, bar(low=39_990, high=40_100), draw=0.5)
    assert result.fill is not None
    assert result.fill.qty == pytest.approx(0.625)
    assert result.fill.price == 40_000
    assert result.fill.liquidity is Liquidity.MAKER
    assert result.fill.fee == pytest.approx(5.0)
    assert result.unfilled_qty == pytest.approx(0.375)


def test_a_draw_above_the_fill_probability_leaves_the_order_unfilled() -> None:
    """Traded through → probability 0.8; draw 0.85 ≥ 0.8 → nothing."""
    result = MODEL.fill(OrderSide.BUY, 40_000, 1, bar(low=39_990, high=40_100), draw=0.85)
    assert result.fill is None
    assert result.probability == pytest.approx(0.8)


def test_touching_the_limit_only_fills_with_reduced_probability_and_the_minimum_fraction() -> None:
    """Low == 40,000: probability 0.8 × 0.25 = 0.2. Draw 0.3 → no fill; draw 0.1 → 0.25 BTC."""
    touch = bar(low=40_000, high=40_100)
    assert MODEL.fill(OrderSide.BUY, 40_000, 1, touch, draw=0.3).fill is None
    result = MODEL.fill(OrderSide.BUY, 40_000, 1, touch, draw=0.1)
    assert result.probability == pytest.approx(0.2)
    assert result.fill is not None
    assert result.fill.qty == pytest.approx(0.25)


def test_trading_deep_through_the_limit_fills_the_whole_order() -> None:
    """Low 39,900: depth 0.0025 ≥ 0.0005 → fraction 1."""
    result = MODEL.fill(OrderSide.BUY, 40_000, 1, bar(low=39_900, high=40_100), draw=0.0)
    assert result.fill is not None
    assert result.fill.qty == 1
    assert result.unfilled_qty == 0


def test_a_limit_sell_uses_the_candles_high() -> None:
    """Sell at 40,100, high 40,110: depth 10 / 40,100 < 0.0005 → partial; high 40,100 → touch."""
    through = MODEL.fill(OrderSide.SELL, 40_100, 1, bar(low=39_990, high=40_110), draw=0.5)
    assert through.fill is not None
    assert 0.25 < through.fill.qty < 1
    assert MODEL.fill(
        OrderSide.SELL, 40_100, 1, bar(low=39_990, high=40_100), draw=0.5
    ).probability == pytest.approx(0.2)


def test_the_same_seed_gives_the_same_fill() -> None:
    candle = [0, 40_050, 40_100, 39_995, 40_020, 12.5]
    a = MODEL.fill(OrderSide.BUY, 40_000, 1, candle, rng=np.random.default_rng(7))
    b = MODEL.fill(OrderSide.BUY, 40_000, 1, np.array(candle), rng=np.random.default_rng(7))
    assert a == b


def test_a_partial_fill_is_rounded_down_to_the_quantity_step() -> None:
    """0.01 BTC × 0.625 = 0.00625 → 0.006 with step 0.001; 0.004 stays unfilled."""
    result = MODEL.fill(
        OrderSide.BUY, 40_000, 0.01, bar(low=39_990, high=40_100), draw=0.5, qty_step=0.001
    )
    assert result.fill is not None
    assert result.fill.qty == 0.006
    assert result.unfilled_qty == pytest.approx(0.004)


def test_exactly_one_source_of_randomness_is_required() -> None:
    with pytest.raises(TradingCoreError, match="exactly one"):
        MODEL.fill(OrderSide.BUY, 40_000, 1, bar(low=39_990, high=40_100))
    with pytest.raises(TradingCoreError, match="exactly one"):
        MODEL.fill(
            OrderSide.BUY, 40_000, 1, bar(39_990, 40_100), rng=np.random.default_rng(1), draw=0.1
        )


@given(
    low_offset=st.floats(min_value=-200, max_value=200),
    qty=st.floats(min_value=0.001, max_value=10),
    draw=st.floats(min_value=0, max_value=0.999999),
)
def test_a_limit_fill_never_exceeds_the_order_and_always_trades_at_the_limit(
    low_offset: float, qty: float, draw: float
) -> None:
    low = 40_000 + low_offset
    candle = PriceBar(0, max(low, 40_050), max(low, 40_100), low, max(low, 40_020))
    result = MODEL.fill(OrderSide.BUY, 40_000, qty, candle, draw=draw)
    filled = result.fill.qty if result.fill else 0.0
    assert filled + result.unfilled_qty == pytest.approx(qty)
    assert filled <= qty
    if result.fill:
        assert result.fill.price == 40_000
        assert low <= 40_000


def test_a_market_buy_pays_the_taker_fee_on_the_slipped_price() -> None:
    """1 BTC, reference 40,000, 0.05 %: 40,020, slippage 20, fee 40,020 × 0.0006 = 24.012."""
    fill = market_fill(OrderSide.BUY, 40_000, 1)
    assert fill.price == pytest.approx(40_020)
    assert fill.slippage_usdt == pytest.approx(20)
    assert fill.fee == pytest.approx(24.012)
    assert fill.liquidity is Liquidity.TAKER


def test_a_stop_gapped_over_triggers_at_the_open() -> None:
    """Sell stop 99 (closing a long): open 97 → 97; open 100 → the stop itself, 99."""
    assert stop_trigger_price(OrderSide.SELL, 99, 97) == 97
    assert stop_trigger_price(OrderSide.SELL, 99, 100) == 99
    assert stop_trigger_price(OrderSide.BUY, 101, 103) == 103
