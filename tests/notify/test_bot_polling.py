"""The command bot through the real python-telegram-bot, long-polling the fake Bot API server
(``notify.fake`` on 127.0.0.1): who is answered, what a command changes, the /kill buttons.

Updates are handled one at a time in order, so a message of the owner pushed after a
stranger's is a barrier: once the owner's reply is there, the stranger's updates were handled
(and ignored) — no sleeping to prove that nothing happened."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from notify.bot import CommandBot
from notify.fake import FakeBotApi, SentMessage
from strategies.models import ControlAction
from tests.notify.conftest import OWNER, STRANGER
from trading.models import TradingSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def desk(transactional_db) -> None:
    """The YAML's strategies; vwap_rsi and swing_1h with an active paper session."""
    call_command("load_config", stdout=io.StringIO())
    for name in ("vwap_rsi", "swing_1h"):
        TradingSession.objects.create(strategy_name=name)


@pytest.fixture
async def bot(fake_telegram: FakeBotApi, desk):
    """A started :class:`CommandBot` polling the fake (1 s long polls), stopped after."""
    commands_bot = CommandBot(poll_timeout_s=1)
    await commands_bot.start()
    try:
        yield commands_bot
    finally:
        await commands_bot.stop()


@sync_to_async
def status_of(name: str) -> str:
    return TradingSession.objects.get(strategy_name=name).status


@sync_to_async
def actions() -> list[tuple[str, str, str, str]]:
    return [
        (a.strategy_name, a.action, a.user.username if a.user else "", a.reason)
        for a in ControlAction.objects.select_related("user").order_by("id")
    ]


def to(chat_id: int, starts: str) -> Callable[[SentMessage], bool]:
    return lambda m: m.chat_id == chat_id and m.text.startswith(starts)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_the_owner_gets_status_and_the_menu_lists_the_commands(fake_telegram, bot):
    fake_telegram.push_message(OWNER, "/status")
    reply = await fake_telegram.wait_sent(to(OWNER, "Scalp Radar — "))
    assert "  vwap_rsi: active" in reply.text.splitlines()
    assert reply.reply_markup is None
    assert [c["command"] for c in fake_telegram.commands] == [
        "status",
        "positions",
        "pnl",
        "pause",
        "resume",
        "kill",
        "reset",
        "help",
    ]
    sends = [p for method, p in fake_telegram.calls if method == "sendMessage"]
    assert all("parse_mode" not in p for p in sends)  # plain text


async def test_a_stranger_gets_nothing_and_changes_nothing(fake_telegram, bot):
    fake_telegram.push_message(STRANGER, "/status")
    fake_telegram.push_message(STRANGER, "/pause vwap_rsi")
    fake_telegram.push_message(STRANGER, "hello?")
    fake_telegram.push_message(OWNER, "/help")  # the barrier
    await fake_telegram.wait_sent(to(OWNER, "Scalp Radar commands:"))
    assert fake_telegram.texts(STRANGER) == []
    assert [m.chat_id for m in fake_telegram.sent] == [OWNER]
    assert await status_of("vwap_rsi") == "active"
    assert await actions() == []


async def test_the_owners_pause_pauses_the_strategy(fake_telegram, bot):
    fake_telegram.push_message(OWNER, "/pause vwap_rsi")
    await fake_telegram.wait_sent(to(OWNER, "vwap_rsi paused"))
    assert await status_of("vwap_rsi") == "paused"
    assert await actions() == [
        ("vwap_rsi", "pause", "telegram-111", "via Telegram: /pause vwap_rsi")
    ]


async def test_kill_asks_with_buttons_and_confirm_flattens_and_pauses(fake_telegram, bot):
    fake_telegram.push_message(OWNER, "/kill vwap_rsi")
    question = await fake_telegram.wait_sent(to(OWNER, "Kill vwap_rsi?"))
    (confirm, cancel) = question.reply_markup["inline_keyboard"][0]
    assert (confirm["text"], cancel["text"]) == ("Confirm kill", "Cancel")
    assert await actions() == []

    fake_telegram.push_callback(OWNER, confirm["callback_data"], message_id=question.message_id)
    await until(lambda: len(fake_telegram.answered_callbacks) == 1)
    assert fake_telegram.answered_callbacks[0]["text"] == "done"
    await until(lambda: question.reply_markup is None)  # the question edited, buttons gone
    assert "\n\n→ Kill vwap_rsi: flatten of the live orders and positions requested" in (
        question.text
    )
    reason = "via Telegram: /kill vwap_rsi (confirmed)"
    assert await actions() == [
        ("vwap_rsi", "flatten", "telegram-111", reason),
        ("vwap_rsi", "pause", "telegram-111", reason),
    ]
    assert await status_of("vwap_rsi") == "paused"


async def test_a_strangers_button_press_does_nothing(fake_telegram, bot):
    fake_telegram.push_message(OWNER, "/kill all")
    question = await fake_telegram.wait_sent(to(OWNER, "Kill EVERY strategy"))
    confirm = question.reply_markup["inline_keyboard"][0][0]["callback_data"]
    fake_telegram.push_callback(STRANGER, confirm, message_id=question.message_id)
    fake_telegram.push_message(OWNER, "/help")  # the barrier
    await fake_telegram.wait_sent(to(OWNER, "Scalp Radar commands:"))
    assert fake_telegram.answered_callbacks == []
    assert question.reply_markup is not None  # still asking
    assert await actions() == []
    assert await status_of("vwap_rsi") == "active"


async def test_a_reply_refused_with_429_is_sent_after_retry_after(fake_telegram, bot):
    fake_telegram.fail_next("sendMessage", retry_after=1)
    fake_telegram.push_message(OWNER, "/help")
    await fake_telegram.wait_sent(to(OWNER, "Scalp Radar commands:"))
    assert [r[:2] for r in fake_telegram.refused] == [("sendMessage", 429)]
    assert len(fake_telegram.texts(OWNER)) == 1


async def test_run_waits_for_the_network_then_serves_until_stopped(fake_telegram, desk, caplog):
    """Telegram unreachable at start: ``run`` retries (after 1 s), then polls — asking
    Telegram to drop what was sent while no bot listened — answers, and returns once its stop
    event is set."""
    fake_telegram.offline = True
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="notify.bot")
    task = asyncio.create_task(CommandBot(poll_timeout_s=1).run(stop))
    try:
        await until(lambda: "Telegram command bot not started" in caplog.text)
        fake_telegram.offline = False
        await until(lambda: any(method == "getUpdates" for method, _ in fake_telegram.calls))
        assert ("deleteWebhook", {"drop_pending_updates": True}) in fake_telegram.calls
        fake_telegram.push_message(OWNER, "/pnl")
        await fake_telegram.wait_sent(to(OWNER, "P&L of the running sessions"))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert task.exception() is None
