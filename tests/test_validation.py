"""One validation for every way in: the admin, the YAML loader, the services, the database and
the radar refuse the same values, for the same reason, and nothing refused is ever saved."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse

from common.yamlcheck import ConfigError
from radar.controls import apply_controls, reload_config
from strategies.config import load_config_dir
from strategies.core.arena import SelectorRules
from strategies.core.kernel import Mode
from strategies.management.commands.load_config import load_config_into_db
from strategies.models import ControlAction, StrategyConfig
from trading.config import MAX_CAPITAL_WEIGHT, InvalidStoredValue, Sizing, checked_capital_weight
from trading.core.sizing import size_position
from trading.core.types import Side
from trading.models import Asset, TradingSession
from trading.services import session_checkpoint

pytestmark = pytest.mark.django_db

SHIPPED = Path(__file__).resolve().parents[1] / "config"


@pytest.fixture
def config_dir(tmp_path: Path, settings: Any) -> Path:
    """A private copy of the shipped configuration, also the admin's CONFIG_DIR."""
    target = tmp_path / "config"
    shutil.copytree(SHIPPED, target)
    settings.CONFIG_DIR = target
    return target


@pytest.fixture
def loaded(config_dir: Path) -> Path:
    load_config_into_db(load_config_dir(config_dir))
    return config_dir


@pytest.fixture
def boss() -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-1234567")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def session() -> TradingSession:
    return TradingSession.objects.create(
        strategy_name="momentum_breakout", status=TradingSession.Status.KILLED
    )


def yaml_problems(directory: Path, filename: str, change: Any) -> list[str]:
    """Problems of ``directory`` after ``change(data)`` edited ``filename``'s data."""
    path = directory / filename
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config_dir(directory)
    return caught.value.problems


def asset_form(asset: Asset, **changes: Any) -> dict[str, Any]:
    data = {
        "base": asset.base,
        "quote": asset.quote,
        "enabled": "on" if asset.enabled else "",
        "price_tick": asset.price_tick,
        "qty_step": asset.qty_step,
        "min_qty": asset.min_qty,
        "min_notional_usdt": asset.min_notional_usdt,
        "max_leverage": asset.max_leverage,
        "correlation_group": asset.correlation_group,
        "_save": "Save",
    }
    data.update(changes)
    return data


def strategy_form(row: StrategyConfig, **changes: Any) -> dict[str, Any]:
    data = {
        "kind": row.kind,
        "enabled": "on" if row.enabled else "",
        "description": row.description,
        "virtual_capital_usdt": row.virtual_capital_usdt,
        "params": json.dumps(row.params),
        "symbol_overrides": json.dumps(row.symbol_overrides),
        "_save": "Save",
    }
    data.update(changes)
    return data


def field_errors_of(response: Any, field: str) -> list[str]:
    """The errors the admin form shows on ``field`` (the page re-rendered, status 200)."""
    assert response.status_code == 200, "a refused value must re-render the form, not save"
    return list(response.context["adminform"].form.errors.get(field, []))


def row_values(row: Any) -> dict[str, Any]:
    row.refresh_from_db()
    return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields}


# --- sessions: the capital weight ----------------------------------------------------------------


def test_the_capital_weight_bound_keeps_the_risk_per_trade_inside_the_risk_gate():
    """risk per trade = risk.yaml max_risk_per_trade_pct × weight; the YAML allows at most 10 %,
    the selector at most a weight of 2: 10 × 2 = 20 % ≤ the sizer's 100 %."""
    risk_bound = next(
        m.le for m in Sizing.model_fields["max_risk_per_trade_pct"].metadata if hasattr(m, "le")
    )
    assert SelectorRules().max_weight == MAX_CAPITAL_WEIGHT
    assert risk_bound * MAX_CAPITAL_WEIGHT <= 100


@pytest.mark.parametrize(
    ("weight", "reason"),
    [
        ("1000", "must be ≤ 2"),
        ("0", "must be > 0"),
        ("-1", "must be > 0"),
        ("1e308", "must be ≤ 2"),
    ],
)
def test_the_admin_refuses_a_capital_weight_outside_the_risk_bounds_and_saves_nothing(
    boss, session, weight, reason
):
    before = row_values(session)
    url = reverse("admin:trading_tradingsession_change", args=[session.pk])
    response = boss.post(url, {"capital_weight": weight, "_save": "Save"})
    (error,) = field_errors_of(response, "capital_weight")
    assert error.startswith(reason)
    assert row_values(session) == before


def test_the_admin_saves_a_capital_weight_within_bounds_and_writes_only_that_column(boss, session):
    url = reverse("admin:trading_tradingsession_change", args=[session.pk])
    page = boss.get(url)  # the form is read while the session is killed...
    assert page.status_code == 200
    # ...then the radar checkpoints the session before the admin saves.
    TradingSession.objects.filter(pk=session.pk).update(equity_usdt=9_321.0)
    response = boss.post(url, {"capital_weight": "1.5", "_save": "Save"})
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.capital_weight == 1.5
    assert session.equity_usdt == 9_321.0


def test_equity_pnl_and_status_are_read_only_in_the_admin_and_status_points_to_the_controls(
    boss, session
):
    url = reverse("admin:trading_tradingsession_change", args=[session.pk])
    page = boss.get(url)
    form = page.context["adminform"].form
    assert list(form.fields) == ["capital_weight"]
    assert reverse("arena") in page.text
    response = boss.post(
        url,
        {
            "capital_weight": "1.0",
            "status": "active",
            "equity_usdt": "1000000",
            "realised_net_pnl": "500000",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.status == TradingSession.Status.KILLED  # un-killing needs the reset control
    assert (session.equity_usdt, session.realised_net_pnl) == (10_000.0, 0.0)
    assert not ControlAction.objects.exists()


def test_the_runtime_refuses_a_stored_capital_weight_outside_the_bounds_with_its_reason():
    stored = TradingSession(strategy_name="momentum_breakout", capital_weight=1000.0)
    with pytest.raises(InvalidStoredValue, match=r"momentum_breakout: capital weight 1000\.0"):
        checked_capital_weight(stored)


def test_the_largest_weight_the_bounds_allow_still_sizes_a_trade():
    """risk.yaml's largest risk per trade (10 %) × the largest weight (2) = 20 %: 10,000 USDT
    × 20 % = 2,000 USDT at risk, which the sizer accepts (1 % × 1000 = 1000 % it refused)."""
    size = size_position(
        side=Side.LONG,
        entry_price=100.0,
        stop_price=99.0,
        capital_usdt=10_000.0,
        max_risk_pct=10.0 * MAX_CAPITAL_WEIGHT,
        slippage_fraction=0.0,
    )
    assert size.max_risk_usdt == 2_000.0


def test_apply_controls_refuses_a_stored_weight_before_it_scales_the_risk_gate():
    """The radar's control sync reads capital_weight from the database (radar.controls)."""
    kernel = SimpleNamespace(kill_switch=SimpleNamespace(tripped=False), mode=Mode.ACTIVE)
    stored = TradingSession(strategy_name="momentum_breakout", capital_weight=1e308)
    entry = SimpleNamespace(session=stored, kernel=kernel, applied_weight=1.0, checkpoint_due=False)
    with pytest.raises(InvalidStoredValue, match="must be ≤ 2"):
        apply_controls(entry, now_ms=0)  # type: ignore[arg-type]
    assert entry.applied_weight == 1.0


def test_the_checkpoint_service_refuses_a_weight_outside_the_bounds(session):
    session.capital_weight = 5.0
    with pytest.raises(InvalidStoredValue, match="must be ≤ 2"):
        session_checkpoint(session=session, fields=["capital_weight"])
    session.refresh_from_db()
    assert session.capital_weight == 1.0


# --- assets --------------------------------------------------------------------------------------


ASSET_CASES = [
    ("max_leverage", 1000, "must be ≤ 200"),
    ("max_leverage", 0, "must be ≥ 1"),
    ("min_notional_usdt", -10, "must be ≥ 0"),
    (
        "correlation_group",
        "altcoins",
        "no such group under correlation_groups (defined: crypto_major",
    ),
]


@pytest.mark.parametrize(("field", "value", "reason"), ASSET_CASES)
def test_the_admin_refuses_an_asset_value_the_yaml_refuses_and_saves_nothing(
    boss, loaded, field, value, reason
):
    asset = Asset.objects.get(symbol="SOL/USDT:USDT")
    before = row_values(asset)
    url = reverse("admin:trading_asset_change", args=[asset.pk])
    response = boss.post(url, asset_form(asset, **{field: value}))
    (error,) = field_errors_of(response, field)
    assert error.startswith(reason)
    assert row_values(asset) == before


@pytest.mark.parametrize(("field", "value", "reason"), ASSET_CASES)
def test_the_yaml_loader_refuses_the_same_asset_value_with_the_same_reason(
    config_dir, field, value, reason
):
    def change(data: dict[str, Any]) -> None:
        data["assets"][2][field] = value

    problems = yaml_problems(config_dir, "assets.yaml", change)
    assert any(f"assets[2].{field} = " in p and f"— {reason}" in p for p in problems), problems


def test_the_admin_refuses_an_asset_on_an_exchange_the_config_does_not_define(boss, loaded):
    url = reverse("admin:trading_asset_add")
    data = asset_form(Asset.objects.get(symbol="SOL/USDT:USDT"), exchange="binance")
    data.update(symbol="DOGE/USDT:USDT", base="DOGE", quote="USDT")
    response = boss.post(url, data)
    (error,) = field_errors_of(response, "exchange")
    assert error.startswith("not defined in exchanges.yaml (defined: bitget)")
    assert not Asset.objects.filter(symbol="DOGE/USDT:USDT").exists()


# --- strategies ----------------------------------------------------------------------------------


def test_the_admin_refuses_a_virtual_capital_the_yaml_refuses_and_saves_nothing(boss, loaded):
    row = StrategyConfig.objects.get(name="vwap_rsi")
    before = row_values(row)
    url = reverse("admin:strategies_strategyconfig_change", args=[row.pk])
    response = boss.post(url, strategy_form(row, virtual_capital_usdt="1e308"))
    (error,) = field_errors_of(response, "virtual_capital_usdt")
    assert error.startswith("must be ≤ 1e+09")
    assert row_values(row) == before


def test_the_yaml_loader_refuses_the_same_virtual_capital_with_the_same_reason(config_dir):
    def change(data: dict[str, Any]) -> None:
        data["strategies"][0]["virtual_capital_usdt"] = 1e308

    (problem,) = yaml_problems(config_dir, "strategies.yaml", change)
    assert "strategies[0].virtual_capital_usdt = 1e+308 — must be ≤ 1e+09" in problem


@pytest.mark.parametrize("params", [[1, 2], "rsi_period=12"])
def test_the_admin_refuses_params_that_are_not_a_mapping_without_a_server_error(
    boss, loaded, params
):
    row = StrategyConfig.objects.get(name="vwap_rsi")
    before = row_values(row)
    url = reverse("admin:strategies_strategyconfig_change", args=[row.pk])
    response = boss.post(url, strategy_form(row, params=json.dumps(params)))
    (error,) = field_errors_of(response, "params")
    assert error.startswith("must be a mapping (key: value lines)")
    assert row_values(row) == before


@pytest.mark.parametrize("params", [[1, 2], "rsi_period=12"])
def test_the_yaml_loader_refuses_params_that_are_not_a_mapping_with_the_same_reason(
    config_dir, params
):
    def change(data: dict[str, Any]) -> None:
        data["strategies"][0]["params"] = params

    problems = yaml_problems(config_dir, "strategies.yaml", change)
    assert any(
        "strategies[0].params" in p and "— must be a mapping (key: value lines)" in p
        for p in problems
    ), problems


def test_the_radar_refuses_stored_params_that_are_not_a_mapping_before_rebuilding_a_kernel():
    stored = StrategyConfig(name="vwap_rsi", kind="vwap_rsi", params=[1, 2])
    with pytest.raises(InvalidStoredValue, match=r"strategy vwap_rsi: .*params: must be a mapping"):
        stored.check_stored()
    with pytest.raises(InvalidStoredValue):
        reload_config([], stored, exchange="bitget", give_inputs=lambda kernel, symbol: None)


def test_the_model_clean_refuses_what_load_config_would_refuse():
    row = StrategyConfig(name="x", kind="vwap_rsi", params={"rsi_period": -3})
    with pytest.raises(ValidationError) as caught:
        row.full_clean()
    assert caught.value.message_dict["params"] == ["rsi_period = -3 — must be ≥ 2"]


# --- the database backs the bounds ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (TradingSession, {"capital_weight": 1000.0}),
        (TradingSession, {"capital_weight": 0.0}),
        (TradingSession, {"capital_weight": -1.0}),
        (TradingSession, {"status": "bogus"}),
        (Asset, {"max_leverage": 1000}),
        (Asset, {"max_leverage": 0}),
        (Asset, {"min_notional_usdt": -10.0}),
        (StrategyConfig, {"virtual_capital_usdt": 1e308}),
    ],
)
def test_a_raw_update_outside_the_bounds_is_refused_by_the_database(loaded, model, values):
    TradingSession.objects.create(strategy_name="vwap_rsi")
    row = model.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=row.pk).update(**values)


def test_a_raw_sql_capital_weight_is_refused_by_the_database():
    session = TradingSession.objects.create(strategy_name="vwap_rsi")
    table = TradingSession._meta.db_table
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET capital_weight = 1000 WHERE id = %s", [session.pk])  # noqa: S608


# --- export_config round-trips what the admin saved ----------------------------------------------


def test_what_the_admin_saves_is_exported_and_loads_back_with_the_same_values(
    boss, loaded, tmp_path
):
    sol = Asset.objects.get(symbol="SOL/USDT:USDT")
    url = reverse("admin:trading_asset_change", args=[sol.pk])
    response = boss.post(
        url, asset_form(sol, max_leverage=50, min_notional_usdt=10, correlation_group="")
    )
    assert response.status_code == 302
    vwap = StrategyConfig.objects.get(name="vwap_rsi")
    url = reverse("admin:strategies_strategyconfig_change", args=[vwap.pk])
    changes = strategy_form(
        vwap,
        virtual_capital_usdt="25000",
        params=json.dumps({"rsi_period": 12}),  # partial: the schema fills the rest
        symbol_overrides=json.dumps({"ETH/USDT:USDT": {"rsi_long_below": 20}}),
    )
    assert boss.post(url, changes).status_code == 302
    output = tmp_path / "export"
    call_command(
        "export_config",
        "--config-dir",
        str(loaded),
        "--output-dir",
        str(output),
        stdout=io.StringIO(),
    )
    exported = load_config_dir(output)
    vwap.refresh_from_db()
    entry = exported.strategy("vwap_rsi")
    assert entry.virtual_capital_usdt == vwap.virtual_capital_usdt == 25_000.0
    assert entry.resolved_params() == vwap.params
    assert vwap.params["rsi_period"] == 12
    assert (
        entry.resolved_overrides()
        == vwap.symbol_overrides
        == {"ETH/USDT:USDT": {"rsi_long_below": 20.0}}
    )
    (sol_entry,) = [a for a in exported.assets.assets if a.symbol == "SOL/USDT:USDT"]
    sol.refresh_from_db()
    assert (
        (sol_entry.max_leverage, sol_entry.min_notional_usdt, sol_entry.correlation_group)
        == (
            sol.max_leverage,
            sol.min_notional_usdt,
            sol.correlation_group,
        )
        == (50, 10.0, "")
    )
    # Loading the export changes no value; only the provenance label of SOL's market rules
    # (typed in the admin, now read from the exported assets.yaml).
    changes = [line for report in load_config_into_db(exported) for line in report.changes]
    assert len(changes) == 1
    assert changes[0].startswith('rules_source "admin boss ')
    assert changes[0].endswith('-> "assets.yaml"')


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's switch for CHECK constraints")
def test_a_weight_stored_around_the_constraint_is_refused_when_the_radar_reads_it():
    """A row older than the constraint: the radar's read (``checked_capital_weight``) refuses
    it with the strategy, the value and the rule."""
    session = TradingSession.objects.create(strategy_name="momentum_breakout")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA ignore_check_constraints = ON")
        TradingSession.objects.filter(pk=session.pk).update(capital_weight=1000.0)
        cursor.execute("PRAGMA ignore_check_constraints = OFF")
    session.refresh_from_db()
    with pytest.raises(
        InvalidStoredValue, match=r"momentum_breakout: capital weight 1000\.0 .*≤ 2"
    ):
        checked_capital_weight(session)
