"""Streamed responses under ASGI (Daphne) without buffering them whole.

Django serves a ``StreamingHttpResponse`` built on a SYNCHRONOUS iterator, under ASGI, by
reading the whole iterator in a worker thread first ("StreamingHttpResponse must consume
synchronous iterators in order to serve them asynchronously"): nothing reaches the browser
before the last row, and the whole body sits in memory. :func:`streaming_content_for` hands
Django an async iterator instead, pulling the sync one in batches in the thread Django runs
sync code (and the ORM) in; under WSGI the sync iterator is kept as is.

Also the embedded mode's channel layer (:class:`FanoutInMemoryChannelLayer`): one frame
streamed to every socket of a group without a copy per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponseBase

BATCH = 500  # items per trip to the sync thread: CSV rows, or 8 KB file chunks (4 MB)


def streaming_content_for[T](
    request: HttpRequest, items: Iterable[T]
) -> Iterable[T] | AsyncIterator[T]:
    """``items`` as the server of ``request`` streams best: async batches under ASGI, else as
    they are."""
    return in_batches(iter(items)) if isinstance(request, ASGIRequest) else items


async def in_batches[T](items: Iterator[T], size: int = BATCH) -> AsyncIterator[T]:
    """Yield ``items``, fetching ``size`` at a time in Django's sync thread (thread-sensitive:
    where the request's database connection lives)."""
    take = sync_to_async(lambda: list(itertools.islice(items, size)), thread_sensitive=True)
    while batch := await take():
        for item in batch:
            yield item


def static_files_as_async_responses(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    """Middleware, placed before WhiteNoise's: WhiteNoise answers a static file with a
    ``FileResponse`` (a sync iterator of file chunks); to an ASGI request it streams through
    :func:`streaming_content_for` instead (the same bytes)."""
    prefix = "/" + settings.STATIC_URL.lstrip("/")

    def middleware(request: HttpRequest) -> HttpResponseBase:
        response = get_response(request)
        if (
            request.path.startswith(prefix) and response.streaming and not response.is_async  # type: ignore[attr-defined]
        ):
            chunks = response.streaming_content  # type: ignore[attr-defined]
            response.streaming_content = streaming_content_for(request, chunks)  # type: ignore[attr-defined]
        return response

    return middleware


class FanoutInMemoryChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer (the embedded mode's), with a group send that costs one queue
    put per member: Channels' own creates a task AND deep-copies the message for every member,
    ~25 µs x 200 sockets x every frame, on the loop the radar trades on. A live frame is built
    once and never mutated downstream, so every member's queue holds the same object. A full
    inbox still drops the frame for that member (a numbered gap: the socket resyncs)."""

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.require_valid_group_name(group)
        self._clean_expired()
        expires = time.time() + self.expiry
        for channel in list(self.groups.get(group, {})):
            queue = self.channels.setdefault(
                channel, asyncio.Queue(maxsize=self.get_capacity(channel))
            )
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait((expires, message))
