"""The tick and lot of each traded contract, for display: read from the ``Asset`` rows.

Templates format prices and quantities on the instrument's own tick and lot
(``trading.core.numbers``); they look the symbol up here by its ccxt unified symbol
(``BTC/USDT:USDT``), its page slug (``BTC-USDT``) or its base (``BTC``). The table is read once and
kept until an ``Asset`` row is saved or deleted (signals connected in ``TradingConfig.ready``) or
60 s have passed (another process edited a row), so a page of 500 rows costs one query at most.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

TTL_S = 60.0
RETRY_S = 5.0  # after a failed read
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Steps:
    """Display steps of one contract: ``tick`` (USDT) and ``lot`` (base units)."""

    tick: float | None
    lot: float | None


UNKNOWN = Steps(None, None)

_lock = threading.Lock()
_table: dict[str, Steps] = {}
_loaded_at = -1.0e18


def clear(*_args: object, **_kwargs: object) -> None:
    """Forget the table (signal receiver: an ``Asset`` row changed)."""
    global _loaded_at
    with _lock:
        _table.clear()
        _loaded_at = -1.0e18


def _load() -> dict[str, Steps]:
    from trading.models import Asset

    table: dict[str, Steps] = {}
    rows = Asset.objects.values_list("exchange", "symbol", "base", "price_tick", "qty_step")
    # bitget first: the traded venue's rules win when another exchange lists the same symbol.
    for _exchange, symbol, base, tick, lot in sorted(rows, key=lambda r: r[0] != "bitget"):
        steps = Steps(float(tick), float(lot))
        for key in (symbol, symbol.split(":")[0].replace("/", "-"), base):
            table.setdefault(key, steps)
    return table


def _load_in_thread() -> dict[str, Steps]:
    from django.db import connections

    try:
        return _load()
    finally:
        connections.close_all()  # this short-lived thread's own connection


def _read_table() -> dict[str, Steps]:
    """The table from the database. Pushed fragments are rendered in an event loop (the
    live Broadcaster), where Django refuses the ORM: there the read runs in a short-lived
    thread of its own (a few ms, once per :data:`TTL_S` at most)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _load()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_load_in_thread).result(timeout=10)


def steps_for(symbol: object) -> Steps:
    """The display steps of ``symbol`` (any of its three spellings); :data:`UNKNOWN` when no
    ``Asset`` row lists it — the formatter then falls back to significant decimals.

    A failed read (database busy, no table yet) is not kept for :data:`TTL_S`: what was known
    stays in use and the read is tried again after :data:`RETRY_S`, so one bad moment cannot
    format every price without its tick for a minute. An empty table is a real answer and is
    kept like any other (an ``Asset`` saved drops it)."""
    global _loaded_at
    key = str(symbol or "")
    if not key:
        return UNKNOWN
    now = time.monotonic()
    with _lock:
        if now - _loaded_at > TTL_S:
            try:
                fresh = _read_table()
            except Exception as exc:  # keep what was known; try again in RETRY_S
                log.warning("instrument ticks not read: %s: %s", type(exc).__name__, exc)
                _loaded_at = now - TTL_S + RETRY_S
            else:
                _table.clear()
                _table.update(fresh)
                _loaded_at = now
        return _table.get(key, UNKNOWN)
