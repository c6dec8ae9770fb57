"""SIGKILL with a live position open: ``manage.py radar --exchange fake`` as a real subprocess,
killed with no handler, no flatten and no checkpoint, then started again.

The fake Bitget serves in this test's process, on a local port, so that it outlives each radar
(as an exchange outlives a killed bot) and its account and the requests it received can be
read. Each radar reaches it through ``EXCHANGE_BASE_URL`` with ``--exchange fake``: it trades
with the fake's fixed demo key and mirrors its market clock (``GET /fake/clock``,
``radar.launch.StandaloneFake``). Both radars run on one SQLite database
(``SCALPRADAR_DATA_DIR`` = a temporary folder), prepared beforehand as in
test_live_trading_on_fake: funding_arbitrage alone, its threshold lowered so that the bundled
week's real funding rates are extreme, set live; its entries at market, here: whether a
post-only limit fills depends on the order reaching the fake before the market trades through
it, a race between two processes on a clock 1800× the wall's that made the first live position
a matter of luck (five entries of six missed in a trial run).

1. The first radar runs until its database holds an open live position whose stop is confirmed
   on the exchange. The market then all but stops (speed 1e-3: nothing trades through the stop
   or the target while no radar watches) and the radar is SIGKILLed.
2. A second radar starts on the same database and the same fake. Its start-up reconciliation
   must find that position and its stop: the same row, at the exchange's quantity, one
   position stop on the exchange, no client order id sent twice, and "ready".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from trading.exchanges.fake import FakeBitget, market_id_of

ROOT = Path(__file__).resolve().parents[2]
SPEED = 1_800.0  # market minutes per wall minute: the first entry comes within a minute
FIRST_LIMIT_S = 150.0  # wall seconds for the first radar's start and its first live position
RESTART_LIMIT_S = 90.0  # wall seconds for the second radar's start-up reconciliation
SETTLE_S = 3.0  # the second radar keeps running this long after "ready": nothing sent twice
READY = "; ready; live strategies: funding_arbitrage"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL does not exist on Windows"),
]

PREPARE = """
from django.core.management import call_command
from strategies.models import StrategyConfig
call_command("migrate", interactive=False, verbosity=0)
call_command("load_config", verbosity=0)
StrategyConfig.objects.exclude(name="funding_arbitrage").update(enabled=False)
funding = StrategyConfig.objects.get(name="funding_arbitrage")
funding.params = {**funding.params, "extreme_rate": 0.00004, "entry_type": "market"}
funding.save()
StrategyConfig.objects.filter(pk=funding.pk).update(live=True)
"""


def _env(data_dir: Path, base_url: str = "") -> dict[str, str]:
    env = {**os.environ, "SCALPRADAR_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    for name in ("DATABASE_URL", "REDIS_URL", "LIVE_TRADING_ENABLED", "SCALPRADAR_CONFIG_DIR"):
        env.pop(name, None)  # the embedded mode on data_dir's SQLite, the project's config
    env["EXCHANGE_BASE_URL"] = base_url
    return env


def prepare(data_dir: Path) -> None:
    """The radars' database: migrated, config loaded, funding_arbitrage alone and live."""
    data_dir.mkdir()
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", PREPARE],
        cwd=ROOT, env=_env(data_dir), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the radars' database; [] while a write holds it."""
    path = data_dir / "scalpradar.sqlite3"
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=0.5)) as db:
            return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []


def open_protected(data_dir: Path) -> list[tuple[Any, ...]]:
    return query(
        data_dir,
        "SELECT id, symbol, qty, entry_client_id FROM trading_liveposition"
        " WHERE status = 'open' AND protected",
    )


@dataclass
class Radars:
    """The radar subprocesses of one test: ``manage.py radar --exchange fake --headless`` on
    the fake at ``base_url`` and the database of ``data_dir``; radar ``n``'s output goes to
    ``data_dir/radar-<n>.out``."""

    data_dir: Path
    base_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        command = [sys.executable, str(ROOT / "manage.py"), "radar", "--exchange", "fake"]
        env = _env(self.data_dir, self.base_url)
        with (self.data_dir / f"radar-{len(self.processes)}.out").open("wb") as log:
            process = subprocess.Popen(
                [*command, "--headless"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)

    def output(self, n: int) -> str:
        return (self.data_dir / f"radar-{n}.out").read_text(errors="replace")

    async def wait_until(self, condition: Callable[[], Any], limit_s: float, what: str) -> None:
        """Poll ``condition`` (in a thread: the fake serves on this loop) until it holds, while
        the latest radar runs."""
        n = len(self.processes) - 1
        process = self.processes[n]
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if await asyncio.to_thread(condition):
                return
            if process.poll() is not None:
                break
            await asyncio.sleep(0.25)
        state = "running" if process.poll() is None else f"exited with {process.returncode}"
        raise AssertionError(f"no {what} within {limit_s:g} s (radar {state}):\n{self.output(n)}")

    async def kill(self, n: int) -> int:
        """SIGKILL radar ``n`` (if still running); its return code."""
        process = self.processes[n]
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        return await asyncio.to_thread(process.wait, 30)


async def test_a_sigkilled_radar_restarts_onto_its_live_position_and_stop_sending_nothing_twice(
    tmp_path,
):
    data_dir = tmp_path / "data"
    await asyncio.to_thread(prepare, data_dir)
    fake = FakeBitget(speed=SPEED)
    radars = Radars(data_dir, await fake.start())
    try:
        radars.start()
        await radars.wait_until(lambda: open_protected(data_dir), FIRST_LIMIT_S, "live position")
        fake.clock.set_speed(1e-3)
        assert await radars.kill(0) == -signal.SIGKILL
        before = {row[0]: row for row in open_protected(data_dir)}
        assert before
        sent_before = [r.body["clientOid"] for r in fake.requests_to("/order/place-order")]
        assert {entry_id for *_, entry_id in before.values()} <= set(sent_before)

        radars.start()
        await radars.wait_until(
            lambda: "Live trading:" in radars.output(1), RESTART_LIMIT_S, "live trading line"
        )
        await asyncio.sleep(SETTLE_S)
        alive = radars.processes[1].poll() is None
        await radars.kill(1)
        restarted = radars.output(1)
        alerts = query(data_dir, "SELECT level, message FROM trading_alert WHERE source='executor'")
        assert READY in restarted and alive, (restarted, alerts)
        assert "already serving at" in restarted and "its market clock at 0.001×" in restarted

        # The same positions (usually one; two if another symbol's entry filled in the same
        # poll); each one's quantity is the exchange's (an entry's remainder may have filled
        # while no radar ran: the start-up look-up books it), on the lot.
        after = {row[0]: row for row in open_protected(data_dir)}
        assert before.keys() <= after.keys(), (before, after)
        for position_id, symbol, qty_before, entry_id in before.values():
            qty_after = after[position_id][2]
            market_id = market_id_of(symbol)
            held = fake.account.positions[market_id].total
            assert qty_before <= qty_after
            assert qty_after == pytest.approx(held, abs=1e-12) and qty_after == round(qty_after, 8)
            [(filled,)] = query(
                data_dir, "SELECT filled_qty FROM trading_order WHERE client_id = ?", entry_id
            )
            assert filled == pytest.approx(qty_after, abs=1e-12)
            # Its stop: one on the exchange, the one the database holds.
            stops = [
                p
                for p in fake.account.plans.values()
                if p.symbol == market_id and p.plan_type == "pos_loss" and p.status == "live"
            ]
            assert len(stops) == 1, stops
            recorded = query(
                data_dir,
                "SELECT exchange_order_id FROM trading_order"
                " WHERE role = 'stop' AND status = 'open' AND symbol = ?",
                symbol,
            )
            assert recorded == [(stops[0].order_id,)]
        sent = [r.body["clientOid"] for r in fake.requests_to("/order/place-order")]
        assert sent[: len(sent_before)] == sent_before and len(set(sent)) == len(sent), sent
    finally:
        for n in range(len(radars.processes)):
            await radars.kill(n)
        await fake.stop()
