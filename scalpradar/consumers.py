"""The one websocket consumer: live frames in, their server-rendered HTML out, every one in order.

Protocol: the browser opens ``ws/live/?groups=arena,signals`` (htmx ``ws-connect``). Anonymous
sockets are closed with code 4401; unknown group names are ignored. Each :class:`LiveFrame`
(``common.events``) arrives already rendered (the SAME template partial the page renders over
HTTP, marked ``hx-swap-oob``): the consumer forwards its HTML as one text frame, untouched, and
the htmx ws extension swaps it in by id. This consumer neither renders nor queries the database.

**Every frame, in order, or a resync.** Frames are numbered per group and publishing stream.
A number already seen is a duplicate (a retried send) and is dropped. A number that skips one
(the layer dropped a frame for this socket: its inbox was full, a send failed), or a first
frame other than #1 from a stream that started after the socket joined, is a GAP; a frame
delivered more than :data:`MAX_LAG_S` after it was sent means a SLOW client. Either way the
socket is not left with a subset: it receives one resync frame (``<div id="live-resync"
data-live-resync="gap|slow">``, marked as such) and is closed with 4409 (gap) or 4408 (slow),
after which ``static/js/live-resync.js`` reloads the page: every partial re-rendered from the
stored state, a fresh socket from there. A logout closes the login's sockets with 4401
(:func:`close_sockets_at_logout`).

**Connects never queue behind pages.** Channels' ``AuthMiddlewareStack`` loads the session and
the user through ``database_sync_to_async``: asgiref's ONE shared sync thread, the same thread
every other ``thread_sensitive`` call of the process waits for. :class:`LiveAuthMiddleware`
does the same checks (session, backend, session auth hash) on its own small pool instead.

**No trip to that thread per frame either.** Channels' ``AsyncConsumer.dispatch`` (and
``websocket_disconnect``) run ``aclose_old_connections()`` before EVERY message: a hop to the
shared sync thread per frame per socket (200 sockets x 30 frames/s = 6,000 hops/s, queued with
every ORM call of the process). This consumer never touches the database, so it dispatches
without them.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_out
from django.db import connection
from django.dispatch import receiver

from common.events import close_session_sockets, session_group

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401  # anonymous, or logged out while connected
CLOSE_SLOW = 4408  # frames arrived more than MAX_LAG_S late: the client could not keep up
CLOSE_RESYNC = 4409  # a frame is missing: the page must reload its state
MAX_LAG_S = 5.0  # a frame delivered later than this after it was sent cuts the client off
STREAMS_KEPT = 512  # (group, stream) numbering remembered per socket (oldest forgotten)
STATIC_GROUPS = frozenset({"arena", "signals", "positions", "alerts", "session", "live"})
_DYNAMIC_GROUP = re.compile(r"^(market\.[A-Z0-9]{1,16}-[A-Z0-9]{1,16}|backtest\.[0-9]{1,12})$")
MAX_GROUPS = 12
AUTH_THREADS = 2  # the websocket login pool (each thread holds one database connection)

_auth_pool = ThreadPoolExecutor(max_workers=AUTH_THREADS, thread_name_prefix="ws-auth")


def allowed_group(name: str) -> bool:
    return name in STATIC_GROUPS or bool(_DYNAMIC_GROUP.match(name))


def _load_session_and_user(session_key: str | None) -> tuple[Any, Any]:
    """The session and its user, checked as Django checks a page request (on the pool)."""
    try:
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user = auth.get_user(SimpleNamespace(session=session)) if session_key else None  # type: ignore[arg-type]
        return session, user or AnonymousUser()
    finally:
        # Closed after each login: a pool thread holds no connection between connects (none
        # left open when a test database is dropped, none counted against PostgreSQL's limit).
        connection.close()


class LiveAuthMiddleware(BaseMiddleware):
    """``scope["session"]``, ``scope["user"]`` and ``scope["session_group"]`` (the group of
    this login's sockets, "" when anonymous), resolved on the websocket login pool."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        load = sync_to_async(_load_session_and_user, thread_sensitive=False, executor=_auth_pool)
        session, user = await load(key)
        authenticated = bool(key) and user.is_authenticated
        scope = {
            **scope,
            "session": session,
            "user": user,
            "session_group": session_group(key) if authenticated and key else "",
        }
        return await super().__call__(scope, receive, send)


def LiveAuthMiddlewareStack(inner: Any) -> Any:
    """Cookies, then :class:`LiveAuthMiddleware`: Channels' ``AuthMiddlewareStack`` without
    the shared sync thread."""
    return CookieMiddleware(LiveAuthMiddleware(inner))


@receiver(user_logged_out, dispatch_uid="scalpradar.close_sockets_at_logout")
def close_sockets_at_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A logout closes the sockets of that login (sent before Django flushes the session)."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key:
        close_session_sockets(key)


class LiveConsumer(AsyncWebsocketConsumer):
    """Joins the requested (allowed) groups and forwards each numbered frame's HTML in order."""

    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        self.closing = False
        self.last_seq: OrderedDict[tuple[str, str], int] = OrderedDict()
        user = self.scope.get("user")
        own_group = self.scope.get("session_group") or ""
        if user is None or not user.is_authenticated or not own_group:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("ascii", "replace"))
        requested = [g.strip() for raw in query.get("groups", []) for g in raw.split(",")]
        wanted = [g for g in dict.fromkeys(requested) if g and allowed_group(g)][:MAX_GROUPS]
        # Joined BEFORE the accept: once the browser (or a test) sees the socket open, every
        # frame sent from then on reaches it (with Redis, a group_add is a round trip).
        for group in [own_group, *wanted]:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        # A stream that started after this instant owes this socket its frame #1.
        self.joined_at = time.time()
        await self.accept()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its per-message ``aclose_old_connections`` (module doc)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self.disconnect(message.get("code", 1000))
        raise StopConsumer

    async def disconnect(self, code: int) -> None:
        await self._leave_groups()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The page only listens; htmx may send form values over the socket, which we ignore.
        return

    async def live_event(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        key = (str(message.get("group", "")), str(message.get("stream", "")))
        seq = int(message.get("seq") or 0)
        last = self.last_seq.get(key)
        if last is not None and seq <= last:
            return  # a retried send delivered twice
        if last is None:
            missed_first = float(message.get("since") or 0.0) >= self.joined_at and seq != 1
        else:
            missed_first = seq != last + 1
        if missed_first:
            await self._cut("gap", CLOSE_RESYNC, key, seq, last)
            return
        if time.time() - float(message.get("sent_at") or 0.0) > MAX_LAG_S:
            await self._cut("slow", CLOSE_SLOW, key, seq, last)
            return
        self.last_seq[key] = seq
        self.last_seq.move_to_end(key)
        if len(self.last_seq) > STREAMS_KEPT:
            self.last_seq.popitem(last=False)
        html = message.get("html") or ""
        if html:
            await self.send(text_data=html)

    async def live_logout(self, message: dict[str, Any]) -> None:
        self.closing = True
        await self._leave_groups()
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _cut(
        self, reason: str, code: int, key: tuple[str, str], seq: int, last: int | None
    ) -> None:
        """Resync marker, then close: the page reloads its state (module doc)."""
        self.closing = True
        log.warning(
            "live socket cut off (%s): group %s stream %s got #%s after #%s",
            reason,
            key[0],
            key[1],
            seq,
            last,
        )
        await self._leave_groups()
        await self.send(
            text_data=(
                f'<div id="live-resync" hx-swap-oob="true" data-live-resync="{reason}" '
                f'data-group="{key[0]}" data-seq="{seq}"></div>'
            )
        )
        await self.close(code=code)

    async def _leave_groups(self) -> None:
        joined, self.groups_joined = getattr(self, "groups_joined", []), []
        for group in joined:
            await self.channel_layer.group_discard(group, self.channel_name)
