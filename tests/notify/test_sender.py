"""The sender against the fake Bot API (``notify.fake`` on 127.0.0.1) through the real
python-telegram-bot: pacing per chat, coalescing, splitting, 429 and network faults, staleness,
exclusive claims. The fake refuses a chat's second message within 1 s with a 429, so a test
that sees no refusal shows the sender paced itself."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from common.notices import Notice
from notify import outbox
from notify.config import NotifyConfig
from notify.models import Notification
from notify.sender import Sender, plan_message, split_text
from notify.telegram import make_bot

pytestmark = pytest.mark.django_db(transaction=True)

FAST = replace(NotifyConfig(), coalesce_window_s=0.0, retry_backoff_s=(0.2,))


@sync_to_async
def enqueue(text: str, config: NotifyConfig = FAST, *, level: str = "error") -> list[int]:
    rows = outbox.enqueue(Notice(kind="alert", text=text, level=level), config=config)
    return [row.pk for row in rows]


@sync_to_async
def rows(**filters) -> list[Notification]:
    return list(Notification.objects.filter(**filters).order_by("id"))


@sync_to_async
def set_rows(pks: list[int], **fields) -> None:
    Notification.objects.filter(pk__in=pks).update(**fields)


async def until(predicate, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def all_sent() -> bool:
    return all(r.status == "sent" for r in await rows())


@contextlib.asynccontextmanager
async def running(config: NotifyConfig = FAST, **kwargs) -> AsyncIterator[Sender]:
    """A :class:`Sender` running on the settings' bot until the block ends."""
    bot = make_bot()
    sender = Sender(bot, worker_id=kwargs.pop("worker_id", "test"), config=config, **kwargs)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        yield sender
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await bot.shutdown()


async def drained(config: NotifyConfig = FAST, timeout_s: float = 10.0, **kwargs) -> int:
    bot = make_bot()
    try:
        sender = Sender(bot, worker_id="drain", config=config, **kwargs)
        return await sender.drain(timeout_s)
    finally:
        await bot.shutdown()


def too_many(fake) -> list:
    return [r for r in fake.refused if r[1] == 429]


def gaps(fake, chat_id: int) -> list[float]:
    times = [m.at for m in fake.sent if m.chat_id == chat_id]
    return [b - a for a, b in itertools.pairwise(times)]


# --- plain delivery ------------------------------------------------------------------------------


async def test_pending_rows_are_sent_and_marked_sent_with_telegrams_message_id(fake_telegram):
    await enqueue("🛑 kill switch tripped (vwap_rsi)")
    async with running():
        message = await fake_telegram.wait_sent(lambda m: "kill switch" in m.text)
        await until(all_sent)
    [row] = await rows()
    assert message.chat_id == 111 and message.text == "🛑 kill switch tripped (vwap_rsi)"
    assert row.message_id == message.message_id and row.sent_at is not None
    assert row.claimed_by == "test" and row.attempts == 0


async def test_a_commit_wakes_the_sender_without_waiting_for_its_poll(fake_telegram):
    async with running(idle_poll_s=30.0) as sender:
        await asyncio.sleep(0.3)  # the sender is asleep for 30 s now
        await enqueue("woken")
        await fake_telegram.wait_sent(lambda m: m.text == "woken", timeout_s=5)
    assert sender.sent_rows == 1


# --- Telegram's limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("interval_s", [1.0, 1.6])
async def test_one_chat_gets_at_most_one_message_per_interval(fake_telegram, settings, interval_s):
    """Two chats, three 150-character alerts each, max_message_chars 200: one alert per
    message. Each chat's messages are >= per_chat_interval_s apart; the chats interleave."""
    settings.TELEGRAM_CHAT_IDS = ("111", "222")
    config = replace(FAST, per_chat_interval_s=interval_s, max_message_chars=200)
    for i in range(3):
        await enqueue(f"{i} " + "x" * 148, config)
    async with running(config):
        await until(all_sent)
    assert len(fake_telegram.sent) == 6 and not too_many(fake_telegram)
    for chat in (111, 222):
        assert [m.text[0] for m in fake_telegram.sent if m.chat_id == chat] == ["0", "1", "2"]
        assert min(gaps(fake_telegram, chat)) >= interval_s
    # Interleaved: the other chat's first message does not wait for this chat's third.
    assert {m.chat_id for m in fake_telegram.sent[:2]} == {111, 222}


async def test_a_burst_of_ten_alerts_within_the_window_goes_as_one_message(fake_telegram):
    config = replace(FAST, coalesce_window_s=1.5)
    async with running(config):
        for i in range(10):
            await enqueue(f"alert {i}", config)
            await asyncio.sleep(0.05)
        await until(all_sent)
    [message] = fake_telegram.sent
    assert message.text == "\n\n".join(f"alert {i}" for i in range(10))
    assert {r.message_id for r in await rows()} == {message.message_id}


@pytest.mark.parametrize(("window_s", "messages"), [(0.0, ["a", "b"]), (1.0, ["a\n\nb"])])
async def test_messages_within_the_coalescing_window_go_as_one(fake_telegram, window_s, messages):
    """ "a", then "b" 0.3 s later: a window of 1 s holds "a" until "b" joins it; none sends "a"
    at once, and "b" one interval later."""
    config = replace(FAST, coalesce_window_s=window_s)
    async with running(config):
        await enqueue("a", config)
        await asyncio.sleep(0.3)
        await enqueue("b", config)
        await until(all_sent)
    assert fake_telegram.texts() == messages and not too_many(fake_telegram)


async def test_a_batch_longer_than_max_message_chars_is_split(fake_telegram):
    """Ten 58-character alerts (+ 2 separator characters each) in 200 characters: 3 a message
    (3 × 58 + 2 × 2 = 178; a fourth would make 238), so 3 + 3 + 3 + 1."""
    config = replace(FAST, max_message_chars=200, coalesce_window_s=0.5)
    texts = [f"alert {i} " + "-" * 50 for i in range(10)]
    for text in texts:
        await enqueue(text, config)
    async with running(config):
        await until(all_sent)
    sent = fake_telegram.texts()
    assert [len(m.split("\n\n")) for m in sent] == [3, 3, 3, 1]
    assert all(len(m) <= 200 for m in sent)
    assert "\n\n".join(sent).split("\n\n") == texts  # each exactly once, in order
    assert not too_many(fake_telegram)


def test_a_text_longer_than_the_limit_is_cut_at_line_breaks():
    text = "\n".join(f"line {i:02d} " + "y" * 40 for i in range(10))  # 10 × 48 + 9
    pieces = split_text(text, 200)
    assert all(len(p) <= 200 for p in pieces) and len(pieces) == 3
    assert "\n".join(pieces) == text
    long_row = Notification(text=text)
    batch, texts, rest = plan_message([long_row, Notification(text="next")], 200)
    assert batch == [long_row] and texts == pieces and [r.text for r in rest] == ["next"]


async def test_a_429_makes_the_chat_wait_retry_after_then_sends_once(fake_telegram):
    fake_telegram.fail_next("sendMessage", status=429, retry_after=2)
    await enqueue("after the flood")
    started = time.time()
    async with running():
        message = await fake_telegram.wait_sent(lambda m: m.text == "after the flood")
        await until(all_sent)
    assert message.at - started >= 2.0
    assert fake_telegram.texts() == ["after the flood"]
    assert [m for m, _ in fake_telegram.calls].count("sendMessage") == 2
    [row] = await rows()
    assert row.attempts == 1 and "RetryAfter" in row.error


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backoff_s", [0.2, 1.5])
async def test_a_network_error_waits_the_backoff_then_sends(fake_telegram, backoff_s):
    """A 502 Bad Gateway is a network error: the row waits retry_backoff_s[0], then goes."""
    fake_telegram.fail_next("sendMessage", status=502)
    config = replace(FAST, retry_backoff_s=(backoff_s, 60.0))
    await enqueue("through the gateway", config)
    async with running(config):
        await until(lambda: rows(attempts=1))
        failed_at = time.time()
        message = await fake_telegram.wait_sent(lambda m: m.text == "through the gateway")
        await until(all_sent)
    # failed_at is read after the failure was stored: the wait measured from it is shorter.
    assert message.at - failed_at >= backoff_s - 0.1
    [row] = await rows()
    assert row.attempts == 1 and "NetworkError" in row.error


async def test_offline_keeps_rows_pending_then_sends_each_exactly_once(fake_telegram):
    async with running():
        await enqueue("before")
        await fake_telegram.wait_sent(lambda m: m.text == "before")
        fake_telegram.offline = True
        for text in ("during 1", "during 2", "during 3"):
            await enqueue(text)
        await until(lambda: rows(attempts__gte=2, status="pending"))
        assert [r.status for r in await rows()] == ["sent", "pending", "pending", "pending"]
        fake_telegram.offline = False
        await until(all_sent)
    assert fake_telegram.texts() == ["before", "during 1\n\nduring 2\n\nduring 3"]
    assert not too_many(fake_telegram)


async def test_a_drain_with_the_network_down_returns_and_keeps_the_rows(fake_telegram):
    await enqueue("kept")
    fake_telegram.offline = True
    assert await drained(timeout_s=1.0) == 0
    [row] = await rows()
    assert row.status == "pending"
    fake_telegram.offline = False
    assert await drained() == 1
    assert fake_telegram.texts() == ["kept"]


async def test_a_chat_telegram_refuses_marks_its_rows_failed(fake_telegram):
    fake_telegram.fail_next("sendMessage", status=400)
    await enqueue("to nowhere")
    assert await drained(timeout_s=3.0) == 0
    [row] = await rows()
    assert row.status == "failed" and "BadRequest" in row.error
    assert fake_telegram.sent == []


@pytest.mark.parametrize(("stale_after_minutes", "sent"), [(60.0, False), (120.0, True)])
async def test_a_row_pending_longer_than_stale_after_is_dropped(
    fake_telegram, stale_after_minutes, sent
):
    """A row queued 61 minutes ago: stale (and one summary line) past 60 minutes, sent when
    the limit is 120."""
    [pk] = await enqueue("an hour late")
    await set_rows([pk], created_at=timezone.now() - timedelta(minutes=61))
    await drained(replace(FAST, stale_after_minutes=stale_after_minutes))
    [row] = await rows(pk=pk)
    if sent:
        assert row.status == "sent" and fake_telegram.texts() == ["an hour late"]
    else:
        assert row.status == "stale"
        assert fake_telegram.texts() == [
            "⚠️ 1 notification could not be sent within 60 minutes and was dropped "
            "(see the Alerts page)."
        ]


# --- claims ---------------------------------------------------------------------------------------


async def test_two_senders_on_one_database_never_send_a_row_twice(fake_telegram, settings):
    settings.TELEGRAM_CHAT_IDS = ("111", "222", "333")
    texts = [f"wave {wave} alert {i}" for wave in range(4) for i in range(3)]
    async with running(worker_id="one"), running(worker_id="two"):
        for wave in range(4):
            for i in range(3):
                await enqueue(f"wave {wave} alert {i}")
            await asyncio.sleep(0.25)
        await until(all_sent, timeout_s=30)
    for chat in (111, 222, 333):
        delivered = "\n\n".join(fake_telegram.texts(chat)).split("\n\n")
        assert sorted(delivered) == sorted(texts)  # every row once, none twice
    assert {r.claimed_by for r in await rows()} <= {"one", "two"}


async def test_a_sending_row_whose_claimer_died_is_sent_again(fake_telegram, settings):
    settings.TELEGRAM_CHAT_IDS = ("111", "222")
    [dead, alive] = await enqueue("claimed")
    now = timezone.now()
    await set_rows(
        [dead], status="sending", claimed_by="dead", claimed_at=now - timedelta(minutes=2)
    )
    await set_rows([alive], status="sending", claimed_by="alive", claimed_at=now)
    assert await drained(claim_ttl_s=60.0) == 1
    assert [(m.chat_id, m.text) for m in fake_telegram.sent] == [(111, "claimed")]
    assert [(r.status, r.claimed_by) for r in await rows()] == [
        ("sent", "drain"), ("sending", "alive"),
    ]  # fmt: skip


async def test_a_drain_does_not_wait_for_the_coalescing_window(fake_telegram):
    config = replace(FAST, coalesce_window_s=60.0)
    await enqueue("radar stopped", config)
    await enqueue("session P&L +12.00 USDT", config)
    assert await drained(config, timeout_s=10.0) == 2
    assert fake_telegram.texts() == ["radar stopped\n\nsession P&L +12.00 USDT"]


async def test_a_rejected_token_keeps_the_rows_and_never_shows_the_token(
    fake_telegram, settings, caplog
):
    settings.TELEGRAM_BOT_TOKEN = "987654:WRONG-TOKEN"
    await enqueue("kept for a good token")
    with caplog.at_level(logging.DEBUG):
        assert await drained(timeout_s=0.5) == 0
    assert sorted({code for _, code, _ in fake_telegram.refused}) == [401]
    [row] = await rows()
    assert row.status == "pending"
    assert "InvalidToken" in caplog.text or "not reachable" in caplog.text
    assert "987654:WRONG-TOKEN" not in caplog.text and "WRONG-TOKEN" not in row.error


async def test_a_server_that_never_answers_does_not_hang_a_drain(settings):
    """A socket that accepts and stays silent: the request's read time-out (5 s) ends the
    attempt, the drain returns and the row waits for the next sender."""
    silent: list[asyncio.StreamWriter] = []

    async def accept(_reader, writer) -> None:
        silent.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings.TELEGRAM_BOT_TOKEN = "123456:TEST-TOKEN"
    settings.TELEGRAM_API_URL = f"http://127.0.0.1:{port}"
    settings.TELEGRAM_CHAT_IDS = ("111",)
    try:
        await enqueue("into the void")
        assert await asyncio.wait_for(drained(timeout_s=0.5), 30) == 0
    finally:
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()
    [row] = await rows()
    assert row.status == "pending"
