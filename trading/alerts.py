"""Alerts: store a warning for the trader and push it live once the write commits.

The runtime calls :func:`alert_create` for feed disconnects, stale data, kill-switch trips and
skipped strategies; the Alerts page lists the stored history and prepends the live ones
(``alert.new`` on group ``alerts``, payload :meth:`trading.models.Alert.as_event`). Every
alert is also handed to ``common.notices`` in the same transaction: the notify app queues it for
Telegram when its level reaches ``alerts_min_level`` (config/notify.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from common.events import publish_on_commit
from common.notices import alert_notice, emit
from trading.models import Alert

ALERTS_GROUP = "alerts"


class AlertError(ValueError):
    """An alert that cannot be stored (unknown level, empty message)."""


@transaction.atomic
def alert_create(
    *, level: str, message: str, source: str = "", payload: Mapping[str, Any] | None = None
) -> Alert:
    """Store an alert and publish ``alert.new`` to ``alerts`` after the transaction commits.

    ``level`` is ``info``, ``warning`` or ``error``; ``payload`` is any JSON-safe detail (a
    non-serialisable one fails here, at the caller, not in a consumer).
    """
    if level not in Alert.Level.values:
        raise AlertError(f"alert level {level!r} is not one of {', '.join(Alert.Level.values)}")
    if not message.strip():
        raise AlertError("an alert needs a message")
    alert = Alert.objects.create(
        level=level,
        message=message,
        source=source[: Alert._meta.get_field("source").max_length],
        payload=dict(payload or {}),
    )
    publish_on_commit(ALERTS_GROUP, "alert.new", alert.as_event())
    emit(alert_notice(level=alert.level, message=alert.message, source=alert.source))
    return alert
