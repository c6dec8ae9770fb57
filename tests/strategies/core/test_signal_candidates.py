"""The decision pre-filter (``signal_candidates``) is a NECESSARY condition of a signal.

Over the whole bundled sample, at EVERY entry-timeframe close, ``decide`` on the kernel's own
snapshot returns ``None`` (and no input is missing) wherever the vectorised filter says
"no candidate": decisions with and without the pre-filter are identical. Each case also fires
and filters, so the comparison is not vacuous.
"""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest

from strategies.core import catalog  # noqa: F401  (registers the built-in kinds)
from strategies.core.base import PositionView
from strategies.core.catalog import build_strategy
from strategies.core.indicators import (
    adx,
    adx_with_sums,
    ema,
    rsi,
    vwap_session,
)
from strategies.core.kernel import KernelConfig, StrategyKernel
from strategies.core.levels import (
    ADX_BOUND_SLACK,
    CANDIDATE_SLACK,
    adx_bounds,
    adx_spans,
    ema_bounds,
    last_closed_rows,
    last_session_vwap,
    rsi_bounds,
    session_vwap_at,
    session_vwaps,
)
from strategies.core.snapshot import SnapshotBuilder
from tests.conftest import SAMPLE_DIR
from tests.strategies.core.factories import eth_1m, sol_1m, sol_funding, synthetic_rules
from trading.core.candles import aggregate_candles, read_candles_csv
from trading.core.types import Side

BTC = read_candles_csv(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")


def _btc_funding() -> np.ndarray:
    name = "binance-usdm_BTC-USDT_funding_20250617-20250623.csv.gz"
    with gzip.open(SAMPLE_DIR / name, "rt", newline="") as handle:
        return np.array([(float(r["timestamp_ms"]), float(r["rate"]))
                         for r in csv.DictReader(handle)])  # fmt: skip


RELAXED_VWAP = {"rsi_long_below": 35, "rsi_short_above": 65, "adx_range_max": 30}
CASES = [
    ("vwap_rsi", {}, "btc", 500),
    ("vwap_rsi", RELAXED_VWAP, "btc", 500),
    ("vwap_rsi", {**RELAXED_VWAP, "rsi_period": 6, "volume_spike_mult": 1.2}, "eth", 150),
    ("vwap_rsi", {**RELAXED_VWAP, "timeframe": "1m", "rsi_period": 9}, "sol", 200),
    # trend EMA bounds on 1h, a long EMA in a window too short for the session VWAP
    # (5m × 210 < 1 day), a rolling VWAP (no VWAP condition) with a short EMA, a 15m entry
    ("vwap_rsi", {**RELAXED_VWAP, "trend_timeframe": "1h", "trend_ema_period": 12}, "eth", 500),
    ("vwap_rsi", {**RELAXED_VWAP, "trend_ema_period": 200}, "btc", 120),
    ("vwap_rsi", {**RELAXED_VWAP, "vwap_window": 48, "trend_ema_period": 8}, "eth", 300),
    (
        "vwap_rsi",
        {
            **RELAXED_VWAP,
            "timeframe": "15m",
            "trend_timeframe": "1h",
            "trend_ema_period": 10,
            "volume_spike_mult": 1.2,
        },
        "btc",
        300,
    ),
    ("momentum_breakout", {}, "btc", 500),
    ("momentum_breakout", {"range_lookback": 6, "volume_mult": 1.2}, "eth", 500),
    ("funding_arbitrage", {"extreme_rate": 0.00005}, "btc", 500),
    ("funding_arbitrage", {"extreme_rate": 0.00012}, "sol", 500),
]
DATA = {
    "btc": lambda: (BTC, _btc_funding()),
    "eth": lambda: (eth_1m(), None),
    "sol": lambda: (sol_1m(), sol_funding()),
}


@pytest.mark.parametrize(("kind", "params", "data", "max_candles"), CASES)
def test_decisions_are_identical_with_and_without_the_pre_filter(
    kind: str, params: dict, data: str, max_candles: int
) -> None:
    candles, funding = DATA[data]()
    strategy = build_strategy(kind, params)
    kernel = StrategyKernel(
        kind,
        {"X": strategy},
        KernelConfig(max_candles=max_candles, market_rules=synthetic_rules("X")),
    )
    kernel.set_inputs("X", funding=funding)
    kernel.preload("X", candles)
    times = candles[:, 0].astype(np.int64) + 60_000
    due = times % kernel._symbols["X"].entry_step_ms == 0
    mask = kernel.decision_candidates("X", times)
    builder = kernel._symbols["X"].builder
    assert builder is not None
    fired = 0
    for now, keep in zip(times[due].tolist(), mask[due].tolist(), strict=True):
        market = builder.at(now)
        decision = strategy.decide(market) if strategy.missing_inputs(market) is None else None
        fired += decision is not None
        if not keep:
            assert decision is None, f"{kind} fires at {now} where the pre-filter skipped it"
            assert strategy.missing_inputs(market) is None
    if params:
        assert fired > 0, f"{kind} {params} never fired: the comparison would prove nothing"
    assert (~mask[due]).sum() > due.sum() // 2, "the pre-filter hardly filters"


@pytest.mark.parametrize("n", [2, 6, 14, 30])
def test_rsi_bounds_hold_for_every_window_length(n: int) -> None:
    """For each 5m ETH row and several window lengths, RSI over the window lies in the
    bounds (they only claim to bound windows holding at least n + 8n + 1 candles)."""
    five = aggregate_candles(eth_1m(), "5m")
    rows = np.arange(len(five))
    for length in (9 * n + 1, 9 * n + 40, 400):
        counts = np.minimum(rows + 1, length)
        low, high = rsi_bounds(five, rows, counts, n)
        for k in range(0, len(five), 3):
            value = rsi(five[k + 1 - counts[k] : k + 1, 4], n)[-1]
            if np.isfinite(value):
                assert low[k] - 1e-9 <= value <= high[k] + 1e-9, (k, length)
        assert (high - low < 5.0).mean() > 0.5  # tight where usable


@pytest.mark.parametrize("timeframe", ["1m", "5m", "15m"])
def test_the_last_session_vwap_is_bit_identical_to_the_window_value(timeframe: str) -> None:
    """From the last session's candles only, whether the window holds the whole session or
    starts inside it."""
    candles = aggregate_candles(BTC, timeframe) if timeframe != "1m" else BTC[:3000]
    for end in range(1, len(candles), 11):
        window = candles[max(0, end - 500) : end]
        expected = vwap_session(*window.T[[0, 2, 3, 4, 5]])[-1]
        got = last_session_vwap(window)
        assert (np.isnan(expected) and np.isnan(got)) or expected == got


@pytest.mark.parametrize("n", [2, 12, 50, 200])
def test_ema_bounds_hold_for_every_window_length(n: int) -> None:
    """For 15m ETH closes and several window lengths, the EMA of the window lies in the
    bounds, and they are tight once the window is a few periods longer than n."""
    close = aggregate_candles(eth_1m(), "15m")[:, 4]
    rows = np.arange(len(close))
    for length in (n, n + 5, 3 * n, 500):
        counts = np.minimum(rows + 1, length)
        low, high = ema_bounds(close, rows, counts, n)
        for k in range(0, len(close), 2):
            value = ema(close[k + 1 - counts[k] : k + 1], n)[-1]
            if counts[k] < n:
                assert np.isnan(value) and np.isnan(low[k]) and np.isnan(high[k])
                continue
            margin = abs(value) * CANDIDATE_SLACK
            assert low[k] - margin <= value <= high[k] + margin, (k, length)
    wide = (rows >= 8 * n) & (counts - n >= 8 * n)
    assert (high - low)[wide].max(initial=0.0) < 1e-6 * close.max()


def test_the_session_vwap_of_a_window_holding_the_session_is_the_whole_series_value() -> None:
    """Bit for bit: same candles, same left-to-right sums. A window starting inside the
    session is unknown (NaN), never compared."""
    five = aggregate_candles(BTC, "5m")
    rows = np.arange(len(five))
    every = session_vwaps(five)
    for window in (100, 288, 500):
        starts = five[:, 0] - (window - 1) * 300_000
        values = session_vwap_at(five, rows, starts, every)
        for k in range(0, len(five), 7):
            first = max(0, k + 1 - window)
            expected = vwap_session(*five[first : k + 1].T[[0, 2, 3, 4, 5]])[-1]
            if np.isnan(values[k]):
                assert starts[k] > five[k, 0] // 86_400_000 * 86_400_000
            else:
                assert values[k] == expected
        assert np.isfinite(values).any()


@pytest.mark.parametrize(("timeframe", "max_candles"), [("5m", 500), ("15m", 120), ("1h", 30)])
def test_window_counts_are_the_snapshot_candle_counts(timeframe: str, max_candles: int) -> None:
    """The pre-filter's warm-up test counts the snapshot's candles without building it: at
    every 5m close, the count for the timeframe's last closed row equals ``len(snapshot)``."""
    builder = SnapshotBuilder("X", BTC, ("1m", timeframe), max_candles=max_candles)
    history = builder.history()
    times = BTC[:, 0].astype(np.int64) + 60_000
    times = times[times % 300_000 == 0]
    rows = last_closed_rows(history.candles[timeframe], timeframe, times)
    counts = history.window_counts(timeframe, np.maximum(rows, 0), times)
    for now, row, count in zip(times.tolist(), rows.tolist(), counts.tolist(), strict=True):
        expected = len(builder.at(now).candles[timeframe])
        assert (count if row >= 0 else 0) == expected, now


EXIT_CASES = [
    ({}, "btc", 500, True),
    ({"adx_range_max": 25}, "btc", 500, True),
    ({"adx_range_max": 30, "adx_period": 7}, "eth", 500, True),
    ({"adx_range_max": 25, "timeframe": "1m"}, "sol", 500, True),
    ({"adx_range_max": 35, "timeframe": "15m"}, "btc", 150, True),
    # ADX(30) over 120 candles: the seed still weighs (29/30)^60 ≈ 13 %, no bound is claimed
    ({"adx_range_max": 25, "adx_period": 30}, "eth", 120, False),
]


@pytest.mark.parametrize(("params", "data", "max_candles", "filters"), EXIT_CASES)
def test_should_exit_is_none_wherever_the_exit_filter_rules_it_out(
    params: dict, data: str, max_candles: int, filters: bool
) -> None:
    """At EVERY entry-timeframe close, ``should_exit`` of a long and of a short position is
    ``None`` wherever ``exit_candidates`` says no; exits fire and (with windows long enough
    for the ADX bound) the filter rules most closes out: the comparison is not vacuous."""
    candles, _ = DATA[data]()
    strategy = build_strategy("vwap_rsi", params)
    kernel = StrategyKernel(
        "x",
        {"X": strategy},
        KernelConfig(max_candles=max_candles, market_rules=synthetic_rules("X")),
    )
    kernel.preload("X", candles)
    times = candles[:, 0].astype(np.int64) + 60_000
    due = times % kernel._symbols["X"].entry_step_ms == 0
    mask = kernel.exit_candidates("X", times)
    assert not mask[~due].any()
    builder = kernel._symbols["X"].builder
    assert builder is not None
    price = float(candles[0, 4])
    positions = [PositionView("X", side, price, int(candles[0, 0]), price * (1 - side.sign / 10),
                              price * (1 + side.sign / 10), 1.0) for side in Side]  # fmt: skip
    fired = 0
    for now, keep in zip(times[due].tolist(), mask[due].tolist(), strict=True):
        market = builder.at(now)
        exits = [strategy.should_exit(view, market) for view in positions]
        fired += exits[0] is not None
        if not keep:
            assert exits == [None, None], (
                f"should_exit fires at {now} where the filter ruled it out"
            )
    assert fired > 0
    if filters:
        assert (~mask[due]).sum() > due.sum() // 3, "the exit filter hardly filters"


@pytest.mark.parametrize("n", [2, 7, 14, 30])
def test_adx_bounds_hold_for_every_window_length(n: int) -> None:
    """For each 5m ETH row and several window lengths (prefixes of the series included), the
    ADX of the window lies in the bounds, and they are tight (< 1e-6 points beyond the slack)
    once the window is a few hundred candles long."""
    five = aggregate_candles(eth_1m(), "5m")
    rows = np.arange(len(five))
    spans = adx_spans(five, n)
    for length in (2 * n, 2 * n + 10, 8 * n, 500):
        counts = np.minimum(rows + 1, length)
        low, high = adx_bounds(five, rows, counts, n, spans)
        for k in range(0, len(five), 3):
            window = five[k + 1 - counts[k] : k + 1]
            value = adx(window[:, 2], window[:, 3], window[:, 4], n)[0][-1]
            if np.isfinite(low[k]):
                assert low[k] <= value <= high[k], (k, length)
            if counts[k] == k + 1 and np.isfinite(value):  # a prefix: exact
                assert high[k] - low[k] == pytest.approx(2 * ADX_BOUND_SLACK)
        if length == 500 and n <= 14:
            long_windows = (counts == 500) & (rows >= 499)
            assert (high - low)[long_windows].max() < 2 * ADX_BOUND_SLACK + 1e-6


def test_adx_with_sums_returns_the_adx_arrays_and_their_wilder_sums() -> None:
    """The same three arrays as ``adx``, and sums that give back its +DI and −DI."""
    five = aggregate_candles(BTC, "5m")[:600]
    h, lo, c = five[:, 2], five[:, 3], five[:, 4]
    every, plus, minus, s_tr, s_plus, s_minus = adx_with_sums(h, lo, c, 14)
    for got, expected in zip((every, plus, minus), adx(h, lo, c, 14), strict=True):
        assert np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(100.0 * (s_plus / s_tr), plus, equal_nan=True)
    assert np.array_equal(100.0 * (s_minus / s_tr), minus, equal_nan=True)
