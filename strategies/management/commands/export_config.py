"""``manage.py export_config``: write the database's live configuration back to YAML.

``assets.yaml`` and ``strategies.yaml`` are written from the ``Asset`` and ``StrategyConfig``
rows (the values the admin edited, or the market rules a ``load_markets`` refresh stored); the
parts the database does not hold — the correlation groups of ``assets.yaml``, all of
``risk.yaml`` and ``exchanges.yaml`` — come from the source configuration directory, the last two
copied byte for byte.

The four files are written to a scratch directory and validated with ``load_config_dir`` first;
only a valid set reaches ``--output-dir``, so ``load_config --config-dir <output>`` right after an
export reports every row unchanged. The default output directory is ``<DATA_DIR>/config-export``:
exporting over ``config/`` replaces its hand-written comments, so it must be asked for.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError, CommandParser

from strategies.config import ConfigError, load_config_dir
from strategies.models import StrategyConfig
from trading.models import Asset

COPIED_FILES = ("risk.yaml", "exchanges.yaml")


class _Dumper(yaml.SafeDumper):
    """Plain block YAML: no anchors/aliases for repeated lists, indented sequences."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _dump(header: str, data: dict[str, Any]) -> str:
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def _header(filename: str, now: datetime) -> str:
    return (
        f"# Scalp Radar — {filename}, exported from the database by 'manage.py export_config'\n"
        f"# at {now.strftime('%Y-%m-%d %H:%M:%S')} UTC. Units and the meaning of every key: see\n"
        f"# the commented config/{filename} of the repository. Load it back with\n"
        "# 'manage.py load_config --config-dir <this directory>'.\n\n"
    )


def _source_assets(source: Path) -> dict[str, Any]:
    """The non-database parts of the source assets.yaml (read raw: it may be the broken one)."""
    try:
        data = yaml.safe_load((source / "assets.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CommandError(f"cannot read {source / 'assets.yaml'}: {exc}") from None
    return data if isinstance(data, dict) else {}


def assets_document(source: Path) -> dict[str, Any]:
    raw = _source_assets(source)
    rows = list(Asset.objects.order_by("exchange", "symbol"))
    exchange = raw.get("exchange")
    if not isinstance(exchange, str) or not exchange:
        counts = Counter(row.exchange for row in rows)
        exchange = counts.most_common(1)[0][0] if counts else "bitget"
    assets = []
    for row in rows:
        entry = row.as_entry()
        if entry["exchange"] == exchange:
            del entry["exchange"]  # the file's exchange
        assets.append(entry)
    return {
        "exchange": exchange,
        "correlation_groups": raw.get("correlation_groups", {}),
        "assets": assets,
    }


def strategies_document() -> dict[str, Any]:
    return {"strategies": [row.as_entry() for row in StrategyConfig.objects.order_by("name")]}


def export_config(source: Path, output: Path, *, now: datetime | None = None) -> list[Path]:
    """Write the four files to ``output``; raise :class:`CommandError` if they do not validate."""
    now = now or datetime.now(UTC)
    documents = {
        "assets.yaml": assets_document(source),
        "strategies.yaml": strategies_document(),
    }
    with tempfile.TemporaryDirectory(prefix="scalpradar-export-") as scratch_name:
        scratch = Path(scratch_name)
        for filename, document in documents.items():
            text = _dump(_header(filename, now), document)
            (scratch / filename).write_text(text, encoding="utf-8")
        for filename in COPIED_FILES:
            try:
                shutil.copyfile(source / filename, scratch / filename)
            except OSError as exc:
                raise CommandError(f"cannot copy {source / filename}: {exc}") from None
        try:
            load_config_dir(scratch)
        except ConfigError as exc:
            raise CommandError(
                "the exported configuration would not load, nothing was written "
                "(fix the rows in the admin or the source files):\n" + "\n".join(exc.problems)
            ) from None
        output.mkdir(parents=True, exist_ok=True)
        written = []
        for filename in (*documents, *COPIED_FILES):
            shutil.copyfile(scratch / filename, output / filename)
            written.append(output / filename)
    return written


class Command(BaseCommand):
    help = "Export assets and strategies from the database to YAML (risk/exchanges copied)."
    # Exporting is how a broken YAML file is recovered from the database: the config system
    # check must not block it.
    requires_system_checks = (Tags.models,)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output-dir",
            type=Path,
            default=None,
            help="default: <DATA_DIR>/config-export (pass config/ to overwrite the source)",
        )
        parser.add_argument(
            "--config-dir",
            type=Path,
            default=None,
            help="source of the correlation groups, risk.yaml and exchanges.yaml "
            "(default: settings.CONFIG_DIR)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["config_dir"] or Path(settings.CONFIG_DIR)
        output = options["output_dir"] or Path(settings.DATA_DIR) / "config-export"
        for path in export_config(source, output):
            self.stdout.write(f"wrote {path}")
        self.stdout.write(self.style.SUCCESS(f"exported to {output}"))
