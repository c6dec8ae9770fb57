"""Celery tasks of the trading app: the REST pollers run by Celery beat on the ``feed`` queue.

Thin: an exchange name in, a service call, a JSON-safe summary out. A ``ccxt.NetworkError``
(timeout, exchange down, DDoS protection / rate limit answer) is retried a bounded number of
times with exponential backoff and jitter, then raised; anything else is raised at once. The
upserts are idempotent, so a retry, a late beat tick or a duplicate delivery stores nothing
twice. Routed to ``feed`` by ``CELERY_TASK_ROUTES`` (``trading.tasks.poll_*``); scheduled by
``CELERY_BEAT_SCHEDULE`` (funding every 5 min, open interest every minute).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

import ccxt
from celery import shared_task

from trading import partitions, polling

POLL_RETRY_OPTIONS = {
    "autoretry_for": (ccxt.NetworkError,),
    "max_retries": 3,
    "retry_backoff": 2,  # s: 2, 4, 8 (+ jitter), each capped by retry_backoff_max
    "retry_backoff_max": 30,
    "retry_jitter": True,
}


def _summary(results: Mapping[str, polling.UpsertResult]) -> dict[str, dict[str, int]]:
    return {symbol: asdict(result) for symbol, result in results.items()}


@shared_task(soft_time_limit=120, time_limit=150, **POLL_RETRY_OPTIONS)
def poll_funding(exchange_name: str) -> dict[str, dict[str, int]]:
    """Store the last settled funding rates of every enabled asset of ``exchange_name``."""
    return _summary(polling.funding_poll(exchange_name=exchange_name))


@shared_task(soft_time_limit=45, time_limit=55, **POLL_RETRY_OPTIONS)
def poll_open_interest(exchange_name: str) -> dict[str, dict[str, int]]:
    """Store one open-interest sample per enabled asset of ``exchange_name``."""
    return _summary(polling.open_interest_poll(exchange_name=exchange_name))


@shared_task(soft_time_limit=120, time_limit=150)
def create_candle_partitions(months_ahead: int = partitions.MONTHS_AHEAD) -> list[str]:
    """Create the candle table's monthly partitions for the current UTC month and the next
    ``months_ahead`` (PostgreSQL with native partitions; a no-op elsewhere: SQLite, a
    TimescaleDB hypertable). Returns the partitions created; idempotent. Scheduled daily by
    ``CELERY_BEAT_SCHEDULE`` so a month's partition exists before its first candle."""
    return partitions.ensure_partitions_ahead(months_ahead)
