"""The watchdog: anomalies of the running radar, each raised ONCE as an alert and cleared once.

An asyncio task beside the feed (started and stopped by :func:`radar.launch.run_feed`), which
every :attr:`WatchdogThresholds.check_every_s` wall seconds looks at what the radar is doing:

* ``feed``: the LIVE feed disconnected (``radar.health.radar_status``: it reconnected since its
  last message, so it is in its backoff) for more than ``ws_disconnected_s`` wall seconds;
* ``api_latency``: the exchange's REST API answering a cheap call (``fetch_time``, through the
  shared rate limiter) slower than ``api_latency_s`` twice in a row, or not at all (live only);
* ``candles:<symbol>``: no closed candle of a symbol for more than ``candle_silence_s`` of
  MARKET time (live only). Market time is the wall clock's, or the fake exchange's clock when
  the exchange is the fake (it runs ``speed`` times faster); silence is counted from the
  watchdog's start at the earliest, so a restart after a long stop is not a finding. A fake
  clock runs faster than the feed's own wall-clock timers (reconnect backoff, close grace):
  silence shorter than :data:`MIN_WALL_SILENCE_S` wall seconds is never a finding;
* ``strategy:<name>``: an ACTIVE strategy that emitted no signal for more than
  ``strategy_silence_minutes`` of market time while its candles keep arriving and it can
  decide on at least one symbol (a strategy missing an input says so in its input status
  instead; live only: a replay's silences are judged by its results);
* ``database`` / ``channel_layer``: ``radar.health.check_database`` / ``check_channel_layer``
  fail.

Each finding becomes one alert (``trading.alerts.alert_create``, source ``watchdog``, level
warning, error for the database and the channel layer) when it starts, and one ``info`` alert
when it is over, saying how long it lasted (that line also goes out as a ``watchdog`` notice
when :attr:`WatchdogThresholds.clear_notice_levels` says the raise reached the phone but an info
alert would not: the phone hears the episode end). An alert the database refuses (it is down) waits
and is stored once it answers; a finding that ended before its alert could be stored is stored
as ONE alert with its length. While the database is down, the dashboard cannot show it: the
dead-man (``notify.deadman``, another process) reports it from ``/health/``.

The thresholds come from the caller (the wiring reads them from ``config/notify.yaml``; the
radar imports nothing above it): :class:`WatchdogThresholds`, defaults here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from common.notices import Notice, emit
from radar.arena import ArenaEntry
from radar.health import RadarStatus, check_channel_layer, check_database
from trading.models import TradingSession

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
MIN_WALL_SILENCE_S = 10.0
LATENCY_STRIKES = 2  # consecutive slow answers before ``api_latency`` is a finding
SOURCE = "watchdog"


@dataclass(frozen=True, slots=True)
class WatchdogThresholds:
    """When a condition becomes a finding (module doc). Seconds are wall time except
    ``candle_silence_s`` and ``strategy_silence_minutes`` (market time)."""

    ws_disconnected_s: float = 30.0
    api_latency_s: float = 2.0
    candle_silence_s: float = 120.0
    strategy_silence_minutes: float = 60.0
    check_every_s: float = 5.0
    # Findings of these levels also get their "cleared" line to the phone as a ``watchdog``
    # notice (``common.notices``): the wiring sets it when the raise reaches the phone but an
    # info alert would not (``alerts_min_level`` above info), so an episode is told to its end.
    clear_notice_levels: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition holding now: ``key`` identifies it across checks, ``message`` says it."""

    key: str
    level: str
    message: str
    began_s: float | None = None  # wall time it began, when known (else: when it was raised)


@dataclass(slots=True)
class _Raised:
    finding: Finding
    since_wall_s: float
    since_utc: datetime


@dataclass(slots=True)
class _Pending:
    level: str
    message: str
    payload: dict[str, Any]
    key: str = ""
    raise_of: _Raised | None = None  # a raise's alert: merged with its clear if both wait
    notice: bool = False  # also a ``watchdog`` notice (a clear: clear_notice_levels)


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class Watchdog:
    """The checks of the module doc over ``status`` and ``arena``; :meth:`check` evaluates them
    once (sync: it queries the database), :meth:`run` loops. ``live``: the feed is a live one
    (the fake exchange included); ``market_ms``: market time (UTC epoch ms); ``wall``:
    monotonic seconds. ``exchange`` and ``limiter``: for the latency probe (live only)."""

    status: RadarStatus
    arena: Sequence[ArenaEntry]
    symbols: Sequence[str]
    thresholds: WatchdogThresholds = field(default_factory=WatchdogThresholds)
    live: bool = False
    exchange: Any = None
    limiter: Any = None
    market_ms: Callable[[], int] = wall_ms
    wall: Callable[[], float] = time.monotonic
    database: Callable[[], tuple[bool, str]] = check_database
    channel_layer: Callable[[], tuple[bool, str, float | None]] = check_channel_layer
    raised: dict[str, _Raised] = field(default_factory=dict)
    pending: list[_Pending] = field(default_factory=list)
    latency_s: float | None = None  # the newest measured REST latency
    latency_error: str = ""
    _slow: int = 0
    _started_wall_s: float | None = None
    _started_market_ms: int = 0
    _disconnected_since: float | None = None
    _candle_seen: dict[str, tuple[int | None, float]] = field(default_factory=dict)
    _signals: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> count, since

    # -- the checks --------------------------------------------------------------------------
    def findings(self) -> list[Finding]:
        """Every condition holding now (sync: it asks the database and the channel layer)."""
        if self._started_wall_s is None:
            self._started_wall_s, self._started_market_ms = self.wall(), self.market_ms()
        found: list[Finding] = []
        db_ok, db_error = self.database()
        if not db_ok:
            found.append(Finding("database", "error", f"database unreachable: {db_error}"))
        layer_ok, layer_error, _ = self.channel_layer()
        if not layer_ok:
            found.append(
                Finding("channel_layer", "error", f"channel layer unreachable: {layer_error}")
            )
        if self.live:
            found.extend(self._feed())
            found.extend(self._latency())
            found.extend(self._candles())
            found.extend(self._strategies())
        return found

    def _feed(self) -> list[Finding]:
        status = self.status
        if not status.running or status.connected:
            self._disconnected_since = None
            return []
        now = self.wall()
        if self._disconnected_since is None:
            self._disconnected_since = now
        limit = self.thresholds.ws_disconnected_s
        if now - self._disconnected_since <= limit:
            return []
        message = f"live feed disconnected for over {limit:g} s"
        return [Finding("feed", "warning", message, self._disconnected_since)]

    def _latency(self) -> list[Finding]:
        limit = self.thresholds.api_latency_s
        if self.latency_error:
            return [
                Finding(
                    "api_latency",
                    "warning",
                    f"exchange REST API not answering: {self.latency_error}",
                )
            ]
        if self._slow >= LATENCY_STRIKES and self.latency_s is not None:
            return [
                Finding(
                    "api_latency",
                    "warning",
                    f"exchange REST API slow: {self.latency_s:.1f} s per request "
                    f"(limit {limit:g} s)",
                )
            ]
        return []

    def _candles(self) -> list[Finding]:
        now_wall, now_market = self.wall(), self.market_ms()
        found = []
        for symbol in self.symbols:
            last = self.status.last_candle_ms.get(symbol)
            seen = self._candle_seen.get(symbol)
            if seen is None or seen[0] != last:
                seen = self._candle_seen[symbol] = (last, now_wall)
            closed_ms = -1 if last is None else last + MINUTE_MS
            silent_s = (now_market - max(closed_ms, self._started_market_ms)) / 1000.0
            wall_silent_s = now_wall - seen[1]
            if silent_s > self.thresholds.candle_silence_s and wall_silent_s > MIN_WALL_SILENCE_S:
                found.append(
                    Finding(
                        f"candles:{symbol}",
                        "warning",
                        f"{symbol}: no closed candle for {silent_s:.0f} s",
                        seen[1],
                    )
                )
        return found

    def _strategies(self) -> list[Finding]:
        closes = [t + MINUTE_MS for s in self.symbols if (t := self.status.last_candle_ms.get(s))]
        if not closes:
            return []
        now_ms = max(closes)  # market time of the newest candle: it advances while they flow
        limit_ms = self.thresholds.strategy_silence_minutes * MINUTE_MS
        found = []
        for entry in self.arena:
            name = entry.config.name
            active = not entry.errored and entry.session.status == TradingSession.Status.ACTIVE
            count, since = self._signals.get(name, (entry.signal_count, now_ms))
            if entry.signal_count != count or not active:  # a pause does not count as silence
                count, since = entry.signal_count, now_ms
            self._signals[name] = (count, since)
            can_decide = any(not entry.kernel.skipped_reason(s) for s in entry.symbols)
            if active and can_decide and now_ms - since > limit_ms:
                minutes = (now_ms - since) / MINUTE_MS
                found.append(
                    Finding(
                        f"strategy:{name}",
                        "warning",
                        f"{name}: no signal for {minutes:.0f} min of market time "
                        "while its candles keep arriving",
                    )
                )
        return found

    async def measure_latency(self) -> None:
        """Time one ``fetch_time`` through the shared limiter (the limiter's wait excluded):
        a failure, or no answer within twice the limit (at least 5 s), is an error."""
        if self.exchange is None or not getattr(self.exchange, "has", {}).get("fetchTime"):
            return
        if self.limiter is not None:
            await self.limiter.acquire("market_data")
        started = time.perf_counter()
        try:
            await asyncio.wait_for(
                self.exchange.fetch_time(), max(5.0, 2 * self.thresholds.api_latency_s)
            )
        except TimeoutError:
            self.latency_s, self.latency_error = None, "no answer within the timeout"
            return
        except Exception as exc:  # the exchange's failure IS the finding
            self.latency_s = None
            self.latency_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            return
        self.observe_latency(time.perf_counter() - started)

    def observe_latency(self, seconds: float) -> None:
        """One REST round trip of ``seconds``."""
        self.latency_s, self.latency_error = seconds, ""
        self._slow = self._slow + 1 if seconds > self.thresholds.api_latency_s else 0

    # -- raising and clearing ----------------------------------------------------------------
    def check(self) -> list[_Pending]:
        """Evaluate every condition, queue the alerts of what started or ended, store what
        the database takes; return the alerts still waiting."""
        now = self.wall()
        holding = {f.key: f for f in self.findings()}
        for key, finding in holding.items():
            if key not in self.raised:
                began = now if finding.began_s is None else finding.began_s
                raised = _Raised(finding, began, datetime.now(UTC) - timedelta(seconds=now - began))
                self.raised[key] = raised
                log.warning("watchdog: %s", finding.message)
                self.pending.append(
                    _Pending(
                        finding.level,
                        finding.message,
                        {"watchdog": key, "state": "raised"},
                        key,
                        raised,
                    )
                )
        for key in [k for k in self.raised if k not in holding]:
            self._clear(self.raised.pop(key), now)
        self._store()
        return self.pending

    def _clear(self, raised: _Raised, now: float) -> None:
        lasted = _duration(now - raised.since_wall_s)
        finding = raised.finding
        log.info("watchdog: over after %s: %s", lasted, finding.message)
        waiting = next((p for p in self.pending if p.raise_of is raised), None)
        if waiting is not None:  # never stored: one alert tells the whole episode
            waiting.message = (
                f"{finding.message} (from {raised.since_utc:%H:%M:%S} UTC, for {lasted}; over)"
            )
            waiting.payload = {"watchdog": finding.key, "state": "over", "lasted": lasted}
            waiting.raise_of = None
            return
        self.pending.append(
            _Pending(
                "info",
                f"cleared after {lasted}: {finding.message}",
                {"watchdog": finding.key, "state": "cleared", "lasted": lasted},
                finding.key,
                notice=finding.level in self.thresholds.clear_notice_levels,
            )
        )

    def _store(self) -> None:
        from trading.alerts import alert_create

        while self.pending:
            alert = self.pending[0]
            try:
                with transaction.atomic():
                    alert_create(
                        level=alert.level,
                        message=alert.message,
                        source=SOURCE,
                        payload=alert.payload,
                    )
                    if alert.notice:
                        emit(Notice(kind="watchdog", text=f"✅ {alert.message}", source=SOURCE))
            except Exception as exc:  # the database is down: kept, stored when it answers
                log.warning("watchdog alert not stored yet: %s", exc)
                return
            self.pending.pop(0)

    async def run(self) -> None:
        """Check every ``check_every_s`` until cancelled; a failing check is logged, never
        fatal to the radar."""
        while True:
            try:
                if self.live:
                    await self.measure_latency()
                await sync_to_async(self.check, thread_sensitive=True)()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watchdog check failed")
            await asyncio.sleep(self.thresholds.check_every_s)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_configured = WatchdogThresholds()


def configure(thresholds: WatchdogThresholds) -> None:
    """The thresholds a radar started without explicit ones uses (the Celery feed worker's):
    the wiring (``scalpradar.celery``) sets them from ``notify.yaml`` at worker start, since
    this package may not import notify."""
    global _configured
    _configured = thresholds


def configured() -> WatchdogThresholds:
    return _configured


def start_watchdog(
    thresholds: WatchdogThresholds | None,
    *,
    status: RadarStatus,
    runtime: Any,
    symbols: Sequence[str],
    live: bool,
    exchange: Any = None,
    limiter: Any = None,
    market_ms: Callable[[], int] | None = None,
) -> asyncio.Task[None] | None:
    """Start the watchdog task on the running loop (``None`` thresholds: no watchdog); cancel
    the returned task to stop it."""
    if thresholds is None:
        return None
    watchdog = Watchdog(
        status=status,
        arena=runtime.arena,
        symbols=tuple(symbols),
        thresholds=thresholds,
        live=live,
        exchange=exchange if live else None,
        limiter=limiter,
        market_ms=market_ms or wall_ms,
    )
    return asyncio.ensure_future(watchdog.run())
