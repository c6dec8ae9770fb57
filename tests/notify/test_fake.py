"""The fake Bot API speaks Telegram as python-telegram-bot reads it: the real library's
``Bot`` against :mod:`notify.fake` on 127.0.0.1 (no database)."""

from __future__ import annotations

import time

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from notify.fake import DEFAULT_TOKEN, FakeBotApi


def _bot(fake: FakeBotApi, token: str = DEFAULT_TOKEN) -> Bot:
    request = HTTPXRequest(connect_timeout=2.0, read_timeout=2.0)
    return Bot(token, base_url=f"{fake.url}/bot", request=request, get_updates_request=request)


def _seconds(retry_after) -> float:
    """PTB 22 gives ``retry_after`` as int seconds (a timedelta with ``PTB_TIMEDELTA``)."""
    return retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else retry_after


@pytest.fixture
async def fake():
    server = FakeBotApi(per_chat_interval_s=1.0)
    await server.start()
    yield server
    await server.stop()


async def test_messages_and_updates_round_trip(fake):
    async with _bot(fake) as bot:
        me = await bot.get_me()
        assert me.username == "scalpradar_test_bot"
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Confirm", callback_data="kill:x")]])
        sent = await bot.send_message(chat_id=111, text='{"not": "json"} 1.5', reply_markup=markup)
        assert sent.text == '{"not": "json"} 1.5' and sent.chat.id == 111
        assert fake.sent[0].reply_markup["inline_keyboard"][0][0]["callback_data"] == "kill:x"
        first = fake.push_message(111, "/status now")
        fake.push_callback(999, "kill:x", message_id=sent.message_id)
        updates = await bot.get_updates(timeout=1)
        assert [u.update_id for u in updates] == [first, first + 1]
        assert updates[0].message.text == "/status now" and updates[0].effective_user.id == 111
        assert updates[0].message.entities[0].type == "bot_command"
        assert updates[1].callback_query.data == "kill:x"
        assert updates[1].callback_query.from_user.id == 999
        # The offset confirms: nothing comes twice; a long poll with nothing new waits.
        started = time.monotonic()
        assert await bot.get_updates(offset=first + 2, timeout=1) == ()
        assert time.monotonic() - started >= 0.9
        assert await bot.answer_callback_query(updates[1].callback_query.id, text="done")
        assert fake.answered_callbacks[0]["text"] == "done"
        # A bot starting with drop_pending_updates never sees what was sent while it was down.
        fake.push_message(111, "/pause all")
        assert await bot.delete_webhook(drop_pending_updates=True)
        assert await bot.get_updates(timeout=0) == ()


async def test_one_chat_is_limited_to_one_message_per_interval(fake):
    async with _bot(fake) as bot:
        await bot.send_message(chat_id=111, text="one")
        await bot.send_message(chat_id=222, text="another chat is not held back")
        with pytest.raises(RetryAfter) as refused:
            await bot.send_message(chat_id=111, text="too soon")
        assert _seconds(refused.value.retry_after) == 1
        assert fake.texts(111) == ["one"]


async def test_injected_faults_and_a_dropped_network(fake):
    async with _bot(fake) as bot:
        fake.fail_next("sendMessage", status=429, retry_after=7)
        with pytest.raises(RetryAfter) as refused:
            await bot.send_message(chat_id=111, text="held")
        assert _seconds(refused.value.retry_after) == 7
        fake.offline = True
        with pytest.raises((NetworkError, TimedOut)):
            await bot.send_message(chat_id=111, text="lost in the network")
        fake.offline = False
        await bot.send_message(chat_id=111, text="back")
        assert fake.texts() == ["back"]
    with pytest.raises(InvalidToken):
        async with _bot(fake, token="123456:WRONG"):
            pass
