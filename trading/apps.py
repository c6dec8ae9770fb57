from __future__ import annotations

from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"

    def ready(self) -> None:
        from trading import security  # noqa: F401  (connects the login lock-out alert)
