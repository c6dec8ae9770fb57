"""Candle arrays: timeframes, aggregation of closed 1m candles, streaming, rolling buffers."""

from __future__ import annotations

import gzip
import time
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.core.candles import (
    CSV_HEADER,
    MINUTE_MS,
    TIMEFRAME_MS,
    C,
    CandleBuffer,
    CandleError,
    CandleNotClosed,
    H,
    L,
    O,
    OutOfOrderCandle,
    StreamingAggregator,
    T,
    V,
    aggregate_candles,
    read_candles_csv,
    timeframe_ms,
    validate_candles,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
SPOT_1M = "binance-spot_BTC-USDT_1m_20210418-20210421.csv.gz"
SPOT_5M = "binance-spot_BTC-USDT_5m_20210418-20210421.csv.gz"
SPOT_1H = "binance-spot_BTC-USDT_1h_20210418-20210421.csv.gz"
PERP_1M = "binance-usdm_BTC-USDT_1m_20250506-20250508.csv.gz"

NOON_MS = 1_746_532_800_000  # 2025-05-06 12:00 UTC
OUTAGE_HOUR_MS = 1_618_891_200_000  # 2021-04-20 04:00 UTC: Binance spot traded 04:30..04:59 only


@cache
def real(name: str) -> np.ndarray:
    return read_candles_csv(DATA_DIR / name)


def minutes(start_ms: int, closes: list[float], volume: float = 1.0) -> np.ndarray:
    """1m candles opening at start_ms, start_ms + 1m, ...: open = previous close (first: its
    own close), high = max(open, close) + 1, low = min(open, close) - 1."""
    rows = []
    previous = closes[0]
    for i, close in enumerate(closes):
        high = max(previous, close) + 1.0
        low = min(previous, close) - 1.0
        rows.append([start_ms + i * MINUTE_MS, previous, high, low, close, volume])
        previous = close
    return np.array(rows, dtype=np.float64)


def closed_at(candle: np.ndarray, timeframe: str = "1m") -> int:
    return int(candle[T]) + timeframe_ms(timeframe)


# --- timeframes


def test_timeframe_table_gives_the_duration_of_each_supported_timeframe_in_ms():
    assert TIMEFRAME_MS == {
        "1m": 60_000,
        "5m": 300_000,
        "15m": 900_000,
        "1h": 3_600_000,
        "4h": 14_400_000,
        "1d": 86_400_000,
    }
    assert all(timeframe_ms(tf) == ms for tf, ms in TIMEFRAME_MS.items())


def test_any_whole_number_of_minutes_hours_or_days_is_a_timeframe():
    assert timeframe_ms("3m") == 180_000
    assert timeframe_ms("2h") == 7_200_000
    assert timeframe_ms("3d") == 259_200_000


@pytest.mark.parametrize("bad", ["1w", "0m", "5", "m5", "1M", "", "1.5h", "05m", " 5m", "-1m"])
def test_an_unknown_timeframe_is_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="unknown timeframe"):
        timeframe_ms(bad)


# --- csv + validation


def test_reading_a_gzipped_fixture_gives_float_rows_of_six_columns():
    candles = real(PERP_1M)
    assert candles.shape == (4320, 6)
    assert candles.dtype == np.float64
    assert candles[0, T] == 1_746_489_600_000  # 2025-05-06 00:00 UTC
    validate_candles(candles, "1m")


def test_reading_a_plain_csv_gives_the_same_numbers_as_its_gzipped_twin(tmp_path):
    with gzip.open(DATA_DIR / SPOT_1H, "rt") as source:
        text = source.read()
    plain = tmp_path / "candles.csv"
    plain.write_text(text)
    np.testing.assert_array_equal(read_candles_csv(plain), real(SPOT_1H))


def test_a_csv_with_another_header_is_refused(tmp_path):
    funding = tmp_path / "funding.csv"
    funding.write_text("timestamp_ms,rate\n1700000000000,0.0001\n")
    with pytest.raises(CandleError, match="header"):
        read_candles_csv(funding)


def test_a_csv_with_only_a_header_reads_as_zero_candles(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text(CSV_HEADER + "\n")
    assert read_candles_csv(empty).shape == (0, 6)


def test_candles_out_of_time_order_are_refused():
    candles = minutes(NOON_MS, [1.0, 2.0, 3.0])
    with pytest.raises(OutOfOrderCandle, match="row 2"):
        validate_candles(candles[[0, 2, 1]])


def test_a_duplicated_minute_is_refused():
    candles = minutes(NOON_MS, [1.0, 2.0])
    with pytest.raises(OutOfOrderCandle):
        validate_candles(np.vstack([candles, candles[-1:]]))


def test_a_candle_not_on_the_minute_grid_is_refused():
    candles = minutes(NOON_MS, [1.0, 2.0])
    candles[1, T] += 1_000
    with pytest.raises(CandleError, match="not aligned"):
        validate_candles(candles)


def test_a_candle_with_a_nan_price_is_refused():
    candles = minutes(NOON_MS, [1.0, 2.0])
    candles[1, H] = np.nan
    with pytest.raises(CandleError, match="NaN"):
        validate_candles(candles)


def test_an_array_without_six_columns_is_refused():
    with pytest.raises(CandleError, match=r"shape \(N, 6\)"):
        validate_candles(np.zeros((3, 5)))


# --- vectorised aggregation


def test_ten_minutes_from_noon_make_two_five_minute_candles_worked_by_hand():
    """Closes 10..19, each minute's open = previous close, high/low = max/min ± 1, volume 1.

    12:00 bucket: open 10 (first open), high 15 (14+1), low 9 (10-1), close 14, volume 5.
    12:05 bucket: open 14 (close of 12:04), high 20, low 13, close 19, volume 5.
    """
    candles = minutes(NOON_MS, [float(c) for c in range(10, 20)])
    out = aggregate_candles(candles, "5m")
    np.testing.assert_array_equal(
        out,
        [
            [NOON_MS, 10.0, 15.0, 9.0, 14.0, 5.0],
            [NOON_MS + 300_000, 14.0, 20.0, 13.0, 19.0, 5.0],
        ],
    )


def test_a_bucket_with_a_missing_minute_is_dropped():
    candles = minutes(NOON_MS, [float(c) for c in range(10, 20)])
    without_1202 = np.delete(candles, 2, axis=0)
    out = aggregate_candles(without_1202, "5m")
    assert out[:, T].tolist() == [NOON_MS + 300_000]


def test_the_still_forming_last_bucket_is_not_emitted():
    candles = minutes(NOON_MS, [float(c) for c in range(10, 18)])  # 12:00..12:07
    out = aggregate_candles(candles, "5m")
    assert out[:, T].tolist() == [NOON_MS]


def test_buckets_are_aligned_to_the_utc_epoch_not_to_the_first_candle():
    candles = minutes(NOON_MS + 3 * MINUTE_MS, [float(c) for c in range(10, 20)])  # 12:03..12:12
    out = aggregate_candles(candles, "5m")
    assert out[:, T].tolist() == [NOON_MS + 300_000]  # 12:05..12:09; 12:00 and 12:10 partial


def test_a_daily_candle_opens_at_midnight_utc():
    day_ms = 1_746_489_600_000  # 2025-05-06 00:00 UTC
    candles = minutes(day_ms, [100.0 + (i % 7) for i in range(1440)])
    out = aggregate_candles(candles, "1d")
    assert out[:, T].tolist() == [day_ms]
    assert out[0, V] == 1440.0


def test_higher_timeframes_can_be_built_from_another_base_timeframe():
    fifteen = aggregate_candles(real(PERP_1M), "15m")
    np.testing.assert_array_equal(
        aggregate_candles(fifteen, "1h", base_timeframe="15m")[:, :V],
        aggregate_candles(real(PERP_1M), "1h")[:, :V],
    )


def test_a_timeframe_that_is_not_a_multiple_of_the_base_is_refused():
    with pytest.raises(ValueError, match="not a multiple"):
        aggregate_candles(real(SPOT_5M), "7m", base_timeframe="5m")


def test_no_candles_aggregate_to_no_candles():
    assert aggregate_candles(np.empty((0, 6)), "1h").shape == (0, 6)


def assert_same_candles(ours: np.ndarray, exchange: np.ndarray) -> None:
    """Open time, open, high, low, close exactly; volume to 1e-9 relative."""
    np.testing.assert_array_equal(ours[:, :V], exchange[:, :V])
    np.testing.assert_allclose(ours[:, V], exchange[:, V], rtol=1e-9, atol=0)


def test_real_1m_candles_aggregate_to_the_exchanges_own_5m_candles():
    """4 days of Binance spot, including the 2021-04-20 02:00..04:29 outage: the outage is
    aligned to 5 minutes, so every one of the exchange's 1,122 5m candles is rebuilt."""
    ours = aggregate_candles(real(SPOT_1M), "5m")
    assert len(ours) == len(real(SPOT_5M)) == 1122
    assert_same_candles(ours, real(SPOT_5M))


def test_real_1m_candles_aggregate_to_the_exchanges_own_1h_candles_on_every_hour_we_emit():
    ours = aggregate_candles(real(SPOT_1M), "1h")
    exchange = real(SPOT_1H)
    emitted = np.isin(exchange[:, T], ours[:, T])
    assert np.isin(ours[:, T], exchange[:, T]).all()
    assert_same_candles(ours, exchange[emitted])
    assert exchange[~emitted, T].tolist() == [OUTAGE_HOUR_MS]


def test_the_outage_hour_the_exchange_prints_from_half_its_minutes_is_dropped_by_our_rule():
    """Binance prints 2021-04-20 04:00 from the 30 minutes 04:30..04:59 that traded after its
    maintenance. Our rule (a bucket needs all its minutes) leaves that hour out: from the feed's
    side a partial hour cannot be told apart from minutes we failed to receive."""
    one_minute = real(SPOT_1M)
    in_hour = one_minute[(one_minute[:, T] >= OUTAGE_HOUR_MS)]
    in_hour = in_hour[in_hour[:, T] < OUTAGE_HOUR_MS + 3_600_000]
    assert len(in_hour) == 30
    exchange_hour = real(SPOT_1H)[real(SPOT_1H)[:, T] == OUTAGE_HOUR_MS][0]
    assert exchange_hour[O] == in_hour[0, O]
    assert exchange_hour[H] == in_hour[:, H].max()
    assert exchange_hour[C] == in_hour[-1, C]
    assert OUTAGE_HOUR_MS not in aggregate_candles(one_minute, "1h")[:, T]


def test_real_5m_candles_aggregate_to_the_exchanges_own_1h_candles():
    ours = aggregate_candles(real(SPOT_5M), "1h", base_timeframe="5m")
    exchange = real(SPOT_1H)
    assert_same_candles(ours, exchange[np.isin(exchange[:, T], ours[:, T])])
    assert len(ours) == 93


def test_aggregating_a_hundred_thousand_minutes_takes_milliseconds():
    base = real(PERP_1M)
    candles = np.vstack([base] * 24)[:100_000].copy()
    candles[:, T] = base[0, T] + np.arange(len(candles)) * MINUTE_MS
    aggregate_candles(candles, "1h")
    started = time.perf_counter()
    for tf in ("5m", "15m", "1h"):
        aggregate_candles(candles, tf)
    assert time.perf_counter() - started < 0.5  # ~10 ms on the dev box; loose for CI noise


# --- invariants (hypothesis)


@st.composite
def minute_series(draw: st.DrawFn) -> np.ndarray:
    """Random closed 1m candles starting at a random minute, with random missing minutes."""
    count = draw(st.integers(min_value=0, max_value=400))
    start_minute = draw(st.integers(min_value=27_000_000, max_value=28_000_000))
    keep_every = draw(st.sampled_from([1, 1, 1, 2, 7, 50]))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    present = rng.random(count) >= (1.0 / keep_every if keep_every > 1 else 0.0)
    if keep_every > 1 and count:
        gap_start = rng.integers(0, count)
        present[gap_start : gap_start + rng.integers(1, 40)] = False
    opens = 100.0 + np.cumsum(rng.normal(0.0, 1.0, count))
    closes = opens + rng.normal(0.0, 1.0, count)
    highs = np.maximum(opens, closes) + rng.exponential(0.5, count)
    lows = np.minimum(opens, closes) - rng.exponential(0.5, count)
    volumes = rng.exponential(3.0, count) * (rng.random(count) > 0.05)
    times = (start_minute + np.arange(count)) * float(MINUTE_MS)
    return np.column_stack([times, opens, highs, lows, closes, volumes])[present]


@settings(max_examples=150, deadline=None)
@given(minute_series(), st.sampled_from(["2m", "3m", "5m", "15m", "1h"]))
def test_aggregated_candles_keep_high_above_and_low_below_every_price(candles, timeframe):
    out = aggregate_candles(candles, timeframe)
    assert (out[:, H] >= np.maximum(out[:, O], out[:, C])).all()
    assert (out[:, L] <= np.minimum(out[:, O], out[:, C])).all()
    assert (out[:, V] >= 0).all()
    assert (out[:, T] % timeframe_ms(timeframe) == 0).all()
    assert (np.diff(out[:, T]) > 0).all()


@settings(max_examples=150, deadline=None)
@given(minute_series(), st.sampled_from(["2m", "5m", "15m", "1h"]))
def test_each_aggregated_candle_is_made_of_exactly_its_minutes(candles, timeframe):
    out = aggregate_candles(candles, timeframe)
    span = timeframe_ms(timeframe)
    buckets = candles[:, T] - candles[:, T] % span
    full = [b for b in np.unique(buckets) if (buckets == b).sum() == span // MINUTE_MS]
    assert out[:, T].tolist() == full
    for row in out:
        inside = candles[buckets == row[T]]
        assert row[O] == inside[0, O]
        assert row[H] == inside[:, H].max()
        assert row[L] == inside[:, L].min()
        assert row[C] == inside[-1, C]
        assert row[V] == pytest.approx(inside[:, V].sum(), rel=1e-12, abs=1e-12)


# --- streaming


def test_the_noon_5m_candle_comes_out_when_the_1204_minute_is_pushed_never_earlier():
    candles = minutes(NOON_MS, [float(c) for c in range(10, 20)])
    aggregator = StreamingAggregator(("5m",))
    emitted = [aggregator.push(row, now_ms=closed_at(row)) for row in candles]
    assert emitted[:4] == [[], [], [], []]
    assert [tf for tf, _ in emitted[4]] == ["5m"]
    np.testing.assert_array_equal(emitted[4][0][1], [NOON_MS, 10.0, 15.0, 9.0, 14.0, 5.0])
    assert emitted[5:9] == [[], [], [], []]
    assert emitted[9][0][1][T] == NOON_MS + 300_000


def test_each_higher_timeframe_closing_on_the_same_minute_is_emitted_once_shortest_first():
    candles = minutes(NOON_MS, [100.0 + (i % 5) for i in range(60)])
    aggregator = StreamingAggregator(("1h", "5m", "15m"))
    emitted = [out for row in candles for out in aggregator.push(row, now_ms=closed_at(row))]
    assert [tf for tf, _ in emitted].count("5m") == 12
    assert [tf for tf, _ in emitted].count("15m") == 4
    assert [tf for tf, _ in emitted][-3:] == ["5m", "15m", "1h"]


def test_a_forming_minute_cannot_be_pushed():
    candle = minutes(NOON_MS, [10.0])[0]
    aggregator = StreamingAggregator()
    with pytest.raises(CandleNotClosed, match="closes at"):
        aggregator.push(candle, now_ms=NOON_MS + 59_999)
    assert aggregator.push(candle, now_ms=NOON_MS + 60_000) == []
    assert aggregator.last_open_time_ms == NOON_MS


def test_an_earlier_minute_than_the_last_pushed_is_refused():
    first, second = minutes(NOON_MS, [10.0, 11.0])
    aggregator = StreamingAggregator()
    aggregator.push(second, now_ms=closed_at(second))
    with pytest.raises(OutOfOrderCandle):
        aggregator.push(first, now_ms=closed_at(second))


def test_the_same_minute_pushed_again_unchanged_is_ignored_but_a_changed_one_is_refused():
    candles = minutes(NOON_MS, [float(c) for c in range(10, 15)])
    aggregator = StreamingAggregator(("5m",))
    for row in candles[:4]:
        aggregator.push(row, now_ms=closed_at(row))
    assert aggregator.push(candles[3], now_ms=closed_at(candles[3])) == []
    changed = candles[3].copy()
    changed[C] += 1.0
    with pytest.raises(OutOfOrderCandle, match="different values"):
        aggregator.push(changed, now_ms=closed_at(changed))
    assert len(aggregator.push(candles[4], now_ms=closed_at(candles[4]))) == 1


def test_a_bucket_with_a_missing_minute_is_never_emitted_by_the_stream():
    candles = np.delete(minutes(NOON_MS, [float(c) for c in range(10, 20)]), 2, axis=0)
    aggregator = StreamingAggregator(("5m",))
    emitted = [out for row in candles for out in aggregator.push(row, now_ms=closed_at(row))]
    assert [row[T] for _, row in emitted] == [NOON_MS + 300_000]


def test_a_minute_off_the_grid_is_refused_by_the_stream():
    candle = minutes(NOON_MS, [10.0])[0]
    candle[T] += 30_000
    with pytest.raises(CandleError, match="grid"):
        StreamingAggregator().push(candle, now_ms=NOON_MS + 10 * MINUTE_MS)


def stream(candles: np.ndarray, timeframes: tuple[str, ...]) -> dict[str, np.ndarray]:
    aggregator = StreamingAggregator(timeframes)
    out: dict[str, list[np.ndarray]] = {tf: [] for tf in timeframes}
    for row in candles:
        for tf, candle in aggregator.push(row, now_ms=closed_at(row)):
            out[tf].append(candle)
    return {tf: np.array(rows).reshape(-1, 6) for tf, rows in out.items()}


def test_streaming_the_real_minutes_with_an_outage_equals_vectorised_aggregation_bit_for_bit():
    streamed = stream(real(SPOT_1M), ("5m", "15m", "1h"))
    for tf, rows in streamed.items():
        np.testing.assert_array_equal(rows, aggregate_candles(real(SPOT_1M), tf))


@settings(max_examples=150, deadline=None)
@given(minute_series())
def test_streaming_equals_vectorised_aggregation_with_random_gaps(candles):
    streamed = stream(candles, ("2m", "5m", "15m", "1h"))
    for tf, rows in streamed.items():
        np.testing.assert_array_equal(rows, aggregate_candles(candles, tf))


# --- rolling buffer


def test_the_buffer_keeps_only_the_newest_maxlen_candles_oldest_first():
    candles = minutes(NOON_MS, [float(c) for c in range(10, 35)])
    buffer = CandleBuffer(maxlen=4, timeframe="1m", symbol="BTC/USDT:USDT")
    for row in candles:
        buffer.append(row, now_ms=closed_at(row))
    assert len(buffer) == 4
    np.testing.assert_array_equal(buffer.last(), candles[-4:])
    np.testing.assert_array_equal(buffer.last(2), candles[-2:])
    assert buffer.last(10).shape == (4, 6)
    assert buffer.last(0).shape == (0, 6)
    assert buffer.last_open_time_ms == int(candles[-1, T])


def test_the_array_handed_out_is_a_copy_the_buffer_cannot_change_under_the_caller():
    candles = minutes(NOON_MS, [float(c) for c in range(10, 30)])
    buffer = CandleBuffer(maxlen=3)
    for row in candles[:3]:
        buffer.append(row, now_ms=closed_at(row))
    held = buffer.last()
    for row in candles[3:]:
        buffer.append(row, now_ms=closed_at(row))
    np.testing.assert_array_equal(held, candles[:3])


def test_the_buffer_refuses_a_candle_that_is_not_newer_than_its_newest():
    first, second = minutes(NOON_MS, [10.0, 11.0])
    buffer = CandleBuffer(maxlen=10, symbol="ETH/USDT:USDT")
    buffer.append(second, now_ms=closed_at(second))
    with pytest.raises(OutOfOrderCandle, match="ETH/USDT:USDT 1m"):
        buffer.append(first, now_ms=closed_at(second))
    with pytest.raises(OutOfOrderCandle):
        buffer.append(second, now_ms=closed_at(second))


def test_the_buffer_refuses_a_forming_candle_of_its_timeframe():
    five_minute = aggregate_candles(minutes(NOON_MS, [10.0] * 5), "5m")[0]
    buffer = CandleBuffer(maxlen=10, timeframe="5m")
    with pytest.raises(CandleNotClosed):
        buffer.append(five_minute, now_ms=NOON_MS + 4 * MINUTE_MS)
    buffer.append(five_minute, now_ms=NOON_MS + 5 * MINUTE_MS)
    assert len(buffer) == 1


def test_the_buffer_refuses_a_candle_off_its_timeframe_grid():
    buffer = CandleBuffer(maxlen=10, timeframe="5m")
    with pytest.raises(CandleError, match="5m grid"):
        buffer.append([NOON_MS + MINUTE_MS, 1, 1, 1, 1, 1], now_ms=NOON_MS + 3_600_000)


def test_the_buffer_can_be_filled_from_history_in_one_call():
    history = real(PERP_1M)
    buffer = CandleBuffer(maxlen=500)
    buffer.extend(history, now_ms=closed_at(history[-1]))
    np.testing.assert_array_equal(buffer.last(), history[-500:])


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=12), st.integers(min_value=0, max_value=80))
def test_the_buffer_always_holds_the_same_rows_as_a_plain_list(maxlen, count):
    candles = minutes(NOON_MS, [float(c) for c in range(count)]) if count else np.empty((0, 6))
    buffer = CandleBuffer(maxlen=maxlen)
    for i, row in enumerate(candles):
        buffer.append(row, now_ms=closed_at(row))
        np.testing.assert_array_equal(buffer.last(), candles[max(0, i + 1 - maxlen) : i + 1])
    assert len(buffer) == min(count, maxlen)
