"""Crash recovery: SIGKILL the radar in the middle of a replay, restart it, lose nothing.

``manage.py radar --replay ETH-slice --speed 6000 --headless`` runs as a real subprocess on its
own SQLite database (``SCALPRADAR_DATA_DIR`` = a temporary folder) with a temporary config
(``SCALPRADAR_CONFIG_DIR``): ``momentum_breakout`` without higher-timeframe confirmation, on a
20-candle range and a 2× volume surge (fixed here, not the shipped tuning), so it trades within
the first 3 hours of the slice, ``swing_1h`` (decides, does not trade here)
and the ``order_flow`` filter; the kill switch limit is 0.3 % (30 USDT), which momentum's
losing second trade trips at about minute 333 of the 600.

Once the database shows the kill switch tripped (and some candles still to come), the process
is killed with SIGKILL — no handler, no cleanup — then started again on the same database and
left to finish. Its database must then equal, row for row, that of an uninterrupted run of the
same replay (run at ``--speed max`` at the same time, on a second database): every candle
stored once, every kernel at the last candle, the same positions, signals, selector decisions
and session totals and the same kernel states (so nothing was counted twice or lost), and the
kill switch still tripped. Bound: under 90 s (three process starts, 600 candles twice).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from tests.radar.test_radar import slice_sample

ROOT = Path(__file__).resolve().parents[2]
CANDLES = 600
TIMEOUT_S = 80.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL does not exist on Windows"),
]


def crash_config(folder: Path) -> Path:
    """The project's config with a 0.3 % kill switch and a fast-trading momentum strategy."""
    shutil.copytree(settings.CONFIG_DIR, folder)
    risk_path = folder / "risk.yaml"
    risk = yaml.safe_load(risk_path.read_text())
    risk["kill_switch"]["max_session_loss_pct"] = 0.3
    risk_path.write_text(yaml.safe_dump(risk))
    strategies_path = folder / "strategies.yaml"
    strategies = yaml.safe_load(strategies_path.read_text())
    for entry in strategies["strategies"]:
        entry["enabled"] = entry["name"] in {"momentum_breakout", "swing_1h", "order_flow"}
        if entry["name"] == "momentum_breakout":
            entry["params"].update(confirm_timeframes=[], range_lookback=20, volume_mult=2.0)
    strategies_path.write_text(yaml.safe_dump(strategies))
    return folder


def start_radar(
    data_dir: Path, config_dir: Path, replay: Path, speed: str
) -> subprocess.Popen[str]:
    """``manage.py radar`` in a subprocess; its output goes to ``data_dir/radar-<n>.out``."""
    env = {
        **os.environ,
        "SCALPRADAR_DATA_DIR": str(data_dir),
        "SCALPRADAR_CONFIG_DIR": str(config_dir),
    }
    env.pop("DATABASE_URL", None)  # the embedded SQLite database of data_dir, always
    data_dir.mkdir(exist_ok=True)
    log = (data_dir / f"radar-{len(list(data_dir.glob('radar-*.out')))}.out").open("w")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "radar", "--replay", str(replay),
         "--speed", speed, "--headless"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the radar's database, once no radar writes to it."""
    with sqlite3.connect(data_dir / "scalpradar.sqlite3") as db:
        return db.execute(sql).fetchall()


def peek(data_dir: Path, sql: str) -> int:
    """A count on a running radar's database; 0 while it is still being created or locked."""
    path = data_dir / "scalpradar.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=0.5) as db:
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet, or a write in progress: ask again
        return 0


def wait(process: subprocess.Popen[str], data_dir: Path, deadline: float) -> str:
    """The output of a radar run that must end normally before ``deadline``."""
    process.wait(timeout=max(1.0, deadline - time.monotonic()))
    output = sorted(data_dir.glob("radar-*.out"))[-1].read_text()
    assert process.returncode == 0, output
    return output


def snapshot(data_dir: Path) -> dict[str, Any]:
    """Everything the radar stored, without row ids and wall-clock stamps."""
    sessions = query(
        data_dir,
        "SELECT strategy_name, status, capital_weight, realised_gross_pnl, realised_net_pnl,"
        " fees_usdt, funding_usdt, slippage_usdt, trades_count, wins_count, peak_equity_usdt,"
        " kill_switch_tripped, kill_switch_reason, ledger_state"
        " FROM trading_tradingsession ORDER BY strategy_name",
    )
    return {
        "sessions": [(*row[:-1], json.loads(row[-1])) for row in sessions],
        "positions": query(
            data_dir,
            "SELECT strategy_name, ledger_id, symbol, side, status, shadow, qty, leverage,"
            " entry_price, entry_time_ms, entry_fee, exit_price, exit_time_ms, exit_fee,"
            " exit_reason, funding_usdt, slippage_usdt, gross_pnl, net_pnl"
            " FROM trading_position ORDER BY strategy_name, ledger_id",
        ),
        "signals": query(
            data_dir,
            "SELECT c.name, s.symbol, s.timeframe, s.candle_open_time_ms, s.side, s.entry_price,"
            " s.stop_loss, s.take_profit, s.score, s.status, s.refusal_reason, s.shadow"
            " FROM strategies_signal s JOIN strategies_strategyconfig c"
            " ON c.id = s.strategy_id ORDER BY c.name, s.candle_open_time_ms",
        ),
        "decisions": query(
            data_dir,
            "SELECT strategy_name, action, candle_time_ms, new_weight"
            " FROM strategies_selectordecision ORDER BY strategy_name, candle_time_ms",
        ),
    }


def test_a_radar_killed_mid_replay_resumes_without_losing_or_repeating_anything(tmp_path):
    deadline = time.monotonic() + TIMEOUT_S
    config_dir = crash_config(tmp_path / "config")
    replay = slice_sample(tmp_path, "ETH", 0, CANDLES)
    rows = replay.read_text().splitlines()[1:]
    first_open, last_open = int(rows[0].split(",")[0]), int(rows[-1].split(",")[0])
    crashed, reference = tmp_path / "crashed", tmp_path / "reference"

    uninterrupted = start_radar(reference, config_dir, replay, "max")
    radar = start_radar(crashed, config_dir, replay, "6000")
    stored_at_kill = 0
    while time.monotonic() < deadline and radar.poll() is None:
        tripped = peek(
            crashed, "SELECT count(*) FROM trading_tradingsession WHERE kill_switch_tripped"
        )
        stored_at_kill = peek(crashed, "SELECT count(*) FROM trading_candle")
        if tripped and stored_at_kill > 0:
            radar.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert radar.wait(timeout=10) == -signal.SIGKILL, "the radar ended before the kill"
    assert 0 < stored_at_kill < CANDLES, "the kill must land in the middle of the replay"
    killed = query(
        crashed, "SELECT strategy_name FROM trading_tradingsession WHERE kill_switch_tripped"
    )
    assert killed == [("momentum_breakout",)]
    assert query(crashed, "SELECT count(*) FROM trading_position WHERE NOT shadow")[0][0] > 0

    output = wait(start_radar(crashed, config_dir, replay, "6000"), crashed, deadline)
    assert "Resuming after the last processed candle" in output
    wait(uninterrupted, reference, deadline)

    candles = query(crashed, "SELECT open_time_ms FROM trading_candle ORDER BY open_time_ms")
    assert len(candles) == CANDLES  # each once: the natural key would refuse a second copy
    assert (candles[0][0], candles[-1][0]) == (first_open, last_open)
    after, expected = snapshot(crashed), snapshot(reference)
    for name, *_, state in after["sessions"]:
        if not name:
            continue  # the account's session: its kill switch, no kernel
        last_row = state["symbols"]["ETH/USDT:USDT"]["last_row"]
        assert int(last_row[0]) == last_open, f"{name} did not process every candle"
    assert after == expected
    momentum = next(s for s in after["sessions"] if s[0] == "momentum_breakout")
    assert momentum[1] == "killed" and momentum[11] == 1  # status, kill_switch_tripped
    assert momentum[-1]["kill_switch"]["tripped"] is True
