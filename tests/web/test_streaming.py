"""Streamed responses through the real ASGI application (Daphne's path): async, same bytes."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient, Client
from django.urls import reverse
from pytest_django.fixtures import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["css/app.css", "js/chart.js"])
async def test_a_static_file_is_served_under_asgi_without_a_sync_iterator_warning(
    path: str,
) -> None:
    """Django warns when an ASGI response streams from a sync iterator (WhiteNoise's file
    responses do): the middleware hands Django an async one, so no warning, the same bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning would fail the test
        response = await AsyncClient().get(f"/static/{path}")
        assert response.status_code == 200
        assert response.is_async
        body = b"".join([chunk async for chunk in response.streaming_content])
    assert body == (ROOT / "static" / path).read_bytes()


async def test_without_the_middleware_the_file_streams_synchronously(
    settings: Settings,
) -> None:
    """The check above can fail: WhiteNoise alone streams synchronously under ASGI."""
    settings.MIDDLEWARE = [
        name for name in settings.MIDDLEWARE if not name.endswith("as_async_responses")
    ]
    response = await AsyncClient().get("/static/css/app.css")
    assert response.status_code == 200
    assert not response.is_async


@pytest.mark.django_db(transaction=True)
async def test_the_trades_csv_streams_under_asgi_with_the_rows_of_the_wsgi_export(
    user: User, arena: dict
) -> None:
    """Under ASGI the export is an async stream (nothing buffered whole, no warning), and it
    holds exactly the rows the WSGI export gives."""
    url = reverse("trades_csv")
    sync_client = Client()
    await sync_to_async(sync_client.force_login)(user)
    expected = await sync_to_async(lambda: b"".join(sync_client.get(url).streaming_content))()
    client = AsyncClient()
    await client.aforce_login(user)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = await client.get(url)
        assert response.status_code == 200
        assert response.is_async
        body = b"".join([chunk async for chunk in response.streaming_content])
    assert body == expected
    assert body.count(b"\n") == 1 + len(arena["closed"])  # the header and every closed trade
