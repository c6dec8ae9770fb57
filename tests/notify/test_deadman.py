"""The dead-man (``notify.deadman``): probes a real local ``/health/`` server (aiohttp on
127.0.0.1) that answers, degrades, stops answering and comes back; its messages arrive on the
fake Bot API through the outbox and its own sender — or directly while a real SQLite write
lock keeps the outbox from being written. The embedded form watches a real process that is
killed; the external ping hits a local URL."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from aiohttp import web
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connection

from notify.deadman import Delivery, Probe, Watch, ping_loop, run_deadman
from notify.models import Notification, RadarBeat
from tests.notify.conftest import OWNER

pytestmark = pytest.mark.django_db(transaction=True)
OK = {"status": "ok", "problems": []}


class HealthServer:
    """A stand-in ``/health/`` on 127.0.0.1: ``status`` and ``body`` say what it answers;
    :meth:`stop` closes the port (connections refused), :meth:`start` opens it again."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict[str, Any] = dict(OK)
        self.port = 0
        self.hits = 0
        self._runner: web.AppRunner | None = None

    async def _health(self, _request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response(self.body, status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health/", self._health)
        app.router.add_get("/ping", self._health)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health/"

    def degrade(self, *problems: str) -> None:
        self.status, self.body = 503, {"status": "degraded", "problems": list(problems)}

    def heal(self) -> None:
        self.status, self.body = 200, dict(OK)


@pytest.fixture
async def health():
    server = HealthServer()
    await server.start()
    yield server
    await server.stop()


# --- the state machine -------------------------------------------------------------------------


def test_down_once_after_the_silence_then_back_then_degraded_once_per_problem_set():
    """silent_after_s = 60; times in seconds from the start."""
    watch = Watch("http://radar/health/", silent_after_s=60, started_s=0)
    said = []
    for t, probe in [
        (0, Probe(answered=True)),  # first look: nothing to say
        (30, Probe(answered=True)),
        (60, Probe(answered=False, error="refused")),
        (89, Probe(answered=False, error="refused")),  # silent 59 s: not yet
        (91, Probe(answered=False, error="refused")),  # 61 s: down
        (101, Probe(answered=False, error="refused")),  # still down: said once
        (110, Probe(answered=True)),  # back after 110 s of silence
        (120, Probe(answered=True, degraded=True, problems=("feed disconnected",))),
        (130, Probe(answered=True, degraded=True, problems=("feed disconnected",))),
        (140, Probe(answered=True, degraded=True, problems=("database unreachable", "x"))),
        (150, Probe(answered=True)),
    ]:
        said += [(t, m.level, m.text) for m in watch.observe(probe, t)]
    assert said == [
        (91, "error", "🛑 Scalp Radar DOWN: http://radar/health/ has not answered for 61 s "
                      "(refused)"),
        (110, "info", "✅ Scalp Radar back: /health/ answers again, ok (silent for 80 s)"),
        (120, "warning", "⚠️ Scalp Radar degraded: feed disconnected"),
        (140, "warning", "⚠️ Scalp Radar degraded: database unreachable; x"),
        (150, "info", "✅ Scalp Radar ok again: /health/ reports no problem"),
    ]  # fmt: skip


def test_a_radar_that_never_answered_is_down_once_the_silence_is_over():
    watch = Watch("u", silent_after_s=10, started_s=100)
    assert watch.observe(Probe(answered=False, error="e"), 105) == []
    [message] = watch.observe(Probe(answered=False, error="e"), 111)
    assert message.level == "error" and "has not answered for 11 s" in message.text


def test_a_production_feed_seen_running_then_absent_past_the_silence_is_a_problem():
    """/health/ stays 200 when the feed worker's lock expires (it must not restart the web):
    the dead-man, having seen the feed ``elsewhere``, says so once it is ``absent`` for
    silent_after_s (60 s), and ok again when a feed holds the lock again. A deployment whose
    feed never ran is not told."""
    fresh = Watch("u", silent_after_s=60, started_s=0)
    assert fresh.observe(Probe(answered=True, feed_state="absent"), 500) == []
    watch = Watch("u", silent_after_s=60, started_s=0)
    said = []
    for t, state in [(0, "elsewhere"), (10, "absent"), (60, "absent"), (71, "absent"),
                     (90, "absent"), (100, "elsewhere")]:  # fmt: skip
        said += [(t, m.text) for m in watch.observe(Probe(answered=True, feed_state=state), t)]
    assert said == [
        (71, "⚠️ Scalp Radar degraded: no radar feed running for over 60 s: the feed worker or "
             "Celery beat is gone"),
        (100, "✅ Scalp Radar ok again: /health/ reports no problem"),
    ]  # fmt: skip


# --- against a real health server and the fake Bot API ------------------------------------------


async def _until(condition, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_radar_that_stops_answering_is_told_down_then_back_on_telegram(
    fake_telegram, health
):
    """check_every_s 0.1, silent_after_s 0.5: the server answers, is closed (refused), opens
    again. The messages come through the outbox and the dead-man's own sender."""
    stop = asyncio.Event()
    delivery = Delivery()
    states: list[str] = []
    watching = asyncio.ensure_future(
        run_deadman(
            health_url=health.url,
            check_every_s=0.1,
            silent_after_s=0.5,
            delivery=delivery,
            stop=stop,
            on_state=states.append,
        )
    )
    try:
        await _until(lambda: "ok" in states)
        await health.stop()
        closed = time.monotonic()
        down = await fake_telegram.wait_sent(lambda m: "DOWN" in m.text, 10)
        latency_s = time.monotonic() - closed
        await health.start()
        back = await fake_telegram.wait_sent(lambda m: "back" in m.text, 10)
    finally:
        stop.set()
        await watching
        await delivery.close()
    assert down.chat_id == OWNER and health.url in down.text
    assert latency_s >= 0.5  # not before the silence is over
    assert "answers again, ok" in back.text
    kinds = await sync_to_async(list)(Notification.objects.values_list("kind", "status"))
    assert kinds == [("watchdog", "sent"), ("watchdog", "sent")]


async def test_degraded_problems_are_told_once_per_set_and_the_recovery_once(fake_telegram, health):
    stop = asyncio.Event()
    delivery = Delivery()
    watching = asyncio.ensure_future(
        run_deadman(
            health_url=health.url,
            check_every_s=0.05,
            silent_after_s=5,
            delivery=delivery,
            stop=stop,
        )
    )
    try:
        health.degrade("feed disconnected", "BTC/USDT:USDT: no closed candle for over 180 s")
        await fake_telegram.wait_sent(lambda m: "degraded" in m.text, 10)
        hits = health.hits
        await _until(lambda: health.hits >= hits + 5)  # the same problems, probed again
        health.heal()
        await fake_telegram.wait_sent(lambda m: "ok again" in m.text, 10)
    finally:
        stop.set()
        await watching
        await delivery.close()
    texts = fake_telegram.texts(OWNER)
    assert texts == [
        "⚠️ Scalp Radar degraded: BTC/USDT:USDT: no closed candle for over 180 s; feed disconnected",
        "✅ Scalp Radar ok again: /health/ reports no problem",
    ]


async def test_an_answer_that_is_not_the_health_document_counts_as_degraded(fake_telegram, health):
    health.status, health.body = 502, {"error": "bad gateway"}
    delivery = Delivery()
    state = await run_deadman(health_url=health.url, check_every_s=1, silent_after_s=5,
                              delivery=delivery, once=True)  # fmt: skip
    await delivery.close()
    assert state == "degraded"
    assert fake_telegram.texts(OWNER) == ["⚠️ Scalp Radar degraded: HTTP 502 from /health/"]


def _hold_write_lock(seconds: float, started: threading.Event) -> None:
    name = connection.settings_dict["NAME"]
    uri = str(name).startswith("file:")
    raw = sqlite3.connect(str(name), uri=uri, timeout=5, check_same_thread=False)
    raw.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    raw.rollback()
    raw.close()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="an SQLite write lock")
async def test_while_the_database_refuses_the_outbox_the_alarm_goes_straight_to_telegram(
    fake_telegram, monkeypatch
):
    """The radar's database is locked by another connection (a real SQLite write lock) and
    nothing answers /health/: the "down" message cannot be queued, so it is sent directly;
    nothing is stored."""
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.2)
    await sync_to_async(lambda: connection.close(), thread_sensitive=True)()  # reopened: short
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(1.5, started))
    holder.start()
    await asyncio.to_thread(started.wait, 5)
    delivery = Delivery()
    try:
        state = await run_deadman(health_url="http://127.0.0.1:9/health/", check_every_s=1,
                                  silent_after_s=5, delivery=delivery, once=True)  # fmt: skip
    finally:
        await delivery.close()
        await asyncio.to_thread(holder.join, 10)
    assert state == "down"
    [message] = fake_telegram.sent
    assert message.chat_id == OWNER and message.text.startswith("🛑 Scalp Radar DOWN: ")
    assert await sync_to_async(Notification.objects.count)() == 0


# --- the embedded form: a parent process that dies -----------------------------------------------


def _child() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL does not exist on Windows")
async def test_a_killed_parent_is_told_at_once_and_the_dead_man_exits(fake_telegram, health):
    """The parent is SIGKILLed while /health/ still answers (its web part would die with it;
    here the process alone dies): told at the next probe, not after silent_after_s (60 s)."""
    child = _child()
    delivery = Delivery()
    watching = asyncio.ensure_future(
        run_deadman(
            health_url=health.url,
            check_every_s=0.1,
            silent_after_s=60,
            delivery=delivery,
            parent_pid=child.pid,
        )
    )
    await asyncio.sleep(0.3)
    assert not watching.done()
    os.kill(child.pid, signal.SIGKILL)
    await asyncio.to_thread(child.wait, 10)
    state = await asyncio.wait_for(watching, 15)
    await delivery.close()
    assert state == "down"
    [message] = fake_telegram.sent
    assert f"its process (pid {child.pid}) is gone" in message.text


async def test_a_parent_that_stopped_cleanly_is_not_mourned(fake_telegram, health):
    child = _child()
    await sync_to_async(RadarBeat.objects.create)(
        run_id="r1", pid=child.pid, host=socket.gethostname(), mode="live"
    )
    delivery = Delivery()
    watching = asyncio.ensure_future(
        run_deadman(
            health_url=health.url,
            check_every_s=0.1,
            silent_after_s=60,
            delivery=delivery,
            parent_pid=child.pid,
        )
    )
    await sync_to_async(RadarBeat.objects.filter(run_id="r1").update)(
        stopped_at="2026-06-12T12:00Z"
    )
    child.terminate()
    await asyncio.to_thread(child.wait, 10)
    assert await asyncio.wait_for(watching, 15) == "stopped"
    await delivery.close()
    assert fake_telegram.sent == []


# --- the command and the external ping -----------------------------------------------------------


async def test_the_command_probes_once_and_exits_with_what_it_found(fake_telegram, health):
    """``manage.py deadman --once``: 0 ok (nothing said), 1 degraded (the problems said)."""

    def run(url: str) -> int:
        try:
            call_command("deadman", "--once", "--health-url", url)
        except SystemExit as exit_:
            return int(exit_.code or 0)
        return 0

    assert await asyncio.to_thread(run, health.url) == 0
    health.degrade("channel layer unreachable")
    assert await asyncio.to_thread(run, health.url) == 1
    await fake_telegram.wait_sent(lambda m: "channel layer unreachable" in m.text, 10)


async def test_the_ping_url_is_hit_on_cadence_while_the_radar_is_heard(health):
    ping = f"http://127.0.0.1:{health.port}/ping"
    stop = asyncio.Event()
    heard = {"yes": True}
    pinging = asyncio.ensure_future(
        ping_loop(stop, url=ping, every_s=0.05, healthy=lambda: heard["yes"])
    )
    await _until(lambda: health.hits >= 3)
    heard["yes"] = False
    await asyncio.sleep(0.1)
    hits = health.hits
    await asyncio.sleep(0.3)
    assert health.hits == hits  # the radar not heard: no ping, the external service alarms
    stop.set()
    assert await pinging >= 3


def _notify_yaml(tmp_path, settings, **deadman: float) -> None:
    """A copy of config/ whose notify.yaml has these ``deadman`` keys."""
    import shutil

    import yaml

    target = tmp_path / "config"
    shutil.copytree(settings.BASE_DIR / "config", target)
    data = yaml.safe_load((target / "notify.yaml").read_text(encoding="utf-8"))
    data["deadman"].update(deadman)
    (target / "notify.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    settings.CONFIG_DIR = target


async def test_the_command_takes_its_probe_cadence_and_silence_from_notify_yaml(
    fake_telegram, tmp_path, settings
):
    """check_every_s 0.2 and silent_after_s 1 (shipped: 10 and 60): a /health/ that never
    answers is told down after 1 s of silence, probed 0.2 s apart (so it says "1 s"); the
    radar process then dies and the dead-man exits."""
    _notify_yaml(tmp_path, settings, check_every_s=0.2, silent_after_s=1)
    child = _child()
    args = ["deadman", "--health-url", "http://127.0.0.1:9/health/", "--parent-pid", child.pid]
    started = time.monotonic()
    watching = asyncio.ensure_future(asyncio.to_thread(call_command, *map(str, args)))
    down = await fake_telegram.wait_sent(lambda m: "DOWN" in m.text, 15)
    assert time.monotonic() - started < 30  # not the shipped 60 s silence
    assert "has not answered for 1 s (connection refused)" in down.text
    child.kill()
    await asyncio.to_thread(child.wait, 10)
    await asyncio.wait_for(watching, 15)
    assert len(fake_telegram.sent) == 1  # its death was already told


@pytest.mark.parametrize(("ping_every_s", "pings"), [(60, 1), (0.1, 5)])
async def test_the_radar_service_pings_deadman_ping_url_every_ping_every_s(
    fake_telegram, health, settings, tmp_path, ping_every_s, pings
):
    """Inside the radar the service GETs DEADMAN_PING_URL at once, then every ping_every_s:
    over 0.6 s, one ping with the shipped 60 s, at least five with 0.1 s."""
    from notify.service import NotifyService

    _notify_yaml(tmp_path, settings, ping_every_s=ping_every_s)
    settings.DEADMAN_PING_URL = f"http://127.0.0.1:{health.port}/ping"
    service = NotifyService(commands=False, radar_mode="live")
    await service.start()
    try:
        await _until(lambda: health.hits >= 1)
        await asyncio.sleep(0.6)
    finally:
        await service.stop(drain_timeout_s=2)
    assert health.hits == pings if pings == 1 else health.hits >= pings


def test_the_parent_is_judged_by_parenthood_not_by_a_pid_that_can_be_reused():
    """A child's parent, once seen as its parent, is gone when the child is re-parented —
    even if another process reused that pid (on Windows within seconds); an unrelated pid is
    judged by signal 0."""
    import textwrap
    from pathlib import Path

    from notify.deadman import process_alive

    child = textwrap.dedent(
        """
        import os, sys, django
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
        django.setup()
        from notify.deadman import _PARENTS, process_alive
        parent = int(sys.argv[1])
        assert process_alive(parent) and parent in _PARENTS
        os.getppid = lambda: 1  # re-parented: the parent died (its pid may run again)
        print(process_alive(parent))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(os.getpid())],
        capture_output=True, text=True, timeout=60, check=False,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert process_alive(os.getpid())  # not our parent: signal 0 says alive
