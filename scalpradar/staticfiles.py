"""Static files under ASGI without Django's "must consume synchronous iterators" warning.

WhiteNoise answers a static file with a ``FileResponse``, a SYNCHRONOUS iterator of file
chunks. Under ASGI (Daphne) Django then reads the whole iterator in a worker thread and warns
that it had to. The files here are small vendored assets (htmx, the chart library, our CSS and
JS), so reading them whole is right: this middleware does exactly that, as an async iterator,
so the response is served the async way and the warning only ever flags a real case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponseBase


def static_files_as_async_responses(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    """Middleware, placed before WhiteNoise's: its file responses to ASGI requests stream
    from an async iterator (the same bytes)."""
    prefix = "/" + settings.STATIC_URL.lstrip("/")

    def middleware(request: HttpRequest) -> HttpResponseBase:
        response = get_response(request)
        if (
            isinstance(request, ASGIRequest)
            and request.path.startswith(prefix)
            and response.streaming
            and not response.is_async  # type: ignore[attr-defined]
        ):
            chunks = response.streaming_content  # type: ignore[attr-defined]
            response.streaming_content = _read_in_a_thread(chunks)  # type: ignore[attr-defined]
        return response

    return middleware


async def _read_in_a_thread(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in await sync_to_async(list, thread_sensitive=False)(chunks):
        yield chunk
