from __future__ import annotations

from django.apps import AppConfig


class NotifyConfig(AppConfig):
    """Notifications to Telegram: registers the outbox as the sink of ``common.notices``."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "notify"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from common import notices
        from notify import outbox

        notices.register(outbox.notice_sink)
