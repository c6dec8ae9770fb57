"""The outbox of Telegram messages and the radar's own heartbeat row.

A :class:`Notification` is one message for one chat, written in the transaction of the event it
tells (``notify.outbox.enqueue``) and moved by the sender through
``pending -> sending -> sent`` (or back to ``pending`` with a later ``next_attempt_at`` after an
error, ``stale`` when it waited too long, ``failed`` when Telegram refuses it for good). The
token is never stored; ``error`` holds the exception's class and message with it scrubbed.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Notification(models.Model):
    """One message for one chat (``chat_id``: Telegram's id, or ``@channel``)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        STALE = "stale", "Stale"
        FAILED = "failed", "Failed"

    # A numeric id, or @ + a channel username (Telegram allows up to 32 characters).
    chat_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=24)
    level = models.CharField(max_length=7, default="info")
    text = models.TextField()
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="send attempts that failed")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    next_attempt_at = models.DateTimeField(
        default=timezone.now,
        help_text="not sent before: the end of the coalescing window, then of each back-off",
    )
    claimed_by = models.CharField(max_length=64, blank=True, help_text="the sender holding it")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.BigIntegerField(
        null=True, blank=True, help_text="Telegram's message id (shared by a coalesced batch)"
    )
    error = models.TextField(blank=True, help_text="the last error (class: message)")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
            models.Index(fields=["chat_id", "status"], name="notification_chat_status"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.chat_id} ({self.status})"


class RadarBeat(models.Model):
    """The radar's heartbeat: one row per process run, ``beat_at`` refreshed while it lives.

    ``/status`` shows it; the dead-man (``notify.deadman``) reads it beside ``/health/`` to tell
    "the radar is down" from "the radar stopped cleanly" (``stopped_at`` set).
    """

    run_id = models.CharField(max_length=32, unique=True)
    pid = models.PositiveIntegerField()
    host = models.CharField(max_length=255)
    mode = models.CharField(max_length=16, blank=True, help_text="live, replay, headless...")
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(default=timezone.now, db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"radar run {self.run_id} on {self.host} (pid {self.pid})"
