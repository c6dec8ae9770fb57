"""One source of parameters (issue 14): a backtest runs by default what the radar trades —
the database's strategy row with its per-symbol override — says which, and records it."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backtests import services
from backtests.models import BacktestRun
from strategies.models import StrategyConfig
from tests.conftest import SAMPLE_DIR

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
BTC_1M = str(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")

pytestmark = pytest.mark.django_db


def backtest(*args: str) -> dict:
    out = StringIO()
    call_command("backtest", "--symbol", BTC, "--data", BTC_1M, *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def edited() -> StrategyConfig:
    """The YAML loaded, then momentum_breakout edited as in the admin: a looser breakout
    volume for every symbol and a longer range on BTC only."""
    call_command("load_config", stdout=StringIO())
    row = StrategyConfig.objects.get(name="momentum_breakout")
    row.params = {**row.params, "volume_mult": 1.2}
    row.symbol_overrides = {BTC: {"range_lookback": 30}}
    row.save()
    return row


def test_a_backtest_runs_the_database_values_by_default_and_says_so(edited) -> None:
    yaml_params = services.resolve_strategy(
        "momentum_breakout", BTC, None, services.load_radar_config(), source="yaml"
    ).params
    db = backtest("--strategy", "momentum_breakout", "--days", "3")
    assert db["params"]["volume_mult"] == 1.2 and db["params"]["range_lookback"] == 30
    assert db["params_source"].startswith("database: strategy 'momentum_breakout'")
    yaml = backtest("--strategy", "momentum_breakout", "--days", "3", "--params", "yaml")
    assert yaml["params"] == yaml_params and yaml["params"]["volume_mult"] != 1.2
    assert yaml["params_source"] == "config/strategies.yaml"
    # Different parameters, different orders: the source is not a label only.
    assert (db["signals"], db["trades"]) != (yaml["signals"], yaml["trades"])


def test_the_per_symbol_override_applies_to_its_symbol_only(edited) -> None:
    config = services.load_radar_config()
    btc = services.resolve_strategy("momentum_breakout", BTC, None, config)
    eth = services.resolve_strategy("momentum_breakout", ETH, None, config)
    assert btc.params["range_lookback"] == 30 and eth.params["range_lookback"] == 12
    assert btc.params["volume_mult"] == eth.params["volume_mult"] == 1.2


def test_defaults_and_command_line_values_are_named_in_the_source(edited) -> None:
    config = services.load_radar_config()
    defaults = services.resolve_strategy("momentum_breakout", BTC, None, config, source="defaults")
    assert defaults.source == "defaults of momentum_breakout"
    assert defaults.params["range_lookback"] != 30
    tuned = backtest("--strategy", "momentum_breakout", "--days", "2", "--param", "atr_period=10")
    assert tuned["params"]["atr_period"] == 10 and tuned["params"]["volume_mult"] == 1.2
    assert tuned["params_source"].endswith("; set here: atr_period=10")


def test_without_a_database_row_the_yaml_runs_and_the_source_says_why() -> None:
    resolved = services.resolve_strategy(
        "momentum_breakout", BTC, None, services.load_radar_config()
    )
    assert resolved.source == (
        "config/strategies.yaml (no database row of that name: run manage.py load_config)"
    )


def test_a_bad_source_is_refused_with_code_2() -> None:
    with pytest.raises(CommandError) as caught:
        call_command("backtest", "--strategy", "vwap_rsi", "--symbol", BTC, "--params", "nope")
    assert "invalid choice" in str(caught.value) or caught.value.returncode == 2


def test_the_browser_run_records_the_database_values_and_their_source(edited) -> None:
    run = services.backtest_run_create(strategy="momentum_breakout", symbol=BTC)
    assert run.params["volume_mult"] == 1.2 and run.params["range_lookback"] == 30
    assert run.params_source.startswith("database: strategy 'momentum_breakout'")
    data = services.cut(services.read_data_files([BTC_1M], BTC), None, None)
    assert services.backtest_run_execute(run.pk, data=data)
    run = BacktestRun.objects.get(pk=run.pk)
    assert run.status == run.Status.DONE, run.error
    assert run.results["params_source"] == run.params_source
    assert run.results["params"]["volume_mult"] == 1.2
