"""Faults: how the runtime tells a database fault worth retrying, and how a strategy that
failed is recorded (the one place for both the start-up and the running radar).

A failed strategy is recorded as ERRORED on its session with the reason
(``trading.services.session_error``) and one error alert; what it means for the runtime is in
:mod:`radar.runtime`'s module doc.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from django.db import InterfaceError, OperationalError, connection, transaction

from trading.alerts import alert_create
from trading.core.validation import future_candle_problem
from trading.models import TradingSession
from trading.services import session_error

log = logging.getLogger(__name__)


def now_ms() -> int:
    """The wall clock in epoch ms: no stored or fed candle may open after it."""
    return int(time.time() * 1000)


def is_transient_fault(exc: BaseException) -> bool:
    """A database fault worth retrying: connection lost or refused, lock held too long
    (``OperationalError``, ``InterfaceError``). Constraint and programming errors are not."""
    return isinstance(exc, OperationalError | InterfaceError)


def close_connection() -> None:
    """Close the calling thread's connection: a broken one is reopened by the next query."""
    connection.close()


def refuse_future_candles(
    candles: Sequence[tuple[str, tuple[float, ...]]], *, now_ms: int
) -> list[tuple[str, tuple[float, ...]]]:
    """``candles`` without those that would move a symbol's clock into the future
    (``trading.core.validation.future_candle_problem``: a later UTC minute than ``now_ms``),
    each refused one logged and stored as an error alert."""
    kept: list[tuple[str, tuple[float, ...]]] = []
    refused: list[tuple[str, str, str]] = []
    for symbol, row in candles:
        problem = future_candle_problem(row[0], now_ms=now_ms)
        if problem is None:
            kept.append((symbol, row))
            continue
        message = f"{symbol}: refused a candle from the future ({problem}): not stored, not traded"
        log.error("%s", message)
        refused.append(("error", message, "feed"))
    if refused:
        store_alerts(refused, future=True)
    return kept


def strategy_errored(
    *,
    session: TradingSession,
    name: str,
    reason: str,
    message: str,
    payload: dict[str, Any] | None = None,
    exc: BaseException | None = None,
) -> None:
    """Record that strategy ``name`` stopped with an error: its session errored with
    ``reason``, an error alert saying ``message``."""
    log.error("strategy %s errored: %s", name, reason, exc_info=exc)
    session_error(session=session, reason=reason)
    alert_create(
        level="error", message=message, source=name, payload={"errored": True, **(payload or {})}
    )


def store_alerts(alerts: Sequence[tuple[str, str, str]], **payload: Any) -> None:
    """Store ``(level, message, source)`` alerts in one transaction, each with ``payload``."""
    with transaction.atomic():
        for level, message, source in alerts:
            alert_create(level=level, message=message, source=source, payload=dict(payload))
