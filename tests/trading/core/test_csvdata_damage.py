"""Damaged copies of the bundled real candles: every good row is still read, the bad part is
named with its right line number (no database)."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import pytest

from trading.core.csvdata import (
    CandleCsvReader,
    FundingCsvReader,
    OpenInterestCsvReader,
    open_data_file,
)

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"
BTC_1M = SAMPLE / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
BTC_FUNDING = SAMPLE / "binance-usdm_BTC-USDT_funding_20250617-20250623.csv.gz"
NOW = 1_767_225_600_000  # 2026-01-01 00:00 UTC: after the sample week
YEAR_3000 = 32_503_680_000_000


def sample_lines() -> list[bytes]:
    """The header (line 1) and the 10,080 candles (lines 2..10081) of the BTC sample."""
    return gzip.decompress(BTC_1M.read_bytes()).splitlines(keepends=True)


def read(path: Path, **kwargs: object) -> tuple[list[tuple], CandleCsvReader]:
    with open_data_file(path) as stream:
        reader = CandleCsvReader(stream, timeframe="1m", now_ms=NOW, **kwargs)  # type: ignore[arg-type]
        return list(reader), reader


def with_line_502(tmp_path: Path, line: bytes, *, replace: bool = False) -> Path:
    """The sample with ``line`` inserted as line 502 (after 500 good rows), or replacing it."""
    lines = sample_lines()
    lines[501 : 502 if replace else 501] = [line]
    path = tmp_path / "binance-usdm_BTC-USDT_1m_damaged.csv"
    path.write_bytes(b"".join(lines))
    return path


def test_a_truncated_gzip_keeps_every_complete_row_and_names_where_it_stops(
    tmp_path: Path,
) -> None:
    """Cut in the middle of the compressed bytes: every complete line decompressed before the
    cut is a row (the cut line itself is not: its last number may be cut short)."""
    data = BTC_1M.read_bytes()
    path = tmp_path / BTC_1M.name
    path.write_bytes(data[: len(data) // 2])
    whole = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2])
    complete_rows = whole.count(b"\n") - 1  # minus the header
    rows, reader = read(path)
    assert complete_rows > 4000
    assert len(rows) == complete_rows
    assert rows == [tuple(r) for r in read(BTC_1M)[0][:complete_rows]]
    assert reader.bad_rows == []
    assert reader.damage is not None
    assert reader.damage.line == complete_rows + 2
    assert "truncated" in reader.damage.reason


def test_junk_bytes_at_line_502_are_one_bad_row_named_502(tmp_path: Path) -> None:
    path = with_line_502(tmp_path, b"\x00\xff\xfe\x80 junk \x81\x82\n")
    rows, reader = read(path)
    assert len(rows) == 10_080
    assert [bad.line for bad in reader.bad_rows] == [502]
    assert "not UTF-8" in reader.bad_rows[0].reason
    assert reader.damage is None


def test_a_200_kb_field_is_one_bad_row_and_the_rest_is_read(tmp_path: Path) -> None:
    path = with_line_502(tmp_path, b"1" * 200_000 + b",1,1,1,1,1\n")
    rows, reader = read(path)
    assert len(rows) == 10_080
    assert [bad.line for bad in reader.bad_rows] == [502]
    assert len(reader.bad_rows[0].reason) < 200


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f"{YEAR_3000},100,101,99,100,1\n", "(3000-01-01 00:00 UTC) is in the future"),
        (f"{(2**63 // 60_000 + 1) * 60_000},100,101,99,100,1\n", "is in the future"),
        ("1750148400000,1e300,1e300,1e300,1e300,1\n", "above 1e+12 (not a price)"),
    ],
)
def test_an_impossible_row_at_the_end_is_refused_by_its_line(
    tmp_path: Path, line: str, reason: str
) -> None:
    lines = [*sample_lines()[:501], line.encode()]
    path = tmp_path / "binance-usdm_BTC-USDT_1m_cut.csv"
    path.write_bytes(b"".join(lines))
    rows, reader = read(path)
    assert len(rows) == 500
    assert [bad.line for bad in reader.bad_rows] == [502]
    assert reason in reader.bad_rows[0].reason


def test_a_price_100_times_away_from_its_neighbours_is_refused_and_they_are_kept(
    tmp_path: Path,
) -> None:
    """Line 502's candle (BTC near 105,000 USDT) rewritten at 100× its prices."""
    lines = sample_lines()
    t, *values = lines[501].decode().strip().split(",")
    spiked = ",".join([t, *(f"{float(v) * 100}" for v in values[:4]), values[4]]) + "\n"
    rows, reader = read(with_line_502(tmp_path, spiked.encode(), replace=True))
    assert len(rows) == 10_079
    assert [bad.line for bad in reader.bad_rows] == [502]
    assert "100× away from its neighbours" in reader.bad_rows[0].reason


def test_candles_before_the_listing_are_refused() -> None:
    """Listed at the sample's second day (2025-06-18 00:00): the first 1,440 rows are refused."""
    rows, reader = read(BTC_1M, listed_ms=1_750_204_800_000)
    assert len(rows) == 10_080 - 1_440
    assert len(reader.bad_rows) == 1_440
    assert reader.bad_rows[0].line == 2
    assert "before the exchange listed the symbol" in reader.bad_rows[0].reason


def test_funding_in_the_future_or_absurd_is_refused_with_its_line() -> None:
    text = gzip.decompress(BTC_FUNDING.read_bytes()).decode()
    text += f"{YEAR_3000},0.0001\n"
    text = text.replace("1750147200000,5.776e-05", "1750147200000,5")  # 500 % a period
    reader = FundingCsvReader(io.StringIO(text), now_ms=NOW)
    rows = list(reader)
    assert len(rows) == 20
    assert [bad.line for bad in reader.bad_rows] == [3, 23]
    assert "not a funding rate" in reader.bad_rows[0].reason
    assert "is in the future" in reader.bad_rows[1].reason


def test_open_interest_rows_keep_an_empty_value_and_refuse_absurd_ones() -> None:
    text = (
        "timestamp_ms,open_interest,open_interest_usdt\n"
        "1750118400000,81234.5,8.5e9\n"
        "1750118460000,81240.1,\n"
        "1750118520000,-3,\n"
        f"{YEAR_3000},1,\n"
    )
    reader = OpenInterestCsvReader(io.StringIO(text), now_ms=NOW)
    assert list(reader) == [
        (1750118400000, 81234.5, 8.5e9),
        (1750118460000, 81240.1, None),
    ]
    assert [bad.line for bad in reader.bad_rows] == [4, 5]
