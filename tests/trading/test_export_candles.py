"""``manage.py export_candles`` writes what ``import_candles`` reads: export, import into a
clean database, and the rows are the same, bit for bit."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import SAMPLE_DIR
from trading.models import Candle
from trading.services import candles_upsert

pytestmark = pytest.mark.django_db

SAMPLE = "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC
MINUTE = 60_000


def run(command: str, *args: object, **options: object) -> str:
    out = io.StringIO()
    call_command(command, *map(str, args), stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def rows() -> list[tuple]:
    return list(
        Candle.objects.order_by("exchange", "symbol", "timeframe", "open_time_ms").values_list(
            "exchange", "symbol", "timeframe", "open_time_ms", "open", "high", "low", "close",
            "volume",
        )
    )  # fmt: skip


def test_a_week_exported_then_imported_into_a_clean_database_is_identical(tmp_path: Path):
    """The bundled week of BTC: the export takes the bundled file's own name (so the import
    needs no flag), and the rows read back equal the rows written."""
    run("import_candles", SAMPLE_DIR / SAMPLE, quiet=True)
    before = rows()
    assert len(before) > 7 * 1400
    said = run("export_candles", "--symbol", "BTC/USDT:USDT", "--out", tmp_path)
    exported = tmp_path / SAMPLE
    assert exported.is_file() and str(exported) in said
    assert f"{len(before)} candles" in said
    Candle.objects.all().delete()
    run("import_candles", exported, quiet=True)
    assert rows() == before


def test_awkward_floats_and_a_range_survive_the_trip(tmp_path: Path):
    """0.1 + 0.2, a price with 15 digits and a 1e-8 volume are written in their shortest
    exact form; --since/--until (exclusive) keep minutes 1 and 2 of four."""
    odd = [
        (T0 + i * MINUTE, 0.1 + 0.2 + i, 1.234567890123456 + i, 0.29 + i, 0.3 + i, 1e-8 * (i + 1))
        for i in range(4)
    ]
    candles_upsert(rows=odd, exchange="bitget", symbol="SOL/USDT:USDT", timeframe="1m")
    out = tmp_path / "sol.csv.gz"
    run(
        "export_candles", "--symbol", "SOL/USDT:USDT", "--since", T0 + MINUTE,
        "--until", "2025-06-17T00:03", "--out", out,
    )  # fmt: skip
    with gzip.open(out, "rt", encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    assert lines[0] == "timestamp_ms,open,high,low,close,volume"
    assert lines[1] == f"{T0 + MINUTE},1.3,2.234567890123456,1.29,1.3,2e-08"
    assert len(lines) == 3
    wanted = [r for r in rows() if T0 + MINUTE <= r[3] < T0 + 3 * MINUTE]
    Candle.objects.all().delete()
    run(
        "import_candles", out, "--exchange", "bitget", "--symbol", "SOL/USDT:USDT",
        "--timeframe", "1m", quiet=True,
    )  # fmt: skip
    assert rows() == wanted


def test_the_same_candles_give_the_same_bytes_and_plain_csv_without_gz(tmp_path: Path):
    run("import_candles", SAMPLE_DIR / SAMPLE, quiet=True)
    first, second, plain = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv"
    for path in (first, second, plain):
        run("export_candles", "--symbol", "BTC/USDT:USDT", "--out", path)
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()) == plain.read_bytes()
    assert not list(tmp_path.glob("*.part"))


def test_an_ambiguous_or_empty_export_writes_nothing(tmp_path: Path):
    row = (T0, 100.0, 101.0, 99.0, 100.5, 1.0)
    for exchange in ("binance", "bitget"):
        candles_upsert(rows=[row], exchange=exchange, symbol="ETH/USDT:USDT", timeframe="1m")
    with pytest.raises(CommandError, match="stored for binance, bitget: pass --exchange"):
        run("export_candles", "--symbol", "ETH/USDT:USDT", "--out", tmp_path)
    with pytest.raises(CommandError, match="no 1m candles of ETH/USDT:USDT on bitget"):
        run(
            "export_candles", "--symbol", "ETH/USDT:USDT", "--exchange", "bitget",
            "--since", "2025-06-18", "--out", tmp_path,
        )  # fmt: skip
    assert not list(tmp_path.iterdir())
