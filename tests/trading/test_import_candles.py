"""``import_candles`` / ``import_funding`` against a real database (SQLite, or PostgreSQL when
DATABASE_URL points at it): counts, idempotent re-imports, bad rows, names and flags."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from trading.models import Candle, FundingRate
from trading.services import UpsertResult, candles_upsert

pytestmark = pytest.mark.django_db

HEADER = "timestamp_ms,open,high,low,close,volume\n"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC
MINUTE = 60_000
SAMPLE_1M = [
    f"binance-usdm_{base}-USDT_1m_20250617-20250623.csv.gz" for base in ("BTC", "ETH", "SOL")
]


def run(command: str, *args: object, **options: object) -> tuple[str, str]:
    """Run a management command quietly; return (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *map(str, args), stdout=out, stderr=err, quiet=True, **options)
    return out.getvalue(), err.getvalue()


def candle_line(
    i: int, o: float = 100.0, h: float = 101.0, lo: float = 99.0, c: float = 100.5
) -> str:
    """One CSV line for the candle opening ``i`` minutes after T0."""
    return f"{T0 + i * MINUTE},{o},{h},{lo},{c},2.5\n"


def stored_candles() -> list[tuple]:
    return list(
        Candle.objects.order_by("exchange", "symbol", "timeframe", "open_time_ms").values_list(
            "id", "exchange", "symbol", "timeframe", "open_time_ms", "open", "high", "low",
            "close", "volume",
        )
    )  # fmt: skip


def physical_row_versions() -> list[tuple]:
    """PostgreSQL: each row's physical location; an UPDATE (even to equal values) moves it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, ctid::text FROM trading_candle ORDER BY id")
        return cursor.fetchall()


# --- the bundled sample ---------------------------------------------------------------------------


def test_bundled_sample_imports_every_candle(sample_dir: Path) -> None:
    out, err = run("import_candles", *(sample_dir / name for name in SAMPLE_1M))
    assert Candle.objects.count() == 3 * 10_080
    for symbol in ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"):
        assert (
            f"{symbol} 1m: 10080 rows read, 10080 inserted, 0 updated, 0 unchanged, 0 bad rows"
            in out
        )
    assert err == ""
    first = Candle.objects.filter(symbol="BTC/USDT:USDT").order_by("open_time_ms").first()
    assert first is not None
    assert (first.exchange, first.timeframe, first.open_time_ms) == ("binance", "1m", T0)
    last = Candle.objects.filter(symbol="SOL/USDT:USDT").order_by("open_time_ms").last()
    assert last is not None and last.open_time_ms == T0 + (7 * 1440 - 1) * MINUTE


def test_second_import_changes_nothing(sample_dir: Path) -> None:
    path = sample_dir / SAMPLE_1M[0]
    run("import_candles", path)
    before = stored_candles()
    versions = physical_row_versions() if connection.vendor == "postgresql" else None
    out, _ = run("import_candles", path)
    assert "10080 rows read, 0 inserted, 0 updated, 10080 unchanged, 0 bad rows" in out
    assert stored_candles() == before
    if versions is not None:
        assert physical_row_versions() == versions, "no row was rewritten"


def test_changed_candle_in_a_reimport_is_reported_as_updated(tmp_path: Path) -> None:
    path = tmp_path / "binance-usdm_BTC-USDT_1m_20250617.csv"
    path.write_text(HEADER + "".join(candle_line(i) for i in range(10)))
    run("import_candles", path)
    # Minute 4 is revised (close 100.5 -> 100.8) and minute 10 is new.
    lines = [candle_line(i, c=100.8) if i == 4 else candle_line(i) for i in range(11)]
    path.write_text(HEADER + "".join(lines))
    out, _ = run("import_candles", path)
    assert "11 rows read, 1 inserted, 1 updated, 9 unchanged, 0 bad rows" in out
    revised = Candle.objects.get(open_time_ms=T0 + 4 * MINUTE)
    assert revised.close == 100.8
    assert Candle.objects.count() == 11


def test_csv_and_csv_gz_give_the_same_candles(tmp_path: Path) -> None:
    text = HEADER + "".join(candle_line(i) for i in range(60))
    plain = tmp_path / "binance-usdm_ETH-USDT_1m_20250617.csv"
    plain.write_text(text)
    packed = tmp_path / "binance-usdm_ETH-USDT_1m_20250617.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    out, _ = run("import_candles", plain, packed)
    assert "60 rows read, 60 inserted, 0 updated, 0 unchanged" in out
    assert "60 rows read, 0 inserted, 0 updated, 60 unchanged" in out
    assert Candle.objects.filter(symbol="ETH/USDT:USDT").count() == 60


# --- bad rows -------------------------------------------------------------------------------------


def test_each_kind_of_bad_row_is_reported_with_its_line_and_the_good_rows_are_kept(
    tmp_path: Path,
) -> None:
    rows = [
        candle_line(0),  # line 2
        f"{T0 + MINUTE},100,101,99\n",  # 3: missing fields
        f"{T0 + 2 * MINUTE},100,abc,99,100.5,1\n",  # 4: not a number
        candle_line(3, h=100.0, lo=101.0),  # 5: high < low
        candle_line(4, h=100.2),  # 6: high < close
        candle_line(5, lo=100.2),  # 7: low > open
        f"{T0 + 6 * MINUTE},100,101,99,100.5,-1\n",  # 8: negative volume
        candle_line(7, o=0.0, lo=0.0),  # 9: non-positive price
        candle_line(8),  # 10: good
        candle_line(8),  # 11: duplicate time
        candle_line(6),  # 12: going backwards
        f"{T0 + 9 * MINUTE + 30_000},100,101,99,100.5,1\n",  # 13: misaligned
        candle_line(10),  # 14: good
    ]
    path = tmp_path / "binance-usdm_BTC-USDT_1m_20250617.csv"
    path.write_text(HEADER + "".join(rows))
    out, err = run("import_candles", path)  # no exception: bad rows alone exit 0
    assert err.splitlines() == [
        "line 3: missing close, volume (4 of 6 values)",
        "line 4: high 'abc' is not a number",
        "line 5: high 100.0 < low 101.0",
        "line 6: high 100.2 < close 100.5",
        "line 7: low 100.2 > open 100.0",
        "line 8: volume -1.0 is negative",
        "line 9: open 0.0 is not positive; low 0.0 is not positive",
        f"line 11: timestamp_ms {T0 + 8 * MINUTE} duplicates line 10",
        f"line 12: timestamp_ms {T0 + 6 * MINUTE} is before line 10 ({T0 + 8 * MINUTE}): "
        "rows must be in increasing time order",
        f"line 13: timestamp_ms {T0 + 9 * MINUTE + 30_000} is not aligned to the 1m grid "
        "(multiples of 60000 ms)",
    ]
    assert (
        "BTC/USDT:USDT 1m: 13 rows read, 3 inserted, 0 updated, 0 unchanged, "
        "10 bad rows (see above)" in out
    )
    assert list(Candle.objects.order_by("open_time_ms").values_list("open_time_ms", flat=True)) == [
        T0,
        T0 + 8 * MINUTE,
        T0 + 10 * MINUTE,
    ]


def test_bad_header_fails_the_command_but_other_files_are_imported(tmp_path: Path) -> None:
    good = tmp_path / "binance-usdm_BTC-USDT_1m_20250617.csv"
    good.write_text(HEADER + candle_line(0))
    wrong = tmp_path / "binance-usdm_ETH-USDT_1m_20250617.csv"
    wrong.write_text("time,o,h,l,c,v\n" + candle_line(0))
    with pytest.raises(CommandError, match=r"1 of 2 file\(s\) could not be imported"):
        run("import_candles", wrong, good)
    assert list(Candle.objects.values_list("symbol", flat=True)) == ["BTC/USDT:USDT"]


def test_missing_file_fails_the_command(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="could not be imported"):
        run("import_candles", tmp_path / "binance-usdm_BTC-USDT_1m_20250617.csv")


# --- exchange, symbol and timeframe ---------------------------------------------------------------


def test_symbol_and_timeframe_come_from_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "binance-spot_SOL-USDT_5m_20250617-20250617.csv"
    path.write_text(HEADER + candle_line(0) + candle_line(5))
    run("import_candles", path)
    assert (
        list(Candle.objects.values_list("exchange", "symbol", "timeframe"))
        == [
            ("binance", "SOL/USDT", "5m"),
        ]
        * 2
    )


def test_flags_override_the_file_name(sample_dir: Path) -> None:
    """The bundled Binance history replayed as the radar's exchange."""
    out, _ = run(
        "import_candles", sample_dir / SAMPLE_1M[0], exchange="bitget", symbol="XBT/USDT:USDT"
    )
    assert "XBT/USDT:USDT 1m: 10080 rows read, 10080 inserted" in out
    assert set(Candle.objects.values_list("exchange", "symbol", "timeframe")) == {
        ("bitget", "XBT/USDT:USDT", "1m")
    }


def test_flags_name_a_file_whose_name_says_nothing(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    path.write_text(HEADER + candle_line(0) + candle_line(15))
    run("import_candles", path, exchange="bitget", symbol="BTC/USDT:USDT", timeframe="15m")
    stored = Candle.objects.filter(exchange="bitget", symbol="BTC/USDT:USDT", timeframe="15m")
    assert stored.count() == 2


def test_unknown_file_name_without_flags_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    path.write_text(HEADER + candle_line(0))
    with pytest.raises(CommandError) as error:
        run("import_candles", path)
    message = str(error.value)
    assert "cannot tell the exchange, symbol and timeframe of this file" in message
    assert "<venue>_<BASE>-<QUOTE>_<kind>_<first>-<last>.csv[.gz]" in message
    assert "pass --exchange ... --symbol ... --timeframe ..." in message
    assert Candle.objects.count() == 0


def test_name_without_a_timeframe_asks_for_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "binance-usdm_BTC-USDT_mark-1h_20250617.csv"
    path.write_text(HEADER + candle_line(0))
    with pytest.raises(CommandError, match=r"kind 'mark-1h'.*pass --timeframe"):
        run("import_candles", path)


def test_a_naming_error_stops_the_run_before_anything_is_written(tmp_path: Path) -> None:
    good = tmp_path / "binance-usdm_BTC-USDT_1m_20250617.csv"
    good.write_text(HEADER + candle_line(0))
    unnamed = tmp_path / "data.csv"
    unnamed.write_text(HEADER + candle_line(0))
    with pytest.raises(CommandError, match=r"data\.csv: cannot tell"):
        run("import_candles", good, unnamed)
    assert Candle.objects.count() == 0


def test_symbol_flag_must_be_a_unified_symbol(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    path.write_text(HEADER + candle_line(0))
    with pytest.raises(CommandError, match="not a ccxt unified symbol"):
        run("import_candles", path, exchange="bitget", symbol="BTCUSDT", timeframe="1m")


def test_small_batches_give_the_same_result(sample_dir: Path) -> None:
    out, _ = run("import_candles", sample_dir / SAMPLE_1M[1], batch_size=997)
    assert "10080 rows read, 10080 inserted, 0 updated, 0 unchanged" in out
    out, _ = run("import_candles", sample_dir / SAMPLE_1M[1], batch_size=997)
    assert "10080 rows read, 0 inserted, 0 updated, 10080 unchanged" in out


# --- the service ----------------------------------------------------------------------------------


def test_upsert_counts_inserted_updated_and_unchanged() -> None:
    key = {"exchange": "bitget", "symbol": "BTC/USDT:USDT", "timeframe": "1m"}
    first = [(T0 + i * MINUTE, 100.0, 101.0, 99.0, 100.5, 1.0) for i in range(3)]
    assert candles_upsert(rows=first, **key) == UpsertResult(3, 0, 0)
    second = [first[0], (T0 + MINUTE, 100.0, 102.0, 99.0, 100.5, 1.0), first[2]]
    second.append((T0 + 3 * MINUTE, 100.0, 101.0, 99.0, 100.5, 1.0))
    assert candles_upsert(rows=second, **key) == UpsertResult(1, 1, 2)
    assert candles_upsert(rows=[], **key) == UpsertResult()
    assert Candle.objects.get(open_time_ms=T0 + MINUTE).high == 102.0


@pytest.mark.parametrize("size", [2, 120])  # below and above the few-rows path (50)
def test_both_upsert_paths_count_and_write_the_same(size: int) -> None:
    """First half inserted; then every even row changed, the other half new: on PostgreSQL the
    few-rows INSERT ... ON CONFLICT path and the COPY path must agree (SQLite has one path)."""
    key = {"exchange": "bitget", "symbol": "ETH/USDT:USDT", "timeframe": "1m"}
    rows = [(T0 + i * MINUTE, 100.0, 101.0, 99.0, 100.5, 1.0) for i in range(size)]
    half = size // 2
    assert candles_upsert(rows=rows[:half], **key) == UpsertResult(half, 0, 0)
    again = [(t, o, h + (1.0 if i % 2 == 0 else 0.0), lo, c, v)
             for i, (t, o, h, lo, c, v) in enumerate(rows[:half])]  # fmt: skip
    changed = (half + 1) // 2
    result = candles_upsert(rows=again + rows[half:], **key)
    assert result == UpsertResult(size - half, changed, half - changed)
    assert Candle.objects.filter(symbol="ETH/USDT:USDT").count() == size
    assert Candle.objects.get(symbol="ETH/USDT:USDT", open_time_ms=T0).high == 102.0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's COPY paths")
def test_fresh_range_is_copied_straight_and_a_stored_key_in_range_takes_the_general_path() -> None:
    from trading import services

    key = {"exchange": "bitget", "symbol": "SOL/USDT:USDT", "timeframe": "1m"}
    rows = [(T0 + i * MINUTE, 100.0, 101.0, 99.0, 100.5, float(i)) for i in range(200)]
    series_probe = services._Series(
        Candle, key, "open_time_ms", ("open", "high", "low", "close", "volume"), ("float8",) * 5
    )
    # Rows stored before and after a range leave it fresh: the straight COPY takes it.
    assert candles_upsert(rows=rows[:60] + rows[140:], **key) == UpsertResult(120, 0, 0)
    middle = rows[70:130]
    assert not services._stored_in_range(series_probe, middle)
    assert candles_upsert(rows=middle, **key) == UpsertResult(60, 0, 0)
    # A batch overlapping stored keys is probed as stored and counted exactly.
    assert services._stored_in_range(series_probe, rows[50:80])
    changed = [(t, o, h + 1.0, lo, c, v) for t, o, h, lo, c, v in rows[55:65]]
    result = candles_upsert(rows=changed + rows[65:80], **key)
    # 55-59 stored and changed, 60-69 new, 70-79 stored and identical.
    assert result == UpsertResult(10, 5, 10)
    stored = list(Candle.objects.filter(symbol="SOL/USDT:USDT").values_list("open_time_ms", "high"))
    assert len(stored) == 190  # 0-129 and 140-199
    assert dict(stored)[T0 + 55 * MINUTE] == 102.0
    assert dict(stored)[T0 + 60 * MINUTE] == 102.0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's COPY paths")
def test_a_key_stored_between_the_range_check_and_the_copy_falls_back_without_loss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race: a concurrent writer stores a key after the probe said the range was empty.
    The straight COPY hits the unique key, rolls back to its savepoint, and the general path
    writes the batch with exact counts; nothing is duplicated or lost."""
    from trading import services

    key = {"exchange": "bitget", "symbol": "BTC/USDT:USDT", "timeframe": "1m"}
    rows = [(T0 + i * MINUTE, 100.0, 101.0, 99.0, 100.5, 1.0) for i in range(100)]
    assert candles_upsert(rows=rows[40:45], **key) == UpsertResult(5, 0, 0)  # the "other writer"
    monkeypatch.setattr(services, "_stored_in_range", lambda series, batch: False)
    with CaptureQueriesContext(connection) as queries:
        assert candles_upsert(rows=rows, **key) == UpsertResult(95, 0, 5)
    assert any("import_trading_candle" in query["sql"] for query in queries.captured_queries)
    assert Candle.objects.filter(symbol="BTC/USDT:USDT").count() == 100


def test_upsert_keeps_the_last_of_repeated_keys() -> None:
    rows = [(T0, 100.0, 101.0, 99.0, 100.5, 1.0), (T0, 100.0, 101.0, 99.0, 100.7, 1.0)]
    result = candles_upsert(rows=rows, exchange="bitget", symbol="BTC/USDT:USDT", timeframe="1m")
    assert result == UpsertResult(1, 0, 0)
    assert Candle.objects.get().close == 100.7


def test_upsert_leaves_other_series_alone() -> None:
    row = (T0, 100.0, 101.0, 99.0, 100.5, 1.0)
    candles_upsert(rows=[row], exchange="bitget", symbol="BTC/USDT:USDT", timeframe="1m")
    result = candles_upsert(rows=[row], exchange="bitget", symbol="BTC/USDT:USDT", timeframe="5m")
    assert result == UpsertResult(1, 0, 0)
    assert Candle.objects.count() == 2


# --- funding --------------------------------------------------------------------------------------


def test_funding_sample_imports_and_reimports_without_change(sample_dir: Path) -> None:
    paths = sorted(sample_dir.glob("binance-usdm_*-USDT_funding_*.csv.gz"))
    assert len(paths) == 3
    out, err = run("import_funding", *paths)
    assert out.count("21 rows read, 21 inserted, 0 updated, 0 unchanged, 0 bad rows") == 3
    assert "BTC/USDT:USDT funding:" in out
    assert err == ""
    rates = list(
        FundingRate.objects.filter(symbol="BTC/USDT:USDT")
        .order_by("funding_time_ms")
        .values_list("funding_time_ms", "rate")[:2]
    )
    assert rates == [(T0, 1.847e-05), (T0 + 8 * 60 * MINUTE, 5.776e-05)]
    out, _ = run("import_funding", *paths, exchange="binance")
    assert out.count("21 rows read, 0 inserted, 0 updated, 21 unchanged, 0 bad rows") == 3
    assert FundingRate.objects.count() == 63


def test_funding_revision_is_an_update_and_bad_rows_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "binance-usdm_BTC-USDT_funding_20250617.csv"
    path.write_text("timestamp_ms,rate\n1750118400000,0.0001\n1750147200000,0.0002\n")
    run("import_funding", path, exchange="bitget")
    path.write_text(
        "timestamp_ms,rate\n1750118400000,0.0001\n1750147200000,0.0003\n1750176000000,x\n"
    )
    out, err = run("import_funding", path, exchange="bitget")
    assert "3 rows read, 0 inserted, 1 updated, 1 unchanged, 1 bad rows (see above)" in out
    assert err.strip() == "line 4: rate 'x' is not a number"
    assert FundingRate.objects.get(funding_time_ms=1750147200000).rate == 0.0003


# --- bad data refused, good data kept (issue 12) ------------------------------------------------

YEAR_3000 = 32_503_680_000_000  # 3000-01-01 00:00 UTC


def sample_with(sample_dir: Path, tmp_path: Path, line: bytes, at: int = 502) -> Path:
    """The BTC 1m sample as plain CSV with ``line`` inserted as line ``at``."""
    src = sample_dir / SAMPLE_1M[0]
    lines = gzip.decompress(src.read_bytes()).splitlines(keepends=True)
    lines.insert(at - 1, line)
    path = tmp_path / src.name.removesuffix(".gz")
    path.write_bytes(b"".join(lines))
    return path


def test_a_year_3000_candle_is_refused_and_the_real_ones_are_stored(
    sample_dir: Path, tmp_path: Path
) -> None:
    path = sample_with(sample_dir, tmp_path, f"{YEAR_3000},100,101,99,100,1\n".encode(), 10_082)
    out, err = run("import_candles", path)
    assert err.startswith("line 10082: timestamp_ms 32503680000000 (3000-01-01 00:00 UTC) is in")
    assert "10081 rows read, 10080 inserted, 0 updated, 0 unchanged, 1 bad rows" in out
    assert Candle.objects.filter(open_time_ms__gte=YEAR_3000).count() == 0


def test_the_clock_of_the_import_is_injectable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Now at T0 + 1 min 30 s: minute 1 is the current one (kept), minute 2 is the future."""
    from trading.management.commands import import_candles

    monkeypatch.setattr(import_candles, "wall_clock_ms", lambda: T0 + MINUTE + 30_000)
    path = tmp_path / "binance-usdm_BTC-USDT_1m_20250617.csv"
    path.write_text(HEADER + candle_line(0) + candle_line(1) + candle_line(2))
    out, err = run("import_candles", path)
    assert "3 rows read, 2 inserted" in out
    assert err.startswith("line 4: ") and "is in the future" in err


def test_a_truncated_gzip_stores_its_good_rows_and_fails_naming_the_line(
    sample_dir: Path, tmp_path: Path
) -> None:
    data = (sample_dir / SAMPLE_1M[0]).read_bytes()
    path = tmp_path / SAMPLE_1M[0]
    path.write_bytes(data[: len(data) // 2])
    out_stream, err_stream = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="could not be imported whole"):
        call_command("import_candles", str(path), stdout=out_stream, stderr=err_stream, quiet=True)
    stored = Candle.objects.count()
    assert stored > 5000
    assert f"{stored} rows read, {stored} inserted" in out_stream.getvalue()
    assert f"damaged file, line {stored + 2}: the gzip data ends early" in err_stream.getvalue()


@pytest.mark.parametrize(
    "line",
    [b"\x00\xff\xfe\x80 junk \x81\x82\n", b"7" * 200_000 + b",1,1,1,1,1\n"],
    ids=["junk bytes", "200 KB field"],
)
def test_a_damaged_line_502_is_reported_as_502_and_every_good_row_is_stored(
    sample_dir: Path, tmp_path: Path, line: bytes
) -> None:
    out, err = run("import_candles", sample_with(sample_dir, tmp_path, line))
    assert err.startswith("line 502: ")
    assert len(err.splitlines()) == 1
    assert "10081 rows read, 10080 inserted, 0 updated, 0 unchanged, 1 bad rows" in out


def test_a_price_of_1e300_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "binance-usdm_BTC-USDT_1m_20250617.csv"
    path.write_text(HEADER + candle_line(0) + f"{T0 + MINUTE},1e300,1e300,1e300,1e300,1\n")
    _out, err = run("import_candles", path)
    assert err.startswith("line 3: open 1e+300 is above 1e+12 (not a price)")
    assert Candle.objects.count() == 1


def test_candles_before_the_stored_listing_time_are_refused(tmp_path: Path) -> None:
    from trading.models import Asset

    Asset.objects.create(
        exchange="binance", symbol="BTC/USDT:USDT", base="BTC", price_tick=0.1, qty_step=0.001,
        min_qty=0.001, listed_at_ms=T0 + 2 * MINUTE,
    )  # fmt: skip
    path = tmp_path / "binance-usdm_BTC-USDT_1m_20250617.csv"
    path.write_text(HEADER + "".join(candle_line(i) for i in range(4)))
    out, err = run("import_candles", path)
    assert [line.split(":")[0] for line in err.splitlines()] == ["line 2", "line 3"]
    assert "before the exchange listed the symbol" in err
    assert "4 rows read, 2 inserted" in out


def test_a_funding_settlement_in_the_future_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "binance-usdm_BTC-USDT_funding_20250617.csv"
    path.write_text(f"timestamp_ms,rate\n1750118400000,0.0001\n{YEAR_3000},0.0001\n")
    _out, err = run("import_funding", path)
    assert err.startswith("line 3: timestamp_ms 32503680000000") and "in the future" in err
    assert list(FundingRate.objects.values_list("funding_time_ms", flat=True)) == [1750118400000]


def test_open_interest_files_import_and_refuse_bad_rows(tmp_path: Path) -> None:
    from trading.models import OpenInterest

    path = tmp_path / "binance-usdm_BTC-USDT_open-interest_20250617.csv"
    path.write_text(
        "timestamp_ms,open_interest,open_interest_usdt\n"
        f"{T0},81234.5,8.5e9\n{T0 + MINUTE},81240.1,\n{T0 + 2 * MINUTE},nan,\n"
    )
    out, err = run("import_open_interest", path)
    assert "BTC/USDT:USDT open interest: 3 rows read, 2 inserted" in out
    assert err.strip() == "line 4: open_interest 'nan' is not a finite number"
    assert list(OpenInterest.objects.order_by("time_ms").values_list("open_interest_usdt")) == [
        (8.5e9,),
        (None,),
    ]
