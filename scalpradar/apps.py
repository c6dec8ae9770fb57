from __future__ import annotations

from django.apps import AppConfig


class ScalpradarConfig(AppConfig):
    name = "scalpradar"
    verbose_name = "Scalp Radar"

    def ready(self) -> None:
        from scalpradar import checks  # noqa: F401  (registers the config system check)
