"""The issue's "done when", end to end: ``manage.py radar --replay`` as a real subprocess with
``TELEGRAM_API_URL`` at the fake Bot API served by this test (``notify.fake``, 127.0.0.1).

The radar runs on its own SQLite database (``SCALPRADAR_DATA_DIR``, a temporary folder) and a
copy of the project's config whose ``notify.yaml`` beats every 3 s (``heartbeat_minutes``
0.05) and whose dead-man probes every second. In order, on the fake Telegram server:

1. the start message, paper trade notifications, a heartbeat;
2. ``/status`` from a stranger (nothing sent to them) and from the owner (answered);
3. ``/pause vwap_rsi`` — the running radar applies it (its control is stamped with the market
   time at which the runtime read it) — and ``/kill swing_1h`` confirmed with its button;
4. SIGKILL of the radar: the dead-man it spawned says "DOWN", then exits on its own.

The dead-man's alert latency after the SIGKILL is printed (``-s`` shows it); the limit asserted
is a generous wall-clock bound, not a performance claim. Also here: a headless replay sends
everything it queued before it exits, and the dashboard's "Telegram on / off".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from notify.fake import DEFAULT_TOKEN, FakeBotApi, SentMessage
from tests.notify.conftest import OWNER, STRANGER

ROOT = Path(__file__).resolve().parents[2]
START_LIMIT_S = 180.0  # migrations, config load, warm-up of the indicator loops
STEP_LIMIT_S = 60.0
DEADMAN_LIMIT_S = 30.0


@pytest.mark.django_db
@pytest.mark.parametrize(("token", "shown"), [("", "Telegram off"), (DEFAULT_TOKEN, "Telegram on")])
def test_the_dashboard_says_whether_telegram_is_on(client, settings, token, shown):
    """The top bar of every page (base.html), without ever showing the token."""
    from django.contrib.auth.models import User

    settings.TELEGRAM_BOT_TOKEN = token
    client.force_login(User.objects.create_user("watcher", password="s3cret-pass-123"))
    page = client.get("/").content.decode()
    assert f">{shown}</span>" in page
    assert DEFAULT_TOKEN not in page


def _config_dir(tmp: Path) -> Path:
    """The project's config with a fast heartbeat and dead-man (notify.yaml)."""
    target = tmp / "config"
    shutil.copytree(ROOT / "config", target)
    notify = yaml.safe_load((target / "notify.yaml").read_text(encoding="utf-8"))
    notify["heartbeat_minutes"] = 0.05
    notify["coalesce_window_s"] = 0.5
    notify["deadman"] = {"check_every_s": 1, "silent_after_s": 5, "ping_every_s": 60}
    (target / "notify.yaml").write_text(yaml.safe_dump(notify), encoding="utf-8")
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(data_dir: Path, config_dir: Path, api_url: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("DATABASE_URL", "REDIS_URL", "LIVE_TRADING_ENABLED", "EXCHANGE_BASE_URL",
                 "TELEGRAM_CHAT_IDS", "DEADMAN_PING_URL", "RADAR_HEALTH_URL"):  # fmt: skip
        env.pop(name, None)
    env.update(
        SCALPRADAR_DATA_DIR=str(data_dir),
        SCALPRADAR_CONFIG_DIR=str(config_dir),
        TELEGRAM_BOT_TOKEN=DEFAULT_TOKEN,
        TELEGRAM_API_URL=api_url,
        TELEGRAM_ALLOWED_USER_IDS=str(OWNER),
    )
    return env


def _query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the radar's database; [] while a write holds it."""
    try:
        with contextlib.closing(
            sqlite3.connect(data_dir / "scalpradar.sqlite3", timeout=0.5)
        ) as db:
            return db.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


async def _until(condition: Callable[[], Any], limit_s: float, what: str, out: Path) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(condition)
        if found:
            return found
        await asyncio.sleep(0.25)
    raise AssertionError(f"no {what} within {limit_s:g} s:\n{out.read_text(errors='replace')}")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL does not exist on Windows")
async def test_the_embedded_radar_tells_obeys_and_its_dead_man_reports_the_sigkill(tmp_path):
    fake = FakeBotApi(DEFAULT_TOKEN)
    await fake.start()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    out = tmp_path / "radar.out"
    env = _env(data_dir, _config_dir(tmp_path), fake.url)
    command = [sys.executable, str(ROOT / "manage.py"), "radar", "--replay", "--speed", "600",
               "--selector-every", "0", "--port", str(_free_port())]  # fmt: skip
    with out.open("wb") as log:
        radar = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadman_pid: int | None = None

    async def sent(predicate: Callable[[SentMessage], bool], limit_s: float) -> SentMessage:
        try:
            return await fake.wait_sent(predicate, limit_s)
        except (TimeoutError, AssertionError):
            texts = "\n---\n".join(m.text for m in fake.sent)
            raise AssertionError(f"not sent; sent:\n{texts}\nradar:\n{out.read_text()}") from None

    try:
        start = await sent(lambda m: m.text.startswith("🚀 Scalp Radar started"), START_LIMIT_S)
        assert "replay of BTC/USDT:USDT" in start.text and start.chat_id == OWNER
        match = await _until(
            lambda: re.search(r"dead-man pid (\d+)", out.read_text()), STEP_LIMIT_S, "pid", out
        )
        deadman_pid = int(match.group(1))
        await sent(lambda m: "PAPER" in m.text and " opened " in m.text, STEP_LIMIT_S)
        beat = await sent(lambda m: m.text.startswith("💓 Scalp Radar alive"), STEP_LIMIT_S)
        assert "Paper: gross " in beat.text and "trades" in beat.text

        fake.push_message(STRANGER, "/status")
        fake.push_message(OWNER, "/status")
        status = await sent(lambda m: m.text.startswith("Scalp Radar —"), STEP_LIMIT_S)
        assert status.chat_id == OWNER and "Radar: alive" in status.text
        # Updates are handled in order: the stranger's came first and got nothing.
        assert [m for m in fake.sent if m.chat_id == STRANGER] == []

        fake.push_message(OWNER, "/pause vwap_rsi")
        await sent(lambda m: m.text.startswith("vwap_rsi paused"), STEP_LIMIT_S)
        applied = await _until(
            lambda: _query(data_dir, "SELECT c.market_time_ms, s.status FROM "
                           "strategies_controlaction c JOIN trading_tradingsession s "
                           "ON s.strategy_name = c.strategy_name AND s.mode = 'paper' "
                           "WHERE c.strategy_name = 'vwap_rsi' AND c.action = 'pause' "
                           "AND c.reason LIKE 'via Telegram:%' AND c.market_time_ms IS NOT NULL"),
            STEP_LIMIT_S, "pause applied by the running radar", out,
        )  # fmt: skip
        assert applied[0][1] == "paused"

        fake.push_message(OWNER, "/kill swing_1h")
        question = await sent(lambda m: m.reply_markup is not None, STEP_LIMIT_S)
        confirm = question.reply_markup["inline_keyboard"][0][0]["callback_data"]
        fake.push_callback(OWNER, confirm, message_id=question.message_id)
        killed = await _until(
            lambda: _query(data_dir, "SELECT action FROM strategies_controlaction WHERE "
                           "strategy_name = 'swing_1h' AND reason LIKE 'via Telegram:%' "
                           "AND market_time_ms IS NOT NULL"),
            STEP_LIMIT_S, "kill applied by the running radar", out,
        )  # fmt: skip
        # The flatten request (the live executor's: swing_1h has no live position) and the pause.
        assert {action for (action,) in killed} == {"flatten", "pause"}
        assert fake.answered_callbacks

        # Its own Django start takes seconds: killed before, it would never have heard /health/.
        await _until(lambda: "Dead-man watching" in out.read_text(), STEP_LIMIT_S, "dead-man", out)
        await asyncio.sleep(2.5)  # a few probes answered
        killed_at = time.monotonic()
        os.kill(radar.pid, signal.SIGKILL)
        await asyncio.to_thread(radar.wait, 30)
        down = await sent(lambda m: "Scalp Radar DOWN" in m.text, DEADMAN_LIMIT_S)
        latency_s = time.monotonic() - killed_at
        print(f"\ndead-man alert {latency_s:.2f} s after the SIGKILL: {down.text}")
        assert down.text.startswith("🛑 Scalp Radar DOWN: ")  # alone, not a batch's tail
        assert f"pid {radar.pid}" in down.text and "/health/ last answered" in down.text
        assert down.chat_id == OWNER
        await _until(lambda: not _alive(deadman_pid), 15, "dead-man exit", out)
    finally:
        if radar.poll() is None:
            radar.kill()
            radar.wait(30)
        if deadman_pid is not None and _alive(deadman_pid):
            os.kill(deadman_pid, signal.SIGKILL)
        await fake.stop()


def _alive(pid: int) -> bool:
    """Process ``pid`` runs (a zombie left unreaped by a container's init counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


@pytest.mark.slow
async def test_a_headless_replay_sends_everything_it_queued_before_it_exits(tmp_path):
    """``--headless`` on the bundled BTC week at max speed: no dashboard, no dead-man; the
    start message, the trades, then "replay finished" — and once the process has exited, no
    row of its outbox is left unsent."""
    fake = FakeBotApi(DEFAULT_TOKEN)
    await fake.start()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    out = tmp_path / "radar.out"
    env = _env(data_dir, _config_dir(tmp_path), fake.url)
    week = ROOT / "data" / "sample" / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
    command = [sys.executable, str(ROOT / "manage.py"), "radar", "--replay", str(week),
               "--speed", "max", "--headless"]  # fmt: skip
    try:
        with out.open("wb") as log:
            radar = await asyncio.create_subprocess_exec(
                *command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            assert await asyncio.wait_for(radar.wait(), START_LIMIT_S) == 0, out.read_text()
    finally:
        await fake.stop()
    texts = [m.text for m in fake.sent]
    assert texts[0].startswith("🚀 Scalp Radar started: replay of BTC/USDT:USDT")
    assert "Headless: no dashboard" in texts[0]
    assert any(" opened " in t for t in texts) and any(" closed " in t for t in texts)
    assert "⏹ Scalp Radar replay finished: " in texts[-1]
    rows = _query(data_dir, "SELECT status, COUNT(*) FROM notify_notification GROUP BY status")
    assert dict(rows).keys() == {"sent"}, rows
    assert "dead-man" not in out.read_text()
