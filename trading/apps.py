from __future__ import annotations

from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from trading import instruments, security  # noqa: F401  (security: lock-out alert)
        from trading.models import Asset

        post_save.connect(instruments.clear, sender=Asset, dispatch_uid="instruments-clear-save")
        post_delete.connect(instruments.clear, sender=Asset, dispatch_uid="instruments-clear-del")
