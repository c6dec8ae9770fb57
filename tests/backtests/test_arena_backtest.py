"""The arena backtest (issue 14, point 3) equals a radar replay of the same files trade for
trade, selector on and off — on real data the project does not bundle (Binance USDT-M
BTC, ETH and SOL, 2023-07-20 to 07-23, with their funding, from ../shared/data)."""

from __future__ import annotations

import gzip
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backtests.arena import run_arena_backtest
from strategies.management.commands.arena_report import arena_report
from tests.conftest import SHARED_DATA_DIR

SHARED = SHARED_DATA_DIR
FILES = {  # candles, funding (from ../shared/data)
    "BTC": ("1m_20230718-20230817", "funding_20190910-20260517"),
    "ETH": ("1m_20230703-20230817", "funding_20191127-20260517"),
    "SOL": ("1m_20230718-20230817", "funding_20230718-20230817"),
}
START_MS, END_MS = 1_689_811_200_000, 1_690_156_800_000  # 2023-07-20 00:00 → 07-24 00:00 UTC

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED.is_dir(), reason="the shared real data is not on this machine"),
]


def _slice(source: Path, target: Path, start_ms: int, end_ms: int) -> Path:
    with gzip.open(source, "rt") as stream:
        header, *rows = stream.read().splitlines()
    kept = [r for r in rows if start_ms <= int(r.split(",", 1)[0]) < end_ms]
    target.write_text("\n".join([header, *kept]) + "\n")
    return target


def four_days(folder: Path) -> list[Path]:
    """The four days of candles (and funding, named so the radar finds it) per symbol."""
    candles = []
    span = "20230720-20230723"
    for base, (candle_part, funding_part) in FILES.items():
        source = f"binance-usdm_{base}-USDT_{{}}.csv.gz"
        target = f"binance-usdm_{base}-USDT_{{}}_{span}.csv"
        candles.append(
            _slice(
                SHARED / source.format(candle_part), folder / target.format("1m"), START_MS, END_MS
            )
        )
        _slice(
            SHARED / source.format(funding_part),
            folder / target.format("funding"),
            START_MS,
            END_MS,
        )
    return candles


def _trades(report: dict) -> dict[str, list[tuple]]:
    return {
        s["strategy"]: [tuple(sorted(t.items())) for t in s["trade_list"]]
        for s in report["strategies"]
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("selector_every", [60, 0])
def test_the_arena_backtest_is_a_radar_replay_trade_for_trade(tmp_path, selector_every):
    files = four_days(tmp_path)
    call_command("load_config", stdout=StringIO())
    arena = run_arena_backtest(files, selector_every=selector_every)
    assert not any("password" in line for line in arena["replay"])  # the child's admin

    call_command(
        "radar", "--replay", *map(str, files), "--speed", "max", "--headless",
        "--selector-every", str(selector_every), stdout=StringIO(),
    )  # fmt: skip
    radar = arena_report()

    backtested, replayed = _trades(arena), _trades(radar)
    assert backtested == replayed
    assert sum(len(t) for t in backtested.values()) > 0, "nothing traded: a vacuous parity"
    for a, r in zip(arena["strategies"], radar["strategies"], strict=True):
        assert a["strategy"] == r["strategy"]
        assert a["net_pnl"] == pytest.approx(a["gross_pnl"] - a["fees"] - a["funding"], abs=1e-6)
        assert (a["net_pnl"], a["fees"], a["status"], a["kill_switch_tripped"]) == (
            r["net_pnl"], r["fees"], r["status"], r["kill_switch_tripped"],
        )  # fmt: skip
        assert [d["action"] for d in a["selector_decisions"]] == [
            d["action"] for d in r["selector_decisions"]
        ]
        if not selector_every:
            assert a["selector_decisions"] == []
    if selector_every:  # in these four days it pauses momentum_breakout: not a vacuous "on"
        assert any(a["selector_decisions"] for a in arena["strategies"])
    assert arena["assumptions"]["selector"] == (
        f"every {selector_every} min of market time" if selector_every else "off"
    )


@pytest.mark.django_db
def test_the_command_runs_the_arena_and_refuses_single_strategy_options(tmp_path):
    call_command("load_config", stdout=StringIO())
    with pytest.raises(CommandError, match="not with --symbol, --days"):
        call_command("backtest", "--arena", "--symbol", "BTC/USDT:USDT", "--days", "2")
    with pytest.raises(CommandError, match="give --strategy and --symbol"):
        call_command("backtest", "--symbol", "BTC/USDT:USDT")
    files = [p for p in four_days(tmp_path) if "_BTC-" in p.name]
    out = StringIO()
    call_command("backtest", "--arena", "--data", *map(str, files), "--selector-every", "0",
                 stdout=out)  # fmt: skip
    text = out.getvalue()
    assert "Arena backtest — the radar's own replay" in text
    assert "Replay finished: 5760 candles processed" in text
    assert "selector: off" in text and "password" not in text
    assert "momentum_breakout" in text and "net = gross − fees − funding" in text


def test_the_child_radar_gets_no_broker_exchange_live_orders_or_telegram(tmp_path, monkeypatch):
    """A backtest's radar must not trade, nor tell the trader's phone of replayed trades."""
    from backtests.arena import _child_env

    for name in ("REDIS_URL", "EXCHANGE_BASE_URL", "LIVE_TRADING_ENABLED", "TELEGRAM_BOT_TOKEN",
                 "DEADMAN_PING_URL"):  # fmt: skip
        monkeypatch.setenv(name, "set-in-the-parent")
    monkeypatch.setenv("TELEGRAM_ALLOWED_USER_IDS", "111")
    env = _child_env(tmp_path)
    assert not {"REDIS_URL", "EXCHANGE_BASE_URL", "LIVE_TRADING_ENABLED", "TELEGRAM_BOT_TOKEN",
                "DEADMAN_PING_URL"} & set(env)  # fmt: skip
    assert env["TELEGRAM_ALLOWED_USER_IDS"] == "111"  # harmless without a token
    assert env["SCALPRADAR_DATA_DIR"] == str(tmp_path / "data")
