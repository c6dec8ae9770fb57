"""Market rules of the traded contracts: read from the ``Asset`` rows, refreshed from the exchange.

Five rules per contract decide how an order is rounded and whether it is allowed:

* ``price_tick`` — smallest price increment (USDT);
* ``qty_step`` — smallest quantity increment (base units);
* ``min_qty`` — smallest order quantity (base units);
* ``min_notional_usdt`` — smallest order value, qty × price (USDT);
* ``max_leverage`` — the exchange's highest leverage (×, first tier).

``manage.py load_config`` seeds them from ``assets.yaml`` (``rules_source = "assets.yaml"``);
:func:`asset_rules_refresh` overwrites them with what ccxt's ``load_markets()`` returns when the
exchange is reachable (``rules_source = "exchange load_markets <UTC time>"``) and leaves them
alone, saying why, when it is not. The refresh also stores when the exchange listed the contract
(``Asset.listed_at_ms``, epoch ms, from the market's ``created``: Bitget's ``launchTime``) when
the exchange says it; candles before it are refused (:mod:`trading.core.validation`). Every
engine reads the rules through :func:`asset_rules_by_symbol`
(``strategies.kernel_config.kernel_config_from``), so backtest, paper and live round alike.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ccxt
from asgiref.sync import sync_to_async
from ccxt.base.decimal_to_precision import TICK_SIZE
from django.db import transaction

from trading.config import AssetsFile, ExchangesFile
from trading.exchanges.clients import ExchangeSettings, market_data_exchange
from trading.models import Asset

log = logging.getLogger(__name__)

YAML_SOURCE = "assets.yaml"


class MarketRulesUnusable(ValueError):
    """ccxt gave market precisions as decimal places instead of tick sizes."""


@dataclass(frozen=True, slots=True)
class AssetRules:
    """The five market rules of one contract (units: see the module docstring)."""

    price_tick: float
    qty_step: float
    min_qty: float
    min_notional_usdt: float
    max_leverage: int
    source: str = YAML_SOURCE  # "assets.yaml" or "exchange load_markets <UTC time>"
    listed_at_ms: int | None = None  # when the exchange listed the contract (epoch ms)


RULE_FIELDS = ("price_tick", "qty_step", "min_qty", "min_notional_usdt", "max_leverage")


def asset_rules_of(asset: Any, source: str = YAML_SOURCE) -> AssetRules:
    """The rules of an ``Asset`` row (with its ``rules_source``) or an ``assets.yaml`` entry."""
    return AssetRules(
        price_tick=float(asset.price_tick),
        qty_step=float(asset.qty_step),
        min_qty=float(asset.min_qty),
        min_notional_usdt=float(asset.min_notional_usdt),
        max_leverage=int(asset.max_leverage),
        source=getattr(asset, "rules_source", source),
    )


def market_rules_table(assets: AssetsFile) -> dict[str, AssetRules]:
    """The rules every engine uses, per unified symbol of ``assets.yaml``: the stored ``Asset``
    row's (same exchange and symbol), else the YAML entry's (no row yet: ``load_config`` not
    run, or a backtest on a fresh database). Database rows of symbols the YAML does not list
    are included too (the admin may add an asset)."""
    stored = {(row.exchange, row.symbol): row for row in Asset.objects.all()}
    table = {}
    for entry in assets.assets:
        row = stored.pop((assets.exchange_of(entry), entry.symbol), None)
        table[entry.symbol] = asset_rules_of(row if row is not None else entry)
    for (_, symbol), row in stored.items():
        table.setdefault(symbol, asset_rules_of(row))
    return table


def asset_rules_from_markets(markets: Mapping[str, Mapping[str, Any]]) -> dict[str, AssetRules]:
    """Rules per unified symbol from ccxt ``load_markets()`` (precision mode TICK_SIZE).

    ``price_tick`` = ``precision.price``, ``qty_step`` = ``precision.amount``,
    ``min_qty`` = ``limits.amount.min``, ``min_notional_usdt`` = ``limits.cost.min``,
    ``max_leverage`` = ``limits.leverage.max``. A market missing a tick, a step or the leverage
    is left out (its stored rules stay); a missing minimum counts as no minimum (0), which is
    what ccxt means by ``None`` there. ``listed_at_ms`` = ``created`` (epoch ms; Bitget fills it
    from ``launchTime``, which is often empty: then None, and the stored value stays).
    """
    rules = {}
    for symbol, market in markets.items():
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        tick, step = precision.get("price"), precision.get("amount")
        leverage = (limits.get("leverage") or {}).get("max")
        if not tick or not step or not leverage:
            continue
        rules[symbol] = AssetRules(
            price_tick=float(tick),
            qty_step=float(step),
            min_qty=float((limits.get("amount") or {}).get("min") or 0.0),
            min_notional_usdt=float((limits.get("cost") or {}).get("min") or 0.0),
            max_leverage=int(leverage),
            listed_at_ms=_listing_ms(market.get("created")),
        )
    return rules


def _listing_ms(created: Any) -> int | None:
    """ccxt's ``created`` as epoch ms; None when absent, zero, or not a whole number."""
    try:
        value = int(created)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


@dataclass
class RulesRefresh:
    """What :func:`asset_rules_refresh` did to one exchange's ``Asset`` rows."""

    exchange: str
    source: str = ""  # the rules_source written, "" when nothing was
    changes: dict[str, list[str]] = field(default_factory=dict)  # symbol -> "field old -> new"
    not_listed: list[str] = field(default_factory=list)  # rows the exchange does not list
    unreachable: str = ""  # why load_markets failed; the stored rules were kept

    def lines(self) -> list[str]:
        if self.unreachable:
            return [
                f"{self.exchange}: load_markets failed ({self.unreachable}); "
                "the stored market rules are kept"
            ]
        out = [
            f"asset {symbol} @ {self.exchange}: rules "
            + ("; ".join(changes) if changes else "unchanged")
            + f" ({self.source})"
            for symbol, changes in self.changes.items()
        ]
        out += [
            f"asset {symbol} @ {self.exchange}: not listed by the exchange, rules kept"
            for symbol in self.not_listed
        ]
        return out


def asset_rules_save(
    *, exchange: str, rules: Mapping[str, AssetRules], source: str
) -> RulesRefresh:
    """Write ``rules`` onto the ``exchange``'s ``Asset`` rows (a row it does not cover is kept)."""
    report = RulesRefresh(exchange, source)
    with transaction.atomic():
        for row in Asset.objects.select_for_update().filter(exchange=exchange):
            new = rules.get(row.symbol)
            if new is None:
                report.not_listed.append(row.symbol)
                continue
            changes = [
                f"{name} {getattr(row, name):g} -> {getattr(new, name):g}"
                for name in RULE_FIELDS
                if getattr(row, name) != getattr(new, name)
            ]
            fields = [*RULE_FIELDS, "rules_source"]
            if new.listed_at_ms is not None and new.listed_at_ms != row.listed_at_ms:
                changes.append(f"listed_at_ms {row.listed_at_ms} -> {new.listed_at_ms}")
                row.listed_at_ms = new.listed_at_ms
                fields.append("listed_at_ms")
            for name in RULE_FIELDS:
                setattr(row, name, getattr(new, name))
            row.rules_source = source
            row.full_clean()
            row.save(update_fields=fields)
            report.changes[row.symbol] = changes
    return report


async def asset_rules_refresh(
    *, exchange: Any, exchange_name: str | None = None, now: datetime | None = None
) -> RulesRefresh:
    """Overwrite the stored rules of ``exchange_name``'s assets with ``exchange.load_markets()``.

    ``exchange`` is a ccxt or ccxt.pro instance (``exchange_name`` defaults to its id). When
    the exchange cannot be reached (``ccxt.NetworkError``), nothing is written and the report
    says why: the rules of ``assets.yaml`` (or of the last refresh) stay in force.
    """
    name = exchange_name or exchange.id
    if getattr(exchange, "precisionMode", TICK_SIZE) != TICK_SIZE:
        raise MarketRulesUnusable(
            f"{name}: ccxt gives this exchange's precisions as decimal places, not tick sizes"
        )
    try:
        markets = exchange.load_markets()
        if inspect.isawaitable(markets):
            markets = await markets
    except ccxt.NetworkError as exc:
        log.warning("%s: load_markets failed, market rules kept: %s", name, exc)
        return RulesRefresh(name, unreachable=f"{type(exc).__name__}: {exc}")
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return await sync_to_async(asset_rules_save)(
        exchange=name,
        rules=asset_rules_from_markets(markets),
        source=f"exchange load_markets {stamp}",
    )


async def asset_rules_refresh_all(
    exchanges: ExchangesFile, *, base_url: str | None = None
) -> list[RulesRefresh]:
    """:func:`asset_rules_refresh` for every ``exchanges.yaml`` entry that has assets, each on
    a keyless market-data instance built from its entry (``base_url``: a local fake)."""
    names = await sync_to_async(lambda: set(Asset.objects.values_list("exchange", flat=True)))()
    reports = []
    for name, entry in exchanges.exchanges.items():
        if name not in names:
            continue
        exchange = market_data_exchange(ExchangeSettings.from_entry(entry, name), base_url=base_url)
        try:
            reports.append(await asset_rules_refresh(exchange=exchange, exchange_name=name))
        finally:
            await exchange.close()
    return reports
