"""``/health/``: is the radar doing its job? Feed, candles, strategies, database, channel layer.

Two sources of truth:

* the in-process radar (``manage.py radar``: feed + runtime in the web process) registers in
  :data:`radar_status`; the runtime reports every closed candle it processed and every message
  the feed handed it, so the health check sees the running feed, not just the database;
* otherwise (production: the feed runs in the Celery ``feed`` worker) the newest stored 1m
  candle per enabled symbol, and the feed worker's single-instance lock ``feed:<exchange>``
  tells whether a feed runs elsewhere.

**Degraded** (HTTP 503) when any of these holds:

* the database does not answer ``SELECT 1``;
* the channel layer fails a ``group_send`` round trip to a private group within
  :data:`CHANNEL_TIMEOUT_S` (with Redis this is a real round trip through Redis);
* a LIVE feed is supposed to run (in this process, or another holds the feed lock) and it is
  disconnected (it reconnected since its last message: it is in its backoff), or the newest
  closed candle of an enabled symbol closed more than :data:`STALE_AFTER_S` ago;
* in ANY mode (live or replay), the in-process feed stopped without finishing (its writer gave
  up, it failed), or the writer is retrying through a database or channel-layer outage
  (:mod:`radar.writer`).

Warnings (reported, HTTP 200): a strategy errored (it stopped alone, the others trade: a
restart would not help), a REST poller failing.

Not degraded: a replay, running or finished (its candles are old by design); no feed at all in
this process and none holding the lock (the web keeps serving the stored record; the feed
worker's own liveness is its lock and beat's keep-alive, and a web health check must not
restart the web container because the feed worker is down).

The report is public (load balancers call it): names, statuses, counts and ages only, never
P&L amounts, kill-switch reasons (they quote losses) or error texts (they may name hosts).
A logged-in staff user also gets ``detail``: error messages, kill-switch reasons, lock holder.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import DatabaseError, connection
from django.db.models import Count, Max, Q

from strategies.config import get_config

MINUTE_MS = 60_000
# A 1m candle closes every 60 s and is detected within the feed's grace (5 s); three minutes
# means at least two closes were missed even counting a REST heal.
STALE_AFTER_S = 180.0
CHANNEL_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class ReplayFacts:
    """What a replay plays, read-only for the pages' banner: its candle range (open times of
    the first and last 1m candle, UTC epoch ms), its pace (``speed``× the wall clock after a
    warm-up at full speed until ``fast_until_ms``; ``None`` = as fast as possible) and its
    market clock (``market_ms()``, UTC epoch ms)."""

    first_ms: int
    last_ms: int
    speed: float | None
    fast_until_ms: int | None
    market_ms: Callable[[], int]


@dataclass(slots=True)
class RadarStatus:
    """What the in-process radar last did (written by the feed's thread, read by views)."""

    source: str | None = None  # "live" | "replay" | None (no feed in this process)
    running: bool = False
    finished: bool = False
    stats: Any = None  # the feed's FeedStats: its ``reconnects`` counter
    reconnects_seen: int = 0  # ``stats.reconnects`` when the feed last handed us a message
    last_candle_ms: dict[str, int] = field(default_factory=dict)  # open time per symbol
    outage: str | None = None  # what the writer is retrying through now (database, layer)
    failure: str | None = None  # why the feed or the writer stopped, when it failed
    pollers: dict[str, str | None] = field(default_factory=dict)  # kind -> failing since/why
    # Market time (UTC epoch ms) when it is not the wall clock: the fake exchange's, which
    # runs ``speed``× faster; candle ages are measured on it.
    market_ms: Callable[[], int] | None = None
    replay: ReplayFacts | None = None  # set while (and after) a replay runs in this process
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def feed_started(
        self,
        *,
        source: str,
        stats: Any,
        market_ms: Callable[[], int] | None = None,
        replay: ReplayFacts | None = None,
    ) -> None:
        with self._lock:
            self.source, self.stats, self.running, self.finished = source, stats, True, False
            self.reconnects_seen = stats.reconnects
            self.market_ms = market_ms
            self.replay = replay

    def feed_stopped(self, *, finished: bool, failure: str | None = None) -> None:
        with self._lock:
            self.running, self.finished, self.failure = False, finished, failure

    def outage_changed(self, outage: str | None) -> None:
        """The writer is retrying through ``outage`` (``None``: it is over)."""
        self.outage = outage

    def poller_changed(self, kind: str, failing: str | None) -> None:
        """A REST poller is failing (why and since when), or ``None``: it works again."""
        self.pollers[kind] = failing

    def heard_from_feed(self) -> None:
        """A price or candle arrived: the feed is connected (again)."""
        if self.stats is not None:
            self.reconnects_seen = self.stats.reconnects

    def candle_processed(self, symbol: str, open_ms: int) -> None:
        self.last_candle_ms[symbol] = open_ms
        self.heard_from_feed()

    def reset(self) -> None:
        with self._lock:
            self.source, self.stats, self.running, self.finished = None, None, False, False
            self.reconnects_seen = 0
            self.last_candle_ms = {}
            self.outage, self.failure, self.pollers = None, None, {}
            self.market_ms = None
            self.replay = None

    @property
    def connected(self) -> bool:
        return self.running and (
            self.stats is None or self.stats.reconnects <= self.reconnects_seen
        )


radar_status = RadarStatus()


def check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def check_channel_layer(timeout_s: float = CHANNEL_TIMEOUT_S) -> tuple[bool, str, float | None]:
    """A ``group_send`` to a private group, received back: (ok, error, round trip in ms)."""
    layer = get_channel_layer()
    if layer is None:
        return False, "no channel layer configured", None

    async def round_trip() -> float:
        group = f"health.{uuid.uuid4().hex}"
        channel = await layer.new_channel()
        started = time.perf_counter()
        await layer.group_add(group, channel)
        try:
            await layer.group_send(group, {"type": "health.ping"})
            await asyncio.wait_for(layer.receive(channel), timeout_s)
        finally:
            await layer.group_discard(group, channel)
        return (time.perf_counter() - started) * 1000.0

    try:
        return True, "", round(async_to_sync(round_trip)(), 2)
    except Exception as exc:  # any failure of the layer IS the finding: reported, not raised
        return False, f"{type(exc).__name__}: {exc}", None


def _feed_lock_holder(exchange: str) -> str | None:
    from trading.locks import single_instance_lock

    try:
        return single_instance_lock(f"feed:{exchange}").holder()
    except Exception:  # Redis unreachable: the channel layer check reports it (503)
        return None


def health_report(*, staff: bool = False) -> tuple[dict[str, Any], bool]:
    """The ``/health/`` document and whether the radar is degraded (module docstring)."""
    problems: list[str] = []
    warnings: list[str] = []
    detail: dict[str, Any] = {}
    config = get_config()
    symbols = config.enabled_symbols
    exchange = next(iter(config.exchanges.exchanges))
    now_ms = int(time.time() * 1000)

    db_ok, db_error = check_database()
    if not db_ok:
        problems.append("database unreachable")
        detail["database_error"] = db_error
    layer_ok, layer_error, round_trip_ms = check_channel_layer()
    if not layer_ok:
        problems.append("channel layer unreachable")
        detail["channel_layer_error"] = layer_error

    status = radar_status
    if status.source is not None:
        state = (
            ("connected" if status.connected else "disconnected")
            if status.running
            else ("finished" if status.finished else "stopped")
        )
        if state == "stopped" and status.failure:
            state = "failed"
            detail["feed_failure"] = status.failure
        feed = {"state": state, "source": status.source, "in_process": True,
                "writer": "retrying" if status.outage else "ok"}  # fmt: skip
        live_expected = status.source == "live"
        if state in ("stopped", "failed") or (live_expected and state != "connected"):
            problems.append(f"feed {state}")
        if status.outage:
            problems.append(f"writer retrying through a {status.outage.split(':')[0]} outage")
            detail["writer_outage"] = status.outage
        for kind, failing in status.pollers.items():
            if failing:
                warnings.append(f"{kind.replace('_', ' ')} poller failing")
                detail.setdefault("pollers", {})[kind] = failing
    else:
        holder = _feed_lock_holder(exchange)
        feed = {"state": "elsewhere" if holder else "absent", "source": None, "in_process": False}
        live_expected = holder is not None
        if holder:
            detail["feed_lock_holder"] = holder

    candles: dict[str, dict[str, Any]] = {}
    stored: dict[str, int] = {}
    if db_ok:
        from trading.models import Candle

        stored = dict(
            Candle.objects.filter(exchange=exchange, symbol__in=symbols, timeframe="1m")
            .values("symbol")
            .annotate(last=Max("open_time_ms"))
            .values_list("symbol", "last")
        )
    # Candle ages in market time: the wall clock, or the fake exchange's faster one.
    market_now_ms = status.market_ms() if status.market_ms is not None else now_ms
    for symbol in symbols:
        last = status.last_candle_ms.get(symbol)
        where = "runtime"
        if last is None:
            last, where = stored.get(symbol), "database"
        age_s = None if last is None else round((market_now_ms - last - MINUTE_MS) / 1000.0, 1)
        candles[symbol] = {"last_close_ms": None if last is None else last + MINUTE_MS,
                           "age_s": age_s, "source": where}  # fmt: skip
        if live_expected and (age_s is None or age_s > STALE_AFTER_S):
            problems.append(f"{symbol}: no closed candle for over {STALE_AFTER_S:.0f} s")

    strategies: list[dict[str, Any]] = []
    open_positions: dict[str, int] | None = None
    if db_ok:
        from trading.models import Position, TradingSession

        sessions = TradingSession.objects.exclude(status=TradingSession.Status.ENDED).order_by(
            "strategy_name"
        )
        for name, state, tripped, reason, error in sessions.values_list(
            "strategy_name", "status", "kill_switch_tripped", "kill_switch_reason", "error_reason"
        ):
            strategies.append({"name": name, "status": state, "kill_switch_tripped": tripped})
            if tripped:
                detail.setdefault("kill_switch_reasons", {})[name] = reason
            if state == TradingSession.Status.ERRORED:
                warnings.append(f"strategy {name} errored")
                detail.setdefault("errors", {})[name] = error
        counts = Position.objects.filter(status=Position.Status.OPEN).aggregate(
            paper=Count("pk", filter=Q(shadow=False)), shadow=Count("pk", filter=Q(shadow=True))
        )
        open_positions = {"paper": counts["paper"], "shadow": counts["shadow"]}

    degraded = bool(problems)
    report: dict[str, Any] = {
        "status": "degraded" if degraded else "ok",
        "problems": problems,
        "warnings": warnings,
        "checked_at_ms": now_ms,
        "database": {"ok": db_ok, "vendor": connection.vendor},
        "channel_layer": {
            "ok": layer_ok,
            "backend": type(get_channel_layer()).__name__,
            "round_trip_ms": round_trip_ms,
        },
        "feed": feed,
        "stale_after_s": STALE_AFTER_S,
        "candles": candles,
        "strategies": strategies,
        "open_positions": open_positions,
    }
    if staff:
        report["detail"] = detail
    return report, degraded
