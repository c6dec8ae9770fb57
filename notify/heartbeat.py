"""Proof of life: the hourly "alive" message, and the radar's own heartbeat row.

**The heartbeat message** (kind ``heartbeat``), every ``heartbeat_minutes`` of
``config/notify.yaml`` (0 = none), the first one interval after the service starts (the start
notice said the radar runs): "alive" and, per mode, the running sessions' realised P&L as the
Session page shows it (:func:`strategies.selectors.session_summary`: paper = the arena's
virtual ledgers, live = the real positions, never added together) — gross and net USDT,
trades, wins, open P&L. A phone that stops receiving it knows something is wrong even when
nothing else could tell (the dead-man covers a dead radar, the external ping a dead host).

**The radar beat** (:class:`notify.models.RadarBeat`): one row per radar process run, created
when the notify service starts inside the radar, ``beat_at`` refreshed every
:data:`BEAT_EVERY_S` seconds, ``stopped_at`` set on a clean stop. ``/status`` shows it; the
dead-man reads it to tell a radar that stopped cleanly (say nothing) from one that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.notices import Notice
from notify.config import NotifyConfig
from notify.models import RadarBeat
from notify.replies import age, amount, usdt
from strategies.selectors import session_summary

log = logging.getLogger(__name__)

BEAT_EVERY_S = 10.0


# --- the heartbeat message -----------------------------------------------------------------------


def _book_line(
    label: str,
    *,
    gross: float,
    fees: float,
    net: float,
    trades: int,
    wins: int,
    open_usdt: float | None = None,
    open_count: int | None = None,
) -> str:
    parts = [
        f"gross {usdt(gross)}",
        f"fees {amount(fees)}",
        f"net {usdt(net)} USDT",
        f"{trades} trades, {wins} wins",
    ]
    if open_usdt is not None:
        parts.append(f"open {usdt(open_usdt)}")
    if open_count is not None:
        parts.append(f"{open_count} open")
    return f"{label}: " + " · ".join(parts)


RADAR_STATES = {"ok": "ok", "degraded": "DEGRADED", "down": "DOWN", "unknown": "not probed yet"}


def heartbeat_text(now: datetime | None = None, *, radar_state: str | None = None) -> str:
    """The "alive" message (module doc). Realised money in USDT: net = gross − fees − funding;
    paper ``open`` = unrealised P&L of the open paper positions at the last 1m close.
    ``radar_state``: what the dead-man of this process last found at ``/health/`` (the
    ``telegram_bot`` process, apart from the radar: its own "alive" says nothing of the radar)."""
    now = now or datetime.now(UTC)
    lines = [f"💓 Scalp Radar alive · {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC"]
    if radar_state is not None:
        lines.append(f"Radar /health/: {RADAR_STATES.get(radar_state, radar_state)}")
    summary = session_summary()
    if not summary["has_sessions"]:
        lines.append("No running session yet.")
        return "\n".join(lines)
    paper = summary["account"]
    lines.append(
        _book_line(
            "Paper",
            gross=paper["gross"],
            fees=paper["fees"],
            net=paper["net"],
            trades=paper["trades"],
            wins=sum(g["paper"]["wins"] for g in summary["gauges"]),
            open_usdt=paper["unrealised"],
        )
    )
    live = summary["live_account"]
    if live is None:
        lines.append("Live: no live trade")
    else:
        lines.append(
            _book_line(
                "Live",
                gross=live["gross"],
                fees=live["fees"],
                net=live["net"],
                trades=live["trades"],
                wins=live["wins"],
                open_count=live["open"],
            )
        )
    tripped = [g["strategy"] for g in summary["gauges"] if g["tripped"]]
    if paper["tripped"]:
        tripped.insert(0, "account")
    if tripped:
        lines.append(f"Kill switch tripped: {', '.join(tripped)}")
    return "\n".join(lines)


def heartbeat_enqueue(
    config: NotifyConfig | None = None, *, radar_state: str | None = None
) -> list[Any]:
    """Queue the heartbeat for every chat (nothing when Telegram is off); the outbox rows.
    ``config``: the service's (default ``notify.yaml``'s)."""
    from notify import outbox

    notice = Notice(kind="heartbeat", text=heartbeat_text(radar_state=radar_state), source="radar")
    with transaction.atomic():
        return outbox.enqueue(notice, config=config)


async def heartbeat_loop(
    stop: asyncio.Event,
    *,
    every_s: float,
    send: Callable[[], Any] = heartbeat_enqueue,
    wake: Callable[[], None] | None = None,
) -> int:
    """Call ``send`` (in a worker thread) every ``every_s`` seconds until ``stop`` is set,
    then ``wake`` (the sender); ``every_s`` 0 = never. Returns how many were sent. A failed
    heartbeat (the database is down) is logged and skipped: the next one comes on time."""
    from asgiref.sync import sync_to_async

    sent = 0
    if every_s <= 0:
        return sent
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            break
        except TimeoutError:
            pass
        try:
            await sync_to_async(send, thread_sensitive=True)()
        except Exception as exc:
            log.warning("heartbeat not queued: %s: %s", type(exc).__name__, exc)
            continue
        sent += 1
        if wake is not None:
            wake()
    return sent


# --- the radar beat ------------------------------------------------------------------------------


def new_run_id() -> str:
    return uuid.uuid4().hex


def radar_beat_start(*, run_id: str, mode: str) -> RadarBeat:
    """The row of this radar run (this process's pid and host name)."""
    now = timezone.now()
    with transaction.atomic():
        return RadarBeat.objects.create(
            run_id=run_id,
            pid=os.getpid(),
            host=socket.gethostname()[:255],
            mode=mode[:16],
            started_at=now,
            beat_at=now,
        )


def radar_beat_touch(*, run_id: str) -> int:
    """The radar is alive now: ``beat_at`` = now (rows updated: 0 once it stopped)."""
    return RadarBeat.objects.filter(run_id=run_id, stopped_at__isnull=True).update(
        beat_at=timezone.now()
    )


def radar_beat_stop(*, run_id: str) -> int:
    """A clean stop: ``stopped_at`` = ``beat_at`` = now."""
    now = timezone.now()
    return RadarBeat.objects.filter(run_id=run_id, stopped_at__isnull=True).update(
        beat_at=now, stopped_at=now
    )


def radar_beat_stopped(*, pid: int) -> bool:
    """Whether the newest run of process ``pid`` (on this host) stopped cleanly."""
    beat = RadarBeat.objects.filter(pid=pid, host=socket.gethostname()[:255]).first()
    return beat is not None and beat.stopped_at is not None


async def radar_beat_loop(
    stop: asyncio.Event, *, run_id: str, every_s: float = BEAT_EVERY_S
) -> None:
    """Refresh the run's ``beat_at`` every ``every_s`` seconds until ``stop`` is set; a beat the
    database refuses is logged once per outage (the dead-man notices the silence)."""
    from asgiref.sync import sync_to_async

    failing_since: float | None = None
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            await sync_to_async(radar_beat_touch, thread_sensitive=True)(run_id=run_id)
        except Exception as exc:
            if failing_since is None:
                failing_since = loop.time()
                log.warning("radar beat not stored: %s: %s", type(exc).__name__, exc)
        else:
            if failing_since is not None:
                log.info("radar beat stored again after %s", age(loop.time() - failing_since))
                failing_since = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
