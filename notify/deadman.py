"""The dead-man: a process apart from the radar that says so when the radar stops answering.

A radar cannot report its own death, so ``manage.py deadman`` (or the ``telegram_bot`` process
of the production compose file) probes the radar's ``/health/`` (``RADAR_HEALTH_URL``) every
``deadman.check_every_s`` of ``config/notify.yaml`` and tells the chats, once per change:

* no answer for ``silent_after_s`` (refused, timed out: the process is dead or hung) ->
  "radar down";
* an answer that says ``degraded`` (HTTP 503: database, channel layer, feed, candles; see
  :mod:`radar.health`) -> its problems, once per distinct set of problems;
* an answer after "down" or "degraded" -> "radar back" / "radar ok again".

An answer that is not the health document (another HTTP status, not JSON) counts as degraded
("HTTP 502"): something answers, but not a healthy radar. In production the web's report says
the feed runs ``elsewhere`` (the ``feed`` worker holds its lock); a feed seen running that stays
``absent`` for ``silent_after_s`` (the worker died, or Celery beat, which restarts it, is gone)
is a problem here although ``/health/`` stays 200 (a web health check must not restart the web
for it).

Delivery is the dead-man's own (:class:`Delivery`): the message goes through the outbox (a
durable row) and is sent at once by the dead-man's own :class:`notify.sender.Sender` when the
database answers — after what the silent radar left queued, sent first in its own message(s),
so that the alarm is not the tail of a batch opening with "alive"; when the database does not
answer (it may be why the radar died), it goes straight to the chats through the Bot API,
kept in memory and retried each probe until sent.

**Embedded** (``--parent-pid``): the radar spawns its dead-man with its own pid. When that
process is gone, the dead-man does not wait for ``silent_after_s``: a radar whose run row
(:class:`notify.models.RadarBeat`) says it stopped cleanly gets no message; any other death
is told at once ("radar down: its process is gone"), then the dead-man exits once the message
is delivered — retried meanwhile, until it goes stale (``stale_after_minutes``) if Telegram
stays unreachable. A restarted radar
spawns its own dead-man, so two never watch the same run; a radar that is alive but hung is
reported down after ``silent_after_s`` and back if it recovers, as in production.

**External ping** (:func:`ping_loop`): with ``DEADMAN_PING_URL`` set (a healthchecks-style
URL), a GET every ``ping_every_s`` while the radar is known alive, so an outside service
notices when everything here, the host included, is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, transaction

from common.notices import Notice
from notify.replies import age

log = logging.getLogger(__name__)

SOURCE = "deadman"
PROBE_TIMEOUT_S = 5.0
PING_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 20.0
PRE_DRAIN_TIMEOUT_S = 5.0
DONE = ("sent", "stale", "failed")


@dataclass(frozen=True, slots=True)
class Probe:
    """One look at ``/health/``: ``answered`` (any HTTP answer), ``degraded`` with its
    ``problems``, or the ``error`` when nothing answered."""

    answered: bool
    degraded: bool = False
    problems: tuple[str, ...] = ()
    error: str = ""
    feed_state: str | None = None  # the report's ``feed.state`` ("elsewhere", "absent"...)


@dataclass(frozen=True, slots=True)
class Message:
    level: str
    text: str


def _host_header(url: str) -> dict[str, str]:
    """A ``Host`` header the radar accepts: the URL's host when ``ALLOWED_HOSTS`` takes it,
    else the first ``ALLOWED_HOSTS`` entry (a compose service name such as ``web`` is rarely
    listed; the docker health check does the same)."""
    from django.http.request import validate_host

    host = urlsplit(url).hostname or ""
    allowed = list(getattr(settings, "ALLOWED_HOSTS", []))
    if not allowed or validate_host(host, allowed):
        return {}
    first = allowed[0].lstrip(".*") or "localhost"
    return {"Host": first}


async def probe_health(http: aiohttp.ClientSession, url: str) -> Probe:
    """GET ``url`` (at most :data:`PROBE_TIMEOUT_S`): the radar's health as :class:`Probe`."""
    try:
        async with http.get(
            url, headers=_host_header(url), timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
        ) as response:
            status = response.status
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
    except aiohttp.ClientConnectorError:
        return Probe(answered=False, error="connection refused")
    except TimeoutError:
        return Probe(answered=False, error=f"no answer within {PROBE_TIMEOUT_S:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return Probe(answered=False, error=f"{type(exc).__name__}: {exc}"[:200])
    if not isinstance(body, dict) or status not in (200, 503):
        return Probe(answered=True, degraded=True, problems=(f"HTTP {status} from /health/",))
    feed = body.get("feed")
    feed_state = feed.get("state") if isinstance(feed, dict) else None
    if status == 200 and body.get("status") == "ok":
        return Probe(answered=True, feed_state=feed_state)
    problems = tuple(str(p) for p in body.get("problems") or ()) or ("degraded",)
    return Probe(answered=True, degraded=True, problems=problems, feed_state=feed_state)


@dataclass(slots=True)
class Watch:
    """What the dead-man last told, and the messages each new observation calls for (module
    doc). Times are monotonic seconds (``now``)."""

    url: str
    silent_after_s: float
    started_s: float
    state: str = "unknown"  # unknown | ok | degraded | down
    last_answer_s: float | None = None
    last_error: str = ""
    told_problems: tuple[str, ...] = ()
    feed_seen_elsewhere: bool = False
    feed_absent_since_s: float | None = None

    def observe(self, probe: Probe, now: float) -> list[Message]:
        probe = self._with_feed_gone(probe, now)
        if not probe.answered:
            self.last_error = probe.error
            silent_s = now - self._heard_s()
            if self.state == "down" or silent_s < self.silent_after_s:
                return []
            return [self._down(f"{self.url} has not answered for {age(silent_s)} ({probe.error})")]
        was, silence = self.state, now - self._heard_s()
        self.last_answer_s = now
        if not probe.degraded:
            self.state, self.told_problems = "ok", ()
            if was == "down":
                return [
                    Message(
                        "info",
                        f"✅ Scalp Radar back: /health/ answers again, ok "
                        f"(silent for {age(silence)})",
                    )
                ]
            if was == "degraded":
                return [Message("info", "✅ Scalp Radar ok again: /health/ reports no problem")]
            return []
        problems = tuple(sorted(probe.problems))
        self.state = "degraded"
        if was == "down":
            self.told_problems = problems
            return [
                Message(
                    "warning",
                    f"⚠️ Scalp Radar back after {age(silence)} of silence, "
                    f"but degraded: {'; '.join(problems)}",
                )
            ]
        if problems == self.told_problems:
            return []
        self.told_problems = problems
        return [Message("warning", f"⚠️ Scalp Radar degraded: {'; '.join(problems)}")]

    def _with_feed_gone(self, probe: Probe, now: float) -> Probe:
        """Production: the web reports the feed ``elsewhere`` while the feed worker holds its
        lock, and ``absent`` — not degraded — once the lock expired (the web must not be
        restarted for it). Absent for ``silent_after_s`` after it was seen running, the feed
        worker (or Celery beat, which restarts it) is gone: a problem."""
        if probe.feed_state == "elsewhere":
            self.feed_seen_elsewhere, self.feed_absent_since_s = True, None
        if probe.feed_state != "absent" or not self.feed_seen_elsewhere:
            return probe
        if self.feed_absent_since_s is None:
            self.feed_absent_since_s = now
        absent_s = now - self.feed_absent_since_s
        if absent_s < self.silent_after_s:
            return probe
        gone = (  # the threshold, not the age: one text per episode, told once
            f"no radar feed running for over {age(self.silent_after_s)}: "
            "the feed worker or Celery beat is gone"
        )
        return replace(probe, degraded=True, problems=(*probe.problems, gone))

    def _heard_s(self) -> float:
        return self.last_answer_s if self.last_answer_s is not None else self.started_s

    def parent_gone(self, pid: int, now: float) -> list[Message]:
        """The radar's process ``pid`` no longer exists (and did not stop cleanly)."""
        if self.state == "down":
            return []
        last = (
            f"/health/ last answered {age(now - self.last_answer_s)} ago"
            if self.last_answer_s is not None
            else "/health/ never answered"
        )
        return [self._down(f"its process (pid {pid}) is gone: killed or crashed; {last}")]

    def _down(self, why: str) -> Message:
        self.state, self.told_problems = "down", ()
        return Message("error", f"🛑 Scalp Radar DOWN: {why}")


_HANDLES: dict[int, int] = {}  # Windows: pid -> a process handle held since the first look
_PARENTS: set[int] = set()  # POSIX: pids seen as this process's parent


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs — the same process as at the first call, not one that
    reused its number after it died (PIDs are reused quickly on Windows).

    Windows: the first call opens a handle and keeps it (a process id is never reused while a
    handle to it is open); alive while its exit code is STILL_ACTIVE. POSIX: the embedded
    dead-man is the radar's child, so ``pid`` seen once as ``os.getppid()`` is alive exactly
    while it still is our parent; any other pid: signal 0."""
    if os.name == "nt":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = _HANDLES.get(pid)
        if handle is None:
            handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
            if not handle:
                return False
            _HANDLES[pid] = handle
        code = ctypes.c_ulong()
        alive = bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and (
            code.value == 259  # STILL_ACTIVE
        )
        if not alive:
            kernel32.CloseHandle(_HANDLES.pop(pid))
        return alive
    if pid == os.getppid():
        _PARENTS.add(pid)
        return True
    if pid in _PARENTS:
        return False  # our parent died: we were handed to init (or a subreaper)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


# --- delivery ------------------------------------------------------------------------------------


def _enqueue(message: Message) -> list[int]:
    from notify import outbox

    with transaction.atomic():
        rows = outbox.enqueue(
            Notice(kind="watchdog", text=message.text, level=message.level, source=SOURCE)
        )
    return [row.pk for row in rows]


def _undelivered(ids: list[int]) -> list[int]:
    from notify.models import Notification

    return list(
        Notification.objects.filter(pk__in=ids)
        .exclude(status__in=DONE)
        .values_list("pk", flat=True)
    )


@dataclass(slots=True)
class Delivery:
    """Gets the dead-man's messages to the chats (module doc). ``sender``: a running
    :class:`notify.sender.Sender` of this process to wake (the ``telegram_bot`` service), or
    ``None``: one is made and drained here (``manage.py deadman``)."""

    sender: Any = None
    drain_timeout_s: float = DRAIN_TIMEOUT_S
    queued: list[int] = field(default_factory=list)  # outbox rows not delivered yet
    # (monotonic s held since, chat, text), held in memory while the database is down
    direct: list[tuple[float, str, str]] = field(default_factory=list)
    _own_sender: Any = None
    _bot: Any = None

    async def send(self, message: Message) -> None:
        log.warning("dead-man: %s", message.text)
        if self.sender is None:
            # What the radar queued before it went silent goes first, in its own message(s):
            # the alarm must not arrive as the tail of a batch that opens with "alive".
            await self._drain(PRE_DRAIN_TIMEOUT_S)
        try:
            self.queued.extend(await sync_to_async(_enqueue, thread_sensitive=True)(message))
        except DatabaseError as exc:
            log.warning("dead-man: the database refuses the message (%s): sent directly", exc)
            held_since = time.monotonic()
            self.direct += [(held_since, chat, message.text) for chat in settings.TELEGRAM_CHAT_IDS]
        await self.flush()

    async def flush(self) -> bool:
        """Try to deliver what waits; True when nothing does (every message delivered, or
        dropped as stale)."""
        if self.direct:
            await self._send_direct()
        if self.queued:
            if self.sender is not None:
                self.sender.wake()
            else:
                await self._drain()
            with contextlib.suppress(DatabaseError):  # kept: asked again at the next flush
                self.queued = await sync_to_async(_undelivered, thread_sensitive=True)(self.queued)
        return not self.direct and not self.queued

    async def _drain(self, timeout_s: float | None = None) -> None:
        if self._own_sender is None:
            from notify.config import get_notify_config
            from notify.sender import Sender, worker_name

            self._own_sender = Sender(
                self._the_bot(), worker_id=worker_name("deadman"), config=get_notify_config()
            )
        try:
            await self._own_sender.drain(self.drain_timeout_s if timeout_s is None else timeout_s)
        except Exception as exc:  # the network or the database: tried again at the next probe
            log.warning("dead-man: drain failed: %s: %s", type(exc).__name__, exc)

    async def _send_direct(self) -> None:
        """Send the messages held in memory, chat by chat (a chat already served is not sent
        twice); one older than ``stale_after_minutes`` is dropped, as the outbox would."""
        from telegram.error import TelegramError

        from notify.config import get_notify_config
        from notify.telegram import chat_param, scrub

        stale_after_s = get_notify_config().stale_after_minutes * 60.0
        bot = self._the_bot()
        while self.direct:
            held_since, chat, text = self.direct[0]
            if time.monotonic() - held_since > stale_after_s:
                log.error("dead-man: message to chat %s never sent, dropped: %s", chat, text)
                self.direct.pop(0)
                continue
            try:
                await bot.initialize()  # once; a no-op after
                await bot.send_message(chat_id=chat_param(chat), text=text)
            except TelegramError as exc:  # kept in memory; the next probe tries again
                log.warning("dead-man: direct send failed: %s", scrub(str(exc)))
                return
            self.direct.pop(0)

    def _the_bot(self) -> Any:
        if self._bot is None:
            from notify.telegram import make_bot

            self._bot = make_bot()
        return self._bot

    async def close(self) -> None:
        if self._bot is not None:
            try:
                await self._bot.shutdown()
            except Exception as exc:
                log.info("dead-man: bot shutdown: %s", type(exc).__name__)
            self._bot = None


# --- the loop ------------------------------------------------------------------------------------


async def run_deadman(
    *,
    health_url: str,
    check_every_s: float,
    silent_after_s: float,
    delivery: Delivery,
    stop: asyncio.Event | None = None,
    parent_pid: int | None = None,
    once: bool = False,
    on_state: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    alive: Callable[[int], bool] = process_alive,
    stopped_cleanly: Callable[[int], Awaitable[bool]] | None = None,
) -> str:
    """Probe ``health_url`` every ``check_every_s`` until ``stop`` is set (or, with
    ``parent_pid``, until that process is gone and its death told), telling the chats through
    ``delivery`` (module doc). ``once``: one probe, no answer = down at once (a one-shot check).
    ``on_state``: told the state after each probe (the service's ping gate). Returns the last
    state: ``ok`` | ``degraded`` | ``down`` | ``stopped`` (the parent stopped cleanly)."""
    stop = stop or asyncio.Event()
    stopped_cleanly = stopped_cleanly or _stopped_cleanly
    log.info("dead-man watching %s (parent pid %s)", health_url, parent_pid)
    watch = Watch(health_url, 0.0 if once else silent_after_s, clock())
    async with aiohttp.ClientSession() as http:
        while True:
            probe = await probe_health(http, health_url)
            messages = watch.observe(probe, clock())
            if parent_pid is not None and not alive(parent_pid):
                if await stopped_cleanly(parent_pid):
                    log.info("dead-man: the radar (pid %d) stopped cleanly", parent_pid)
                    return "stopped"
                messages += watch.parent_gone(parent_pid, clock())
            for message in messages:
                await delivery.send(message)
            delivered = await delivery.flush()
            if on_state is not None:
                on_state(watch.state)
            if once or (
                parent_pid is not None
                and watch.state == "down"
                and delivered
                and not alive(parent_pid)
            ):
                return watch.state
            try:
                await asyncio.wait_for(stop.wait(), check_every_s)
                return watch.state
            except TimeoutError:
                pass


async def _stopped_cleanly(pid: int) -> bool:
    from notify.heartbeat import radar_beat_stopped

    try:
        return await sync_to_async(radar_beat_stopped, thread_sensitive=True)(pid=pid)
    except DatabaseError:
        return False


async def ping_loop(
    stop: asyncio.Event,
    *,
    url: str,
    every_s: float,
    healthy: Callable[[], bool] = lambda: True,
) -> int:
    """GET ``url`` every ``every_s`` seconds while ``healthy()`` until ``stop`` is set (the
    first at once); a failure is logged once per outage. Returns the pings that answered 2xx."""
    answered = 0
    failing = False
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PING_TIMEOUT_S)) as http:
        while not stop.is_set():
            if healthy():
                try:
                    async with http.get(url) as response:
                        ok = 200 <= response.status < 300
                        why = f"HTTP {response.status}"
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    ok, why = False, type(exc).__name__
                if ok:
                    answered += 1
                    if failing:
                        log.info("dead-man ping answers again")
                elif not failing:
                    log.warning("dead-man ping to DEADMAN_PING_URL failed: %s", why)
                failing = not ok
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    return answered
