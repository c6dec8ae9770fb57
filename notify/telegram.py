"""The Telegram Bot of the settings, with short network timeouts, and token hygiene.

The Bot API endpoint is ``{TELEGRAM_API_URL}/bot{TELEGRAM_BOT_TOKEN}/{method}`` (Telegram's own
server by default; a local Bot API server or the tests' fake, ``notify.fake``, stands in).
Every request is bounded (connect / read / write 5 s, pool 2 s) so a dead network fails fast as
``telegram.error.TimedOut`` / ``NetworkError`` instead of hanging a drain. The token never
leaves this module's callers in clear: :func:`scrub` removes it from any text before it is
logged or stored.
"""

from __future__ import annotations

from django.conf import settings
from telegram import Bot
from telegram.request import HTTPXRequest

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 5.0
POOL_TIMEOUT_S = 2.0


def telegram_enabled() -> bool:
    """True when a bot token is configured (``TELEGRAM_BOT_TOKEN``): Telegram is on."""
    return bool(getattr(settings, "TELEGRAM_BOT_TOKEN", ""))


def make_request(*, read_timeout_s: float = READ_TIMEOUT_S) -> HTTPXRequest:
    """An HTTP client whose every phase is bounded (seconds)."""
    return HTTPXRequest(
        connection_pool_size=8,
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        write_timeout=WRITE_TIMEOUT_S,
        pool_timeout=POOL_TIMEOUT_S,
    )


def make_bot() -> Bot:
    """The settings' bot (not initialised: ``await bot.initialize()`` or ``async with``)."""
    if not telegram_enabled():
        raise RuntimeError("Telegram is off: TELEGRAM_BOT_TOKEN is not set")
    return Bot(
        token=settings.TELEGRAM_BOT_TOKEN,
        base_url=f"{settings.TELEGRAM_API_URL}/bot",
        request=make_request(),
        # PTB adds getUpdates' long-poll ``timeout`` to this read timeout by itself.
        get_updates_request=make_request(),
    )


def scrub(text: str) -> str:
    """``text`` with the bot token (if any) replaced by ``***``: safe to log or store."""
    token = getattr(settings, "TELEGRAM_BOT_TOKEN", "")
    return text.replace(token, "***") if token else text


def chat_param(chat_id: str) -> int | str:
    """A stored chat id as the Bot API takes it: an int for numeric ids, ``@name`` as is."""
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id
