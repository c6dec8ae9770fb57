"""Indicators: hand-worked values, TA-Lib on real candles, incremental == vectorised."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.core import incremental as inc
from strategies.core import indicators as ind
from tests.strategies.core.factories import random_candles
from trading.core.candles import C, H, L, T, V, read_candles_csv

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
PERP_1M = "binance-usdm_BTC-USDT_1m_20250506-20250508.csv.gz"
DAY_MS = 86_400_000
PERIODS = [2, 5, 14, 20, 50]


@cache
def candles() -> np.ndarray:
    """3 days of real Binance BTC/USDT:USDT 1m candles (4,320 rows)."""
    return read_candles_csv(DATA_DIR / PERP_1M)


def columns() -> tuple[np.ndarray, ...]:
    data = candles()
    return data[:, T], data[:, H], data[:, L], data[:, C], data[:, V]


def assert_matches_talib(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Same NaN positions; after them, equal to 1e-9 relative."""
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    valid = ~np.isnan(theirs)
    assert valid.sum() > 3000
    np.testing.assert_allclose(ours[valid], theirs[valid], rtol=1e-9, atol=0)


def leading_nans(values: np.ndarray) -> int:
    finite = np.flatnonzero(~np.isnan(values))
    return int(finite[0]) if len(finite) else len(values)


# --- hand-worked values


def test_sma_of_one_to_five_over_three_is_two_three_four():
    np.testing.assert_array_equal(ind.sma([1, 2, 3, 4, 5], 3), [np.nan, np.nan, 2, 3, 4])


def test_ema_is_seeded_with_the_first_sma_then_moves_by_k_of_the_gap():
    """n = 3, k = 2 / 4 = 0.5. Seed at index 2 = (1 + 2 + 3) / 3 = 2;
    index 3: (4 - 2) * 0.5 + 2 = 3; index 4: (8 - 3) * 0.5 + 3 = 5.5."""
    np.testing.assert_array_equal(ind.ema([1, 2, 3, 4, 8], 3), [np.nan, np.nan, 2, 3, 5.5])


def test_rsi_follows_wilders_averages_of_gains_and_losses():
    """n = 2, closes 1, 2, 3, 2, 3 → changes +1, +1, -1, +1.
    Index 2: avg gain (1 + 1) / 2 = 1, avg loss 0 → RSI 100.
    Index 3: gain (1 * 1 + 0) / 2 = 0.5, loss (0 * 1 + 1) / 2 = 0.5 → 50.
    Index 4: gain (0.5 + 1) / 2 = 0.75, loss (0.5 + 0) / 2 = 0.25 → 75."""
    np.testing.assert_array_equal(ind.rsi([1, 2, 3, 2, 3], 2), [np.nan, np.nan, 100, 50, 75])


def test_rsi_of_a_flat_market_is_neutral_not_oversold():
    """TA-Lib prints 0 here; 0 would read as 'deeply oversold' during an exchange halt."""
    assert ind.rsi(np.full(30, 100.0), 14)[-1] == 50.0
    rsi = inc.RSI(14)
    assert [rsi.update(100.0) for _ in range(16)][-1] == 50.0


def test_atr_averages_true_ranges_including_gaps_from_the_previous_close():
    """n = 2. TR[1] = max(12 - 10, |12 - 9|, |10 - 9|) = 3 (gap up from close 9);
    TR[2] = max(13 - 11, |13 - 11|, |11 - 11|) = 2; ATR[2] = (3 + 2) / 2 = 2.5;
    TR[3] = max(11 - 8, |11 - 12|, |8 - 12|) = 4 (gap down from close 12)
    → ATR[3] = (2.5 * 1 + 4) / 2 = 3.25."""
    high = [10, 12, 13, 11]
    low = [8, 10, 11, 8]
    close = [9, 11, 12, 9]
    np.testing.assert_array_equal(ind.atr(high, low, close, 2), [np.nan, np.nan, 2.5, 3.25])


def test_bollinger_uses_the_population_standard_deviation():
    """Closes 1, 2, 3, 4 with n = 4: mean 2.5, population variance (2.25 + 0.25) * 2 / 4
    = 1.25, sigma = 1.1180..., k = 2 → bands 2.5 ± 2.2360..."""
    upper, middle, lower = ind.bollinger([1.0, 2.0, 3.0, 4.0], 4, 2.0)
    assert middle[-1] == 2.5
    assert upper[-1] == pytest.approx(2.5 + 2 * math.sqrt(1.25), rel=1e-15)
    assert lower[-1] == pytest.approx(2.5 - 2 * math.sqrt(1.25), rel=1e-15)


def test_donchian_spans_the_highest_high_and_lowest_low_of_the_window():
    upper, lower, middle = ind.donchian([5, 7, 6, 4], [3, 4, 1, 2], 3)
    np.testing.assert_array_equal(upper, [np.nan, np.nan, 7, 7])
    np.testing.assert_array_equal(lower, [np.nan, np.nan, 1, 1])
    np.testing.assert_array_equal(middle, [np.nan, np.nan, 4, 4])


def test_rolling_vwap_weights_the_typical_price_by_volume():
    """Typical prices (h + l + c) / 3: 10, 20, 30; volumes 1, 3, 0.
    n = 2: index 1 = (10 * 1 + 20 * 3) / 4 = 17.5; index 2 = (20 * 3 + 30 * 0) / 3 = 20."""
    tp = np.array([10.0, 20.0, 30.0])
    out = ind.vwap_rolling(tp, tp, tp, [1.0, 3.0, 0.0], 2)
    np.testing.assert_array_equal(out, [np.nan, 17.5, 20.0])


def test_rolling_vwap_is_nan_when_the_window_traded_nothing():
    tp = np.array([10.0, 20.0, 30.0, 40.0])
    out = ind.vwap_rolling(tp, tp, tp, [1.0, 0.0, 0.0, 2.0], 2)
    np.testing.assert_array_equal(out, [np.nan, 10.0, np.nan, 40.0])


def test_session_vwap_restarts_at_midnight_utc():
    """Two candles on day 0 (typical 10 vol 1, typical 40 vol 2 → (10 + 80) / 3 = 30),
    then day 1 starts afresh at its first typical price 100."""
    t = [0, 60_000, DAY_MS]
    tp = np.array([10.0, 40.0, 100.0])
    out = ind.vwap_session(t, tp, tp, tp, [1.0, 2.0, 5.0])
    np.testing.assert_array_equal(out, [10.0, 30.0, 100.0])


def test_volume_sma_is_the_plain_average_of_the_last_volumes():
    np.testing.assert_array_equal(ind.volume_sma([2.0, 4.0, 9.0], 2), [np.nan, 3.0, 6.5])


# --- warm-up


@pytest.mark.parametrize("n", PERIODS)
def test_each_indicator_is_nan_for_exactly_its_documented_warm_up(n):
    t, high, low, close, volume = columns()
    adx, plus_di, minus_di = ind.adx(high, low, close, n)
    expected = {
        "sma": (ind.sma(close, n), n - 1),
        "ema": (ind.ema(close, n), n - 1),
        "rsi": (ind.rsi(close, n), n),
        "atr": (ind.atr(high, low, close, n), n),
        "adx": (adx, 2 * n - 1),
        "plus_di": (plus_di, n),
        "minus_di": (minus_di, n),
        "bollinger": (ind.bollinger(close, n)[0], n - 1),
        "donchian": (ind.donchian(high, low, n)[0], n - 1),
        "vwap_rolling": (ind.vwap_rolling(high, low, close, volume, n), n - 1),
        "vwap_session": (ind.vwap_session(t, high, low, close, volume), 0),
        "volume_sma": (ind.volume_sma(volume, n), n - 1),
    }
    for name, (values, warm_up) in expected.items():
        assert leading_nans(values) == warm_up, name
        assert not np.isnan(values[warm_up:]).any(), name


def test_a_series_shorter_than_the_warm_up_is_all_nan():
    assert np.isnan(ind.ema([1.0, 2.0], 3)).all()
    assert np.isnan(ind.adx([1.0] * 5, [1.0] * 5, [1.0] * 5, 3)[0]).all()
    assert len(ind.rsi([], 14)) == 0


def test_a_period_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="period"):
        ind.sma([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="period"):
        inc.RSI(1)


def test_inputs_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        ind.atr([1.0, 2.0], [1.0], [1.0, 2.0])


# --- TA-Lib on real candles


@pytest.mark.parametrize("n", PERIODS)
def test_sma_ema_and_volume_sma_match_talib_on_real_candles(n):
    _, _, _, close, volume = columns()
    assert_matches_talib(ind.sma(close, n), talib.SMA(close, n))
    assert_matches_talib(ind.ema(close, n), talib.EMA(close, n))
    assert_matches_talib(ind.volume_sma(volume, n), talib.SMA(volume, n))


@pytest.mark.parametrize("n", PERIODS)
def test_wilder_rsi_atr_and_adx_match_talib_on_real_candles(n):
    _, high, low, close, _ = columns()
    assert_matches_talib(ind.rsi(close, n), talib.RSI(close, n))
    assert_matches_talib(ind.atr(high, low, close, n), talib.ATR(high, low, close, n))
    adx, plus_di, minus_di = ind.adx(high, low, close, n)
    assert_matches_talib(adx, talib.ADX(high, low, close, n))
    assert_matches_talib(plus_di, talib.PLUS_DI(high, low, close, n))
    assert_matches_talib(minus_di, talib.MINUS_DI(high, low, close, n))


@pytest.mark.parametrize(("n", "k"), [(5, 2.0), (20, 2.0), (20, 1.5), (50, 3.0)])
def test_bollinger_bands_match_talib_on_real_candles(n, k):
    _, _, _, close, _ = columns()
    ours = ind.bollinger(close, n, k)
    theirs = talib.BBANDS(close, n, k, k, 0)
    for mine, reference in zip(ours, theirs, strict=True):
        assert_matches_talib(mine, reference)


@pytest.mark.parametrize("n", PERIODS)
def test_donchian_channel_matches_talib_max_and_min_on_real_candles(n):
    _, high, low, _, _ = columns()
    upper, lower, middle = ind.donchian(high, low, n)
    assert_matches_talib(upper, talib.MAX(high, n))
    assert_matches_talib(lower, talib.MIN(low, n))
    assert_matches_talib(middle, (talib.MAX(high, n) + talib.MIN(low, n)) / 2)


def test_an_indicator_of_an_indicator_skips_the_leading_nan_like_talib():
    _, _, _, close, _ = columns()
    rsi = talib.RSI(close, 14)
    assert_matches_talib(ind.ema(rsi, 9), talib.EMA(rsi, 9))
    assert_matches_talib(ind.sma(rsi, 9), talib.SMA(rsi, 9))
    assert_matches_talib(ind.bollinger(rsi, 9)[0], talib.BBANDS(rsi, 9)[0])


def test_rolling_vwap_matches_a_plain_loop_on_real_candles():
    _, high, low, close, volume = columns()
    typical = (high + low + close) / 3
    n = 30
    expected = [np.nan] * (n - 1) + [
        math.fsum(typical[i - n + 1 : i + 1] * volume[i - n + 1 : i + 1])
        / math.fsum(volume[i - n + 1 : i + 1])
        for i in range(n - 1, len(close))
    ]
    np.testing.assert_allclose(ind.vwap_rolling(high, low, close, volume, n), expected, rtol=1e-12)


def test_session_vwap_matches_a_plain_per_day_computation_on_real_candles():
    t, high, low, close, volume = columns()
    typical = (high + low + close) / 3
    out = ind.vwap_session(t, high, low, close, volume)
    for day in np.unique(t // DAY_MS):
        inside = t // DAY_MS == day
        expected = np.cumsum(typical[inside] * volume[inside]) / np.cumsum(volume[inside])
        np.testing.assert_allclose(out[inside], expected, rtol=1e-12)


# --- incremental == vectorised


def run_incremental(name: str, n: int, data: np.ndarray) -> list[np.ndarray]:
    """Feed the incremental twin candle by candle; return its outputs as arrays."""
    t, high, low, close, volume = data[:, T], data[:, H], data[:, L], data[:, C], data[:, V]
    if name == "sma":
        state = inc.SMA(n)
        return [np.array([state.update(x) for x in close])]
    if name == "volume_sma":
        volume_state = inc.VolumeSMA(n)
        return [np.array([volume_state.update(x) for x in volume])]
    if name == "ema":
        ema = inc.EMA(n)
        return [np.array([ema.update(x) for x in close])]
    if name == "rsi":
        rsi = inc.RSI(n)
        return [np.array([rsi.update(x) for x in close])]
    if name == "atr":
        atr = inc.ATR(n)
        return [np.array([atr.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)])]
    if name == "adx":
        adx = inc.ADX(n)
        rows = [adx.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)]
        return list(np.array(rows).reshape(-1, 3).T)
    if name == "bollinger":
        bands = inc.Bollinger(n, 2.0)
        return list(np.array([bands.update(x) for x in close]).reshape(-1, 3).T)
    if name == "donchian":
        channel = inc.Donchian(n)
        rows = [channel.update(h, lo) for h, lo in zip(high, low, strict=True)]
        return list(np.array(rows).reshape(-1, 3).T)
    if name == "vwap_rolling":
        vwap = inc.VWAPRolling(n)
        rows = zip(high, low, close, volume, strict=True)
        return [np.array([vwap.update(*row) for row in rows])]
    if name == "vwap_session":
        session = inc.VWAPSession(n * 60_000)
        rows = zip(t, high, low, close, volume, strict=True)
        return [np.array([session.update(*row) for row in rows])]
    if name == "percentile_rank":
        rank = inc.PercentileRank(n)
        return [np.array([rank.update(x) for x in close])]
    raise AssertionError(name)


def run_vectorised(name: str, n: int, data: np.ndarray) -> list[np.ndarray]:
    t, high, low, close, volume = data[:, T], data[:, H], data[:, L], data[:, C], data[:, V]
    outputs = {
        "sma": lambda: ind.sma(close, n),
        "volume_sma": lambda: ind.volume_sma(volume, n),
        "ema": lambda: ind.ema(close, n),
        "rsi": lambda: ind.rsi(close, n),
        "atr": lambda: ind.atr(high, low, close, n),
        "adx": lambda: ind.adx(high, low, close, n),
        "bollinger": lambda: ind.bollinger(close, n, 2.0),
        "donchian": lambda: ind.donchian(high, low, n),
        "vwap_rolling": lambda: ind.vwap_rolling(high, low, close, volume, n),
        "vwap_session": lambda: ind.vwap_session(t, high, low, close, volume, n * 60_000),
        "percentile_rank": lambda: ind.percentile_rank(close, n),
    }
    result = outputs[name]()
    return list(result) if isinstance(result, tuple) else [result]


INDICATORS = [
    "sma",
    "volume_sma",
    "ema",
    "rsi",
    "atr",
    "adx",
    "bollinger",
    "donchian",
    "vwap_rolling",
    "vwap_session",
    "percentile_rank",
]


@pytest.mark.parametrize("name", INDICATORS)
@pytest.mark.parametrize("n", [2, 14, 60])
def test_incremental_indicators_give_the_vectorised_numbers_bit_for_bit_on_real_candles(name, n):
    data = candles()
    for incremental, vectorised in zip(
        run_incremental(name, n, data), run_vectorised(name, n, data), strict=True
    ):
        np.testing.assert_array_equal(incremental, vectorised)


@settings(max_examples=60, deadline=None)
@given(
    random_candles(),
    st.sampled_from(INDICATORS),
    st.integers(min_value=2, max_value=40),
)
def test_incremental_indicators_equal_vectorised_ones_on_random_candles(data, name, n):
    for incremental, vectorised in zip(
        run_incremental(name, n, data), run_vectorised(name, n, data), strict=True
    ):
        np.testing.assert_array_equal(incremental, vectorised)


@settings(max_examples=40, deadline=None)
@given(
    random_candles(),
    st.integers(min_value=0, max_value=30),
    st.sampled_from(["sma", "ema", "bollinger"]),
    st.integers(min_value=1, max_value=20),
)
def test_single_input_incrementals_skip_leading_nan_like_the_vectorised_ones(data, nans, name, n):
    """An EMA of an RSI starts with NaN: both versions start counting at the first number."""
    close = np.r_[np.full(nans, np.nan), data[:, C]]
    if name == "sma":
        sma = inc.SMA(n)
        np.testing.assert_array_equal([sma.update(x) for x in close], ind.sma(close, n))
    elif name == "ema":
        ema = inc.EMA(n)
        np.testing.assert_array_equal([ema.update(x) for x in close], ind.ema(close, n))
    else:
        bands = inc.Bollinger(n)
        rows = np.array([bands.update(x) for x in close]).reshape(-1, 3).T
        for got, expected in zip(rows, ind.bollinger(close, n), strict=True):
            np.testing.assert_array_equal(got, expected)


@settings(max_examples=60, deadline=None)
@given(random_candles(), st.integers(min_value=2, max_value=30))
def test_rsi_stays_within_zero_and_one_hundred_and_bands_stay_ordered(data, n):
    close = data[:, C]
    rsi = ind.rsi(close, n)
    valid = ~np.isnan(rsi)
    assert ((rsi[valid] >= 0) & (rsi[valid] <= 100)).all()
    upper, middle, lower = ind.bollinger(close, n)
    valid = ~np.isnan(middle)
    assert (upper[valid] >= middle[valid]).all()
    assert (middle[valid] >= lower[valid]).all()
