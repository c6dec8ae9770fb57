"""The YAML configuration in ``config/``: schemas, validation with readable errors, a cache.

Four files, each with its pydantic schema (unknown keys refused, strict types, bounds):

* ``assets.yaml`` — the contracts traded, the timeframes fed, the correlation groups;
* ``strategies.yaml`` — one entry per strategy instance, its params validated by its kind's own
  schema (``strategies.core``), per-symbol overrides merged over them and validated again;
* ``risk.yaml`` — kill switch, sizing, limits, fees, slippage, stop bounds, regime thresholds;
* ``exchanges.yaml`` — ccxt ids, websocket/REST options, rate limits, the NAMES of the
  environment variables holding API keys (never the keys).

Units: a key ending in ``_pct`` holds PERCENT (``5`` = 5 %); ``_rate`` a FRACTION
(``0.0006`` = 0.06 %); ``_usdt`` USDT; ``_ms`` milliseconds; ``_s`` seconds.

:func:`load_config_dir` reads and checks everything, and raises :class:`ConfigError` listing EVERY
problem found, one line each: ``file: key.path = value — why (line N)``. It needs no Django
settings when given a path. :func:`get_config` caches the result per directory for the process;
:func:`reload_config` re-reads it.

Layering note: this module imports ``strategies.core`` (to validate kinds and params); code in
``trading`` must not import it (that would be a ``trading -> strategies`` chain): the callers
above ``trading`` pass the values it needs.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from strategies.core.base import REGISTRY, StrategyParams, UnknownStrategy, strategy_class

CONFIG_FILES = ("assets.yaml", "strategies.yaml", "risk.yaml", "exchanges.yaml")

Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+:[A-Z0-9]+$")
NAME_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid configuration ({count}):\n" + "\n".join(problems))


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- assets.yaml -------------------------------------------------------------------------------


class CorrelationGroup(_Schema):
    max_same_direction: int = Field(ge=1, le=100)
    description: str = ""


class AssetEntry(_Schema):
    symbol: str = Field(max_length=40)
    exchange: str = Field("", description="empty = the file's top-level exchange")
    base: str = Field(min_length=1, max_length=16)
    quote: str = Field(min_length=1, max_length=16)
    price_tick: float = Field(gt=0)
    qty_step: float = Field(gt=0)
    min_qty: float = Field(ge=0)
    min_notional_usdt: float = Field(ge=0, le=1_000_000)
    max_leverage: int = Field(ge=1, le=200)
    correlation_group: str = Field(max_length=40)
    enabled: bool

    @field_validator("symbol")
    @classmethod
    def _unified_symbol(cls, value: str) -> str:
        if not SYMBOL_RE.match(value):
            raise ValueError("must be a ccxt unified perpetual symbol like BTC/USDT:USDT")
        return value


class AssetsFile(_Schema):
    exchange: str = Field(min_length=1, max_length=32)
    timeframes: list[Timeframe] = Field(min_length=1)
    correlation_groups: dict[str, CorrelationGroup]
    assets: list[AssetEntry] = Field(min_length=1)

    def exchange_of(self, asset: AssetEntry) -> str:
        return asset.exchange or self.exchange


# --- strategies.yaml ---------------------------------------------------------------------------


class StrategyEntry(_Schema):
    name: str = Field(max_length=64)
    kind: str
    enabled: bool
    virtual_capital_usdt: float = Field(gt=0, le=1_000_000_000)
    description: str = ""
    params: dict[str, Any]
    symbol_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must be a slug: letters, digits, '-' and '_' only")
        return value

    def resolved_params(self) -> dict[str, Any]:
        """All parameters of the kind, defaults filled in, as JSON-safe values (the DB form)."""
        schema = strategy_class(self.kind).Params
        return schema.model_validate(self.params).model_dump(mode="json")

    def resolved_overrides(self) -> dict[str, dict[str, Any]]:
        """Each override restricted to its own keys, values normalised by the schema."""
        schema = strategy_class(self.kind).Params
        resolved = {}
        for symbol, override in self.symbol_overrides.items():
            merged = schema.model_validate({**self.params, **override}).model_dump(mode="json")
            resolved[symbol] = {key: merged[key] for key in override}
        return resolved


class StrategiesFile(_Schema):
    strategies: list[StrategyEntry] = Field(min_length=1)


# --- risk.yaml ---------------------------------------------------------------------------------


class KillSwitch(_Schema):
    max_session_loss_pct: float = Field(gt=0, le=100)
    account_max_session_loss_pct: float = Field(gt=0, le=100)
    shadow_when_killed: bool


class Sizing(_Schema):
    max_risk_per_trade_pct: float = Field(gt=0, le=10)
    max_leverage: int = Field(ge=1, le=125)
    margin_mode: Literal["isolated", "cross"]
    min_free_margin_pct: float = Field(ge=0, lt=100)


class Limits(_Schema):
    max_concurrent_positions: int = Field(ge=1, le=100)
    max_positions_per_symbol: int = Field(ge=1, le=10)


class Fees(_Schema):
    maker_rate: float = Field(ge=-0.001, le=0.01)
    taker_rate: float = Field(ge=0, le=0.01)


class Slippage(_Schema):
    estimate_pct: float = Field(ge=0, le=5)
    high_volatility_multiplier: float = Field(ge=1, le=10)

    @property
    def estimate_fraction(self) -> float:
        """``estimate_pct`` as a fraction of price (0.05 % -> 0.0005), what the core uses."""
        return self.estimate_pct / 100.0


class Stops(_Schema):
    min_stop_distance_pct: float = Field(gt=0, le=50)
    max_stop_distance_pct: float = Field(gt=0, le=50)
    min_reward_risk: float = Field(ge=0, le=20)


class Regime(_Schema):
    adx_period: int = Field(ge=2, le=200)
    adx_trend: float = Field(gt=0, lt=100)
    adx_range: float = Field(gt=0, lt=100)
    atr_period: int = Field(ge=2, le=200)
    atr_percentile_window: int = Field(ge=20, le=100_000)
    high_vol_percentile: float = Field(gt=0, lt=100)
    low_vol_percentile: float = Field(gt=0, lt=100)


class RiskFile(_Schema):
    kill_switch: KillSwitch
    sizing: Sizing
    limits: Limits
    fees: Fees
    slippage: Slippage
    stops: Stops
    regime: Regime


# --- exchanges.yaml ----------------------------------------------------------------------------


class RateLimits(_Schema):
    market_data: float = Field(gt=0, le=1000)
    trade: float = Field(gt=0, le=1000)
    account: float = Field(gt=0, le=1000)
    position: float = Field(gt=0, le=1000)


class Reconnect(_Schema):
    initial_backoff_s: float = Field(gt=0, le=60)
    max_backoff_s: float = Field(gt=0, le=3600)
    backoff_multiplier: float = Field(ge=1, le=10)


class Websocket(_Schema):
    keepalive_ms: int = Field(ge=1000, le=120_000)
    max_ping_pong_misses: int = Field(ge=1, le=10)
    stale_after_s: float = Field(gt=0, le=600)
    order_book_depth: Literal[1, 5, 15, 50]
    reconnect: Reconnect


class Rest(_Schema):
    timeout_ms: int = Field(ge=1000, le=120_000)
    max_retries: int = Field(ge=0, le=10)


class Credentials(_Schema):
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


class ExchangeEntry(_Schema):
    ccxt_id: str = Field(pattern=r"^[a-z0-9]+$")
    market_type: Literal["swap"]
    sandbox: bool
    rate_limits_per_s: RateLimits
    rest: Rest
    websocket: Websocket
    credentials: Credentials


class ExchangesFile(_Schema):
    exchanges: dict[str, ExchangeEntry] = Field(min_length=1)


FILE_SCHEMAS: dict[str, type[_Schema]] = {
    "assets.yaml": AssetsFile,
    "strategies.yaml": StrategiesFile,
    "risk.yaml": RiskFile,
    "exchanges.yaml": ExchangesFile,
}


@dataclass(frozen=True)
class RadarConfig:
    """The validated configuration of one directory."""

    directory: Path
    assets: AssetsFile
    strategies: StrategiesFile
    risk: RiskFile
    exchanges: ExchangesFile

    def strategy(self, name: str) -> StrategyEntry:
        for entry in self.strategies.strategies:
            if entry.name == name:
                return entry
        raise KeyError(f"no strategy named {name!r} in strategies.yaml")

    @property
    def enabled_symbols(self) -> list[str]:
        return [asset.symbol for asset in self.assets.assets if asset.enabled]


# --- problems ----------------------------------------------------------------------------------

_NO_VALUE: Any = object()


@dataclass(frozen=True)
class _Problem:
    file: str
    loc: tuple[str | int, ...] = ()
    value: Any = _NO_VALUE
    why: str = ""


@dataclass
class _Doc:
    """One parsed YAML file: its data and its node tree (for line numbers)."""

    path: Path
    data: Any
    root: Node | None


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value!r}",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif IDENT_RE.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "(top level)"


def _line_of(root: Node | None, loc: tuple[str | int, ...]) -> int | None:
    """1-based line of the deepest node of ``loc`` present in the YAML tree."""
    if root is None:
        return None
    node = root
    line = node.start_mark.line
    for part in loc:
        child: Node | None = None
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                    child, line = value_node, key_node.start_mark.line
                    break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line
        if child is None:
            break
        node = child
    return line + 1


def _render(problem: _Problem, line: int | None, doc: _Doc | None) -> str:
    head = f"{problem.file}: {_path(problem.loc)}" if problem.loc else problem.file
    if problem.value is not _NO_VALUE and not isinstance(problem.value, dict):
        head += f" = {_show(problem.value)}"
    notes = [label] if (label := _entry_label(problem, doc)) else []
    if line and problem.loc:
        notes.append(f"line {line}")
    suffix = f" ({', '.join(notes)})" if notes else ""
    return f"{head} — {problem.why}{suffix}"


def _report(problems: list[_Problem], docs: dict[str, _Doc]) -> list[str]:
    """Rendered problems, file by file in CONFIG_FILES order, then by line."""
    order = {name: index for index, name in enumerate(CONFIG_FILES)}
    rows = []
    for problem in problems:
        doc = docs.get(problem.file)
        line = _line_of(doc.root, problem.loc) if doc else None
        rank = order.get(Path(problem.file).name, len(order))
        rows.append(((rank, line or 0), _render(problem, line, doc)))
    return [text for _, text in sorted(rows, key=lambda row: row[0])]


def _entry_label(problem: _Problem, doc: _Doc | None) -> str:
    """Name the strategy / asset an indexed entry is, so a reader need not count entries."""
    if doc is None or len(problem.loc) < 2 or not isinstance(problem.loc[1], int):
        return ""
    section, index = problem.loc[0], problem.loc[1]
    key = {"strategies": "name", "assets": "symbol"}.get(str(section))
    entries = doc.data.get(section) if isinstance(doc.data, dict) else None
    if key and isinstance(entries, list) and index < len(entries):
        entry = entries[index]
        if isinstance(entry, dict) and isinstance(entry.get(key), str):
            return f"{'strategy' if key == 'name' else 'asset'} {entry[key]}"
    return ""


def _annotation_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    """The type found at ``loc`` inside ``model`` (``None`` when the path leaves the schema)."""
    tp: Any = model
    for part in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) in (list, tuple):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
    return tp


def _why(err: Mapping[str, Any], model: type[BaseModel]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "missing required key"
    if kind == "extra_forbidden":
        parent = _annotation_at(model, tuple(err["loc"][:-1]))
        is_model = isinstance(parent, type) and issubclass(parent, BaseModel)
        known = list(parent.model_fields) if is_model else []
        close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        return f"unknown key ({hint})" if known else "unknown key"
    bounds = {
        "greater_than_equal": ("≥", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("≤", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        sign, key = bounds[kind]
        bound = ctx[key]
        shown = f"{bound:g}" if isinstance(bound, float) else str(bound)
        return f"must be {sign} {shown}"
    simple = {
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be text",
        "dict_type": "must be a mapping (key: value lines)",
        "model_type": "must be a mapping (key: value lines)",
        "model_attributes_type": "must be a mapping (key: value lines)",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
    }
    if kind in simple:
        return simple[kind]
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else err["msg"].lower()
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"])


def _problems_from(
    exc: ValidationError,
    file: str,
    model: type[BaseModel],
    prefix: tuple[str | int, ...] = (),
    only_keys: set[str] | None = None,
) -> list[_Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if only_keys is not None and (not loc or loc[0] not in only_keys):
            continue
        value = _NO_VALUE if err["type"] == "missing" else err.get("input")
        problems.append(_Problem(file, prefix + loc, value, _why(err, model)))
    return problems


# --- loading -----------------------------------------------------------------------------------


def _read(path: Path, file: str, problems: list[_Problem]) -> _Doc | None:
    if not path.is_file():
        expected = ", ".join(CONFIG_FILES)
        problems.append(_Problem(file, why=f"file not found (a config directory holds {expected})"))
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(_Problem(file, why=f"cannot be read: {exc}"))
        return None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problems.append(_Problem(file, why=f"YAML syntax error{where}: {reason}"))
        return None
    finally:
        loader.dispose()
    return _Doc(path, data, root)


def load_config_dir(path: Path | str | None = None) -> RadarConfig:
    """Read and validate the four files of ``path`` (default ``settings.CONFIG_DIR``).

    Raises :class:`ConfigError` with every problem found across all files.
    """
    directory = Path(path) if path is not None else _default_dir()
    problems: list[_Problem] = []
    docs: dict[str, _Doc] = {}
    parsed: dict[str, Any] = {}
    for name, schema in FILE_SCHEMAS.items():
        file = _display(directory / name)
        doc = _read(directory / name, file, problems)
        if doc is None:
            continue
        docs[file] = doc
        try:
            parsed[name] = schema.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, file, schema))
    problems.extend(_Checks(directory, docs, parsed).run())
    if problems:
        raise ConfigError(_report(problems, docs))
    return RadarConfig(
        directory=directory,
        assets=parsed["assets.yaml"],
        strategies=parsed["strategies.yaml"],
        risk=parsed["risk.yaml"],
        exchanges=parsed["exchanges.yaml"],
    )


def _default_dir() -> Path:
    from django.conf import settings

    return Path(settings.CONFIG_DIR)


class _Checks:
    """Rules a field schema cannot express: cross-field, cross-entry and cross-file checks.

    They run on the raw data entry by entry, so one broken entry does not hide the problems of
    the others.
    """

    def __init__(self, directory: Path, docs: dict[str, _Doc], parsed: dict[str, Any]) -> None:
        self.files = {name: _display(directory / name) for name in CONFIG_FILES}
        self.raw = {name: docs[f].data if f in docs else None for name, f in self.files.items()}
        self.parsed = parsed

    def run(self) -> list[_Problem]:
        return [*self._assets(), *self._strategies(), *self._risk(), *self._exchanges()]

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

    def _assets(self) -> Iterator[_Problem]:
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
            yield _Problem(
                file,
                ("exchange",),
                default_exchange,
                f"not defined in exchanges.yaml (defined: {', '.join(sorted(exchange_names))})",
            )
        timeframes = data.get("timeframes")
        if isinstance(timeframes, list):
            if "1m" not in timeframes:
                yield _Problem(
                    file,
                    ("timeframes",),
                    timeframes,
                    "must include 1m: every other timeframe is aggregated from closed 1m candles",
                )
            for index, tf in enumerate(timeframes):
                if timeframes.index(tf) != index:
                    yield _Problem(file, ("timeframes", index), tf, "listed twice")
        seen: dict[tuple[str, str], int] = {}
        for index, entry in self._entries("assets.yaml", "assets"):
            symbol = entry.get("symbol")
            group = entry.get("correlation_group")
            if isinstance(group, str) and group and group not in group_names:
                defined = ", ".join(sorted(group_names)) or "none"
                yield _Problem(
                    file,
                    ("assets", index, "correlation_group"),
                    group,
                    f"no such group under correlation_groups (defined: {defined}; "
                    "use an empty string for none)",
                )
            exchange = entry.get("exchange") or default_exchange
            own_exchange = entry.get("exchange")
            if exchange_names is not None and own_exchange and own_exchange not in exchange_names:
                yield _Problem(
                    file,
                    ("assets", index, "exchange"),
                    own_exchange,
                    "not defined in exchanges.yaml",
                )
            if not isinstance(symbol, str):
                continue
            key = (str(exchange), symbol)
            if key in seen:
                yield _Problem(
                    file,
                    ("assets", index, "symbol"),
                    symbol,
                    f"duplicate symbol: already defined by assets[{seen[key]}]",
                )
            else:
                seen[key] = index
            if SYMBOL_RE.match(symbol):
                base, rest = symbol.split("/")
                quote = rest.split(":")[0]
                for field, expected in (("base", base), ("quote", quote)):
                    value = entry.get(field)
                    if isinstance(value, str) and value != expected:
                        yield _Problem(
                            file,
                            ("assets", index, field),
                            value,
                            f"does not match the symbol {symbol} (expected {expected})",
                        )

    def _strategies(self) -> Iterator[_Problem]:
        file = self.files["strategies.yaml"]
        symbols = self._known_symbols()
        assets = self.parsed.get("assets.yaml")
        fed = set(assets.timeframes) if assets is not None else None
        seen: dict[str, int] = {}
        for index, entry in self._entries("strategies.yaml", "strategies"):
            name = entry.get("name")
            if isinstance(name, str):
                if name in seen:
                    yield _Problem(
                        file,
                        ("strategies", index, "name"),
                        name,
                        f"duplicate strategy name: already used by strategies[{seen[name]}]",
                    )
                else:
                    seen[name] = index
            kind = entry.get("kind")
            if not isinstance(kind, str):
                continue
            try:
                schema = strategy_class(kind).Params
            except UnknownStrategy:
                yield _Problem(
                    file,
                    ("strategies", index, "kind"),
                    kind,
                    f"unknown strategy kind (known: {', '.join(sorted(REGISTRY))})",
                )
                continue
            yield from self._params(file, index, entry, schema, symbols, fed)

    def _params(
        self,
        file: str,
        index: int,
        entry: dict[str, Any],
        schema: type[StrategyParams],
        symbols: set[str] | None,
        fed: set[str] | None,
    ) -> Iterator[_Problem]:
        params = entry.get("params")
        if not isinstance(params, dict):
            return
        prefix: tuple[str | int, ...] = ("strategies", index)
        params_ok = True
        try:
            resolved = schema.model_validate(params)
        except ValidationError as exc:
            params_ok = False
            yield from _problems_from(exc, file, schema, (*prefix, "params"))
        else:
            yield from self._timeframes_fed(file, (*prefix, "params"), resolved, fed)
        overrides = entry.get("symbol_overrides")
        if not isinstance(overrides, dict):
            return
        for symbol, override in overrides.items():
            where = (*prefix, "symbol_overrides", symbol)
            if symbols is not None and symbol not in symbols:
                known = ", ".join(sorted(symbols)) or "none"
                yield _Problem(
                    file, where, _NO_VALUE, f"no such asset in assets.yaml (known: {known})"
                )
            if not isinstance(override, dict):
                continue
            try:
                merged = schema.model_validate({**params, **override})
            except ValidationError as exc:
                # Report what the override itself breaks; a broken default is reported above.
                keys = set(override) if not params_ok else None
                yield from _problems_from(exc, file, schema, where, keys)
            else:
                yield from self._timeframes_fed(file, where, merged, fed, set(override))

    def _timeframes_fed(
        self,
        file: str,
        where: tuple[str | int, ...],
        params: StrategyParams,
        fed: set[str] | None,
        keys: set[str] | None = None,
    ) -> Iterator[_Problem]:
        """A strategy reading a timeframe the feed does not produce would never fire."""
        if fed is None:
            return
        for key, value in params.model_dump(mode="json").items():
            if keys is not None and key not in keys:
                continue
            wanted = [value] if key.endswith("timeframe") else []
            if key.endswith("timeframes") and isinstance(value, list):
                wanted = value
            missing = [tf for tf in wanted if tf not in fed]
            if missing:
                yield _Problem(
                    file,
                    (*where, key),
                    value,
                    f"timeframe {', '.join(missing)} is not fed: add it to timeframes in "
                    "assets.yaml",
                )

    def _raw_at(self, name: str, loc: tuple[str | int, ...]) -> Any:
        value: Any = self.raw[name]
        for part in loc:
            value = value[part]
        return value

    def _ordered(
        self, name: str, low: tuple[str, ...], high: tuple[str, ...], *, strict: bool
    ) -> Iterator[_Problem]:
        """``low`` must be below (``strict``) or at most ``high``; values as written."""
        low_value, high_value = self._raw_at(name, low), self._raw_at(name, high)
        if low_value > high_value or (strict and low_value == high_value):
            relation = "below" if strict else "≤"
            yield _Problem(
                self.files[name],
                low,
                low_value,
                f"must be {relation} {_path(high)} ({_show(high_value)})",
            )

    def _risk(self) -> Iterator[_Problem]:
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
        yield from self._ordered(
            "risk.yaml",
            (*regime, "low_vol_percentile"),
            (*regime, "high_vol_percentile"),
            strict=True,
        )
        fees = self._raw_at("risk.yaml", ("fees",))
        if fees["maker_rate"] < -fees["taker_rate"]:
            yield _Problem(
                self.files["risk.yaml"],
                ("fees", "maker_rate"),
                fees["maker_rate"],
                "a maker rebate cannot exceed the taker fee",
            )

    def _exchanges(self) -> Iterator[_Problem]:
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


# --- process cache -----------------------------------------------------------------------------

_cache: dict[Path, RadarConfig] = {}
_cache_lock = threading.Lock()


def get_config(path: Path | str | None = None) -> RadarConfig:
    """The validated configuration of ``path`` (default ``settings.CONFIG_DIR``), read once."""
    directory = (Path(path) if path is not None else _default_dir()).resolve()
    with _cache_lock:
        config = _cache.get(directory)
        if config is None:
            config = _cache[directory] = load_config_dir(directory)
        return config


def reload_config(path: Path | str | None = None) -> RadarConfig:
    """Forget the cached configuration of ``path`` and read it again (raises on problems)."""
    directory = (Path(path) if path is not None else _default_dir()).resolve()
    with _cache_lock:
        _cache.pop(directory, None)
    return get_config(directory)
