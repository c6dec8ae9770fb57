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
# The child is a backtest: its own database, no broker, no exchange, no live orders, and no
# Telegram (its replayed trades must not reach the trader's phone as if they happened).
CHILD_ENV_DROPPED = (
    "DATABASE_URL",
    "REDIS_URL",
    "EXCHANGE_BASE_URL",
    "LIVE_TRADING_ENABLED",
    "TELEGRAM_BOT_TOKEN",
    "DEADMAN_PING_URL",
)


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


def bundled_replay_files() -> list[Path]:
    """The bundled sample's 1m candle files (what ``manage.py radar`` replays offline)."""
    files = sorted(Path(settings.SAMPLE_DATA_DIR).glob("*_1m_*.csv*"))
    if not files:
        raise BacktestInputError(f"no bundled sample candles in {settings.SAMPLE_DATA_DIR}")
    return files


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


# -- the browser's arena run: a BacktestRun of kind "arena" on the stored candles -------------

ARENA_KIND = "arena"
DAY_MS = 86_400_000


def _day(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%d")


def stored_replay_files(
    folder: Path, symbols: Sequence[str], start_ms: int, end_ms: int, exchange: str = "bitget"
) -> list[Path]:
    """The stored 1m candles (and funding settlements) of ``symbols`` in ``[start_ms,
    end_ms)`` written as replay files the radar reads (``<exchange>-usdm_<BASE>-<QUOTE>_1m_
    <first day>-<last day>.csv``, funding beside them): what the browser's arena run replays."""
    from trading.models import Candle, FundingRate

    paths = []
    span = f"{_day(start_ms)}-{_day(end_ms - 1)}"
    for symbol in symbols:
        base, quote = symbol.split(":")[0].split("/")
        rows = (
            Candle.objects.filter(
                exchange=exchange, symbol=symbol, timeframe="1m",
                open_time_ms__gte=start_ms, open_time_ms__lt=end_ms,
            )
            .order_by("open_time_ms")
            .values_list("open_time_ms", "open", "high", "low", "close", "volume")
        )  # fmt: skip
        lines = [f"{int(t)},{o!r},{h!r},{lo!r},{c!r},{v!r}" for t, o, h, lo, c, v in rows]
        if not lines:
            continue
        path = folder / f"{exchange}-usdm_{base}-{quote}_1m_{span}.csv"
        path.write_text(
            "timestamp_ms,open,high,low,close,volume\n" + "\n".join(lines) + "\n", encoding="utf-8"
        )
        paths.append(path)
        funding = (
            FundingRate.objects.filter(
                exchange=exchange, symbol=symbol,
                funding_time_ms__gte=start_ms - 8 * 3_600_000, funding_time_ms__lt=end_ms,
            )
            .order_by("funding_time_ms")
            .values_list("funding_time_ms", "rate")
        )  # fmt: skip
        if funding:
            (folder / f"{exchange}-usdm_{base}-{quote}_funding_{span}.csv").write_text(
                "timestamp_ms,rate\n" + "\n".join(f"{int(t)},{r!r}" for t, r in funding) + "\n",
                encoding="utf-8",
            )
    return paths


def arena_window(days: int, exchange: str = "bitget") -> tuple[list[str], int, int]:
    """The enabled symbols and the last ``days`` of their stored 1m candles (to the newest)."""
    from strategies.config import get_config
    from trading.models import Candle

    symbols = list(get_config().enabled_symbols)
    last = (
        Candle.objects.filter(exchange=exchange, symbol__in=symbols, timeframe="1m")
        .order_by("-open_time_ms")
        .values_list("open_time_ms", flat=True)
        .first()
    )
    if last is None:
        raise BacktestInputError("no stored 1m candles to replay: run the radar or import some")
    end = int(last) + 60_000
    return symbols, end - days * DAY_MS, end


def arena_run_create(*, days: int, selector_every: int = 60, created_by: Any = None) -> Any:
    """A pending browser run of the whole arena over the last ``days`` of stored candles."""
    from backtests.models import BacktestRun

    if selector_every < 0:
        raise BacktestInputError("the selector round must be 0 (off) or a number of minutes")
    symbols, start_ms, end_ms = arena_window(days)
    return BacktestRun.objects.create(
        strategy_name="arena",
        strategy_kind=ARENA_KIND,
        symbol=f"{len(symbols)} symbols",
        start_ms=start_ms,
        end_ms=end_ms,
        params={"selector_every": selector_every, "symbols": symbols},
        params_source="database: the enabled arena as the radar runs it",
        data_source="stored 1m candles",
        created_by=created_by,
    )


def arena_run_execute(run_id: int) -> bool:
    """Run a pending arena run once (claimed as every run is) and store its report."""
    from django.db import transaction
    from django.utils import timezone

    from backtests.models import BacktestRun
    from backtests.services import backtest_run_claim
    from common.events import backtest_group, publish_on_commit

    if not backtest_run_claim(run_id):
        return False
    run = BacktestRun.objects.get(pk=run_id)
    try:
        with tempfile.TemporaryDirectory(prefix="scalpradar-arena-data-") as tmp:
            files = stored_replay_files(
                Path(tmp), run.params.get("symbols", []), int(run.start_ms), int(run.end_ms)
            )
            if not files:
                raise BacktestInputError("no stored 1m candles in the run's range")
            report = run_arena_backtest(files, selector_every=int(run.params["selector_every"]))
    except (BacktestInputError, ValueError, OSError) as exc:
        with transaction.atomic():
            BacktestRun.objects.filter(pk=run_id).update(
                status=BacktestRun.Status.FAILED, error=str(exc), finished_at=timezone.now()
            )
        return True
    report["arena"] = True
    report["trades"] = sum(s["trades"] for s in report["strategies"])
    report["net_pnl"] = sum(s["net_pnl"] for s in report["strategies"])
    with transaction.atomic():
        BacktestRun.objects.filter(pk=run_id).update(
            status=BacktestRun.Status.DONE,
            progress=1.0,
            finished_at=timezone.now(),
            results=report,
            trades=[{"strategy": s["strategy"], **t} for s in report["strategies"]
                    for t in s["trade_list"]],
        )  # fmt: skip
        publish_on_commit(
            backtest_group(run_id), "backtest.done", {"run_id": run_id, "status": "done"}
        )
    return True
