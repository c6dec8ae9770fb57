"""The market-data CSV reader: file names, header, and every kind of bad row (no database)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from trading.core.csvdata import (
    BadRow,
    CandleCsvReader,
    CsvDataError,
    FundingCsvReader,
    open_data_file,
    parse_data_file_name,
)

HEADER = "timestamp_ms,open,high,low,close,volume\n"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC
MINUTE = 60_000


def candle_line(
    i: int, o: float = 100.0, h: float = 101.0, lo: float = 99.0, c: float = 100.5, v: float = 3.0
) -> str:
    """One CSV line for the candle opening ``i`` minutes after T0."""
    return f"{T0 + i * MINUTE},{o},{h},{lo},{c},{v}\n"


def read_candles(text: str, timeframe: str = "1m") -> tuple[list[tuple], CandleCsvReader]:
    reader = CandleCsvReader(io.StringIO(text), timeframe=timeframe, source="test.csv")
    return list(reader), reader


# --- file names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "exchange", "symbol", "kind", "timeframe"),
    [
        (
            "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz",
            "binance",
            "BTC/USDT:USDT",
            "1m",
            "1m",
        ),
        ("binance-spot_ETH-USDT_1h_20180101-20260516.csv.gz", "binance", "ETH/USDT", "1h", "1h"),
        ("ftx-perp_BTC-USD_1m_20211231-20220201.csv", "ftx", "BTC/USD:USD", "1m", "1m"),
        ("binance-coinm_BTC-USD_5m_20240101.csv", "binance", "BTC/USD:BTC", "5m", "5m"),
        (
            "binance-usdm_SOL-USDT_funding_20250617-20250623.csv.gz",
            "binance",
            "SOL/USDT:USDT",
            "funding",
            None,
        ),
        (
            "binance-usdm_BTC-USDT_mark-1h_20191223-20260517.csv.gz",
            "binance",
            "BTC/USDT:USDT",
            "mark-1h",
            None,
        ),
        ("bitget_BTC-USDT_15m.csv", "bitget", None, "15m", "15m"),
        ("binance-usdm_BTC-USDT_1m_june-week.csv", "binance", "BTC/USDT:USDT", "1m", "1m"),
    ],
)
def test_file_name_gives_exchange_unified_symbol_and_kind(
    name: str, exchange: str, symbol: str | None, kind: str, timeframe: str | None
) -> None:
    parsed = parse_data_file_name(name)
    assert parsed is not None
    assert (parsed.exchange, parsed.symbol, parsed.kind, parsed.timeframe) == (
        exchange,
        symbol,
        kind,
        timeframe,
    )


@pytest.mark.parametrize("name", ["candles.csv", "BTCUSDT-1m.csv.gz", "binance_BTCUSDT_1m.csv"])
def test_file_name_of_another_shape_gives_none(name: str) -> None:
    assert parse_data_file_name(name) is None


def test_directory_part_of_a_path_is_ignored() -> None:
    parsed = parse_data_file_name("/data/x_y/binance-usdm_BTC-USDT_1m_20250617.csv")
    assert parsed is not None and parsed.symbol == "BTC/USDT:USDT"


# --- header and file errors -------------------------------------------------------------------


def test_good_rows_are_returned_as_typed_tuples() -> None:
    rows, reader = read_candles(HEADER + candle_line(0) + candle_line(1))
    assert rows == [
        (T0, 100.0, 101.0, 99.0, 100.5, 3.0),
        (T0 + MINUTE, 100.0, 101.0, 99.0, 100.5, 3.0),
    ]
    assert isinstance(rows[0][0], int)
    assert reader.rows_read == 2
    assert reader.bad_rows == []


def test_wrong_header_refuses_the_file() -> None:
    with pytest.raises(CsvDataError, match=r"header is 'time,open,high,low,close,volume'"):
        read_candles("time,open,high,low,close,volume\n" + candle_line(0))


def test_funding_file_read_as_candles_is_refused_by_its_header() -> None:
    with pytest.raises(CsvDataError, match="expected 'timestamp_ms,open,high,low,close,volume'"):
        read_candles("timestamp_ms,rate\n1750118400000,0.0001\n")


def test_empty_file_is_refused() -> None:
    with pytest.raises(CsvDataError, match="empty file"):
        read_candles("")


def test_header_only_file_has_no_rows() -> None:
    rows, reader = read_candles(HEADER)
    assert rows == [] and reader.rows_read == 0


def test_blank_lines_are_skipped_but_line_numbers_stay_physical() -> None:
    text = HEADER + candle_line(0) + "\n" + candle_line(1, h=98.0) + "\n"
    rows, reader = read_candles(text)
    assert len(rows) == 1
    assert reader.rows_read == 2
    assert [bad.line for bad in reader.bad_rows] == [4]


def test_unknown_timeframe_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown timeframe '2m'"):
        CandleCsvReader(io.StringIO(HEADER), timeframe="2m")


# --- bad rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f"{T0},100,101,99,100.5\n", "missing volume (5 of 6 values)"),
        (f"{T0},100,101,99,100.5,3,7\n", "7 values, expected 6"),
        (f"{T0},100,,99,100.5,3\n", "missing high"),
        (f"{T0},abc,101,99,100.5,3\n", "open 'abc' is not a number"),
        (f"{T0},100,101,99,nan,3\n", "close nan is not a finite number"),
        (f"{T0},100,inf,99,100.5,3\n", "high inf is not a finite number"),
        (f"x{T0},100,101,99,100.5,3\n", f"timestamp_ms 'x{T0}' is not a number"),
        (f"{T0}.5,100,101,99,100.5,3\n", f"timestamp_ms '{T0}.5' is not a whole number"),
        (f"{T0 // 1000},100,101,99,100.5,3\n", "seconds instead of milliseconds"),
        (f"{T0},100.0,100.0,101.0,100.5,3\n", "high 100.0 < low 101.0"),
        (f"{T0},100.0,100.2,99.0,100.5,3\n", "high 100.2 < close 100.5"),
        (f"{T0},100.7,100.6,99.0,100.5,3\n", "high 100.6 < open 100.7"),
        (f"{T0},100.0,101.0,100.2,100.5,3\n", "low 100.2 > open 100.0"),
        (f"{T0},100.0,101.0,99.0,100.5,-1\n", "volume -1.0 is negative"),
        (f"{T0},0,101,0,100.5,3\n", "open 0.0 is not positive"),
        (f"{T0 + 30_000},100,101,99,100.5,3\n", "is not aligned to the 1m grid"),
    ],
)
def test_each_kind_of_bad_row_is_reported_with_its_line_and_reason(line: str, reason: str) -> None:
    rows, reader = read_candles(HEADER + candle_line(-2) + line + candle_line(2))
    assert len(rows) == 2, "the good rows around the bad one are kept"
    assert reader.rows_read == 3
    assert len(reader.bad_rows) == 1
    bad = reader.bad_rows[0]
    assert bad.line == 3
    assert reason in bad.reason
    assert str(bad) == f"line 3: {bad.reason}"


def test_message_format_for_high_below_low() -> None:
    assert str(BadRow(17, "high 100.0 < low 101.0")) == "line 17: high 100.0 < low 101.0"


def test_duplicate_time_names_the_first_line() -> None:
    rows, reader = read_candles(HEADER + candle_line(0) + candle_line(1) + candle_line(1))
    assert len(rows) == 2
    assert reader.bad_rows == [BadRow(4, f"timestamp_ms {T0 + MINUTE} duplicates line 3")]


def test_time_going_backwards_is_a_bad_row() -> None:
    rows, reader = read_candles(HEADER + candle_line(0) + candle_line(5) + candle_line(3))
    assert [row[0] for row in rows] == [T0, T0 + 5 * MINUTE]
    assert reader.bad_rows[0].line == 4
    assert "is before line 3" in reader.bad_rows[0].reason


def test_order_is_checked_against_the_last_good_row_only() -> None:
    """Line 3 is bad (high < low) at minute 5; line 4 at minute 1 follows good line 2 (minute 0)
    so it is in order and kept."""
    text = HEADER + candle_line(0) + candle_line(5, h=98.0) + candle_line(1)
    rows, reader = read_candles(text)
    assert [row[0] for row in rows] == [T0, T0 + MINUTE]
    assert [bad.line for bad in reader.bad_rows] == [3]


def test_alignment_follows_the_timeframe() -> None:
    text = HEADER + candle_line(0) + candle_line(5) + candle_line(7)
    rows, reader = read_candles(text, timeframe="5m")
    assert len(rows) == 2
    assert reader.bad_rows[0].line == 4
    assert "5m grid (multiples of 300000 ms)" in reader.bad_rows[0].reason


def test_row_with_several_problems_lists_them_all() -> None:
    _, reader = read_candles(HEADER + f"{T0 + 1},100,101,99,100.5,-2\n")
    assert reader.bad_rows[0].reason.split("; ") == [
        "volume -2.0 is negative",
        f"timestamp_ms {T0 + 1} is not aligned to the 1m grid (multiples of 60000 ms)",
    ]


def test_whole_number_float_timestamp_and_spaces_are_accepted() -> None:
    rows, reader = read_candles(HEADER + f"{T0}.0, 100, 101, 99, 100.5, 0\n")
    assert rows == [(T0, 100.0, 101.0, 99.0, 100.5, 0.0)]
    assert reader.bad_rows == []


def test_every_bad_row_is_collected_and_reading_goes_on() -> None:
    lines = [candle_line(i, h=98.0) if i % 3 == 0 else candle_line(i) for i in range(30)]
    rows, reader = read_candles(HEADER + "".join(lines))
    assert len(rows) == 20
    assert [bad.line for bad in reader.bad_rows] == [i + 2 for i in range(0, 30, 3)]


# --- funding ------------------------------------------------------------------------------------


def test_funding_rows_keep_negative_rates_and_report_bad_ones() -> None:
    text = (
        "timestamp_ms,rate\n"
        "1750118400000,1.847e-05\n"
        "1750147200000,-1.752e-05\n"
        "1750176000000,oops\n"
        "1750176000000\n"
        "1750147200000,0.0001\n"
        "1750204800000,0.0001\n"
    )
    reader = FundingCsvReader(io.StringIO(text))
    rows = list(reader)
    assert rows == [
        (1750118400000, 1.847e-05),
        (1750147200000, -1.752e-05),
        (1750204800000, 0.0001),
    ]
    assert [str(bad) for bad in reader.bad_rows] == [
        "line 4: rate 'oops' is not a number",
        "line 5: missing rate (1 of 2 values)",
        "line 6: timestamp_ms 1750147200000 duplicates line 3",
    ]


# --- opening files ------------------------------------------------------------------------------


def test_gzip_is_detected_by_content_not_suffix(tmp_path: Path) -> None:
    gz = tmp_path / "mislabelled.csv"
    gz.write_bytes(gzip.compress((HEADER + candle_line(0)).encode()))
    plain = tmp_path / "plain.csv.gz"
    plain.write_text(HEADER + candle_line(0))
    for path in (gz, plain):
        with open_data_file(path) as stream:
            assert len(list(CandleCsvReader(stream, timeframe="1m"))) == 1


def test_missing_file_is_a_csv_data_error(tmp_path: Path) -> None:
    with pytest.raises(CsvDataError, match="cannot open"):
        open_data_file(tmp_path / "nope.csv")


def test_bundled_sample_reads_without_a_bad_row(sample_dir: Path) -> None:
    """7 full UTC days of 1m candles: 7 × 1440 = 10,080 rows, 2025-06-17 00:00 to 06-23 23:59."""
    path = sample_dir / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
    with open_data_file(path) as stream:
        reader = CandleCsvReader(stream, timeframe="1m")
        rows = list(reader)
    assert len(rows) == 10_080
    assert reader.bad_rows == []
    assert rows[0][0] == T0
    assert rows[-1][0] == T0 + 7 * 1440 * MINUTE - MINUTE
