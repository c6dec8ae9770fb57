from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backtests import services
from backtests.models import BacktestRun
from strategies.core import catalog  # noqa: F401
from strategies.core.catalog import REGISTRY
from tests.conftest import SAMPLE_DIR

BTC_1M = str(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")
BTC_FUNDING = str(SAMPLE_DIR / "binance-usdm_BTC-USDT_funding_20250617-20250623.csv.gz")
KEYS = {"strategy", "symbol", "candles", "trades", "win_rate", "gross_pnl", "net_pnl", "fees",
        "funding", "slippage", "profit_factor_gross", "profit_factor_net", "max_drawdown_pct",
        "sharpe", "sortino", "net_pnl_without_fees", "elapsed_s"}  # fmt: skip


def backtest(*args: str) -> dict:
    out = StringIO()
    call_command("backtest", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_strategy_kind_runs_on_the_bundled_sample(kind: str) -> None:
    result = backtest("--strategy", kind, "--symbol", "BTC/USDT:USDT", "--days", "2",
                      "--data", BTC_1M, BTC_FUNDING)  # fmt: skip
    assert result.keys() >= KEYS
    assert result["candles"] == 2 * 1440
    if kind in ("liquidation_zones", "order_flow"):
        assert result["skipped_reason"]


@pytest.mark.django_db
def test_the_json_result_compares_the_same_trades_with_and_without_fees() -> None:
    result = backtest("--strategy", "momentum_breakout", "--symbol", "BTC/USDT:USDT",
                      "--data", BTC_1M)  # fmt: skip
    off = result["without_fees"]
    assert result["trades"] > 0
    assert off["trades"] == result["trades"] and off["gross_pnl"] == result["gross_pnl"]
    assert result["net_pnl_without_fees"] - result["net_pnl"] == pytest.approx(result["fees"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope"], "unknown strategy"),
        (["--strategy", "vwap_rsi", "--param", "nope=1"], "unknown parameter"),
        (["--strategy", "vwap_rsi", "--param", "rsi_period=-3"], "rsi_period"),
        (["--strategy", "vwap_rsi", "--start", "2030-01-01"], "no 1m candles"),
    ],
)
def test_bad_arguments_exit_with_code_2(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message) as caught:
        call_command("backtest", *args, "--symbol", "BTC/USDT:USDT", "--data", BTC_1M)
    assert caught.value.returncode == 2


@pytest.mark.django_db
def test_save_stores_a_finished_run() -> None:
    result = backtest("--strategy", "swing_baseline", "--symbol", "BTC/USDT:USDT",
                      "--data", BTC_1M, "--save")  # fmt: skip
    run = BacktestRun.objects.get(pk=result["run_id"])
    assert run.status == BacktestRun.Status.DONE
    assert 0 < len(run.equity_curve) <= services.MAX_EQUITY_POINTS


@pytest.mark.django_db(transaction=True)
def test_a_run_executed_twice_through_the_service_runs_once() -> None:
    run = services.backtest_run_create(strategy="momentum_breakout", symbol="BTC/USDT:USDT",
                                       data_source="files")  # fmt: skip
    data = services.read_data_files([BTC_1M], "BTC/USDT:USDT")
    assert services.backtest_run_execute(run.pk, data=data) is True
    first = BacktestRun.objects.get(pk=run.pk)
    assert services.backtest_run_execute(run.pk, data=data) is False
    again = BacktestRun.objects.get(pk=run.pk)
    assert first.status == again.status == BacktestRun.Status.DONE
    assert first.finished_at == again.finished_at
    assert again.results["trades"] > 0


BTC_BOOK = str(SAMPLE_DIR / "binance-usdm_BTC-USDT_book20-1s_20240808.csv.gz")
BTC_TRADES = str(SAMPLE_DIR / "binance-usdm_BTC-USDT_trades_20240808.csv.gz")


@pytest.mark.django_db
def test_without_book_or_trades_the_confirmation_is_reported_unavailable() -> None:
    result = backtest("--strategy", "momentum_breakout", "--symbol", "BTC/USDT:USDT",
                      "--days", "1", "--data", BTC_1M)  # fmt: skip
    assert result["confirmation"].startswith("confirmation unavailable")
    assert result["signals_adjusted"] == 0


@pytest.mark.django_db
def test_book_and_trades_files_switch_the_order_flow_confirmation_on() -> None:
    """The bundled capture (2024-08-08) does not overlap the candles (2025-06): the filter
    runs on every signal and, finding no recent book or trade, adjusts none — and says so."""
    result = backtest("--strategy", "momentum_breakout", "--symbol", "BTC/USDT:USDT",
                      "--days", "2", "--data", BTC_1M, BTC_BOOK, BTC_TRADES)  # fmt: skip
    assert result["confirmation"].startswith("order-flow confirmation applied")
    assert "4,315 trades" in result["confirmation"]
    assert result["signals"] > 0 and result["signals_adjusted"] == 0


@pytest.mark.django_db
def test_five_minute_candles_are_refused_with_code_2(tmp_path) -> None:
    """A 5m file would replay each bar as if it were one minute: refused, one line."""
    from trading.core.candles import aggregate_candles, read_candles_csv

    five = aggregate_candles(read_candles_csv(BTC_1M), "5m")
    path = tmp_path / "binance-usdm_BTC-USDT_5m_20250617-20250623.csv"
    lines = ["timestamp_ms,open,high,low,close,volume"]
    lines += [",".join([str(int(r[0])), *map(str, r[1:])]) for r in five]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CommandError, match="holds 5m candles: the engine replays 1m") as caught:
        call_command("backtest", "--strategy", "vwap_rsi", "--symbol", "BTC/USDT:USDT",
                     "--data", str(path))  # fmt: skip
    assert caught.value.returncode == 2
    assert "\n" not in str(caught.value)


@pytest.mark.django_db
def test_save_goes_through_the_browser_service_and_prints_the_same_numbers() -> None:
    args = ("--strategy", "momentum_breakout", "--symbol", "BTC/USDT:USDT", "--days", "3",
            "--data", BTC_1M, BTC_FUNDING)  # fmt: skip
    plain = backtest(*args)
    saved = backtest(*args, "--save")
    run = BacktestRun.objects.get(pk=saved["run_id"])
    assert run.status == BacktestRun.Status.DONE
    assert run.results == saved
    ignore = {"elapsed_s", "run_id"}
    assert {k: v for k, v in saved.items() if k not in ignore} == {
        k: v for k, v in plain.items() if k not in ignore
    }
