"""``{% telegram_status %}``: the top bar's "Telegram on / off" (base.html).

On when ``TELEGRAM_BOT_TOKEN`` is set (``notify.telegram.telegram_enabled``): notifications
are queued and the bot answers. The title says how many chats are notified and users allowed;
the token itself never reaches a page.
"""

from __future__ import annotations

from django import template
from django.conf import settings
from django.utils.html import format_html

from notify.telegram import telegram_enabled

register = template.Library()


@register.simple_tag
def telegram_status() -> str:
    if not telegram_enabled():
        return format_html(
            '<span class="tag telegram-status" title="{}">Telegram off</span>',
            "No TELEGRAM_BOT_TOKEN: nothing is sent to Telegram (docs/telegram.md)",
        )
    chats = len(settings.TELEGRAM_CHAT_IDS)
    users = len(settings.TELEGRAM_ALLOWED_USER_IDS)
    return format_html(
        '<span class="tag accepted telegram-status" title="{}">Telegram on</span>',
        f"Notifications to {chats} chat(s); commands from {users} allowed user(s)",
    )
