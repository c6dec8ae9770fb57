"""The YAML configuration in ``config/``: the four files read and checked together.

* ``assets.yaml``, ``risk.yaml``, ``exchanges.yaml`` — schemas and checks in ``trading.config``;
* ``strategies.yaml`` — one entry per strategy instance, its params validated by its kind's own
  schema (``strategies.core``), per-symbol overrides merged over them and validated again
  (an override for a symbol not in ``assets.yaml`` is refused).

:func:`load_config_dir` reads and checks everything, and raises :class:`ConfigError` listing EVERY
problem found, one line each: ``file: key.path = value — why (line N)``. It needs no Django
settings when given a path. :func:`get_config` caches the result per directory for the process;
:func:`reload_config` re-reads it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from common.yamlcheck import (
    NO_VALUE,
    ConfigError,
    Problem,
    StrictSchema,
    YamlDoc,
    display_path,
    problems_from,
    read_yaml,
    report,
)
from strategies.core.base import UnknownStrategy
from strategies.core.catalog import REGISTRY, strategy_class
from trading.config import (
    MAX_VIRTUAL_CAPITAL_USDT,
    AssetsFile,
    ExchangesFile,
    RiskFile,
    TradingChecks,
    schema_problems,
)

__all__ = [
    "ConfigError",
    "RadarConfig",
    "get_config",
    "load_config_dir",
    "reload_config",
    "strategy_problems",
]

NAME_RE = re.compile(r"^[-a-zA-Z0-9_]+$")


# --- strategies.yaml ---------------------------------------------------------------------------


class StrategyEntry(StrictSchema):
    name: str = Field(max_length=64)
    kind: str
    enabled: bool
    virtual_capital_usdt: float = Field(gt=0, le=MAX_VIRTUAL_CAPITAL_USDT)
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


class StrategiesFile(StrictSchema):
    strategies: list[StrategyEntry] = Field(min_length=1)


FILE_SCHEMAS: dict[str, type[StrictSchema]] = {
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


def load_config_dir(path: Path | str | None = None) -> RadarConfig:
    """Read and validate the four files of ``path`` (default ``settings.CONFIG_DIR``).

    Raises :class:`ConfigError` with every problem found across all files.
    """
    directory = Path(path) if path is not None else _default_dir()
    problems: list[Problem] = []
    docs: dict[str, YamlDoc] = {}
    parsed: dict[str, Any] = {}
    for name, schema in FILE_SCHEMAS.items():
        file = display_path(directory / name)
        doc = read_yaml(directory / name, file, problems)
        if doc is None:
            continue
        docs[file] = doc
        try:
            parsed[name] = schema.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(problems_from(exc, file, schema))
    problems.extend(_Checks(directory, docs, parsed).run())
    if problems:
        raise ConfigError(report(problems, docs))
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


class _Checks(TradingChecks):
    """The trading checks plus those of ``strategies.yaml``."""

    def run(self) -> list[Problem]:
        return [*self._assets(), *self._strategies(), *self._risk(), *self._exchanges()]

    def _strategies(self) -> Iterator[Problem]:
        file = self.files["strategies.yaml"]
        symbols = self._known_symbols()
        seen: dict[str, int] = {}
        for index, entry in self._entries("strategies.yaml", "strategies"):
            name = entry.get("name")
            if isinstance(name, str):
                if name in seen:
                    yield Problem(
                        file,
                        ("strategies", index, "name"),
                        name,
                        f"duplicate strategy name: already used by strategies[{seen[name]}]",
                    )
                else:
                    seen[name] = index
            # The entry's own rules: the same function the admin calls (strategy_problems).
            for problem in strategy_rule_problems(entry, symbols):
                where = ("strategies", index, *problem.loc)
                yield Problem(file, where, problem.value, problem.why)


def strategy_rule_problems(
    entry: Mapping[str, Any], symbols: Collection[str] | None
) -> Iterator[Problem]:
    """The rules of one strategy a field schema cannot express: its kind is registered, its
    params fit the kind's schema, each symbol override names a known asset (``symbols``;
    ``None`` = not checked) and fits the schema merged over the params. Problems are located
    relative to the entry."""
    kind = entry.get("kind")
    if not isinstance(kind, str):
        return
    try:
        schema = strategy_class(kind).Params
    except UnknownStrategy:
        why = f"unknown strategy kind (known: {', '.join(sorted(REGISTRY))})"
        yield Problem("", ("kind",), kind, why)
        return
    params = entry.get("params")
    if not isinstance(params, dict):
        return  # the entry schema says "must be a mapping"
    params_ok = True
    try:
        schema.model_validate(params)
    except ValidationError as exc:
        params_ok = False
        yield from problems_from(exc, "", schema, ("params",))
    overrides = entry.get("symbol_overrides")
    if not isinstance(overrides, dict):
        return
    for symbol, override in overrides.items():
        where = ("symbol_overrides", symbol)
        if symbols is not None and symbol not in symbols:
            known = ", ".join(sorted(symbols)) or "none"
            yield Problem(
                "",
                where,
                NO_VALUE,
                f"no such asset in assets.yaml (known: {known})",
            )
        if not isinstance(override, dict):
            continue
        try:
            schema.model_validate({**params, **override})
        except ValidationError as exc:
            # Report what the override itself breaks; a broken default is reported above.
            keys = set(override) if not params_ok else None
            yield from problems_from(exc, "", schema, where, keys)


def strategy_problems(
    values: Mapping[str, Any], *, symbols: Collection[str] | None
) -> list[Problem]:
    """One strategy (its ``strategies.yaml`` entry form): the :class:`StrategyEntry` schema,
    then :func:`strategy_rule_problems`. The YAML loader, ``load_config``, the admin
    (``StrategyConfig.clean``) and the radar (``StrategyConfig.check_stored``) all call this."""
    return [*schema_problems(StrategyEntry, values), *strategy_rule_problems(values, symbols)]


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
