"""The REST pollers of the embedded mode, on the radar's own event loop.

Production runs ``trading.tasks.poll_funding`` / ``poll_open_interest`` from Celery beat; the
embedded mode (no beat: ``CELERY_TASK_ALWAYS_EAGER``) runs the same reads and writes here, on the
same schedule (``CELERY_BEAT_SCHEDULE``: funding 5 min, open interest 1 min), through the
shared rate limiter. The runtime reads the stored rows into the kernels
(:meth:`radar.inputs.MarketInputs.read_new`).

Supervised: a poller never stops, and never stops the feed. A failed poll (exchange, database)
starts an OUTAGE: logged, told to ``/health/`` (a warning) and stored as one alert — once the
database takes it, so a database outage is told when it ends —, then the poll is retried after
a backoff that doubles from :data:`RETRY_FIRST_S` up to the poll's own interval; the first
poll that works again ends the outage (one "back" alert with its length and attempts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from radar.health import RadarStatus
from trading.alerts import alert_create
from trading.polling import (
    MarketDataLimiter,
    funding_read,
    funding_store,
    open_interest_read,
    open_interest_store,
)

log = logging.getLogger(__name__)

DEFAULT_EVERY_S = {"funding": 300.0, "open_interest": 60.0}
RETRY_FIRST_S = 5.0  # first wait after a failed poll; doubled up to the poll's interval
_TASKS = {
    "funding": "trading.tasks.poll_funding",
    "open_interest": "trading.tasks.poll_open_interest",
}


def poll_intervals_s() -> dict[str, float]:
    """Seconds between two polls of each kind: the beat schedule's, else the defaults."""
    out = dict(DEFAULT_EVERY_S)
    for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values():
        for kind, task in _TASKS.items():
            if entry.get("task") == task and isinstance(entry.get("schedule"), int | float):
                out[kind] = float(entry["schedule"])
    return out


def embedded() -> bool:
    """No Celery beat runs the pollers (the in-process mode, no Redis)."""
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


async def poll_funding_once(
    exchange: Any, exchange_name: str, symbols: Sequence[str], limiter: MarketDataLimiter
) -> int:
    rows = await funding_read(
        exchange_name=exchange_name, exchange=exchange, symbols=symbols, limiter=limiter
    )
    stored = await sync_to_async(funding_store, thread_sensitive=True)(
        rows=rows, exchange_name=exchange_name
    )
    return sum(r.inserted + r.updated for r in stored.values())


async def poll_open_interest_once(
    exchange: Any, exchange_name: str, symbols: Sequence[str], limiter: MarketDataLimiter
) -> int:
    samples = await open_interest_read(
        exchange_name=exchange_name, exchange=exchange, symbols=symbols, limiter=limiter
    )
    stored = await sync_to_async(open_interest_store, thread_sensitive=True)(
        rows={s: [sample] for s, sample in samples.items()}, exchange_name=exchange_name
    )
    return sum(r.inserted + r.updated for r in stored.values())


async def _every(
    kind: str,
    every_s: float,
    poll: Callable[[], Awaitable[int]],
    sleep: Callable[..., Any],
    status: RadarStatus | None = None,
    retry_first_s: float = RETRY_FIRST_S,
) -> None:
    """Poll every ``every_s`` seconds, forever, through any outage (module doc)."""
    label = kind.replace("_", " ")
    failures = 0
    since = 0.0
    unsent: list[tuple[str, str]] = []
    while True:
        try:
            await poll()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a poll's failure is told, never fatal to the feed
            failures += 1
            if failures == 1:
                since = time.monotonic()
                why = f"{type(exc).__name__}: {exc}"
                log.warning("%s poll failed: %s; retrying with backoff", label, why)
                unsent.append(("warning", f"{label} poll failing: {why}"))
                if status is not None:
                    status.poller_changed(kind, why)
            unsent = await _tell(kind, unsent)
            await sleep(min(every_s, retry_first_s * 2 ** (failures - 1)))
            continue
        if failures:
            lasted = time.monotonic() - since
            log.warning("%s poll works again after %.0f s (%d failures)", label, lasted, failures)
            unsent.append(("info", f"{label} poll works again after {lasted:.0f} s "
                                   f"({failures} failed attempts)"))  # fmt: skip
            failures = 0
            if status is not None:
                status.poller_changed(kind, None)
        unsent = await _tell(kind, unsent)
        await sleep(every_s)


async def _tell(kind: str, alerts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Store ``alerts``; those the database refuses now are returned, to be stored later."""
    if not alerts:
        return alerts
    try:
        await sync_to_async(_store_poll_alerts, thread_sensitive=True)(kind, alerts)
    except Exception as exc:
        log.warning("%s poll alert not stored yet: %s", kind, exc)
        return alerts
    return []


def _store_poll_alerts(kind: str, alerts: list[tuple[str, str]]) -> None:
    for level, message in alerts:
        alert_create(level=level, message=message, source="poller", payload={"poll": kind})


def start_pollers(
    exchange: Any,
    exchange_name: str,
    symbols: Sequence[str],
    limiter: MarketDataLimiter,
    *,
    intervals_s: dict[str, float] | None = None,
    sleep: Callable[..., Any] = asyncio.sleep,
    status: RadarStatus | None = None,
    retry_first_s: float = RETRY_FIRST_S,
) -> list[asyncio.Task[None]]:
    """Start the funding and open-interest pollers on the running loop; cancel the returned
    tasks to stop them. ``status``: told of each outage (``/health/``)."""
    every = {**poll_intervals_s(), **(intervals_s or {})}
    return [
        asyncio.ensure_future(
            _every(
                "funding",
                every["funding"],
                lambda: poll_funding_once(exchange, exchange_name, symbols, limiter),
                sleep,
                status,
                retry_first_s,
            )
        ),
        asyncio.ensure_future(
            _every(
                "open_interest",
                every["open_interest"],
                lambda: poll_open_interest_once(exchange, exchange_name, symbols, limiter),
                sleep,
                status,
                retry_first_s,
            )
        ),
    ]
