"""Validation of ``assets.yaml``, ``risk.yaml`` and ``exchanges.yaml`` (their pydantic schemas
and the cross-field / cross-file checks a schema cannot express).

Units: a key ending in ``_pct`` holds PERCENT (``5`` = 5 %); ``_rate`` a FRACTION
(``0.0006`` = 0.06 %); ``_usdt`` USDT; ``_ms`` milliseconds; ``_s`` seconds.
``strategies.config`` reads the four files together (``load_config_dir``) and adds the checks of
``strategies.yaml``; this module imports no app above ``trading``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from common.yamlcheck import (
    CONFIG_FILES,
    NO_VALUE,
    ConfigError,
    Problem,
    StrictSchema,
    YamlDoc,
    display_path,
    key_path,
    problems_from,
    read_yaml,
    report,
    show_value,
)
from trading.core import risk as core_risk
from trading.core.orders import InstrumentRules
from trading.core.risk import MAX_CAPITAL_WEIGHT, RiskLimits

__all__ = [
    "MAX_CAPITAL_WEIGHT",
    "ConfigError",
    "InvalidStoredValue",
    "asset_problems",
    "session_problems",
]

SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+:[A-Z0-9]+$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")

# Bounds shared by the schemas below and the models' CheckConstraints (trading.models,
# strategies.models): docs/configuration.md, "One validation for every way in".
MAX_VIRTUAL_CAPITAL_USDT = 1_000_000_000.0  # a strategy's (and its session's) capital
MAX_MIN_NOTIONAL_USDT = 1_000_000.0  # an exchange minimum above this is a typo
MAX_ASSET_LEVERAGE = 200  # above every Bitget contract's maximum (125)


# --- assets.yaml -------------------------------------------------------------------------------


class CorrelationGroup(StrictSchema):
    max_same_direction: int = Field(ge=1, le=100)


class AssetEntry(StrictSchema):
    symbol: str = Field(max_length=40)
    exchange: str = Field("", max_length=32, description="empty = the file's top-level exchange")
    base: str = Field(min_length=1, max_length=16)
    quote: str = Field(min_length=1, max_length=16)
    price_tick: float = Field(gt=0, allow_inf_nan=False)
    qty_step: float = Field(gt=0, allow_inf_nan=False)
    min_qty: float = Field(ge=0, allow_inf_nan=False)
    min_notional_usdt: float = Field(ge=0, le=MAX_MIN_NOTIONAL_USDT)
    max_leverage: int = Field(ge=1, le=MAX_ASSET_LEVERAGE)
    correlation_group: str = Field(max_length=40)
    enabled: bool

    @field_validator("symbol")
    @classmethod
    def _unified_symbol(cls, value: str) -> str:
        if not SYMBOL_RE.match(value):
            raise ValueError("must be a ccxt unified perpetual symbol like BTC/USDT:USDT")
        return value


class AssetsFile(StrictSchema):
    exchange: str = Field(min_length=1, max_length=32)
    correlation_groups: dict[str, CorrelationGroup]
    assets: list[AssetEntry] = Field(min_length=1)

    def exchange_of(self, asset: AssetEntry) -> str:
        return asset.exchange or self.exchange


# --- risk.yaml ---------------------------------------------------------------------------------


class KillSwitch(StrictSchema):
    max_session_loss_pct: float = Field(gt=0, le=100)
    account_max_session_loss_pct: float = Field(gt=0, le=100)
    shadow_when_killed: bool


class Sizing(StrictSchema):
    max_risk_per_trade_pct: float = Field(gt=0, le=10)
    max_leverage: int = Field(ge=1, le=125)
    margin_mode: Literal["isolated", "cross"]
    min_free_margin_pct: float = Field(ge=0, lt=100)


class Limits(StrictSchema):
    max_concurrent_positions: int = Field(ge=1, le=100)
    max_positions_per_symbol: int = Field(ge=1, le=10)


class Fees(StrictSchema):
    maker_rate: float = Field(ge=-0.001, le=0.01)
    taker_rate: float = Field(ge=0, le=0.01)


class Slippage(StrictSchema):
    estimate_pct: float = Field(ge=0, le=5)
    high_volatility_multiplier: float = Field(ge=1, le=10)

    @property
    def estimate_fraction(self) -> float:
        """``estimate_pct`` as a fraction of price (0.05 % -> 0.0005), what the core uses."""
        return self.estimate_pct / 100.0


class Stops(StrictSchema):
    min_stop_distance_pct: float = Field(gt=0, le=50)
    max_stop_distance_pct: float = Field(gt=0, le=50)
    min_reward_risk: float = Field(ge=0, le=20)


class Regime(StrictSchema):
    adx_period: int = Field(ge=2, le=200)
    adx_trend: float = Field(gt=0, lt=100)
    adx_range: float = Field(gt=0, lt=100)
    atr_period: int = Field(ge=2, le=200)
    atr_percentile_window: int = Field(ge=20, le=100_000)
    high_vol_percentile: float = Field(gt=0, lt=100)


class Caps(StrictSchema):
    max_notional_usdt: float = Field(gt=0, le=10_000_000)
    max_leverage: int = Field(ge=1, le=125)
    max_open_positions: int = Field(ge=1, le=100)


class Live(StrictSchema):
    strategy_caps: Caps
    account_caps: Caps
    stop_confirm_s: float = Field(gt=0, le=60)
    exit_attempts: int = Field(ge=1, le=10)
    reconcile_interval_s: float = Field(ge=5, le=3600)
    poll_interval_s: float = Field(ge=0.5, le=600)
    unknown_positions: Literal["close", "adopt"]
    adopt_stop_pct: float = Field(gt=0, le=50)


class Selector(StrictSchema):
    """The arena selector's settings (``radar.selector``)."""

    # Market time (hours) a trader's pause, resume or kill-switch reset keeps the selector off
    # that strategy; 0 = the selector may act at its next round. At most 30 days.
    manual_hold_hours: float = Field(ge=0, le=720)


class RiskFile(StrictSchema):
    kill_switch: KillSwitch
    sizing: Sizing
    limits: Limits
    fees: Fees
    slippage: Slippage
    stops: Stops
    regime: Regime
    live: Live
    selector: Selector


# --- exchanges.yaml ----------------------------------------------------------------------------


class RateLimits(StrictSchema):
    market_data: float = Field(gt=0, le=1000)
    trade: float = Field(gt=0, le=1000)
    account: float = Field(gt=0, le=1000)
    position: float = Field(gt=0, le=1000)


class Reconnect(StrictSchema):
    initial_backoff_s: float = Field(gt=0, le=60)
    max_backoff_s: float = Field(gt=0, le=3600)
    backoff_multiplier: float = Field(ge=1, le=10)


class Websocket(StrictSchema):
    keepalive_ms: int = Field(ge=1000, le=120_000)
    max_ping_pong_misses: int = Field(ge=1, le=10)
    stale_after_s: float = Field(gt=0, le=600)
    order_book_depth: Literal[1, 5, 15, 50]
    reconnect: Reconnect


class Rest(StrictSchema):
    timeout_ms: int = Field(ge=1000, le=120_000)
    max_retries: int = Field(ge=0, le=10)


class Credentials(StrictSchema):
    api_key_env: str
    api_secret_env: str
    api_password_env: str

    @field_validator("api_key_env", "api_secret_env", "api_password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME_RE.match(value):
            raise ValueError(
                "must be the NAME of an environment variable, like BITGET_API_KEY "
                "(the key itself stays in the environment)"
            )
        return value


class ExchangeEntry(StrictSchema):
    ccxt_id: str = Field(pattern=r"^[a-z0-9]+$")
    market_type: Literal["swap"]
    sandbox: bool
    rate_limits_per_s: RateLimits
    rest: Rest
    websocket: Websocket
    credentials: Credentials


class ExchangesFile(StrictSchema):
    exchanges: dict[str, ExchangeEntry] = Field(min_length=1)


def read_config_file[S: StrictSchema](directory: Path, name: str, schema: type[S]) -> S:
    """One file of ``directory`` (``assets.yaml``, ``risk.yaml``, ``exchanges.yaml``) alone,
    schema-checked (the cross-file checks run with all four files in
    ``strategies.config.load_config_dir``). Raises :class:`ConfigError`."""
    problems: list[Problem] = []
    file = display_path(directory / name)
    doc = read_yaml(directory / name, file, problems)
    if doc is not None:
        try:
            return schema.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(problems_from(exc, file, schema))
    raise ConfigError(report(problems, {file: doc} if doc else {}))


def read_assets_file(directory: Path) -> AssetsFile:
    """``assets.yaml`` of ``directory`` alone (:func:`read_config_file`)."""
    return read_config_file(directory, "assets.yaml", AssetsFile)


class TradingChecks:
    """Rules of assets / risk / exchanges a field schema cannot express: cross-field,
    cross-entry and cross-file checks. They run on the raw data entry by entry, so one broken
    entry does not hide the problems of the others."""

    def __init__(self, directory: Path, docs: dict[str, YamlDoc], parsed: dict[str, Any]) -> None:
        self.files = {name: display_path(directory / name) for name in CONFIG_FILES}
        self.raw = {name: docs[f].data if f in docs else None for name, f in self.files.items()}
        self.parsed = parsed

    def _entries(self, name: str, section: str) -> Iterator[tuple[int, dict[str, Any]]]:
        data = self.raw[name]
        entries = data.get(section) if isinstance(data, dict) else None
        if isinstance(entries, list):
            for index, entry in enumerate(entries):
                if isinstance(entry, dict):
                    yield index, entry

    def _known_symbols(self) -> set[str] | None:
        if not isinstance(self.raw["assets.yaml"], dict):
            return None
        return {
            entry["symbol"]
            for _, entry in self._entries("assets.yaml", "assets")
            if isinstance(entry.get("symbol"), str)
        }

    def _assets(self) -> Iterator[Problem]:
        file = self.files["assets.yaml"]
        data = self.raw["assets.yaml"]
        if not isinstance(data, dict):
            return
        groups = data.get("correlation_groups")
        group_names = set(groups) if isinstance(groups, dict) else set()
        exchanges = self.raw["exchanges.yaml"]
        exchange_names = (
            set(exchanges["exchanges"])
            if isinstance(exchanges, dict) and isinstance(exchanges.get("exchanges"), dict)
            else None
        )
        default_exchange = data.get("exchange")
        if (
            exchange_names is not None
            and isinstance(default_exchange, str)
            and default_exchange not in exchange_names
        ):
            yield Problem(
                file,
                ("exchange",),
                default_exchange,
                f"not defined in exchanges.yaml (defined: {', '.join(sorted(exchange_names))})",
            )
        context = AssetContext(frozenset(group_names), exchange_names)
        seen: dict[tuple[str, str], int] = {}
        for index, entry in self._entries("assets.yaml", "assets"):
            # The entry's own rules: the same function the admin calls (asset_problems).
            for problem in asset_rule_problems(entry, context):
                yield Problem(file, ("assets", index, *problem.loc), problem.value, problem.why)
            symbol = entry.get("symbol")
            exchange = entry.get("exchange") or default_exchange
            if not isinstance(symbol, str):
                continue
            key = (str(exchange), symbol)
            if key in seen:
                yield Problem(
                    file,
                    ("assets", index, "symbol"),
                    symbol,
                    f"duplicate symbol: already defined by assets[{seen[key]}]",
                )
            else:
                seen[key] = index

    def _raw_at(self, name: str, loc: tuple[str | int, ...]) -> Any:
        value: Any = self.raw[name]
        for part in loc:
            value = value[part]
        return value

    def _ordered(
        self, name: str, low: tuple[str, ...], high: tuple[str, ...], *, strict: bool
    ) -> Iterator[Problem]:
        """``low`` must be below (``strict``) or at most ``high``; values as written."""
        low_value, high_value = self._raw_at(name, low), self._raw_at(name, high)
        if low_value > high_value or (strict and low_value == high_value):
            relation = "below" if strict else "≤"
            yield Problem(
                self.files[name],
                low,
                low_value,
                f"must be {relation} {key_path(high)} ({show_value(high_value)})",
            )

    def _risk(self) -> Iterator[Problem]:
        if self.parsed.get("risk.yaml") is None:
            return
        stops, regime = ("stops",), ("regime",)
        yield from self._ordered(
            "risk.yaml",
            (*stops, "min_stop_distance_pct"),
            (*stops, "max_stop_distance_pct"),
            strict=True,
        )
        yield from self._ordered(
            "risk.yaml", (*regime, "adx_range"), (*regime, "adx_trend"), strict=False
        )
        fees = self._raw_at("risk.yaml", ("fees",))
        if fees["maker_rate"] < -fees["taker_rate"]:
            yield Problem(
                self.files["risk.yaml"],
                ("fees", "maker_rate"),
                fees["maker_rate"],
                "a maker rebate cannot exceed the taker fee",
            )

    def _exchanges(self) -> Iterator[Problem]:
        exchanges = self.parsed.get("exchanges.yaml")
        if exchanges is None:
            return
        for name in exchanges.exchanges:
            reconnect = ("exchanges", name, "websocket", "reconnect")
            yield from self._ordered(
                "exchanges.yaml",
                (*reconnect, "initial_backoff_s"),
                (*reconnect, "max_backoff_s"),
                strict=False,
            )


# --- one validation for every way in ------------------------------------------------------------
# The YAML loader, ``load_config``, the admin (through the models' ``clean``), the services and
# the radar check a session, an asset or a strategy (``strategies.config.strategy_problems``)
# with these functions and the schemas above: one rule, one message, wherever the value comes
# from. The models back the bounds with CheckConstraints.


class InvalidStoredValue(ValueError):
    """A value read from the database that its schema refuses (stored around the validation,
    e.g. by raw SQL before the constraint existed); the message names the row and the rule."""


class SessionControls(StrictSchema):
    """What the admin may change on a trading session (everything else is the ledger's)."""

    capital_weight: float = Field(gt=0, le=MAX_CAPITAL_WEIGHT, allow_inf_nan=False)


@dataclass(frozen=True)
class AssetContext:
    """What other files define for an asset: the correlation groups of ``assets.yaml`` and the
    exchanges of ``exchanges.yaml`` (``None``: unknown, not checked)."""

    correlation_groups: frozenset[str]
    exchanges: Collection[str] | None = None


def schema_problems(schema: type[StrictSchema], values: Mapping[str, Any]) -> list[Problem]:
    """``values`` checked by ``schema``; each problem located relative to ``values``."""
    try:
        schema.model_validate(dict(values))
    except ValidationError as exc:
        return problems_from(exc, "", schema)
    return []


def session_problems(values: Mapping[str, Any]) -> list[Problem]:
    """A session's editable controls (``capital_weight`` ∈ (0, ``MAX_CAPITAL_WEIGHT``])."""
    return schema_problems(SessionControls, values)


def asset_rule_problems(entry: Mapping[str, Any], context: AssetContext | None) -> list[Problem]:
    """The rules of one asset a field schema cannot express: its correlation group is defined,
    its exchange is defined (when ``context`` knows them), base and quote match the symbol."""
    problems = []
    group = entry.get("correlation_group")
    groups = context.correlation_groups if context is not None else None
    if groups is not None and isinstance(group, str) and group and group not in groups:
        defined = ", ".join(sorted(groups)) or "none"
        why = f"no such group under correlation_groups (defined: {defined}; "
        problems.append(
            Problem("", ("correlation_group",), group, why + "use an empty string for none)")
        )
    exchange = entry.get("exchange")
    exchanges = context.exchanges if context is not None else None
    if exchanges is not None and isinstance(exchange, str) and exchange not in {"", *exchanges}:
        why = f"not defined in exchanges.yaml (defined: {', '.join(sorted(exchanges)) or 'none'})"
        problems.append(Problem("", ("exchange",), exchange, why))
    symbol = entry.get("symbol")
    if isinstance(symbol, str) and SYMBOL_RE.match(symbol):
        base, rest = symbol.split("/")
        quote = rest.split(":")[0]
        for field, expected in (("base", base), ("quote", quote)):
            value = entry.get(field)
            if isinstance(value, str) and value != expected:
                why = f"does not match the symbol {symbol} (expected {expected})"
                problems.append(Problem("", (field,), value, why))
    return problems


def asset_problems(
    values: Mapping[str, Any], *, context: AssetContext | None = None
) -> list[Problem]:
    """One asset (its ``assets.yaml`` entry form): the :class:`AssetEntry` schema, then
    :func:`asset_rule_problems`."""
    return [*schema_problems(AssetEntry, values), *asset_rule_problems(values, context)]


def asset_context(directory: Path) -> AssetContext:
    """The correlation groups and exchanges defined in ``directory``'s ``assets.yaml`` and
    ``exchanges.yaml``, read as written (an unreadable file defines none; ``export_config``
    writes the same groups back)."""
    ignored: list[Problem] = []
    assets = read_yaml(directory / "assets.yaml", "assets.yaml", ignored)
    exchanges = read_yaml(directory / "exchanges.yaml", "exchanges.yaml", ignored)
    groups = (
        assets.data.get("correlation_groups") if assets and isinstance(assets.data, dict) else None
    )
    defined = (
        exchanges.data.get("exchanges") if exchanges and isinstance(exchanges.data, dict) else None
    )
    return AssetContext(
        frozenset(groups) if isinstance(groups, dict) else frozenset(),
        frozenset(defined) if isinstance(defined, dict) else None,
    )


def field_errors(problems: Iterable[Problem]) -> dict[str, list[str]]:
    """Problems as form / model field errors, keyed by their first key: ``{"params":
    ["rsi_period = -3 — must be ≥ 2"]}``, ``{"capital_weight": ["must be ≤ 2 (got 1000.0)"]}``.
    The reason is the YAML loader's, word for word."""
    errors: dict[str, list[str]] = {}
    for problem in problems:
        field = str(problem.loc[0]) if problem.loc else "__all__"
        rest = problem.loc[1:]
        shown = problem.value is not NO_VALUE and not isinstance(problem.value, dict | list)
        if rest:
            text = (
                f"{key_path(rest)} = {show_value(problem.value)} — {problem.why}"
                if shown
                else f"{key_path(rest)}: {problem.why}"
            )
        else:
            text = f"{problem.why} (got {show_value(problem.value)})" if shown else problem.why
        errors.setdefault(field, []).append(text)
    return errors


def checked_capital_weight(session: Any) -> float:
    """``session.capital_weight`` if :func:`session_problems` accepts it, else raise
    :class:`InvalidStoredValue` naming the strategy, the value and the rule (the runtime reads
    the weight through this before scaling the risk per trade by it)."""
    weight = session.capital_weight
    problems = session_problems({"capital_weight": weight})
    if problems:
        who = session.strategy_name or "the account"
        reasons = "; ".join(p.why for p in problems)
        raise InvalidStoredValue(
            f"{who}: capital weight {show_value(weight)} is refused ({reasons}): the risk per "
            "trade it scales would leave the risk gate's bounds. Fix it in the admin (Trading "
            "sessions), then resume the strategy."
        )
    return float(weight)


# --- risk.yaml as the core's values (the engines' gate and the risk calculator's) ----------


def risk_limits_from(
    risk: RiskFile,
    *,
    correlation_groups: tuple[core_risk.CorrelationGroup, ...] = (),
    max_risk_per_trade_pct: float | None = None,
    max_leverage: int | None = None,
) -> RiskLimits:
    """``risk.yaml``'s pre-trade rules as :class:`trading.core.risk.RiskLimits`; the risk %
    and maximum leverage default to the file's (the risk calculator passes the trader's)."""
    return RiskLimits(
        max_concurrent_positions=risk.limits.max_concurrent_positions,
        correlation_groups=correlation_groups,
        min_free_margin_pct=risk.sizing.min_free_margin_pct,
        max_risk_per_trade_pct=(
            risk.sizing.max_risk_per_trade_pct
            if max_risk_per_trade_pct is None
            else max_risk_per_trade_pct
        ),
        max_leverage=risk.sizing.max_leverage if max_leverage is None else max_leverage,
        max_session_loss_pct=risk.kill_switch.max_session_loss_pct,
        max_positions_per_symbol=risk.limits.max_positions_per_symbol,
        min_stop_distance_pct=risk.stops.min_stop_distance_pct,
        max_stop_distance_pct=risk.stops.max_stop_distance_pct,
        min_reward_risk=risk.stops.min_reward_risk,
    )


def instrument_rules_from(rules: Mapping[str, Any]) -> dict[str, InstrumentRules]:
    """Per symbol, market rules (``trading.markets.AssetRules``) as the core's
    :class:`trading.core.orders.InstrumentRules`."""
    return {
        symbol: InstrumentRules(
            price_tick=r.price_tick,
            qty_step=r.qty_step,
            min_qty=r.min_qty,
            min_notional_usdt=r.min_notional_usdt,
            max_leverage=r.max_leverage,
        )
        for symbol, r in rules.items()
    }
