"""Declared indicator series: the same bits vectorised and stepped, resumed exactly.

A decision reads a series' current value (O(1)) instead of recomputing a window; these tests
check that the value it reads is the one the vectorised computation over every held candle
gives, however the candles arrived (preloaded, appended one by one, preloaded again after a
checkpoint), on real candles and on random ones.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.core.catalog import build_strategy
from strategies.core.series import (
    KINDS,
    Series,
    SeriesError,
    SeriesTrack,
    decode_state,
    encode_state,
)
from strategies.core.snapshot import SnapshotBuilder
from tests.strategies.core.factories import eth_1m, random_candles
from trading.core.candles import aggregate_candles

ALL = [Series(kind, tf, n) for kind in KINDS for tf in ("1m", "5m") for n in (3, 14)]


def stepped(series: Series, rows: np.ndarray) -> np.ndarray:
    state = series.new_state()
    return np.array([series.step(state, row) for row in rows])


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def rows_of(minutes: np.ndarray, timeframe: str) -> np.ndarray:
    return minutes if timeframe == "1m" else aggregate_candles(minutes, timeframe)


@pytest.mark.parametrize("series", ALL, ids=lambda s: s.key)
def test_stepping_a_series_gives_the_vectorised_bits_on_real_candles(series: Series) -> None:
    rows = rows_of(eth_1m()[:3000], series.timeframe)
    np.testing.assert_array_equal(stepped(series, rows), series.vectorised(rows))
    assert np.isfinite(series.vectorised(rows)[-1])  # warmed up: not a NaN-only comparison


@settings(max_examples=60, deadline=None)
@given(data=random_candles(), kind=st.sampled_from(sorted(KINDS)), n=st.integers(2, 30))
def test_stepping_a_series_gives_the_vectorised_bits_on_random_candles(data, kind, n) -> None:
    series = Series(kind, "1m", n)
    np.testing.assert_array_equal(stepped(series, data), series.vectorised(data))


@pytest.mark.parametrize("series", ALL, ids=lambda s: s.key)
def test_a_builder_fed_candle_by_candle_reads_the_whole_history_values(series: Series) -> None:
    """Preloaded with 1,000 minutes then appended 2,000 more one by one: every value read at
    a close equals the vectorised series over all 3,000 minutes at that candle."""
    minutes = eth_1m()[:3000]
    builder = SnapshotBuilder("ETH", minutes[:1000], (series.timeframe,), series_on_demand=False)
    builder.declare_series((series,))
    rows = rows_of(minutes, series.timeframe)
    expected = series.vectorised(rows)
    for row in minutes[1000:]:
        now = int(row[0]) + 60_000
        builder.append_candle(row, now_ms=now)
        last_closed = builder.candles_at(series.timeframe, now)[-1, 0]
        at = int(np.searchsorted(rows[:, 0], last_closed))
        assert same(builder.at(now).value(series), expected[at])
    held = builder.series_history(series)
    np.testing.assert_array_equal(held, expected[: len(held)])
    assert len(held) >= len(expected) - 1  # at most the last bucket still open


def test_a_checkpointed_series_resumes_its_state_after_a_shorter_reload() -> None:
    """A restart reloads only a window of candles: restored from the checkpoint, the series
    continue the uninterrupted run's values bit for bit, where a fresh seed on the window
    gives other values."""
    minutes = eth_1m()[:4000]
    declared = (Series("rsi", "5m", 14), Series("ema", "1m", 50), Series("adx", "5m", 14))
    tfs = ("1m", "5m")
    whole = SnapshotBuilder("ETH", minutes[:2000], tfs, series_on_demand=False)
    whole.declare_series(declared)
    for row in minutes[2000:3000]:
        whole.append_candle(row, now_ms=int(row[0]) + 60_000)
    saved = json.loads(json.dumps(whole.series_states()))  # a checkpoint is JSON

    reloaded = SnapshotBuilder("ETH", minutes[2500:3000], tfs, series_on_demand=False)
    reloaded.declare_series(declared)
    assert reloaded.restore_series(saved) == []
    reseeded = SnapshotBuilder("ETH", minutes[2500:3000], tfs, series_on_demand=False)
    reseeded.declare_series(declared)

    differs = 0
    for row in minutes[3000:]:
        now = int(row[0]) + 60_000
        for builder in (whole, reloaded, reseeded):
            builder.append_candle(row, now_ms=now)
        for series in declared:
            assert reloaded.at(now).value(series) == whole.at(now).value(series), series.key
            differs += reseeded.at(now).value(series) != whole.at(now).value(series)
    assert differs > 0  # the window alone would not have resumed them: the test can fail


def test_a_checkpoint_that_does_not_end_where_the_history_ends_is_not_resumed() -> None:
    minutes = eth_1m()[:1500]
    rsi = Series("rsi", "5m", 14)
    builder = SnapshotBuilder("ETH", minutes[:1000], ("5m",), series_on_demand=False)
    builder.declare_series((rsi,))
    saved = builder.series_states()
    later = SnapshotBuilder("ETH", minutes[:1200], ("5m",), series_on_demand=False)
    later.declare_series((rsi,))
    assert later.restore_series(saved) == [rsi.key]
    # its values stay those of its own history, from the first held candle
    expected = rsi.vectorised(aggregate_candles(minutes[:1200], "5m"))
    np.testing.assert_array_equal(later.series_history(rsi), expected)


def test_a_kernel_builder_refuses_a_series_its_strategy_did_not_declare() -> None:
    builder = SnapshotBuilder("ETH", eth_1m()[:600], ("5m",), series_on_demand=False)
    builder.declare_series((Series("rsi", "5m", 14),))
    snap = builder.at(int(eth_1m()[599, 0]) + 60_000)
    assert math.isfinite(snap.value(Series("rsi", "5m", 14)))
    with pytest.raises(SeriesError, match="rsi/5m/7 was not declared"):
        snap.value(Series("rsi", "5m", 7))
    with pytest.raises(SeriesError, match="needs 15m candles"):
        builder.declare_series((Series("rsi", "15m", 14),))


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("vwap_rsi", {"rsi_long_below": 45.0, "rsi_short_above": 55.0, "volume_spike_mult": 1.0}),
        ("momentum_breakout", {"range_lookback": 5, "volume_mult": 1.0}),
    ],
)
def test_a_strategy_declares_every_series_it_reads(kind: str, params: dict) -> None:
    """On a builder that refuses undeclared series, the strategy decides at every 5m close
    (signals included: the reads past the first filters happen too)."""
    strategy = build_strategy(kind, params)
    builder = SnapshotBuilder("ETH", eth_1m(), ("1m", "5m", "15m", "1h"), series_on_demand=False)
    builder.declare_series(strategy.series())
    decided = [strategy.decide(builder.at(int(t))) for t in builder.close_times_ms("5m")]
    assert sum(signal is not None for signal in decided) >= 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sma", "5m", 14), "unknown series kind 'sma'"),
        (("rsi", "7x", 14), "series rsi"),
        (("rsi", "5m", 1), "period must be ≥ 2"),
        (("ema", "5m", 2.0), "period must be an int"),
        (("adx", "5m", True), "period must be an int"),
    ],
)
def test_a_series_that_cannot_exist_is_refused(args, message) -> None:
    with pytest.raises(SeriesError, match=message):
        Series(*args)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_saved_state_round_trips_exactly_through_json(kind: str) -> None:
    series = Series(kind, "1m", 14)
    rows = eth_1m()[:80]
    state = series.new_state()
    for row in rows[:40]:
        series.step(state, row)
    restored = decode_state(series, json.loads(json.dumps(encode_state(state))))
    resumed = [series.step(restored, row) for row in rows[40:]]
    uninterrupted = [series.step(state, row) for row in rows[40:]]
    assert all(math.isfinite(v) for v in uninterrupted)
    assert resumed == uninterrupted
    with pytest.raises(SeriesError, match="expected"):
        decode_state(series, {"bogus": 1})


def test_a_track_reads_nan_before_its_first_candle_and_after_its_end() -> None:
    series = Series("ema", "1m", 3)
    rows = eth_1m()[:10]
    track = SeriesTrack(series, series.vectorised(rows[:5]))
    for k in range(5, 10):
        track.append(rows[k], rows[:k])
    assert math.isnan(track.value_at(-1))
    assert math.isnan(track.value_at(10))
    np.testing.assert_array_equal(track.values(10), series.vectorised(rows))


def test_a_kernel_restarted_on_a_shorter_window_resumes_its_series_from_the_checkpoint() -> None:
    """The radar's restart: the checkpoint goes through JSON and the new kernel is preloaded
    with only the window before its last candle. Its vwap_rsi series resume exactly (none
    re-seeded), and it decides every later candle as the uninterrupted kernel does."""
    from strategies.core.kernel import KernelConfig, StrategyKernel
    from tests.conftest import SAMPLE_DIR
    from trading.core.candles import read_candles_csv
    from trading.core.risk import RiskLimits

    symbol = "BTC/USDT:USDT"
    minutes = read_candles_csv(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")
    params = {
        "timeframe": "1m",
        "rsi_long_below": 35,
        "rsi_short_above": 65,
        "volume_spike_mult": 1.2,
        "adx_range_max": 30,
    }
    cfg = KernelConfig(risk_limits=RiskLimits(max_risk_per_trade_pct=1.0))

    def kernel(state: dict | None = None) -> StrategyKernel:
        return StrategyKernel("v", {symbol: build_strategy("vwap_rsi", params)}, cfg, state=state)

    def feed(k: StrategyKernel, rows: np.ndarray) -> list:
        return [e for r in rows for e in k.on_candle(symbol, r, int(r[0]) + 60_000)]

    whole = kernel()
    whole.preload(symbol, minutes[:1500])
    events = feed(whole, minutes[1500:])
    first = kernel()
    first.preload(symbol, minutes[:1500])
    resumed = feed(first, minutes[1500:5000])
    state = json.loads(json.dumps(first.state()))
    assert set(state["symbols"][symbol]["series"]) == {s.key for s in first.declared_series(symbol)}
    second = kernel(state)
    second.preload(symbol, minutes[4000:5000])  # the window only, as after a restart
    assert second._sym(symbol).series_not_resumed == []
    resumed += feed(second, minutes[5000:])
    trades = [e.trade for e in events if type(e).__name__ == "PositionClosed"]
    assert len(trades) >= 3
    assert [e.trade for e in resumed if type(e).__name__ == "PositionClosed"] == trades
