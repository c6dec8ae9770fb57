"""The REST pollers of the embedded mode, on the radar's own event loop.

Production runs ``trading.tasks.poll_funding`` / ``poll_open_interest`` from Celery beat; the
embedded mode (no beat: ``CELERY_TASK_ALWAYS_EAGER``) runs the same reads and writes here, on the
same schedule (``CELERY_BEAT_SCHEDULE``: funding 5 min, open interest 1 min), through the
shared rate limiter. A failed poll is logged and stored as an alert, and the next one runs on
schedule: a poller never stops the feed. The runtime reads the stored rows into the kernels
(:meth:`radar.inputs.MarketInputs.read_new`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

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
    kind: str, every_s: float, poll: Callable[[], Awaitable[int]], sleep: Callable[..., Any]
) -> None:
    while True:
        try:
            await poll()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a poll's failure is told, never fatal to the feed
            log.warning("%s poll failed: %s", kind, exc)
            await sync_to_async(_store_poll_alert, thread_sensitive=True)(kind, exc)
        await sleep(every_s)


def _store_poll_alert(kind: str, exc: Exception) -> None:
    alert_create(
        level="warning",
        message=f"{kind.replace('_', ' ')} poll failed: {type(exc).__name__}: {exc}",
        source="poller",
        payload={"poll": kind},
    )


def start_pollers(
    exchange: Any,
    exchange_name: str,
    symbols: Sequence[str],
    limiter: MarketDataLimiter,
    *,
    intervals_s: dict[str, float] | None = None,
    sleep: Callable[..., Any] = asyncio.sleep,
) -> list[asyncio.Task[None]]:
    """Start the funding and open-interest pollers on the running loop; cancel the returned
    tasks to stop them."""
    every = {**poll_intervals_s(), **(intervals_s or {})}
    return [
        asyncio.ensure_future(
            _every(
                "funding",
                every["funding"],
                lambda: poll_funding_once(exchange, exchange_name, symbols, limiter),
                sleep,
            )
        ),
        asyncio.ensure_future(
            _every(
                "open_interest",
                every["open_interest"],
                lambda: poll_open_interest_once(exchange, exchange_name, symbols, limiter),
                sleep,
            )
        ),
    ]
