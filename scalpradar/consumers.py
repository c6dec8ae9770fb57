"""The one websocket consumer: live events in, server-rendered HTML fragments out.

Protocol: the browser opens ``ws/live/?groups=arena,signals`` (htmx ``ws-connect``). Anonymous
sockets are closed with code 4401; unknown group names are ignored. Each ``live.event`` message
``{"type": "live.event", "event": "<domain>.<what>", "payload": {...}}`` sent to a joined group
is rendered here with the SAME template partial the page renders over HTTP, marked
``hx-swap-oob``, and sent as one text frame; the htmx ws extension swaps it in by id. Payloads
are complete: this consumer renders, it never queries the database.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from common.presenters import EVENT_FRAGMENTS, render_event

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
STATIC_GROUPS = frozenset({"arena", "signals", "positions", "alerts", "session"})
_DYNAMIC_GROUP = re.compile(r"^(market\.[A-Z0-9]{1,16}-[A-Z0-9]{1,16}|backtest\.[0-9]{1,12})$")
MAX_GROUPS = 12


def allowed_group(name: str) -> bool:
    return name in STATIC_GROUPS or bool(_DYNAMIC_GROUP.match(name))


class LiveConsumer(AsyncWebsocketConsumer):
    """Joins the requested (allowed) groups and pushes OOB HTML for each ``live.event``."""

    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("ascii", "replace"))
        requested = [g.strip() for raw in query.get("groups", []) for g in raw.split(",")]
        wanted = [g for g in dict.fromkeys(requested) if g and allowed_group(g)][:MAX_GROUPS]
        await self.accept()
        for group in wanted:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The page only listens; htmx may send form values over the socket, which we ignore.
        return

    async def live_event(self, message: dict[str, Any]) -> None:
        event = message.get("event", "")
        if event not in EVENT_FRAGMENTS:
            log.debug("live event %s has no fragment, not forwarded", event)
            return
        html = render_event(event, message.get("payload") or {})
        if html:
            await self.send(text_data=html)
