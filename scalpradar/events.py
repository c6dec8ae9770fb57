"""Live events: published to Channels groups only AFTER the transaction that caused them commits.

Group names: ``arena``, ``signals``, ``positions``, ``alerts``, ``market.<BASE>-<QUOTE>``,
``backtest.<id>``. Event ``type`` strings are prefixed by domain (``arena.update``,
``market.price``, ``signal.new``, ``position.update``, ``alert.new``, ``backtest.progress``).
Payloads are JSON-safe and complete, so a consumer renders without querying anything.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

GROUPS = ("arena", "signals", "positions", "alerts", "session")


def market_group(symbol: str) -> str:
    """``BTC/USDT:USDT`` -> ``market.BTC-USDT`` (group names allow ASCII letters, - _ .)."""
    base_quote = symbol.split(":")[0]
    return "market." + base_quote.replace("/", "-")


def backtest_group(run_id: int) -> str:
    return f"backtest.{run_id}"


def _message(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so a non-serialisable payload fails HERE, at the publisher.
    body = json.loads(json.dumps(payload))
    return {"type": "live.event", "event": event_type, "payload": body}


def publish_now(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send to a group immediately (sync code outside any transaction)."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(group, _message(event_type, payload))


async def apublish(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send to a group from async code (the runtime's event loop)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, _message(event_type, payload))


def publish_on_commit(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Send once the current transaction commits (immediately when there is none)."""
    message = _message(event_type, payload)

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, message)

    transaction.on_commit(send)
