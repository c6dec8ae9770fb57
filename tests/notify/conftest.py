"""Fixtures of the notify tests: a started fake Telegram Bot API (``notify.fake``) with the
settings pointing the bot at it. The allowed user (and the one notified chat) is
:data:`OWNER`; :data:`STRANGER` is anyone else."""

from __future__ import annotations

import pytest

from notify.fake import DEFAULT_TOKEN, FakeBotApi

OWNER = 111
STRANGER = 999


@pytest.fixture
async def fake_telegram(settings):
    """A :class:`notify.fake.FakeBotApi` on 127.0.0.1 (a free port), and the settings of a bot
    that talks to it: token, API URL, allowed user :data:`OWNER`, chat ``"111"``."""
    fake = FakeBotApi(DEFAULT_TOKEN)
    await fake.start()
    settings.TELEGRAM_BOT_TOKEN = DEFAULT_TOKEN
    settings.TELEGRAM_API_URL = fake.url
    settings.TELEGRAM_ALLOWED_USER_IDS = (OWNER,)
    settings.TELEGRAM_CHAT_IDS = (str(OWNER),)
    try:
        yield fake
    finally:
        await fake.stop()
