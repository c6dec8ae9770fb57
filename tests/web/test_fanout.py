"""Fan-out: every socket gets every frame in order, or a marked resync; never a silent subset.

Against the real ASGI application (``scalpradar.asgi.application``) and the configured
channel layer (in memory, or Redis with ``REDIS_URL``).
"""

from __future__ import annotations

import asyncio
import re

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from common import events
from common.events import EventBatch, apublish, broadcaster
from scalpradar import consumers
from scalpradar.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")
PRICE = re.compile(r'data-price="(1[0-9]{5})(?:\.0+)?"')  # the price cell's raw value


def _logged_in_client(name: str = "fan") -> Client:
    user = User.objects.create_user(name, password="s3cret-pass-123")
    client = Client()
    client.force_login(user)
    return client


def _cookie(client: Client) -> bytes:
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def _socket(cookie: bytes, groups: str = "market.BTC-USDT") -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, f"/ws/live/?groups={groups}", headers=[ORIGIN, (b"cookie", cookie)]
    )


def _tick(i: int) -> dict:
    return {"symbol": "BTC/USDT:USDT", "price": 100_000 + i, "time_ms": 1_750_118_460_000 + i}


async def _drain(communicator: WebsocketCommunicator, timeout: float = 1.0) -> list[str]:
    """Every text frame until the socket goes quiet for ``timeout`` s (or closes)."""
    frames: list[str] = []
    while not await communicator.receive_nothing(timeout=timeout):
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            frames.append(f"<close {message.get('code')}>")
            return frames
        frames.append(message["text"])
    return frames


async def test_every_socket_receives_every_frame_in_order_rendered_once(monkeypatch):
    """20 sockets x 150 price ticks published back to back (more than the layer's old
    per-socket capacity of 100): each socket gets the 150 fragments, prices 100000..100149 in
    that order, and each tick was rendered once, not 20 times. Published within one window of
    the broadcaster, they travel as ONE frame per socket (150 fragments), not 150."""
    cookie = _cookie(await sync_to_async(_logged_in_client)())
    sockets = [_socket(cookie) for _ in range(20)]
    assert all(ok for ok, _ in await asyncio.gather(*(s.connect() for s in sockets)))
    renders = {"n": 0}
    real_render = events.render_event

    def counting_render(event: str, payload: dict) -> str:
        renders["n"] += 1
        return real_render(event, payload)

    monkeypatch.setattr(events, "render_event", counting_render)
    for i in range(150):
        await apublish("market.BTC-USDT", "market.price", _tick(i))
    assert broadcaster().window_s == 0.25
    received = await asyncio.gather(*(_drain(s) for s in sockets))
    for frames in received:
        prices = [int(p) for f in frames for p in PRICE.findall(f)]
        assert len(frames) == 1
        assert prices == [100_000 + i for i in range(150)]
    assert renders["n"] == 150
    await asyncio.gather(*(s.disconnect() for s in sockets))


async def test_a_socket_that_misses_a_frame_gets_a_marked_resync_and_is_closed():
    """The layer drops frame #2 for this socket (simulated: the broadcaster spends its number
    without sending): the socket receives #1, then instead of #3 a resync marker and close
    4409 — never #3 as if nothing had been lost."""
    cookie = _cookie(await sync_to_async(_logged_in_client)())
    socket = _socket(cookie)
    assert (await socket.connect())[0]
    await apublish("market.BTC-USDT", "market.price", _tick(1))
    first = await socket.receive_from(timeout=5)
    assert "100001" in first
    broadcaster().sequencer.next("market.BTC-USDT")  # frame #2 lost on the way
    await apublish("market.BTC-USDT", "market.price", _tick(3))
    frames = await _drain(socket)
    assert frames[-1] == f"<close {consumers.CLOSE_RESYNC}>"
    assert 'data-live-resync="gap"' in frames[0] and 'id="live-resync"' in frames[0]
    assert not any("100003" in f for f in frames)


async def test_a_full_inbox_ends_in_a_resync_not_a_random_subset(monkeypatch):
    """This socket's inbox holds 5 frames (the layer's capacity, shrunk for the test) and its
    first write stalls 0.3 s while 40 frames are sent: the layer drops what does not fit. The
    socket forwards an unbroken prefix (#1 and the 5 that fitted), then, at the next frame
    that reaches it, a resync marker and close 4409 — nothing after the hole."""
    layer = get_channel_layer()
    if not hasattr(layer, "channels"):
        pytest.skip("the in-memory layer's capacity is shrunk here; Redis keeps its own")
    cookie = _cookie(await sync_to_async(_logged_in_client)())
    capacity = layer.capacity
    layer.capacity = 5
    socket = _socket(cookie)
    assert (await socket.connect())[0]
    real_send = consumers.LiveConsumer.send
    stalled = {"done": False}

    async def stalling_send(self: consumers.LiveConsumer, *args: object, **kwargs: object) -> None:
        if not stalled["done"]:
            stalled["done"] = True
            await asyncio.sleep(0.3)
        await real_send(self, *args, **kwargs)

    monkeypatch.setattr(consumers.LiveConsumer, "send", stalling_send)
    try:
        sender = broadcaster()
        sender.window_s = 0  # a frame per event: the inbox fills frame by frame
        for i in range(40):
            sender.submit("market.BTC-USDT", "market.price", _tick(i))
        await sender.drain()
        await asyncio.sleep(0.4)  # the stalled write ends; the inbox is read
    finally:
        layer.capacity = capacity
    await apublish("market.BTC-USDT", "market.price", _tick(99))  # reaches it: #41
    frames = await _drain(socket)
    prices = [int(p) for f in frames for p in PRICE.findall(f)]
    assert len(prices) in (5, 6)  # the 5 the inbox held (+ #1 if taken before it filled)
    assert prices == [100_000 + i for i in range(len(prices))]  # a prefix: no hole
    assert 'data-live-resync="gap"' in frames[-2]
    assert frames[-1] == f"<close {consumers.CLOSE_RESYNC}>"


async def test_a_slow_client_is_cut_off_with_4408():
    """A frame reaching the socket 6 s after it was sent (the limit is 5 s) cuts the client:
    resync marker, close 4408, the late frame not forwarded."""
    cookie = _cookie(await sync_to_async(_logged_in_client)())
    socket = _socket(cookie)
    assert (await socket.connect())[0]
    await apublish("market.BTC-USDT", "market.price", _tick(1))
    assert "100001" in await socket.receive_from(timeout=5)
    sender = broadcaster()
    late = events.build_frame(sender.sequencer, "market.BTC-USDT", "market.price", _tick(2))
    late["sent_at"] -= 6.0  # sent 6 s ago: it waited that long for this socket
    await get_channel_layer().group_send("market.BTC-USDT", dict(late))
    frames = await _drain(socket)
    assert 'data-live-resync="slow"' in frames[0]
    assert frames[-1] == f"<close {consumers.CLOSE_SLOW}>"
    assert not any("100002" in f for f in frames)


async def test_a_retried_send_delivered_twice_reaches_the_socket_once():
    """The same numbered frame sent twice (a send retried after a timeout that had in fact
    delivered): forwarded once."""
    cookie = _cookie(await sync_to_async(_logged_in_client)())
    socket = _socket(cookie)
    assert (await socket.connect())[0]
    sender = broadcaster()
    frame = dict(events.build_frame(sender.sequencer, "market.BTC-USDT", "market.price", _tick(7)))
    layer = get_channel_layer()
    await layer.group_send("market.BTC-USDT", frame)
    await layer.group_send("market.BTC-USDT", frame)
    frames = await _drain(socket, timeout=1.0)
    assert len(frames) == 1 and "100007" in frames[0]
    await socket.disconnect()


async def test_a_channel_layer_failure_is_retried_and_told_without_holding_the_publisher(
    monkeypatch,
):
    """group_send fails twice then works: ``EventBatch.apublish`` returns at once (it never
    awaits the layer), the broadcaster's third attempt delivers, and while it failed the next
    batch's ``apublish`` raised ChannelLayerUnavailable for the writer to tell."""
    cookie = _cookie(await sync_to_async(_logged_in_client)())
    socket = _socket(cookie, groups="arena")
    assert (await socket.connect())[0]
    layer = get_channel_layer()
    real_send = layer.group_send
    failures = {"left": 2}

    async def flaky(group: str, message: dict) -> None:
        if group == "arena" and failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")
        await real_send(group, message)

    monkeypatch.setattr(layer, "group_send", flaky)
    sender = broadcaster()
    sender.retry_s = 0.05
    sender.window_s = 0  # a frame per batch, sent at once
    batch = EventBatch()
    batch.add("arena", "arena.update", {"strategy": "vwap_rsi", "trades": 2, "wins": 1})
    await batch.apublish()  # handed over, returns before any send
    assert sender.backlog() == 1
    await asyncio.sleep(0.01)  # first attempt failed, retry pending
    second = EventBatch()
    second.add("arena", "arena.update", {"strategy": "vwap_rsi", "trades": 3, "wins": 2})
    with pytest.raises(events.ChannelLayerUnavailable, match="Error 111"):
        await second.apublish()
    await sender.drain()  # the third attempt delivered the first batch, then the second
    await second.apublish()  # retried by the caller: handed nothing twice, no error now
    frames = await _drain(socket, timeout=1.0)
    assert len(frames) == 2  # each batch once, in order
    assert "50.0 %" in frames[0] and "66.7 %" in frames[1]
    assert sender.failure is None
    await socket.disconnect()


async def test_logging_out_closes_the_sockets_of_that_login_only():
    """Two logins of one user; logging out of the first (the real logout view) closes its
    socket with 4401 and the second keeps streaming."""
    first = await sync_to_async(_logged_in_client)("twice")
    second = Client()
    await sync_to_async(second.force_login)(await User.objects.aget(username="twice"))
    leaving = _socket(_cookie(first))
    staying = _socket(_cookie(second))
    assert (await leaving.connect())[0] and (await staying.connect())[0]
    response = await sync_to_async(first.post)("/logout/")
    assert response.status_code in (200, 302)
    closed = await leaving.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": consumers.CLOSE_UNAUTHENTICATED}
    await apublish("market.BTC-USDT", "market.price", _tick(5))
    assert "100005" in await staying.receive_from(timeout=5)
    assert await leaving.receive_nothing(timeout=0.3)
    await staying.disconnect()


async def test_a_socket_of_a_session_logged_out_before_connecting_is_refused():
    client = await sync_to_async(_logged_in_client)("gone")
    cookie = _cookie(client)
    await sync_to_async(client.post)("/logout/")
    connected, code = await _socket(cookie).connect()
    assert not connected and code == consumers.CLOSE_UNAUTHENTICATED


async def test_connects_do_not_wait_for_the_shared_sync_thread():
    """asgiref's shared sync thread is held busy for 3 s (as page requests and the ORM hold
    it); 30 sockets still connect within 2 s."""
    from asgiref.sync import SyncToAsync

    cookie = _cookie(await sync_to_async(_logged_in_client)())
    busy = SyncToAsync.single_thread_executor.submit(lambda: __import__("time").sleep(3))
    try:
        sockets = [_socket(cookie) for _ in range(30)]
        results = await asyncio.wait_for(
            asyncio.gather(*(s.connect(timeout=2) for s in sockets)), timeout=2.5
        )
        assert all(ok for ok, _ in results)
        await asyncio.gather(*(s.disconnect() for s in sockets))
    finally:
        await asyncio.wrap_future(busy)


async def test_without_a_window_every_event_is_its_own_frame():
    """``window_s = 0``: three ticks, three frames, in order (the window is what merges)."""
    cookie = _cookie(await sync_to_async(_logged_in_client)())
    socket = _socket(cookie)
    assert (await socket.connect())[0]
    sender = broadcaster()
    sender.window_s = 0
    for i in range(3):
        await apublish("market.BTC-USDT", "market.price", _tick(i))
        await sender.drain()
    frames = await _drain(socket)
    assert [PRICE.findall(f) for f in frames] == [["100000"], ["100001"], ["100002"]]
    await socket.disconnect()
