"""The radar's main job end to end: replay real candles headless, store, resume after a stop."""

from __future__ import annotations

import gzip
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from strategies.models import StrategyConfig
from trading.models import Candle, TradingSession

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def slice_sample(tmp_path: Path, symbol: str, start: int, rows: int) -> Path:
    """Copy ``rows`` real 1m candles of the bundled sample, keeping its file name shape."""
    source = next(SAMPLE.glob(f"binance-usdm_{symbol}-USDT_1m_*.csv.gz"))
    with gzip.open(source, "rt") as stream:
        lines = stream.read().splitlines()
    target = tmp_path / source.name.replace(".csv.gz", ".csv")
    target.write_text("\n".join([lines[0], *lines[1 + start : 1 + start + rows]]) + "\n")
    return target


@pytest.mark.django_db(transaction=True)
def test_a_headless_replay_stores_every_candle_and_prints_a_summary(tmp_path):
    path = slice_sample(tmp_path, "BTC", 0, 120)
    out = StringIO()
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless", stdout=out)
    text = out.getvalue()
    assert "Created the admin account" in text
    assert "Replay finished: 120 candles processed" in text
    assert Candle.objects.filter(symbol="BTC/USDT:USDT", timeframe="1m").count() == 120
    enabled = StrategyConfig.objects.filter(enabled=True).exclude(kind="order_flow").count()
    assert TradingSession.objects.count() == enabled
    for name in StrategyConfig.objects.filter(enabled=True).exclude(kind="order_flow"):
        assert name.name in text


@pytest.mark.django_db(transaction=True)
def test_a_second_run_over_the_same_candles_counts_nothing_twice(tmp_path):
    path = slice_sample(tmp_path, "ETH", 0, 90)
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless", stdout=StringIO())
    before = list(
        TradingSession.objects.order_by("strategy_name").values_list(
            "strategy_name", "trades_count", "realised_net_pnl"
        )
    )
    out = StringIO()
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless", stdout=out)
    assert "Resuming after the last processed candle" in out.getvalue()
    after = list(
        TradingSession.objects.order_by("strategy_name").values_list(
            "strategy_name", "trades_count", "realised_net_pnl"
        )
    )
    assert after == before
    assert Candle.objects.filter(symbol="ETH/USDT:USDT").count() == 90


@pytest.mark.django_db(transaction=True)
def test_an_unknown_replay_file_is_a_one_line_error(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="replay file not found"):
        call_command(
            "radar", "--replay", str(tmp_path / "nope.csv"), "--headless", stdout=StringIO()
        )
