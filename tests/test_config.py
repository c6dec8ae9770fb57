"""The YAML configuration is validated with one readable line per problem, across all files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from strategies.config import (
    ConfigError,
    get_config,
    load_config_dir,
    reload_config,
)
from strategies.core.catalog import strategy_class

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped config directory, to break on purpose."""
    target = tmp_path / "config"
    shutil.copytree(SHIPPED, target)
    return target


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= count, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_dir(directory)
    return caught.value.problems


def line_of(path: Path, text: str) -> int:
    """1-based line of the first line of ``path`` containing ``text``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


# --- the shipped configuration -----------------------------------------------------------------


def test_shipped_config_is_valid():
    config = load_config_dir(SHIPPED)
    assert config.enabled_symbols == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    assert config.assets.correlation_groups["crypto_major"].max_same_direction == 2
    assert [s.name for s in config.strategies.strategies] == [
        "vwap_rsi",
        "momentum_breakout",
        "funding_arbitrage",
        "liquidation_zones",
        "order_flow",
        "swing_1h",
    ]
    assert config.strategy("swing_1h").kind == "swing_baseline"
    assert {s.virtual_capital_usdt for s in config.strategies.strategies} == {10_000}
    assert config.risk.kill_switch.max_session_loss_pct == 5
    assert config.risk.fees.taker_rate == 0.0006
    assert config.exchanges.exchanges["bitget"].sandbox is True


def test_shipped_slippage_estimate_is_percent_and_converts_to_the_core_fraction():
    """0.05 % of price: estimate_pct 0.05 -> fraction 0.05 / 100 = 0.0005."""
    slippage = load_config_dir(SHIPPED).risk.slippage
    assert slippage.estimate_pct == 0.05
    assert slippage.estimate_fraction == pytest.approx(0.0005)


def test_shipped_strategies_list_every_parameter_of_their_kind():
    """The YAML documents ALL parameters: a schema change must be restated in strategies.yaml."""
    for entry in load_config_dir(SHIPPED).strategies.strategies:
        schema = strategy_class(entry.kind).Params
        assert set(entry.params) == set(schema.model_fields), entry.name


# The keys whose shipped value was chosen by walk-forward (docs/parameters.md): there, and only
# there, strategies.yaml departs from the kind's schema default.
WALK_FORWARD_KEYS = {
    "vwap_rsi": {"rsi_period", "rsi_long_below", "rsi_short_above", "trend_ema_period"},
    "momentum_breakout": {"range_lookback", "volume_mult", "confirm_ema_period"},
    "funding_arbitrage": {"extreme_rate", "stop_atr_mult", "target_atr_mult"},
    "swing_1h": {"fast_ema", "slow_ema", "stop_atr_mult", "target_atr_mult"},
}


def test_shipped_strategy_params_are_the_schema_defaults_but_the_walk_forward_choices():
    for entry in load_config_dir(SHIPPED).strategies.strategies:
        defaults = strategy_class(entry.kind).Params().model_dump(mode="json")
        shipped = entry.resolved_params()
        differing = {key for key in defaults if shipped[key] != defaults[key]}
        assert differing == WALK_FORWARD_KEYS.get(entry.name, set()), entry.name


def test_load_config_dir_works_without_django_settings():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "from strategies.config import load_config_dir; "
        "print(len(load_config_dir('config').assets.assets))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


# --- one test per kind of error ----------------------------------------------------------------


def test_yaml_syntax_error_names_the_line_and_column(config_dir):
    edit(config_dir / "risk.yaml", "  margin_mode: isolated", "  margin_mode: [isolated")
    (problem,) = problems_of(config_dir)
    assert problem.startswith(f"{config_dir}/risk.yaml — YAML syntax error at line ")
    assert ", column " in problem


def test_duplicate_yaml_key_is_an_error_not_a_silent_overwrite(config_dir):
    edit(config_dir / "risk.yaml", "  max_leverage: 20", "  max_leverage: 20\n  max_leverage: 50")
    (problem,) = problems_of(config_dir)
    assert "risk.yaml — YAML syntax error at line" in problem
    assert "found duplicate key 'max_leverage'" in problem


def test_missing_file_is_reported(config_dir):
    (config_dir / "exchanges.yaml").unlink()
    (problem,) = problems_of(config_dir)
    assert problem.startswith(f"{config_dir}/exchanges.yaml — file not found")


def test_unknown_key_is_reported_with_a_suggestion(config_dir):
    edit(
        config_dir / "risk.yaml",
        "  shadow_when_killed: true",
        "  shadow_when_killed: true\n  shadow_when_kiled: true",
    )
    (problem,) = problems_of(config_dir)
    line = line_of(config_dir / "risk.yaml", "shadow_when_kiled")
    assert problem == (
        f"{config_dir}/risk.yaml: kill_switch.shadow_when_kiled = true — unknown key "
        f"(did you mean shadow_when_killed?) (line {line})"
    )


def test_missing_key_is_reported(config_dir):
    edit(config_dir / "risk.yaml", "  taker_rate: 0.0006", "")
    (problem,) = problems_of(config_dir)
    assert problem.startswith(f"{config_dir}/risk.yaml: fees.taker_rate — missing required key")


def test_wrong_type_is_reported(config_dir):
    edit(config_dir / "assets.yaml", "max_leverage: 125", 'max_leverage: "125"')
    (problem,) = problems_of(config_dir)
    assert problem.startswith(
        f'{config_dir}/assets.yaml: assets[0].max_leverage = "125" — must be a whole number '
        "(asset BTC/USDT:USDT, line "
    )


def test_out_of_range_value_is_reported_with_the_bound(config_dir):
    edit(config_dir / "risk.yaml", "  max_session_loss_pct: 5", "  max_session_loss_pct: 150")
    (problem,) = problems_of(config_dir)
    line = line_of(config_dir / "risk.yaml", "  max_session_loss_pct: 150")
    assert problem == (
        f"{config_dir}/risk.yaml: kill_switch.max_session_loss_pct = 150 — must be ≤ 100 "
        f"(line {line})"
    )


def test_unknown_strategy_kind_lists_the_known_ones(config_dir):
    edit(config_dir / "strategies.yaml", "kind: momentum_breakout", "kind: momentum_brakeout")
    (problem,) = problems_of(config_dir)
    assert problem.startswith(
        f'{config_dir}/strategies.yaml: strategies[1].kind = "momentum_brakeout" — unknown '
        "strategy kind (known: funding_arbitrage, liquidation_zones, momentum_breakout, "
    )
    assert "(strategy momentum_breakout, line" in problem


def test_invalid_strategy_params_are_checked_against_the_kind_schema(config_dir):
    edit(config_dir / "strategies.yaml", "rsi_period: 7 ", "rsi_period: -3 ")
    (problem,) = problems_of(config_dir)
    line = line_of(config_dir / "strategies.yaml", "rsi_period: -3")
    assert problem == (
        f"{config_dir}/strategies.yaml: strategies[0].params.rsi_period = -3 — must be ≥ 2 "
        f"(strategy vwap_rsi, line {line})"
    )


def test_unknown_strategy_param_is_reported(config_dir):
    edit(config_dir / "strategies.yaml", "fast_ema: 3 ", "fast_emma: 3 ")
    (problem,) = problems_of(config_dir)
    assert "strategies[5].params.fast_emma = 3 — unknown key (did you mean fast_ema?)" in problem


def test_strategy_params_cross_field_rule_is_reported(config_dir):
    edit(config_dir / "strategies.yaml", "fast_ema: 3 ", "fast_ema: 80 ")
    (problem,) = problems_of(config_dir)
    assert "strategies[5].params — fast_ema (80) must be below slow_ema (8)" in problem
    assert "(strategy swing_1h," in problem


def test_symbol_override_for_an_unknown_asset_is_reported(config_dir):
    edit(config_dir / "strategies.yaml", '"SOL/USDT:USDT":', '"DOGE/USDT:USDT":')
    (problem,) = problems_of(config_dir)
    assert problem.startswith(
        f'{config_dir}/strategies.yaml: strategies[0].symbol_overrides["DOGE/USDT:USDT"] — '
        "no such asset in assets.yaml (known: BTC/USDT:USDT, ETH/USDT:USDT, SOL/USDT:USDT)"
    )


def test_symbol_override_value_is_validated_merged_over_the_params(config_dir):
    edit(config_dir / "strategies.yaml", "stop_atr_mult: 1.2", "stop_atr_mult: 25")
    (problem,) = problems_of(config_dir)
    assert (
        'strategies[0].symbol_overrides["SOL/USDT:USDT"].stop_atr_mult = 25 — must be ≤ 20'
        in problem
    )


def test_asset_in_an_undefined_correlation_group_is_reported(config_dir):
    edit(
        config_dir / "assets.yaml",
        "correlation_group: crypto_major  #",
        "correlation_group: memes  #",
    )
    (problem,) = problems_of(config_dir)
    assert problem.startswith(
        f'{config_dir}/assets.yaml: assets[0].correlation_group = "memes" — no such group under '
        "correlation_groups (defined: crypto_major"
    )


def test_duplicate_strategy_names_are_reported(config_dir):
    edit(config_dir / "strategies.yaml", "name: swing_1h", "name: vwap_rsi")
    (problem,) = problems_of(config_dir)
    assert (
        'strategies[5].name = "vwap_rsi" — duplicate strategy name: already used by strategies[0]'
        in problem
    )


def test_duplicate_symbols_are_reported(config_dir):
    edit(config_dir / "assets.yaml", "symbol: SOL/USDT:USDT", "symbol: ETH/USDT:USDT")
    edit(config_dir / "assets.yaml", "base: SOL", "base: ETH")
    edit(config_dir / "strategies.yaml", '"SOL/USDT:USDT":', '"ETH/USDT:USDT":')
    (problem,) = problems_of(config_dir)
    assert (
        'assets[2].symbol = "ETH/USDT:USDT" — duplicate symbol: already defined by assets[1]'
        in problem
    )


def test_an_api_key_value_where_an_env_variable_name_belongs_is_refused(config_dir):
    edit(config_dir / "exchanges.yaml", "api_key_env: BITGET_API_KEY", "api_key_env: bg_3f9a2c")
    (problem,) = problems_of(config_dir)
    assert 'exchanges.bitget.credentials.api_key_env = "bg_3f9a2c" — must be the NAME' in problem


def test_the_removed_timeframes_key_is_refused_as_unknown(config_dir):
    """Higher timeframes are aggregated from closed 1m candles for whatever a strategy reads:
    a list of "fed" timeframes acted nowhere, so the key was removed and is now refused."""
    text = (config_dir / "assets.yaml").read_text(encoding="utf-8")
    (config_dir / "assets.yaml").write_text("timeframes: [1m, 5m]\n" + text, encoding="utf-8")
    (problem,) = problems_of(config_dir)
    assert "assets.yaml: timeframes" in problem and "unknown key" in problem


def test_stop_bounds_must_be_ordered(config_dir):
    edit(config_dir / "risk.yaml", "min_stop_distance_pct: 0.1", "min_stop_distance_pct: 6")
    (problem,) = problems_of(config_dir)
    assert "stops.min_stop_distance_pct = 6 — must be below stops.max_stop_distance_pct" in problem


def test_problems_are_collected_across_all_files(config_dir):
    edit(config_dir / "assets.yaml", "max_leverage: 125", "max_leverage: 0")
    edit(config_dir / "strategies.yaml", "rsi_period: 7 ", "rsi_period: -3 ")
    edit(config_dir / "strategies.yaml", "kind: momentum_breakout", "kind: nope")
    edit(config_dir / "risk.yaml", "  max_session_loss_pct: 5", "  max_session_loss_pct: 150")
    edit(config_dir / "exchanges.yaml", "market_data: 20", "market_data: -1")
    problems = problems_of(config_dir)
    assert len(problems) == 5
    files = [p.split(":")[0].rsplit("/", 1)[-1] for p in problems]
    assert files == [
        "assets.yaml",
        "strategies.yaml",
        "strategies.yaml",
        "risk.yaml",
        "exchanges.yaml",
    ]


# --- start-up and cache ------------------------------------------------------------------------


@pytest.mark.django_db
def test_manage_py_check_fails_with_every_problem(config_dir, settings):
    edit(config_dir / "risk.yaml", "  max_session_loss_pct: 5", "  max_session_loss_pct: 150")
    edit(config_dir / "strategies.yaml", "kind: momentum_breakout", "kind: nope")
    settings.CONFIG_DIR = config_dir
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    message = str(caught.value)
    assert "(scalpradar.E001)" in message
    assert "risk.yaml: kill_switch.max_session_loss_pct = 150 — must be ≤ 100" in message
    assert 'strategies[1].kind = "nope" — unknown strategy kind' in message
    settings.CONFIG_DIR = SHIPPED
    call_command("check")


def test_get_config_is_read_once_and_reload_reads_the_files_again(config_dir):
    first = get_config(config_dir)
    assert get_config(config_dir) is first
    edit(config_dir / "risk.yaml", "max_risk_per_trade_pct: 0.5", "max_risk_per_trade_pct: 0.25")
    assert get_config(config_dir).risk.sizing.max_risk_per_trade_pct == 0.5
    assert reload_config(config_dir).risk.sizing.max_risk_per_trade_pct == 0.25
    assert get_config(config_dir).risk.sizing.max_risk_per_trade_pct == 0.25


def test_reload_of_a_broken_config_raises_and_keeps_nothing_stale(config_dir):
    get_config(config_dir)
    edit(config_dir / "risk.yaml", "max_leverage: 20", "max_leverage: 500")
    with pytest.raises(ConfigError, match=r"sizing\.max_leverage = 500 — must be ≤ 125"):
        reload_config(config_dir)
    with pytest.raises(ConfigError):
        get_config(config_dir)
