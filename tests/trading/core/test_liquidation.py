"""Maintenance-margin tiers, liquidation prices and the leverage choice."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trading.core.liquidation import (
    LeverageNotAllowed,
    LiquidationBeforeStop,
    PositionBeyondTiers,
    choose_leverage,
    cross_liquidation_price,
    isolated_liquidation_price,
    liquidation_distance_pct,
    liquidation_price,
    maintenance_margin_rate,
)
from trading.core.types import MarginMode, Side


def test_btc_tiers_match_the_reference_with_an_inclusive_upper_bound() -> None:
    """BTCUSDT: 0–150k 0.40 %, 150k–900k 0.50 %, 900k–3M 1.00 % (ref/bitget.md §3)."""
    assert maintenance_margin_rate("BTCUSDT", 10_000) == 0.004
    assert maintenance_margin_rate("BTCUSDT", 150_000) == 0.004
    assert maintenance_margin_rate("BTCUSDT", 150_001) == 0.005
    assert maintenance_margin_rate("BTCUSDT", 1_000_000) == 0.01


def test_eth_and_sol_tiers_match_the_reference() -> None:
    assert maintenance_margin_rate("ETHUSDT", 200_000) == 0.004
    assert maintenance_margin_rate("ETHUSDT", 500_000) == 0.005
    assert maintenance_margin_rate("SOLUSDT", 50_000) == 0.005
    assert maintenance_margin_rate("SOLUSDT", 60_000) == 0.008
    assert maintenance_margin_rate("SOLUSDT", 200_000) == 0.01


def test_every_symbol_spelling_finds_the_same_tiers() -> None:
    assert maintenance_margin_rate("BTC/USDT:USDT", 200_000) == 0.005
    assert maintenance_margin_rate("btc-usdt", 200_000) == 0.005


def test_an_unknown_symbol_gets_the_conservative_default_table() -> None:
    assert maintenance_margin_rate("DOGEUSDT", 10_000) == 0.01
    assert maintenance_margin_rate("DOGEUSDT", 50_000) == 0.025


def test_a_position_beyond_the_known_tiers_is_refused() -> None:
    with pytest.raises(PositionBeyondTiers, match="3,500,000 USDT exceeds"):
        maintenance_margin_rate("BTCUSDT", 3_500_000)


def test_the_isolated_long_and_short_match_the_reference_example() -> None:
    """0.1 BTC at 100,000, 20× → M = 500, M/S = 5,000, MMR 0.4 %, taker 0.06 %:
    long (100,000 − 5,000) / 0.9954 = 95,439.02; short 105,000 / 1.0046 = 104,519.21."""
    long_liq = isolated_liquidation_price(Side.LONG, 100_000, 0.1, 500, 0.004, 0.0006)
    short_liq = isolated_liquidation_price(Side.SHORT, 100_000, 0.1, 500, 0.004, 0.0006)
    assert long_liq == pytest.approx(95_439.02, abs=0.01)
    assert short_liq == pytest.approx(104_519.21, abs=0.01)
    assert liquidation_price(
        symbol="BTCUSDT", side=Side.LONG, entry_price=100_000, qty=0.1, leverage=20
    ) == pytest.approx(long_liq)


def test_at_the_liquidation_price_only_maintenance_margin_and_the_closing_fee_are_left() -> None:
    """Ref check: loss 0.1 × 4,560.98 = 456.10; 500 − 456.10 = 43.90 = 0.1 × 95,439.02 × 0.0046."""
    liq = isolated_liquidation_price(Side.LONG, 100_000, 0.1, 500, 0.004, 0.0006)
    assert 500 - 0.1 * (100_000 - liq) == pytest.approx(0.1 * liq * 0.0046)
    assert 500 - 0.1 * (100_000 - liq) == pytest.approx(43.90, abs=0.01)


@given(
    side=st.sampled_from(Side),
    entry=st.floats(min_value=1, max_value=200_000),
    qty=st.floats(min_value=1e-3, max_value=100),
    leverage=st.integers(min_value=2, max_value=125),
    mmr=st.sampled_from([0.004, 0.005, 0.008, 0.01]),
)
def test_equity_at_any_liquidation_price_equals_maintenance_plus_closing_fee(
    side: Side, entry: float, qty: float, leverage: int, mmr: float
) -> None:
    margin = qty * entry / leverage
    assume(1 / leverage > (mmr + 0.0006) * (1 + 1e-9))
    liq = isolated_liquidation_price(side, entry, qty, margin, mmr, 0.0006)
    assume(liq > 0)
    equity_left = margin + side.sign * qty * (liq - entry)
    assert equity_left == pytest.approx(qty * liq * (mmr + 0.0006), rel=1e-6, abs=1e-9)
    assert side.sign * (entry - liq) > 0  # liquidation is always on the losing side


def test_a_one_times_long_cannot_be_liquidated_by_price() -> None:
    """M = notional: (E − E) / (1 − …) = 0 → 0.0, a 100 % adverse move."""
    liq = isolated_liquidation_price(Side.LONG, 100_000, 0.1, 10_000, 0.004)
    assert liq == 0.0
    assert liquidation_distance_pct(Side.LONG, 100_000, liq) == 100.0


def test_a_margin_below_maintenance_plus_closing_fee_is_refused_as_instant_liquidation() -> None:
    """95× leaves 1 / 95 = 1.05 % margin; MMR 1 % + taker 0.06 % = 1.06 % → refused."""
    with pytest.raises(LeverageNotAllowed, match=r"1\.05 %, not above the 1\.06 %"):
        isolated_liquidation_price(Side.LONG, 100, 1, 100 / 95, 0.01, 0.0006)


def test_the_cross_estimate_substitutes_available_equity_for_margin() -> None:
    """X = 2,000, X/S = 20,000: (100,000 − 20,000) / 0.9954 = 80,369.70."""
    assert cross_liquidation_price(Side.LONG, 100_000, 0.1, 2_000, 0.004) == pytest.approx(
        80_369.70, abs=0.01
    )
    assert liquidation_price(
        symbol="BTCUSDT",
        side=Side.LONG,
        entry_price=100_000,
        qty=0.1,
        leverage=20,
        margin_mode=MarginMode.CROSS,
        available_equity_usdt=2_000,
    ) == pytest.approx(80_369.70, abs=0.01)


def test_liquidation_distance_is_the_adverse_move_in_percent() -> None:
    """Long 100,000 → 95,439.02: 4.561 %; short 100,000 → 104,519.21: 4.519 %."""
    assert liquidation_distance_pct(Side.LONG, 100_000, 95_439.02) == pytest.approx(4.56098)
    assert liquidation_distance_pct(Side.SHORT, 100_000, 104_519.21) == pytest.approx(4.51921)


def test_the_lowest_leverage_the_margin_allows_is_chosen_when_liquidation_is_beyond_the_stop() -> (
    None
):
    """Notional 10,000 on 500 margin → at least 20×; Liq 95,439.02 ≤ 96,000 − 500 = 95,500."""
    choice = choose_leverage(
        symbol="BTCUSDT",
        side=Side.LONG,
        entry_price=100_000,
        stop_price=96_000,
        qty=0.1,
        capital_usdt=500,
        max_leverage=50,
    )
    assert choice.leverage == 20
    assert choice.margin_usdt == pytest.approx(500)
    assert choice.liquidation_price == pytest.approx(95_439.02, abs=0.01)
    assert choice.stop_distance_pct == pytest.approx(4.0)


def test_more_margin_means_lower_leverage() -> None:
    """10,000 notional on 3,000 margin → ceil(3.33) = 4×."""
    choice = choose_leverage(
        symbol="BTCUSDT",
        side=Side.SHORT,
        entry_price=100_000,
        stop_price=101_000,
        qty=0.1,
        capital_usdt=3_000,
        max_leverage=20,
    )
    assert choice.leverage == 4
    assert choice.liquidation_price > 101_000 + 500


def test_the_stop_is_refused_when_liquidation_comes_first() -> None:
    """Stop 95,800 needs Liq ≤ 95,800 − 500 = 95,300; at 20× Liq is 95,439.02 and higher
    leverage only brings it closer."""
    with pytest.raises(LiquidationBeforeStop, match=r"liquidates at 95,439\.02 .* beyond 95,300"):
        choose_leverage(
            symbol="BTCUSDT",
            side=Side.LONG,
            entry_price=100_000,
            stop_price=95_800,
            qty=0.1,
            capital_usdt=500,
            max_leverage=50,
        )


def test_a_position_needing_more_than_the_allowed_leverage_is_refused() -> None:
    with pytest.raises(LeverageNotAllowed, match="needs 20× leverage, above the 10× allowed"):
        choose_leverage(
            symbol="BTCUSDT",
            side=Side.LONG,
            entry_price=100_000,
            stop_price=99_000,
            qty=0.1,
            capital_usdt=500,
            max_leverage=10,
        )


@given(
    side=st.sampled_from(Side),
    entry=st.floats(min_value=10, max_value=100_000),
    stop_pct=st.floats(min_value=0.1, max_value=10),
    qty=st.floats(min_value=0.001, max_value=1),
    capital=st.floats(min_value=50, max_value=10_000),
)
def test_a_chosen_leverage_always_keeps_liquidation_beyond_the_stop_and_buffer(
    side: Side, entry: float, stop_pct: float, qty: float, capital: float
) -> None:
    stop = entry * (1 - side.sign * stop_pct / 100)
    try:
        choice = choose_leverage(
            symbol="ETHUSDT",
            side=side,
            entry_price=entry,
            stop_price=stop,
            qty=qty,
            capital_usdt=capital,
            max_leverage=50,
        )
    except (LiquidationBeforeStop, LeverageNotAllowed):
        return
    assert choice.margin_usdt <= capital * (1 + 1e-9)
    assert side.sign * (stop - choice.liquidation_price) >= entry * 0.005 * (1 - 1e-9)
