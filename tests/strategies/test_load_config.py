"""load_config seeds the database from YAML idempotently; export_config writes it back."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from strategies.config import load_config_dir
from strategies.management.commands.load_config import load_config_into_db
from strategies.models import StrategyConfig
from trading.models import Asset

pytestmark = pytest.mark.django_db

SHIPPED = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(SHIPPED, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def load(directory: Path, *args: str) -> list[str]:
    out = io.StringIO()
    call_command("load_config", "--config-dir", str(directory), *args, stdout=out)
    return out.getvalue().splitlines()


def test_first_load_creates_every_asset_and_strategy_with_complete_params(config_dir):
    lines = load(config_dir)
    assert "asset BTC/USDT:USDT @ bitget: created" in lines
    assert "strategy swing_1h: created" in lines
    assert lines[-1].endswith(": 9 created")
    assert Asset.objects.count() == 3
    sol = Asset.objects.get(symbol="SOL/USDT:USDT")
    assert (sol.base, sol.qty_step, sol.correlation_group) == ("SOL", 0.1, "crypto_major")
    vwap = StrategyConfig.objects.get(name="vwap_rsi")
    assert vwap.params["rsi_period"] == 7
    assert vwap.symbol_overrides == {"SOL/USDT:USDT": {"stop_atr_mult": 1.2}}
    assert StrategyConfig.objects.get(name="swing_1h").kind == "swing_baseline"


def test_omitted_params_are_stored_with_the_schema_default(config_dir):
    edit(config_dir / "strategies.yaml", "      rsi_period: 7 ", "      # rsi_period: 7 ")
    load(config_dir)
    # The schema's default (VwapRsiParams), not the YAML's 7.
    assert StrategyConfig.objects.get(name="vwap_rsi").params["rsi_period"] == 14


def test_second_load_reports_no_change_and_writes_nothing(config_dir):
    load(config_dir)
    stamps = dict(StrategyConfig.objects.values_list("name", "updated_at"))
    with CaptureQueriesContext(connection) as queries:
        lines = load(config_dir)
    writes = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]
    assert writes == []
    assert all(line.endswith(": unchanged") for line in lines[:-1])
    assert lines[-1].endswith(": 9 unchanged")
    assert dict(StrategyConfig.objects.values_list("name", "updated_at")) == stamps


def test_a_changed_yaml_value_is_reported_as_updated_with_old_and_new(config_dir):
    load(config_dir)
    edit(config_dir / "strategies.yaml", "rsi_period: 7 ", "rsi_period: 12 ")
    edit(config_dir / "assets.yaml", "max_leverage: 125", "max_leverage: 50")
    lines = load(config_dir)
    assert 'strategy vwap_rsi: updated params["rsi_period"] 7 -> 12' in lines
    assert "asset BTC/USDT:USDT @ bitget: updated max_leverage 125 -> 50" in lines
    assert lines[-1].endswith(": 2 updated, 7 unchanged")
    assert StrategyConfig.objects.get(name="vwap_rsi").params["rsi_period"] == 12
    assert Asset.objects.get(symbol="BTC/USDT:USDT").max_leverage == 50


def test_dry_run_reports_the_changes_and_writes_nothing(config_dir):
    load(config_dir)
    edit(config_dir / "strategies.yaml", "rsi_period: 7 ", "rsi_period: 12 ")
    lines = load(config_dir, "--dry-run")
    assert 'strategy vwap_rsi: updated params["rsi_period"] 7 -> 12' in lines
    assert lines[-1].endswith("(dry run: nothing written)")
    assert StrategyConfig.objects.get(name="vwap_rsi").params["rsi_period"] == 7


def test_invalid_params_are_refused_without_partial_writes(config_dir):
    load(config_dir)
    edit(config_dir / "assets.yaml", "max_leverage: 125", "max_leverage: 50")
    edit(config_dir / "strategies.yaml", "rsi_period: 7 ", "rsi_period: -3 ")
    with pytest.raises(CommandError, match="rsi_period = -3 — must be ≥ 2"):
        load(config_dir)
    assert Asset.objects.get(symbol="BTC/USDT:USDT").max_leverage == 125
    assert StrategyConfig.objects.get(name="vwap_rsi").params["rsi_period"] == 7


def test_a_row_refused_by_the_model_rolls_back_every_other_row(config_dir):
    """A row that passes the YAML schema but not the model (here forced) writes nothing at all."""
    config = load_config_dir(config_dir)
    entries = list(config.strategies.strategies)
    entries[-1] = entries[-1].model_copy(update={"virtual_capital_usdt": -1.0})
    broken = config.__class__(
        directory=config.directory,
        assets=config.assets,
        strategies=config.strategies.model_copy(update={"strategies": entries}),
        risk=config.risk,
        exchanges=config.exchanges,
    )
    with pytest.raises(CommandError, match="strategy swing_1h"):
        load_config_into_db(broken)
    assert Asset.objects.count() == 0
    assert StrategyConfig.objects.count() == 0


def test_rows_absent_from_the_yaml_are_reported_and_left_alone(config_dir):
    load(config_dir)
    StrategyConfig.objects.create(name="my_test", kind="swing_baseline", params={})
    lines = load(config_dir)
    assert "strategy my_test: not in the YAML, left alone (--prune disables it)" in lines
    assert StrategyConfig.objects.get(name="my_test").enabled is True


def test_prune_disables_rows_absent_from_the_yaml_and_deletes_nothing(config_dir):
    load(config_dir)
    StrategyConfig.objects.create(name="my_test", kind="swing_baseline", params={})
    Asset.objects.create(
        symbol="DOGE/USDT:USDT", base="DOGE", price_tick=1e-5, qty_step=1, min_qty=1
    )
    lines = load(config_dir, "--prune")
    assert "strategy my_test: not in the YAML, disabled" in lines
    assert "asset DOGE/USDT:USDT @ bitget: not in the YAML, disabled" in lines
    assert StrategyConfig.objects.get(name="my_test").enabled is False
    assert Asset.objects.get(symbol="DOGE/USDT:USDT").enabled is False
    again = load(config_dir, "--prune")
    assert "strategy my_test: not in the YAML, already disabled" in again


def test_an_invalid_config_dir_is_refused_with_its_problems(config_dir):
    edit(config_dir / "risk.yaml", "  max_session_loss_pct: 5", "  max_session_loss_pct: 150")
    with pytest.raises(CommandError) as caught:
        load(config_dir)
    assert "kill_switch.max_session_loss_pct = 150 — must be ≤ 100" in str(caught.value)
    assert Asset.objects.count() == 0


def test_export_then_load_round_trips_without_change(config_dir, tmp_path):
    load(config_dir)
    # What the admin would do: edit live values.
    vwap = StrategyConfig.objects.get(name="vwap_rsi")
    vwap.params = {**vwap.params, "rsi_period": 12}
    vwap.save()
    Asset.objects.filter(symbol="SOL/USDT:USDT").update(enabled=False)
    output = tmp_path / "export"
    call_command(
        "export_config",
        "--config-dir",
        str(config_dir),
        "--output-dir",
        str(output),
        stdout=io.StringIO(),
    )
    exported = load_config_dir(output)
    assert exported.strategy("vwap_rsi").params["rsi_period"] == 12
    assert (output / "risk.yaml").read_bytes() == (config_dir / "risk.yaml").read_bytes()
    assert (output / "exchanges.yaml").read_bytes() == (config_dir / "exchanges.yaml").read_bytes()
    header = (output / "strategies.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert "exported from the database by 'manage.py export_config'" in header
    groups = yaml.safe_load((output / "assets.yaml").read_text())["correlation_groups"]
    assert groups == {"crypto_major": {"max_same_direction": 2}}
    lines = load(output)
    assert lines[-1].endswith(": 9 unchanged")


def test_export_refuses_a_database_row_that_would_not_load(config_dir, tmp_path):
    load(config_dir)
    StrategyConfig.objects.filter(name="vwap_rsi").update(params={"rsi_period": -3})
    output = tmp_path / "export"
    with pytest.raises(CommandError, match=r"params\.rsi_period = -3"):
        call_command("export_config", "--config-dir", str(config_dir), "--output-dir", str(output))
    assert not output.exists()
