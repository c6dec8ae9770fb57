"""Admin of the outbox: a read-only list of what was (or could not be) sent to Telegram.

The rows are the sender's state machine: editing one by hand could send a message twice or
lose it, so nothing here can be added, changed or deleted.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from notify.models import Notification, RadarBeat


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "chat_id",
        "kind",
        "level",
        "status",
        "attempts",
        "sent_at",
        "short_text",
    )
    list_filter = ("status", "kind", "level")
    search_fields = ("text", "error")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    readonly_fields = [f.name for f in Notification._meta.fields]

    @admin.display(description="text")
    def short_text(self, obj: Notification) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"


@admin.register(RadarBeat)
class RadarBeatAdmin(ReadOnlyAdmin):
    list_display = ("run_id", "host", "pid", "mode", "started_at", "beat_at", "stopped_at")
    ordering = ("-started_at",)
