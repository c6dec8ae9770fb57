"""Backtest runs: what was asked, how far it got, what it found."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class BacktestRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    strategy_name = models.CharField(max_length=64)
    strategy_kind = models.CharField(max_length=64)
    exchange = models.CharField(max_length=32, default="bitget")
    symbol = models.CharField(max_length=40)
    timeframe = models.CharField(max_length=4, default="1m")
    start_ms = models.BigIntegerField(null=True, blank=True)
    end_ms = models.BigIntegerField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    params_source = models.CharField(
        max_length=255, blank=True, help_text="where the parameters came from (db, yaml, ...)"
    )
    capital_usdt = models.FloatField(default=10_000.0)
    fees_enabled = models.BooleanField(default=True)
    data_source = models.CharField(max_length=255, blank=True, help_text="db or file paths")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    progress = models.FloatField(default=0.0, help_text="0..1")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    results = models.JSONField(default=dict, blank=True)
    equity_curve = models.JSONField(default=list, blank=True, help_text="[[time_ms, equity]]")
    trades = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="backtest_status_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="backtest_progress_0_1"
            ),
            models.CheckConstraint(condition=Q(capital_usdt__gt=0), name="backtest_capital_pos"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.strategy_name} {self.symbol} ({self.status})"
