"""``manage.py load_config``: seed the database from the YAML configuration.

YAML -> ``trading.Asset`` (keyed by exchange + symbol) and ``strategies.StrategyConfig`` (keyed by
name), in one transaction: either every row is written or none. Idempotent: a row equal to its
YAML entry is not written at all. Each row is reported as ``created``, ``updated`` (with every
changed field, old -> new) or ``unchanged``.

Rows in the database that the YAML does not mention are REPORTED and LEFT ALONE (the admin may
have added them on purpose; signals, positions and sessions refer to them). ``--prune`` disables
them (``enabled = false``); nothing is ever deleted.

Market rules (tick, step, minimums, leverage) are written from ``assets.yaml`` with
``rules_source = "assets.yaml"``; ``--refresh-markets`` then overwrites them with the exchange's
``load_markets()`` (``trading.markets.asset_rules_refresh``) when it can be reached.

Strategy params are stored complete: the kind's schema fills every parameter the YAML omits, so
the database holds exactly what runs, and ``export_config`` writes it back in full.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import Tags
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction

from strategies.config import ConfigError, RadarConfig, load_config_dir
from strategies.models import StrategyConfig
from trading.markets import YAML_SOURCE, asset_rules_refresh_all
from trading.models import Asset

ASSET_FIELDS = (
    "base",
    "quote",
    "price_tick",
    "qty_step",
    "min_qty",
    "min_notional_usdt",
    "max_leverage",
    "correlation_group",
    "enabled",
)
STRATEGY_FIELDS = (
    "kind",
    "enabled",
    "description",
    "virtual_capital_usdt",
    "params",
    "symbol_overrides",
)


@dataclass
class RowReport:
    """What ``load_config`` did (or would do) to one row."""

    label: str
    action: str  # created | updated | unchanged | absent | disabled
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.action == "updated":
            return f"{self.label}: updated " + "; ".join(self.changes)
        if self.action == "absent":
            detail = self.changes[0] if self.changes else "left alone (--prune disables it)"
            return f"{self.label}: not in the YAML, {detail}"
        if self.action == "disabled":
            return f"{self.label}: not in the YAML, disabled"
        return f"{self.label}: {self.action}"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _diff(name: str, old: Any, new: Any) -> list[str]:
    """``name old -> new``, key by key for mappings (params, symbol overrides)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in [*old, *(k for k in new if k not in old)]:
            before, after = old.get(key, "(absent)"), new.get(key, "(absent)")
            if before != after:
                lines.append(f"{name}[{_show(key)}] {_show(before)} -> {_show(after)}")
        return lines
    return [f"{name} {_show(old)} -> {_show(new)}"]


def _asset_values(config: RadarConfig) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (config.assets.exchange_of(entry), entry.symbol): {
            **{name: getattr(entry, name) for name in ASSET_FIELDS},
            "rules_source": YAML_SOURCE,
        }
        for entry in config.assets.assets
    }


def _strategy_values(config: RadarConfig) -> dict[str, dict[str, Any]]:
    return {
        entry.name: {
            "kind": entry.kind,
            "enabled": entry.enabled,
            "description": entry.description,
            "virtual_capital_usdt": entry.virtual_capital_usdt,
            "params": entry.resolved_params(),
            "symbol_overrides": entry.resolved_overrides(),
        }
        for entry in config.strategies.strategies
    }


def sync_rows[M: models.Model](
    rows: dict[Any, M],
    wanted: dict[Any, dict[str, Any]],
    make: type[M],
    key_fields: tuple[str, ...],
    label: str,
    *,
    prune: bool,
) -> tuple[list[RowReport], list[str]]:
    """Bring ``rows`` (by key) to ``wanted``; return the reports and the validation errors."""
    reports: list[RowReport] = []
    errors: list[str] = []
    for key, values in wanted.items():
        row = rows.get(key)
        row_label = label.format(*key) if isinstance(key, tuple) else label.format(key)
        if row is None:
            keys = key if isinstance(key, tuple) else (key,)
            row = make(**dict(zip(key_fields, keys, strict=True)), **values)
            report = RowReport(row_label, "created")
        else:
            changes = [
                line
                for name, value in values.items()
                for line in _diff(name, getattr(row, name), value)
            ]
            for name, value in values.items():
                setattr(row, name, value)
            report = RowReport(row_label, "updated" if changes else "unchanged", changes)
        reports.append(report)
        if report.action == "unchanged":
            continue
        try:
            row.full_clean()
        except ValidationError as exc:
            errors.extend(
                f"{row_label}: {name}: {message}"
                for name, messages in exc.message_dict.items()
                for message in messages
            )
            continue
        row.save()
    for key, row in rows.items():
        if key in wanted:
            continue
        row_label = label.format(*key) if isinstance(key, tuple) else label.format(key)
        if prune and row.enabled:
            row.enabled = False
            row.save(update_fields=["enabled"])
            reports.append(RowReport(row_label, "disabled"))
        else:
            reports.append(RowReport(row_label, "absent", ["already disabled"] if prune else []))
    return reports, errors


def load_config_into_db(
    config: RadarConfig, *, prune: bool = False, dry_run: bool = False
) -> list[RowReport]:
    """Write ``config``'s assets and strategies to the database in one transaction.

    Raises :class:`CommandError` (and writes nothing) when a row fails model validation.
    ``dry_run`` writes everything and rolls it back, so the strategy rows are validated against
    the asset rows they would see (an override's symbol must be a stored asset).
    """
    with transaction.atomic():
        assets = {(a.exchange, a.symbol): a for a in Asset.objects.select_for_update()}
        asset_reports, asset_errors = sync_rows(
            assets,
            _asset_values(config),
            Asset,
            ("exchange", "symbol"),
            "asset {1} @ {0}",
            prune=prune,
        )
        strategies = {s.name: s for s in StrategyConfig.objects.select_for_update()}
        strategy_reports, strategy_errors = sync_rows(
            strategies,
            _strategy_values(config),
            StrategyConfig,
            ("name",),
            "strategy {0}",
            prune=prune,
        )
        errors = asset_errors + strategy_errors
        if errors:
            raise CommandError("nothing was written, some rows are invalid:\n" + "\n".join(errors))
        if dry_run:
            transaction.set_rollback(True)
    return asset_reports + strategy_reports


class Command(BaseCommand):
    help = "Load assets and strategies from the YAML configuration into the database."
    # The command validates the directory it is given; the default directory's system check
    # must not stop it from loading a different, valid one.
    requires_system_checks = (Tags.models,)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--config-dir", type=Path, default=None, help="default: settings.CONFIG_DIR"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="report the changes, write nothing"
        )
        parser.add_argument(
            "--prune",
            action="store_true",
            help="disable database rows the YAML does not mention (never deletes)",
        )
        parser.add_argument(
            "--refresh-markets",
            action="store_true",
            help="then overwrite the assets' market rules with the exchange's load_markets() "
            "(kept from assets.yaml when the exchange cannot be reached)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory = options["config_dir"] or Path(settings.CONFIG_DIR)
        try:
            config = load_config_dir(directory)
        except ConfigError as exc:
            raise CommandError(
                "the configuration is invalid, nothing was written:\n" + "\n".join(exc.problems)
            ) from None
        reports = load_config_into_db(config, prune=options["prune"], dry_run=options["dry_run"])
        for report in reports:
            self.stdout.write(str(report))
        counts = {
            action: sum(r.action == action for r in reports)
            for action in ("created", "updated", "unchanged", "disabled", "absent")
        }
        summary = ", ".join(f"{n} {action}" for action, n in counts.items() if n)
        if options["dry_run"]:
            summary += " (dry run: nothing written)"
        self.stdout.write(self.style.SUCCESS(f"{directory}: {summary}"))
        if options["refresh_markets"] and not options["dry_run"]:
            for refresh in asyncio.run(asset_rules_refresh_all(config.exchanges)):
                for line in refresh.lines():
                    self.stdout.write(line)
