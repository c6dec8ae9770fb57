"""Every key of the four YAML files acts: change it in a copy of config/, the behaviour changes.

The behaviour is observed through the code the engines run, not through the parsed value:

* ``risk.yaml`` and the market rules of ``assets.yaml``: ``kernel_config_from`` + a backtest of
  momentum_breakout on the bundled real BTC week (its events: signals, refusals, fills, exits,
  as JSON) — the same kernel the radar's paper/live arena runs;
* correlation groups: the risk gate built from ``kernel_config_from``'s limits;
* ``assets.yaml`` / ``strategies.yaml`` rows: ``load_config`` -> the database -> the arena's
  kernels (``radar.arena.new_kernel``) or the market rules table;
* ``exchanges.yaml``: ``trading.exchanges.clients`` -> the ccxt.pro instance, the shared
  limiter, the feed's options.

:data:`COVERED` names the test of each key; :func:`test_every_key_of_the_four_files_has_a_test`
fails when a schema grows a key no test covers.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from backtests.core.engine import prepare_candles, run_backtest
from radar.arena import new_kernel
from strategies.config import FILE_SCHEMAS, ConfigError, RadarConfig, load_config_dir
from strategies.kernel_config import kernel_config_from
from strategies.management.commands.load_config import load_config_into_db
from strategies.models import StrategyConfig
from tests.radar.test_selector_decisions import SELECTOR_KEYS
from tests.trading.execution.test_live_keys import LIVE_KEYS
from trading.core.candles import read_candles_csv
from trading.core.ratelimit import RateLimiter
from trading.core.risk import BookState, Exposure, RiskGate, TradeProposal
from trading.core.types import Side
from trading.exchanges.clients import (
    ExchangeSettings,
    MissingCredentials,
    feed_options,
    limiter_rates,
    market_data_exchange,
    trading_exchange,
)
from trading.feed.feed import MarketFeed
from trading.markets import market_rules_table
from trading.models import Asset

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config"
BTC_WEEK = ROOT / "data" / "sample" / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
PROBE = "momentum_breakout"  # trades often enough on the BTC week to show every risk rule


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(SHIPPED, target)
    return target


def edit(directory: Path, file: str, old: str, new: str) -> None:
    path = directory / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {file}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def edit_entry(directory: Path, name: str, old: str, new: str) -> None:
    """:func:`edit` inside the strategies.yaml entry named ``name`` only."""
    path = directory / "strategies.yaml"
    head, *entries = path.read_text(encoding="utf-8").split("\n  - name: ")
    (index,) = [i for i, entry in enumerate(entries) if entry.startswith(f"{name}\n")]
    assert entries[index].count(old) == 1, f"{old!r} is not once in strategy {name}"
    entries[index] = entries[index].replace(old, new)
    path.write_text("\n  - name: ".join([head, *entries]), encoding="utf-8")


@cache
def btc_week() -> Any:
    return prepare_candles(read_candles_csv(BTC_WEEK))


def backtest_events(
    config: RadarConfig, strategy: str = PROBE, overrides: dict[str, Any] | None = None
) -> str:
    """The probe strategy's backtest on the BTC week under ``config`` (``overrides`` over its
    params), as JSON events."""
    entry = config.strategy(strategy)
    params = {**entry.params, **(overrides or {})}
    result = run_backtest(entry.kind, params, BTC, btc_week(), config=kernel_config_from(config))
    return json.dumps([event.to_dict() for event in result.events], default=str)


@cache
def shipped_events(strategy: str = PROBE) -> str:
    return backtest_events(load_config_dir(SHIPPED), strategy)


# The risk and market keys are probed on a looser breakout than the shipped one (the values it
# had before the walk-forward of docs/parameters.md): its signals fall in every regime band of
# the week, so regime.adx_range shows too, whatever the shipped tuning.
KERNEL_PROBE_PARAMS = {"range_lookback": 20, "volume_mult": 2.0, "confirm_ema_period": 20}


def kernel_events(config: RadarConfig) -> str:
    """:func:`backtest_events` of the probe with ``KERNEL_PROBE_PARAMS``."""
    return backtest_events(config, PROBE, KERNEL_PROBE_PARAMS)


@cache
def shipped_kernel_events() -> str:
    return kernel_events(load_config_dir(SHIPPED))


# --- risk.yaml and the market rules: the backtest kernel changes its decisions ---------------

KERNEL_CHANGES = [
    # (key, file, old text, new text)
    (
        "kill_switch.max_session_loss_pct",
        "risk.yaml",
        "  max_session_loss_pct: 5",
        "  max_session_loss_pct: 0.5",
    ),
    (
        "sizing.max_risk_per_trade_pct",
        "risk.yaml",
        "max_risk_per_trade_pct: 0.5",
        "max_risk_per_trade_pct: 2",
    ),
    ("sizing.max_leverage", "risk.yaml", "max_leverage: 20", "max_leverage: 1"),
    ("sizing.margin_mode", "risk.yaml", "margin_mode: isolated", "margin_mode: cross"),
    (
        "limits.max_concurrent_positions",
        "risk.yaml",
        "max_concurrent_positions: 3",
        "max_concurrent_positions: 1",
    ),
    (
        "limits.max_positions_per_symbol",
        "risk.yaml",
        "max_positions_per_symbol: 1",
        "max_positions_per_symbol: 3",
    ),
    ("fees.maker_rate", "risk.yaml", "maker_rate: 0.0002", "maker_rate: 0.001"),
    ("fees.taker_rate", "risk.yaml", "taker_rate: 0.0006", "taker_rate: 0.003"),
    ("slippage.estimate_pct", "risk.yaml", "estimate_pct: 0.05", "estimate_pct: 1"),
    (
        "slippage.high_volatility_multiplier",
        "risk.yaml",
        "high_volatility_multiplier: 2",
        "high_volatility_multiplier: 10",
    ),
    (
        "stops.min_stop_distance_pct",
        "risk.yaml",
        "min_stop_distance_pct: 0.1",
        "min_stop_distance_pct: 1",
    ),
    (
        "stops.max_stop_distance_pct",
        "risk.yaml",
        "max_stop_distance_pct: 5",
        "max_stop_distance_pct: 0.2",
    ),
    ("stops.min_reward_risk", "risk.yaml", "min_reward_risk: 1", "min_reward_risk: 3"),
    ("regime.adx_period", "risk.yaml", "adx_period: 14", "adx_period: 30"),
    ("regime.adx_trend", "risk.yaml", "adx_trend: 25", "adx_trend: 40"),
    ("regime.adx_range", "risk.yaml", "adx_range: 20", "adx_range: 10"),
    ("regime.atr_period", "risk.yaml", "  atr_period: 14", "  atr_period: 50"),
    (
        "regime.atr_percentile_window",
        "risk.yaml",
        "atr_percentile_window: 288",
        "atr_percentile_window: 30",
    ),
    (
        "regime.high_vol_percentile",
        "risk.yaml",
        "high_vol_percentile: 80",
        "high_vol_percentile: 50",
    ),
    ("assets[].price_tick", "assets.yaml", "price_tick: 0.1 ", "price_tick: 50 "),
    ("assets[].qty_step", "assets.yaml", "qty_step: 0.001", "qty_step: 0.01"),
    ("assets[].min_qty", "assets.yaml", "min_qty: 0.001", "min_qty: 0.5"),
    (
        "assets[].min_notional_usdt",
        "assets.yaml",
        "min_notional_usdt: 5           #",
        "min_notional_usdt: 50000       #",
    ),
    ("assets[].max_leverage", "assets.yaml", "max_leverage: 125", "max_leverage: 1"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("file", "old", "new"), [c[1:] for c in KERNEL_CHANGES], ids=[c[0] for c in KERNEL_CHANGES]
)
def test_changing_the_key_changes_the_backtest_kernels_decisions(config_dir, file, old, new):
    """No Asset row is stored: the market rules come from assets.yaml (the fallback)."""
    edit(config_dir, file, old, new)
    assert kernel_events(load_config_dir(config_dir)) != shipped_kernel_events()


@pytest.mark.django_db
def test_min_free_margin_changes_the_backtest_in_cross_margin(config_dir):
    """In isolated mode nothing is reserved (risk.py: reserve = equity × pct / 100 in cross)."""
    edit(config_dir, "risk.yaml", "margin_mode: isolated", "margin_mode: cross")
    cross = kernel_events(load_config_dir(config_dir))
    edit(config_dir, "risk.yaml", "min_free_margin_pct: 20", "min_free_margin_pct: 99")
    assert kernel_events(load_config_dir(config_dir)) != cross


@pytest.mark.django_db
def test_a_stored_asset_row_overrides_the_yaml_market_rules_in_the_backtest(config_dir):
    """Rules refreshed from the exchange (or edited in the admin) are what the kernel uses."""
    load_config_into_db(load_config_dir(config_dir))
    assert kernel_events(load_config_dir(config_dir)) == shipped_kernel_events()
    Asset.objects.filter(symbol=BTC).update(min_qty=0.5, rules_source="exchange load_markets t")
    assert kernel_events(load_config_dir(config_dir)) != shipped_kernel_events()


@pytest.mark.django_db
def test_the_kill_switch_limit_appears_in_the_kernel_refusals(config_dir):
    edit(config_dir, "risk.yaml", "  max_session_loss_pct: 5", "  max_session_loss_pct: 0.5")
    assert "0.5 % limit" in kernel_events(load_config_dir(config_dir))


@pytest.mark.django_db
def test_a_killed_strategy_trades_its_shadow_ledger_only_when_shadow_when_killed(config_dir):
    """With a 0.5 % session loss limit the probe's kill switch trips during the BTC week; after
    the trip its decisions go to the shadow ledger (``shadow: true`` events), unless
    ``kill_switch.shadow_when_killed`` is false: then it stops deciding until reset."""
    edit(config_dir, "risk.yaml", "  max_session_loss_pct: 5", "  max_session_loss_pct: 0.5")
    shadowing = json.loads(kernel_events(load_config_dir(config_dir)))
    assert any(e["type"] == "kill_switch" for e in shadowing)
    assert any(e.get("shadow") for e in shadowing if e["type"] == "signal")
    edit(config_dir, "risk.yaml", "shadow_when_killed: true", "shadow_when_killed: false")
    stopped = json.loads(kernel_events(load_config_dir(config_dir)))
    assert any(e["type"] == "kill_switch" for e in stopped)
    assert not any(e.get("shadow") for e in stopped if e["type"] == "signal")


# --- assets.yaml: groups, symbols, exchanges ------------------------------------------------


def gate_of(directory: Path) -> RiskGate:
    """The gate as the kernel builds it (``strategies.core.kernel.loop``)."""
    config = kernel_config_from(load_config_dir(directory))
    return RiskGate(config.risk_limits, config.fee_schedule, config.slippage, config.market_rules)


def third_long_accepted(directory: Path) -> bool:
    """Two longs open (BTC, ETH); is a SOL long accepted? SOL 150, stop 148, target 154."""
    held = (Exposure(BTC, Side.LONG, 100.0), Exposure(ETH, Side.LONG, 100.0))
    proposal = TradeProposal("probe", SOL, Side.LONG, 150.0, 148.0, 154.0)
    return gate_of(directory).check(proposal, BookState(10_000, 200.0, held)).accepted


@pytest.mark.django_db
def test_max_same_direction_of_a_correlation_group_limits_same_side_positions(config_dir):
    assert not third_long_accepted(config_dir)
    edit(config_dir, "assets.yaml", "max_same_direction: 2", "max_same_direction: 3")
    assert third_long_accepted(config_dir)


@pytest.mark.django_db
def test_an_asset_outside_the_group_is_not_counted_with_it(config_dir):
    edit(
        config_dir,
        "assets.yaml",
        "correlation_group: crypto_major  # a key",
        "correlation_group: ''  # a key",
    )
    assert third_long_accepted(config_dir)  # BTC left the group: one long in it, not two


@pytest.mark.django_db
def test_a_disabled_asset_is_not_fed_and_leaves_its_group(config_dir):
    edit(
        config_dir,
        "assets.yaml",
        "enabled: true                  # false",
        "enabled: false                 # false",
    )
    config = load_config_dir(config_dir)
    assert BTC not in config.enabled_symbols
    assert third_long_accepted(config_dir)
    load_config_into_db(config)
    assert not Asset.objects.get(symbol=BTC).enabled


@pytest.mark.django_db
def test_the_symbol_names_the_contract_the_database_and_the_rules_table_hold(config_dir):
    edit(
        config_dir,
        "assets.yaml",
        "symbol: SOL/USDT:USDT\n    base: SOL",
        "symbol: DOGE/USDT:USDT\n    base: DOGE",
    )
    edit(
        config_dir,
        "strategies.yaml",
        '"SOL/USDT:USDT":           #',
        '"DOGE/USDT:USDT":          #',
    )
    config = load_config_dir(config_dir)
    load_config_into_db(config)
    assert Asset.objects.filter(symbol="DOGE/USDT:USDT", base="DOGE").exists()
    assert "DOGE/USDT:USDT" in market_rules_table(config.assets)


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["top level", "asset"])
def test_the_exchange_key_decides_the_stored_assets_exchange(config_dir, where):
    path = config_dir / "exchanges.yaml"
    text = path.read_text(encoding="utf-8")
    okx = text[text.index("  bitget:") :].replace("  bitget:", "  okx:", 1)
    path.write_text(text + "\n" + okx.replace("ccxt_id: bitget", "ccxt_id: okx"), "utf-8")
    if where == "top level":
        edit(config_dir, "assets.yaml", "exchange: bitget", "exchange: okx")
    else:
        edit(
            config_dir,
            "assets.yaml",
            "  - symbol: BTC/USDT:USDT  ",
            "  - exchange: okx\n    symbol: BTC/USDT:USDT  ",
        )
    load_config_into_db(load_config_dir(config_dir))
    assert Asset.objects.get(symbol=BTC).exchange == "okx"


@pytest.mark.parametrize("field", ["base", "quote"])
def test_base_and_quote_must_match_the_symbol(config_dir, field):
    old = {"base": "base: BTC", "quote": "quote: USDT                    # quote"}[field]
    new = {"base": "base: XBT", "quote": "quote: USDC                    # quote"}[field]
    edit(config_dir, "assets.yaml", old, new)
    with pytest.raises(ConfigError, match=f"assets\\[0\\]\\.{field} = .* does not match"):
        load_config_dir(config_dir)


@pytest.mark.django_db
def test_base_and_quote_are_stored_and_name_the_markets_pages(config_dir):
    load_config_into_db(load_config_dir(config_dir))
    assert Asset.objects.get(symbol=BTC).slug == "BTC-USDT"


# --- strategies.yaml: rows, and the kernels the arena builds from them ---------------------


def arena_strategy(name: str, symbol: str = BTC) -> Any:
    row = StrategyConfig.objects.get(name=name)
    kernel = new_kernel(row, [], [BTC, ETH, SOL], kernel_config_from(None), state=None)
    return kernel._symbols[symbol].strategy


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "old", "new", "param", "value"),
    [
        (
            "vwap_rsi",
            "rsi_period: 7              # RSI",
            "rsi_period: 9              # RSI",
            "rsi_period",
            9,
        ),
        ("momentum_breakout", "range_lookback: 12", "range_lookback: 30", "range_lookback", 30),
        ("funding_arbitrage", "extreme_rate: 0.0001", "extreme_rate: 0.001", "extreme_rate", 0.001),
        ("liquidation_zones", "approach_pct: 0.3", "approach_pct: 0.5", "approach_pct", 0.5),
        ("swing_1h", "fast_ema: 3 ", "fast_ema: 5 ", "fast_ema", 5),
    ],
    ids=["vwap_rsi", "momentum_breakout", "funding_arbitrage", "liquidation_zones", "swing_1h"],
)
def test_a_params_value_reaches_the_arenas_strategy(config_dir, name, old, new, param, value):
    edit(config_dir, "strategies.yaml", old, new)
    load_config_into_db(load_config_dir(config_dir))
    assert getattr(arena_strategy(name).params, param) == value


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("range_lookback: 12", "range_lookback: 40"),
        ("volume_mult: 3.0", "volume_mult: 2.0"),
        ("confirm_timeframes: [15m, 1h]", "confirm_timeframes: [15m]"),
        ("confirm_ema_period: 10", "confirm_ema_period: 50"),
        ("require_high_volatility: false", "require_high_volatility: true"),
        ("stop_atr_mult: 1.0", "stop_atr_mult: 2.5"),
        ("target_atr_mult: 2.0", "target_atr_mult: 4.0"),
        ("max_hold_minutes: 120", "max_hold_minutes: 15"),
        ("entry_type: market         # breakouts", "entry_type: limit          # breakouts"),
    ],
    ids=[
        "range_lookback",
        "volume_mult",
        "confirm_timeframes",
        "confirm_ema_period",
        "require_high_volatility",
        "stop_atr_mult",
        "target_atr_mult",
        "max_hold_minutes",
        "entry_type",
    ],
)
def test_a_momentum_breakout_param_changes_its_backtest(config_dir, old, new):
    edit_entry(config_dir, PROBE, old, new)
    assert backtest_events(load_config_dir(config_dir)) != shipped_events()


@pytest.mark.django_db
def test_a_symbol_override_changes_only_that_symbols_strategy(config_dir):
    load_config_into_db(load_config_dir(config_dir))
    assert arena_strategy("vwap_rsi", SOL).params.stop_atr_mult == 1.2
    assert arena_strategy("vwap_rsi", BTC).params.stop_atr_mult == 1.0
    edit(config_dir, "strategies.yaml", "        stop_atr_mult: 1.2", "        stop_atr_mult: 1.5")
    load_config_into_db(load_config_dir(config_dir))
    assert arena_strategy("vwap_rsi", SOL).params.stop_atr_mult == 1.5
    assert arena_strategy("vwap_rsi", BTC).params.stop_atr_mult == 1.0


def test_a_symbol_override_keyed_by_an_exchange_id_instead_of_the_unified_symbol_is_refused(
    config_dir,
):
    edit(config_dir, "strategies.yaml", '"SOL/USDT:USDT":', '"SOLUSDT":')
    with pytest.raises(ConfigError) as caught:
        load_config_dir(config_dir)
    (problem,) = caught.value.problems
    assert problem.startswith(
        f"{config_dir / 'strategies.yaml'}: strategies[0].symbol_overrides.SOLUSDT"
    )
    assert "no such asset in assets.yaml" in problem


@pytest.mark.django_db
def test_a_symbol_override_for_an_unknown_symbol_is_refused_when_saved_from_the_admin(config_dir):
    from django.core.exceptions import ValidationError

    load_config_into_db(load_config_dir(config_dir))
    row = StrategyConfig.objects.get(name="vwap_rsi")
    row.symbol_overrides = {"SOLUSDT": {"rsi_long_below": 22}}
    with pytest.raises(ValidationError, match="SOLUSDT"):
        row.full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("old", "new", "field", "value"),
    [
        (
            "enabled: true\n    virtual_capital_usdt: 10000\n    description: Donchian",
            "enabled: false\n    virtual_capital_usdt: 10000\n    description: Donchian",
            "enabled",
            False,
        ),
        (
            "virtual_capital_usdt: 10000\n    description: Donchian",
            "virtual_capital_usdt: 2500\n    description: Donchian",
            "virtual_capital_usdt",
            2500,
        ),
        (
            "description: Donchian range breakout",
            "description: Breakout",
            "description",
            "Breakout on a volume surge, confirmed by higher-timeframe EMAs.",
        ),
    ],
    ids=["enabled", "virtual_capital_usdt", "description"],
)
def test_a_strategy_entry_key_is_stored_on_its_row(config_dir, old, new, field, value):
    """The radar runs ``enabled`` rows only, gives each session ``virtual_capital_usdt``, and
    shows ``description`` on the dashboard and in the admin (all read from the row)."""
    edit(config_dir, "strategies.yaml", old, new)
    load_config_into_db(load_config_dir(config_dir))
    row = StrategyConfig.objects.get(name="momentum_breakout")
    assert getattr(row, field) == value


@pytest.mark.django_db
def test_name_and_kind_choose_the_row_and_the_strategy_class(config_dir):
    edit(
        config_dir,
        "strategies.yaml",
        "name: swing_1h\n    kind: swing_baseline",
        "name: swing_4h\n    kind: momentum_breakout",
    )
    path = config_dir / "strategies.yaml"  # drop swing_baseline's own params (fast/slow EMA)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.lstrip().startswith(("fast_ema:", "slow_ema:"))]
    path.write_text("".join(kept), encoding="utf-8")
    load_config_into_db(load_config_dir(config_dir))
    assert type(arena_strategy("swing_4h")).__name__ == "MomentumBreakout"


# --- exchanges.yaml: the ccxt.pro instances, the limiter, the feed --------------------------


def settings_of(directory: Path) -> ExchangeSettings:
    entry = load_config_dir(directory).exchanges.exchanges["bitget"]
    return ExchangeSettings.from_entry(entry, "bitget")


def wait_of_call(limiter: RateLimiter, category: str, n: int) -> float:
    """Seconds the ``n``-th immediate call of ``category`` must wait (a frozen clock)."""
    waits = [limiter.reserve(category) for _ in range(n)]
    return waits[-1]


@pytest.mark.parametrize("category", ["market_data", "trade", "account", "position"])
def test_a_rate_limit_paces_its_category_of_calls(config_dir, category):
    old = {
        "market_data": "market_data: 20",
        "trade": "trade: 10",
        "account": "account: 10",
        "position": "position: 10",
    }[category]
    before = RateLimiter(limiter_rates(settings_of(config_dir)), clock=lambda: 0.0)
    edit(config_dir, "exchanges.yaml", old, old.split(":")[0] + ": 1")
    after = RateLimiter(limiter_rates(settings_of(config_dir)), clock=lambda: 0.0)
    assert wait_of_call(after, category, 30) > wait_of_call(before, category, 30)


async def test_ccxt_id_chooses_the_ccxt_pro_class(config_dir):
    edit(config_dir, "exchanges.yaml", "ccxt_id: bitget", "ccxt_id: okx")
    exchange = market_data_exchange(settings_of(config_dir))
    try:
        assert exchange.id == "okx"
    finally:
        await exchange.close()


def test_market_type_only_accepts_perpetual_swaps_and_sets_ccxts_default_type(config_dir):
    edit(config_dir, "exchanges.yaml", "market_type: swap", "market_type: spot")
    with pytest.raises(ConfigError, match=r"market_type = \"spot\" — must be one of 'swap'"):
        load_config_dir(config_dir)


async def test_timeouts_and_keepalive_reach_the_ccxt_instance(config_dir):
    edit(config_dir, "exchanges.yaml", "timeout_ms: 10000", "timeout_ms: 2500")
    edit(config_dir, "exchanges.yaml", "keepalive_ms: 30000", "keepalive_ms: 5000")
    edit(config_dir, "exchanges.yaml", "max_ping_pong_misses: 2", "max_ping_pong_misses: 4")
    exchange = market_data_exchange(settings_of(config_dir))
    try:
        assert exchange.timeout == 2500
        assert exchange.streaming["keepAlive"] == 5000
        assert exchange.streaming["maxPingPongMisses"] == 4
        assert exchange.options["defaultType"] == "swap"
    finally:
        await exchange.close()


@pytest.mark.parametrize("sandbox", [True, False])
async def test_sandbox_switches_the_trading_instance_to_demo_trading(config_dir, sandbox):
    edit(config_dir, "exchanges.yaml", "sandbox: true", f"sandbox: {str(sandbox).lower()}")
    exchange = trading_exchange(settings_of(config_dir), api_key="k", secret="s", password="p")
    try:
        assert bool(exchange.options.get("sandboxMode")) is sandbox
    finally:
        await exchange.close()


def test_credential_env_names_are_the_ones_a_missing_key_names(config_dir):
    edit(config_dir, "exchanges.yaml", "api_key_env: BITGET_API_KEY", "api_key_env: DEMO_KEY")
    edit(
        config_dir,
        "exchanges.yaml",
        "api_secret_env: BITGET_API_SECRET",
        "api_secret_env: DEMO_SECRET",
    )
    edit(
        config_dir,
        "exchanges.yaml",
        "api_password_env: BITGET_API_PASSWORD",
        "api_password_env: DEMO_PASS",
    )
    with pytest.raises(MissingCredentials, match="DEMO_KEY, DEMO_SECRET, DEMO_PASS"):
        trading_exchange(settings_of(config_dir), api_key="", secret="", password="")


FEED_CHANGES = [
    ("stale_after_s: 30", "stale_after_s: 7", "stale_after_s", 7.0),
    ("order_book_depth: 15", "order_book_depth: 5", "book_depth", 5),
    ("max_retries: 3", "max_retries: 0", "rest_max_retries", 0),
    ("initial_backoff_s: 1", "initial_backoff_s: 4", "backoff_initial_s", 4.0),
    ("max_backoff_s: 60", "max_backoff_s: 90", "backoff_max_s", 90.0),
    ("backoff_multiplier: 2", "backoff_multiplier: 3", "backoff_multiplier", 3.0),
]


@pytest.mark.parametrize(
    ("old", "new", "attribute", "value"), FEED_CHANGES, ids=[c[2] for c in FEED_CHANGES]
)
def test_a_websocket_or_rest_key_configures_the_market_feed(config_dir, old, new, attribute, value):
    edit(config_dir, "exchanges.yaml", old, new)
    feed = MarketFeed(None, [BTC], None, None, **feed_options(settings_of(config_dir)))
    assert getattr(feed, attribute) == value


# --- coverage: every key of every schema has its test above --------------------------------

COVERED = {
    "assets.yaml": {
        "exchange",
        "correlation_groups.*.max_same_direction",
        "assets[].symbol",
        "assets[].exchange",
        "assets[].base",
        "assets[].quote",
        "assets[].price_tick",
        "assets[].qty_step",
        "assets[].min_qty",
        "assets[].min_notional_usdt",
        "assets[].max_leverage",
        "assets[].correlation_group",
        "assets[].enabled",
    },
    "risk.yaml": {c[0] for c in KERNEL_CHANGES if c[1] == "risk.yaml"}
    | {
        "sizing.min_free_margin_pct",
        "kill_switch.account_max_session_loss_pct",
        "kill_switch.shadow_when_killed",
    }
    | LIVE_KEYS  # tests/trading/execution/test_live_keys.py
    | SELECTOR_KEYS,  # tests/radar/test_selector_decisions.py
    "strategies.yaml": {
        "strategies[].name",
        "strategies[].kind",
        "strategies[].enabled",
        "strategies[].virtual_capital_usdt",
        "strategies[].description",
        "strategies[].params",
        "strategies[].symbol_overrides.*",
    },
    "exchanges.yaml": {
        f"exchanges.*.{key}"
        for key in (
            "ccxt_id",
            "market_type",
            "sandbox",
            "rate_limits_per_s.market_data",
            "rate_limits_per_s.trade",
            "rate_limits_per_s.account",
            "rate_limits_per_s.position",
            "rest.timeout_ms",
            "rest.max_retries",
            "websocket.keepalive_ms",
            "websocket.max_ping_pong_misses",
            "websocket.stale_after_s",
            "websocket.order_book_depth",
            "websocket.reconnect.initial_backoff_s",
            "websocket.reconnect.max_backoff_s",
            "websocket.reconnect.backoff_multiplier",
            "credentials.api_key_env",
            "credentials.api_secret_env",
            "credentials.api_password_env",
        )
    },
}


def leaf_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    from typing import get_args, get_origin

    keys = set()
    for name, info in model.model_fields.items():
        tp, path = info.annotation, f"{prefix}{name}"
        if get_origin(tp) is dict and get_args(tp)[1] is not Any:
            tp, path = get_args(tp)[1], f"{path}.*"
        elif get_origin(tp) is list and isinstance(get_args(tp)[0], type):
            tp, path = get_args(tp)[0], f"{path}[]"
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys |= leaf_keys(tp, f"{path}.")
        else:
            keys.add(path)
    return keys


@pytest.mark.parametrize("file", list(FILE_SCHEMAS))
def test_every_key_of_the_four_files_has_a_test(file):
    keys = leaf_keys(FILE_SCHEMAS[file])
    assert keys == COVERED[file]


@pytest.mark.django_db
def test_the_account_loss_limit_is_the_dashboards_account_gauge(config_dir, settings):
    from strategies.config import reload_config
    from strategies.selectors import kill_switch_limits

    edit(
        config_dir,
        "risk.yaml",
        "account_max_session_loss_pct: 5",
        "account_max_session_loss_pct: 8",
    )
    settings.CONFIG_DIR = config_dir
    reload_config(config_dir)
    assert kill_switch_limits() == (5, 8)
