"""The arena backtest (``manage.py backtest --arena``): the enabled arena run EXACTLY as the
radar runs it, on recorded 1m candles.

Exactly, because it IS the radar: the database's strategy configuration (what the radar
trades, admin edits included) is exported with ``export_config`` into a scratch directory, and
``manage.py radar --replay FILES --speed max --headless`` runs there as a child process on its
own scratch SQLite database — every enabled strategy, all symbols in one kernel per strategy
(one ledger, one kill switch each), the account kill switch, the selector every
``selector_every`` minutes of market time (0 = off) — then ``manage.py arena_report --json``
reads what it did. Nothing of this database is written; the child's files are deleted after.

So the arena backtest and a radar replay of the same files agree trade for trade by
construction (``tests/backtests/test_arena_backtest.py`` checks it on data the project does not
bundle, selector on and off). The single-strategy backtest (:func:`backtests.services.
backtest_compute`) stays: one strategy alone on one symbol, a different experiment.

Speed: the radar's own (~1,700 candles/s on this 2-core machine with every strategy), not the
backtester's; replay files are read whole (cut them beforehand for a shorter period).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from io import StringIO
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command

from backtests.services import BacktestInputError

TIMEOUT_S = 3_600
CHILD_ENV_DROPPED = ("DATABASE_URL", "REDIS_URL", "EXCHANGE_BASE_URL", "LIVE_TRADING_ENABLED")


def _child_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV_DROPPED}
    env.update(
        SCALPRADAR_DATA_DIR=str(root / "data"),
        SCALPRADAR_CONFIG_DIR=str(root / "config"),
        DJANGO_SETTINGS_MODULE="scalpradar.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(args: Sequence[str], env: dict[str, str], what: str) -> str:
    command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args]
    try:
        done = subprocess.run(  # noqa: S603 (our own manage.py, arguments built here)
            command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise BacktestInputError(f"the arena {what} took more than {TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BacktestInputError(f"the arena {what} failed: " + " | ".join(tail))
    return done.stdout


def run_arena_backtest(data: Sequence[Path], *, selector_every: int = 60) -> dict[str, Any]:
    """The arena on the replay files ``data`` (1m candles, with the funding files beside them
    found by name as the radar finds them); returns :func:`~strategies.management.commands.
    arena_report.arena_report`'s dict plus ``replay`` (what the radar printed), ``elapsed_s``
    and ``assumptions`` (what the numbers stand on)."""
    if selector_every < 0:
        raise BacktestInputError("--selector-every must be 0 (off) or a number of minutes")
    paths = [Path(p).resolve() for p in data]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BacktestInputError(f"no such data file: {', '.join(missing)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scalpradar-arena-") as tmp:
        root = Path(tmp)
        call_command("export_config", "--output-dir", str(root / "config"), stdout=StringIO())
        env = _child_env(root)
        replay = _manage(
            [
                "radar", "--replay", *map(str, paths), "--speed", "max", "--headless",
                "--selector-every", str(selector_every), "--no-fallback",
            ],
            env,
            "replay",
        )  # fmt: skip
        report = json.loads(_manage(["arena_report", "--json"], env, "report"))
    # From the replay's first line on: before it the child loads its scratch configuration
    # and creates its scratch admin (whose password it prints: never shown).
    lines = [line for line in replay.splitlines() if line.strip()]
    first = next((i for i, line in enumerate(lines) if line.startswith("Replay")), len(lines))
    report["replay"] = lines[first:]
    report["elapsed_s"] = time.perf_counter() - started
    report["assumptions"] = {
        "engine": "the radar itself (manage.py radar --replay --speed max --headless) on a "
        "scratch SQLite database: the same runtime, kernels, ledgers, kill switches and selector",
        "parameters": "this database's strategy rows (what the radar trades), exported with "
        "export_config; per-symbol overrides applied",
        "selector": f"every {selector_every} min of market time" if selector_every else "off",
        "data": [p.name for p in paths],
        "funding": "the funding files beside the candles, matched by name and period (the "
        "replay's lines say which); none found = not modelled",
        "fills": "the paper venue's fill model of risk.yaml (limit fill probabilities, partial "
        "fills, slippage estimate) as in the radar",
    }
    return report
