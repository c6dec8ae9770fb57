from __future__ import annotations

from django.apps import AppConfig


class RadarConfig(AppConfig):
    """The live runtime: feed handler, writer, arena, recorder, controls, selector."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "radar"
