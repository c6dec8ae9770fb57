"""Regime: ADX trend rule with hysteresis, ATR-percentile volatility, tracker == vectorised."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.core.indicators import adx
from strategies.core.regime import (
    Regime,
    RegimeThresholds,
    RegimeTracker,
    Volatility,
    classify_regime,
    last_regime,
    last_volatility,
    next_regime,
    regimes_from_directional,
)
from trading.core.candles import C, H, L, read_candles_csv

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
PERP_1M = "binance-usdm_BTC-USDT_1m_20250506-20250508.csv.gz"
UP, DOWN, RANGING, UNKNOWN = (
    Regime.TRENDING_UP,
    Regime.TRENDING_DOWN,
    Regime.RANGING,
    Regime.UNKNOWN,
)
NAN = float("nan")


@cache
def real_candles() -> np.ndarray:
    return read_candles_csv(DATA_DIR / PERP_1M)


def candles_from_closes(closes: np.ndarray, wick: float | np.ndarray = 0.2) -> np.ndarray:
    """1m candles: open = previous close, high/low = max/min(open, close) ± wick."""
    opens = np.r_[closes[:1], closes[:-1]]
    times = 1_746_489_600_000 + np.arange(len(closes)) * 60_000.0
    highs = np.maximum(opens, closes) + wick
    lows = np.minimum(opens, closes) - wick
    return np.column_stack([times, opens, highs, lows, closes, np.ones(len(closes))])


def track(candles: np.ndarray, thresholds: RegimeThresholds | None = None) -> list:
    tracker = RegimeTracker(thresholds)
    return [tracker.update(h, lo, c) for h, lo, c in candles[:, [H, L, C]]]


# --- crafted series


def test_a_steady_climb_is_trending_up_from_the_first_classified_candle():
    """+0.5 per minute: every +DM is positive and -DM zero, so DX = ADX = 100."""
    state = classify_regime(candles_from_closes(100.0 + 0.5 * np.arange(200)))
    assert (state.regime[:27] == UNKNOWN).all()
    assert (state.regime[27:] == UP).all()
    assert state.adx[-1] == pytest.approx(100.0)


def test_a_steady_slide_is_trending_down():
    state = classify_regime(candles_from_closes(500.0 - 0.5 * np.arange(200)))
    assert (state.regime[27:] == DOWN).all()


def test_flat_noise_is_ranging():
    rng = np.random.default_rng(3)
    state = classify_regime(candles_from_closes(100.0 + rng.normal(0.0, 1.0, 400)))
    classified = state.regime[27:]
    assert (classified == RANGING).mean() > 0.9
    assert (classified == UP).sum() == 0


def test_the_regime_is_unknown_until_adx_exists_and_volatility_until_the_atr_window_is_full():
    """adx_period 14 → ADX from candle 2 * 14 - 1 = 27; ATR from candle 14, ranked among
    50 values → volatility from candle 14 + 50 - 1 = 63."""
    rules = RegimeThresholds(atr_percentile_window=50)
    state = classify_regime(candles_from_closes(100.0 + 0.5 * np.arange(100)), rules)
    assert (state.regime[:27] == UNKNOWN).all()
    assert (state.regime[27:] != UNKNOWN).all()
    assert (state.volatility[:63] == Volatility.UNKNOWN).all()
    assert (state.volatility[63:] != Volatility.UNKNOWN).all()


def test_wide_candles_after_quiet_ones_are_high_volatility_and_quiet_after_wild_are_low():
    rng = np.random.default_rng(5)
    wick = np.r_[np.full(150, 0.05), np.full(60, 2.0), np.full(150, 0.05)]
    closes = 100.0 + np.cumsum(rng.normal(0.0, 1.0, 360) * wick / 2)
    rules = RegimeThresholds(atr_percentile_window=100)
    state = classify_regime(candles_from_closes(closes, wick), rules)
    assert state.volatility[205] == Volatility.HIGH
    assert state.volatility[-1] == Volatility.LOW


# --- the trend rule


def test_the_band_between_the_thresholds_keeps_a_trend_until_its_dis_flip():
    """Thresholds 20 / 25. Candle by candle:
    NaN → UNKNOWN; 30 with +DI > -DI → UP; 22 (band), DIs agree → stays UP;
    22, -DI now above +DI → RANGING; 22, +DI back above → stays RANGING (a trend needs ADX ≥ 25
    to start); 18 → RANGING; 30 with -DI > +DI → DOWN; 22, DIs agree → stays DOWN;
    30 with equal DIs → keeps DOWN; 19 → RANGING."""
    adx = np.array([NAN, 30, 22, 22, 22, 18, 30, 22, 30, 19])
    plus = np.array([NAN, 30, 25, 15, 25, 20, 10, 10, 20, 20])
    minus = np.array([NAN, 10, 15, 25, 15, 20, 30, 30, 20, 20])
    expected = [UNKNOWN, UP, UP, RANGING, RANGING, RANGING, DOWN, DOWN, DOWN, RANGING]
    assert regimes_from_directional(adx, plus, minus).tolist() == expected
    folded = []
    previous = UNKNOWN
    for values in zip(adx, plus, minus, strict=True):
        previous = next_regime(previous, *values)
        folded.append(previous)
    assert folded == expected


def test_the_first_classified_candle_inside_the_band_is_ranging():
    assert next_regime(UNKNOWN, 22.0, 30.0, 10.0) is RANGING
    assert regimes_from_directional(np.array([22.0]), np.array([30.0]), np.array([10.0])) == [
        RANGING
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=5),
    st.lists(
        st.tuples(
            st.sampled_from([10.0, 19.9, 20.0, 22.0, 25.0, 40.0]),
            st.sampled_from([5.0, 20.0, 35.0]),
            st.sampled_from([5.0, 20.0, 35.0]),
        ),
        max_size=60,
    ),
)
def test_the_vectorised_rule_equals_applying_the_rule_candle_by_candle(warm_up, rows):
    adx, plus, minus = (np.r_[np.full(warm_up, NAN), [row[i] for row in rows]] for i in range(3))
    previous = UNKNOWN
    folded = []
    for values in zip(adx, plus, minus, strict=True):
        previous = next_regime(previous, *values)
        folded.append(int(previous))
    assert regimes_from_directional(adx, plus, minus).tolist() == folded


def test_thresholds_in_the_wrong_order_are_refused():
    with pytest.raises(ValueError, match="adx_range"):
        RegimeThresholds(adx_trend=20.0, adx_range=25.0)
    with pytest.raises(ValueError, match="low_vol_percentile"):
        RegimeThresholds(high_vol_percentile=20.0, low_vol_percentile=80.0)
    with pytest.raises(ValueError, match="adx_period"):
        RegimeThresholds(adx_period=1)


# --- real candles


def test_real_btc_minutes_hold_ranging_and_trending_stretches_in_every_volatility():
    """3 days of 2025-05 BTC perpetual 1m: about half ranging, the rest trending both ways."""
    state = classify_regime(real_candles())
    shares = {regime: float((state.regime == regime).mean()) for regime in Regime}
    assert 0.3 < shares[RANGING] < 0.7
    assert shares[UP] > 0.1
    assert shares[DOWN] > 0.1
    volatility = state.volatility[state.volatility != Volatility.UNKNOWN]
    for level in (Volatility.LOW, Volatility.NORMAL, Volatility.HIGH):
        assert (volatility == level).mean() > 0.1


def test_the_tracker_gives_the_vectorised_regimes_candle_by_candle_on_real_candles():
    state = classify_regime(real_candles())
    snapshots = track(real_candles())
    assert [int(s.regime) for s in snapshots] == state.regime.tolist()
    assert [int(s.volatility) for s in snapshots] == state.volatility.tolist()
    np.testing.assert_array_equal([s.adx for s in snapshots], state.adx)
    np.testing.assert_array_equal([s.atr_percentile for s in snapshots], state.atr_percentile)
    assert snapshots[-1] == state.at(-1)


def test_classifying_a_prefix_gives_the_same_regimes_as_the_full_history():
    """No look-ahead: candle i's regime depends only on candles up to i."""
    candles = real_candles()
    full = classify_regime(candles)
    for end in (100, 1000, 2500):
        prefix = classify_regime(candles[:end])
        np.testing.assert_array_equal(prefix.regime, full.regime[:end])
        np.testing.assert_array_equal(prefix.volatility, full.volatility[:end])


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=0, max_value=300))
def test_the_tracker_equals_the_vectorised_classification_on_random_walks(seed, count):
    rng = np.random.default_rng(seed)
    drift = rng.normal(0.0, 0.3)
    closes = 100.0 + np.cumsum(rng.normal(drift, 1.0, count))
    candles = candles_from_closes(closes, rng.exponential(0.5, count))
    rules = RegimeThresholds(atr_percentile_window=30, adx_period=5, atr_period=7)
    state = classify_regime(candles, rules)
    snapshots = track(candles, rules)
    assert [int(s.regime) for s in snapshots] == state.regime.tolist()
    assert [int(s.volatility) for s in snapshots] == state.volatility.tolist()


def test_last_regime_is_the_last_row_of_classify_regime() -> None:
    """Regime and volatility of the last candle, for windows shorter and longer than the
    ATR percentile needs (14 + 500 candles), with and without the caller's ADX arrays."""
    candles = real_candles()
    seen = set()
    for length in (20, 200, 500, 513, 514, 700):
        for end in range(length, len(candles), 97):
            window = candles[end - length : end]
            state = classify_regime(window).at(-1)
            directional = adx(window[:, H], window[:, L], window[:, C], 14)
            for given_adx in (None, directional):
                assert last_regime(window, directional=given_adx) == (
                    state.regime,
                    state.volatility,
                )
            volatility, percentile = last_volatility(window)
            assert volatility == state.volatility
            assert percentile == state.atr_percentile or (
                np.isnan(percentile) and np.isnan(state.atr_percentile)
            )
            seen.add(state.volatility)
    assert Volatility.UNKNOWN in seen and len(seen) > 2


def test_the_last_percentile_rank_equals_the_series_last_value_bit_for_bit() -> None:
    """What the risk gate computes per decision (the newest value only) against the series."""
    from strategies.core.indicators import atr, percentile_rank, percentile_rank_last
    from tests.conftest import SAMPLE_DIR

    candles = read_candles_csv(SAMPLE_DIR / "binance-usdm_ETH-USDT_1m_20250617-20250623.csv.gz")
    atr_pct = 100.0 * atr(candles[:, 2], candles[:, 3], candles[:, 4], 14) / candles[:, 4]
    rng = np.random.default_rng(7)
    for n in (1, 20, 288, 500):
        for end in rng.integers(1, len(atr_pct), 40):
            series = percentile_rank(atr_pct[:end], n)
            last = percentile_rank_last(atr_pct[:end], n)
            assert (np.isnan(series[-1]) and np.isnan(last)) or series[-1] == last, (n, end)
    ties = np.array([1.0, 2.0, 2.0, 2.0, 0.5])
    assert percentile_rank_last(ties, 4) == percentile_rank(ties, 4)[-1] == 25.0
