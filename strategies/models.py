"""Strategy configurations (the admin edits these) and the signals strategies emit."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from strategies.core.base import InvalidParams, UnknownStrategy
from strategies.core.catalog import build_params
from trading.core.types import Side
from trading.models import Asset, Position


class StrategyConfig(models.Model):
    """One strategy in the arena: a kind from the registry, its parameters, its capital.

    ``params`` hold the full default parameters; ``symbol_overrides`` maps a unified symbol to
    the keys that differ for it. Both are validated against the kind's schema on ``clean()``,
    which the admin and ``load_config`` call, so a bad value is reported, never saved.
    """

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    symbol_overrides = models.JSONField(default=dict, blank=True)
    virtual_capital_usdt = models.FloatField(default=10_000.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(virtual_capital_usdt__gt=0), name="strategy_capital_positive"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            build_params(self.kind, self.params or {})
        except UnknownStrategy as exc:
            errors.setdefault("kind", []).append(str(exc))
        except InvalidParams as exc:
            errors.setdefault("params", []).extend(exc.errors)
        if "kind" not in errors:
            if not isinstance(self.symbol_overrides, dict):
                errors.setdefault("symbol_overrides", []).append(
                    "must be a mapping of symbol -> {parameter: value}"
                )
            else:
                known = set(Asset.objects.values_list("symbol", flat=True))
                for symbol, override in self.symbol_overrides.items():
                    if symbol not in known:
                        errors.setdefault("symbol_overrides", []).append(
                            f"{symbol}: no such asset (known: {', '.join(sorted(known)) or 'none'}"
                            "); use the ccxt unified symbol, e.g. SOL/USDT:USDT"
                        )
                        continue
                    if not isinstance(override, dict):
                        errors.setdefault("symbol_overrides", []).append(
                            f"{symbol}: must be a mapping of parameter -> value"
                        )
                        continue
                    try:
                        build_params(self.kind, self.params or {}, override)
                    except InvalidParams as exc:
                        errors.setdefault("symbol_overrides", []).extend(
                            f"{symbol}: {line}" for line in exc.errors
                        )
        if errors:
            raise ValidationError(errors)

    def params_for(self, symbol: str) -> dict[str, Any]:
        """The complete, validated parameters this strategy runs with on ``symbol``."""
        override = (self.symbol_overrides or {}).get(symbol)
        return build_params(self.kind, self.params or {}, override).model_dump(mode="json")


class Signal(models.Model):
    """A signal emitted on a closed candle, with the risk gate's verdict."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REFUSED = "refused", "Refused"

    strategy = models.ForeignKey(StrategyConfig, on_delete=models.CASCADE, related_name="signals")
    exchange = models.CharField(max_length=32, default="bitget")
    symbol = models.CharField(max_length=40)
    timeframe = models.CharField(max_length=4)
    candle_open_time_ms = models.BigIntegerField(help_text="open time of the deciding candle")
    created_at = models.DateTimeField(auto_now_add=True)
    side = models.CharField(max_length=5, choices=[(s.value, s.value) for s in Side])
    entry_type = models.CharField(max_length=6, choices=[("limit", "limit"), ("market", "market")])
    entry_price = models.FloatField()
    stop_loss = models.FloatField()
    take_profit = models.FloatField()
    score = models.FloatField()
    reasons = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices)
    refusal_reason = models.TextField(blank=True)
    shadow = models.BooleanField(default=False)
    order = models.JSONField(
        default=dict, blank=True, help_text="the sized order: type, qty, leverage, client id"
    )
    position = models.ForeignKey(
        Position, null=True, blank=True, on_delete=models.SET_NULL, related_name="signals"
    )

    class Meta:
        ordering = ["-candle_open_time_ms", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="signal_recent"),
            models.Index(fields=["symbol", "-candle_open_time_ms"], name="signal_symbol_time"),
        ]
        constraints = [
            # A strategy decides once per closed candle: redelivery cannot duplicate a signal.
            models.UniqueConstraint(
                fields=["strategy", "symbol", "timeframe", "candle_open_time_ms"],
                name="signal_once_per_candle",
            ),
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=1), name="signal_score_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} {self.side} {self.symbol} score {self.score:.2f} ({self.status})"


class SelectorDecision(models.Model):
    """A decision of the arena's adaptive selector, with its reason and the metrics behind it."""

    class Action(models.TextChoices):
        BOOST = "boost", "Raise capital"
        PAUSE = "pause", "Pause (shadow)"
        RESUME = "resume", "Resume"

    strategy_name = models.CharField(max_length=64, db_index=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    reason = models.TextField()
    new_weight = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    candle_time_ms = models.BigIntegerField(help_text="market time of the decision")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-candle_time_ms", "-id"]
        constraints = [
            # One decision per strategy and action per selector round: a replayed round is a no-op.
            models.UniqueConstraint(
                fields=["strategy_name", "action", "candle_time_ms"], name="selector_once_per_round"
            )
        ]

    def __str__(self) -> str:
        return f"{self.strategy_name}: {self.action} ({self.reason})"


class ControlAction(models.Model):
    """A trader's manual control: pause, resume, kill-switch reset — who, why, when."""

    class Action(models.TextChoices):
        PAUSE = "pause", "Pause"
        RESUME = "resume", "Resume"
        RESET_KILL_SWITCH = "reset_kill_switch", "Reset kill switch"

    strategy_name = models.CharField(max_length=64, db_index=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    user = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        # Steering the radar (pause, resume, kill-switch reset, parameter edits, going live,
        # Telegram commands) needs this permission: granted to the "trader" group and to
        # superusers. Viewing needs only a login. docs/security.md lists the roles.
        permissions = [("steer_radar", "Can steer the radar (controls and parameters)")]

    def __str__(self) -> str:
        return f"{self.strategy_name}: {self.action} by {self.user}"
