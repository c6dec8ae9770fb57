"""The Celery app. Without REDIS_URL, tasks run eagerly in the calling process."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")

app = Celery("scalpradar")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _configure_radar(**_kwargs: object) -> None:
    """The feed worker's watchdog thresholds from ``notify.yaml`` (radar may not import
    notify; the wiring hands them over). A bad notify.yaml stops the worker with its error."""
    import django

    django.setup()
    from radar import watchdog
    from scalpradar.serve import watchdog_thresholds

    watchdog.configure(watchdog_thresholds())
