"""The live socket, against the real ASGI application (auth, groups, OOB fragments)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from common.events import apublish
from scalpradar.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")


def _session_cookie() -> bytes:
    user = User.objects.create_user("live", password="s3cret-pass-123")
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def _connect(groups: str, cookie: bytes | None) -> WebsocketCommunicator:
    headers = [ORIGIN] + ([(b"cookie", cookie)] if cookie else [])
    return WebsocketCommunicator(application, f"/ws/live/?groups={groups}", headers=headers)


async def test_anonymous_socket_is_closed_with_4401():
    communicator = await _connect("arena", None)
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4401


async def test_logged_in_socket_receives_an_oob_fragment():
    cookie = await sync_to_async(_session_cookie)()
    communicator = await _connect("signals,alerts,nonsense.group", cookie)
    connected, _ = await communicator.connect()
    assert connected
    await apublish(
        "signals",
        "signal.new",
        {
            "strategy": "vwap_rsi",
            "symbol": "BTC/USDT:USDT",
            "timeframe": "5m",
            "candle_open_ms": 1_750_118_400_000,
            "accepted": False,
            "reason": "kill switch tripped",
            "signal": {"side": "long", "score": 0.81, "reasons": ["rsi 22 < 25"]},
        },
    )
    html = await communicator.receive_from(timeout=5)
    assert 'hx-swap-oob="afterbegin:#live-signal-feed"' in html
    assert "vwap_rsi" in html and "0.81" in html and "kill switch tripped" in html
    assert 'id="live-heat-vwap_rsi-BTC-USDT" hx-swap-oob="true"' in html
    await apublish("alerts", "alert.new", {"level": "warning", "message": "feed reconnecting"})
    html = await communicator.receive_from(timeout=5)
    assert "feed reconnecting" in html and "afterbegin:#live-alert-feed" in html
    await communicator.disconnect()


async def test_arena_update_from_the_runtime_swaps_the_row_cells():
    cookie = await sync_to_async(_session_cookie)()
    communicator = await _connect("arena", cookie)
    assert (await communicator.connect())[0]
    await apublish(
        "arena",
        "arena.update",
        {
            "strategy": "vwap_rsi",
            "status": "active",
            "equity_usdt": 10_080.0,
            "net_return_pct": 0.8,
            "realised_gross_pnl": 120.0,
            "realised_net_pnl": 80.0,
            "fees_usdt": 40.0,
            "fees_share_of_gross_pct": 33.33,
            "trades": 3,
            "wins": 2,
            "capital_weight": 1.0,
            "kill_switch_tripped": False,
        },
    )
    html = await communicator.receive_from(timeout=5)
    assert 'id="live-arena-live-vwap_rsi" hx-swap-oob="true"' in html
    assert "66.7 %" in html and "33.3 %" in html
    await communicator.disconnect()


async def test_fifty_sockets_all_receive_one_update():
    cookie = await sync_to_async(_session_cookie)()
    communicators = [await _connect("market.BTC-USDT", cookie) for _ in range(50)]
    results = await asyncio.gather(*(c.connect() for c in communicators))
    assert all(ok for ok, _ in results)
    await apublish(
        "market.BTC-USDT",
        "market.price",
        {"symbol": "BTC/USDT:USDT", "price": 104_321.5, "time_ms": 1_750_118_460_000},
    )
    messages = await asyncio.gather(*(c.receive_from(timeout=5) for c in communicators))
    assert all('id="live-price-BTC-USDT"' in m and "104321.5" in m for m in messages)
    await asyncio.gather(*(c.disconnect() for c in communicators))
