"""Strategy configurations (the admin edits these) and the signals strategies emit."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from common.yamlcheck import Problem
from strategies.config import StrategyEntry, strategy_problems
from strategies.core.catalog import build_params
from trading.config import MAX_VIRTUAL_CAPITAL_USDT, InvalidStoredValue, field_errors
from trading.core.types import Side
from trading.models import Asset, Position


class StrategyConfig(models.Model):
    """One strategy in the arena: a kind from the registry, its parameters, its capital.

    ``params`` hold the full default parameters; ``symbol_overrides`` maps a unified symbol to
    the keys that differ for it. ``clean()`` (the admin's and ``load_config``'s) checks the row
    with ``strategies.config.strategy_problems``, the function the YAML loader uses, and stores
    the params complete; ``check_stored()`` lets the radar refuse a row stored around it.
    """

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    symbol_overrides = models.JSONField(default=dict, blank=True)
    virtual_capital_usdt = models.FloatField(
        default=10_000.0, help_text=f"USDT, in (0, {MAX_VIRTUAL_CAPITAL_USDT:,.0f}]"
    )
    live = models.BooleanField(
        default=False,
        help_text="trades real orders beside its paper twin; set only by the recorded "
        "'go live' control (dashboard), never from YAML",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(virtual_capital_usdt__gt=0), name="strategy_capital_positive"
            ),
            models.CheckConstraint(
                condition=Q(virtual_capital_usdt__lte=MAX_VIRTUAL_CAPITAL_USDT),
                name="strategy_capital_at_most_max",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def as_entry(self) -> dict[str, Any]:
        """The row as its ``strategies.yaml`` entry (what ``export_config`` writes)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "enabled": self.enabled,
            "virtual_capital_usdt": self.virtual_capital_usdt,
            "description": self.description,
            "params": self.params,
            "symbol_overrides": self.symbol_overrides,
        }

    def problems(self, *, symbols: Collection[str] | None) -> list[Problem]:
        return strategy_problems(self.as_entry(), symbols=symbols)

    def clean(self) -> None:
        known = set(Asset.objects.values_list("symbol", flat=True))
        problems = self.problems(symbols=known)
        if problems:
            raise ValidationError(field_errors(problems))
        # Stored complete and normalised, as load_config stores the YAML: what runs, and what
        # export_config writes back.
        entry = StrategyEntry.model_validate(self.as_entry())
        self.params = entry.resolved_params()
        self.symbol_overrides = entry.resolved_overrides()

    def check_stored(self) -> None:
        """Raise ``InvalidStoredValue`` when the stored row breaks its schema (the radar calls
        this before building or rebuilding the strategy's kernel)."""
        problems = self.problems(symbols=None)
        if problems:
            reasons = "; ".join(
                f"{field}: {line}"
                for field, lines in field_errors(problems).items()
                for line in lines
            )
            raise InvalidStoredValue(
                f"strategy {self.name}: its stored configuration is refused ({reasons}); "
                "fix it in the admin (Strategy configs)"
            )

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
    """A control: pause, resume, kill-switch reset, going live or back to paper, a flatten or
    the Close of one position by a trader, or a decision of the arena's selector (pause,
    resume, capital weight) — who, why, when.

    ``market_time_ms``: the market time (UTC epoch ms) from which the control is in force — a
    trader's is stamped by the radar when it applies it (``radar.controls.sync_controls``), a
    selector's is its round's. A trader's pause, resume or reset holds the selector off that
    strategy for ``risk.yaml`` ``selector.manual_hold_hours`` of market time from then
    (``radar.selector``).
    """

    class Action(models.TextChoices):
        PAUSE = "pause", "Pause"
        RESUME = "resume", "Resume"
        RESET_KILL_SWITCH = "reset_kill_switch", "Reset kill switch"
        GO_LIVE = "go_live", "Go live"
        GO_PAPER = "go_paper", "Back to paper"
        FLATTEN = "flatten", "Flatten live"
        CLOSE_POSITION = "close_position", "Close a position"
        SCALE_RISK = "scale_risk", "Scale risk (capital weight)"

    class Actor(models.TextChoices):
        TRADER = "trader", "Trader"
        SELECTOR = "selector", "Arena selector"

    # A trader's controls the selector must not undo within the hold (radar.selector).
    HELD_ACTIONS = (Action.PAUSE, Action.RESUME, Action.RESET_KILL_SWITCH)

    strategy_name = models.CharField(max_length=64, db_index=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    actor = models.CharField(max_length=8, choices=Actor.choices, default=Actor.TRADER)
    user = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    market_time_ms = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="market time (UTC epoch ms) from which it is in force; empty until the radar "
        "applied a trader's control",
    )
    done_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="a flatten or a close: when the live executor / the radar carried it out",
    )
    # A trader's Close on the Positions page (strategies.closes): the radar closes it at
    # market and stamps done_at (radar.close).
    position = models.ForeignKey(
        "trading.Position",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="a close: the position closed at market",
    )
    # A trader's Close on the Live page (strategies.closes): the live executor closes it
    # reduce-only at market and stamps done_at (radar.live).
    live_position = models.ForeignKey(
        "trading.LivePosition",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="a live close: the exchange position closed at market",
    )

    class Meta:
        ordering = ["-created_at"]
        # Steering the radar (pause, resume, kill-switch reset, parameter edits, going live,
        # Telegram commands) needs this permission: granted to the "trader" group and to
        # superusers. Viewing needs only a login. docs/security.md lists the roles.
        permissions = [("steer_radar", "Can steer the radar (controls and parameters)")]
        indexes = [
            # The radar stamps the controls it has not applied yet at every controls read:
            # this keeps that update from scanning the whole log.
            models.Index(
                fields=["strategy_name"],
                condition=Q(market_time_ms__isnull=True),
                name="control_not_yet_applied",
            )
        ]

    def __str__(self) -> str:
        return f"{self.strategy_name}: {self.action} by {self.by}"

    @property
    def by(self) -> str:
        """Who did it, as the control log shows it: the user, "selector", or "—"."""
        if self.actor == self.Actor.SELECTOR:
            return "selector"
        return str(self.user) if self.user_id else "—"


class StrategyInputStatus(models.Model):
    """Why a strategy (or a confirmation filter) cannot decide on a symbol, as the radar last saw
    it: "no open-interest history", "no order book and no trades received...".

    One row per strategy and symbol WHILE it cannot decide; deleted when it can again. The
    radar writes it only when the reason changes (``radar.input_status``), so the Arena and
    Radar pages read it from the database even when they run in another process.
    ``market_time_ms``: close time (UTC epoch ms) of the candle at which the radar saw it.
    """

    strategy_name = models.CharField(max_length=64)
    symbol = models.CharField(max_length=40)
    reason = models.TextField()
    market_time_ms = models.BigIntegerField(help_text="market time (UTC epoch ms) it was seen")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["strategy_name", "symbol"]
        verbose_name_plural = "strategy input statuses"
        constraints = [
            models.UniqueConstraint(
                fields=["strategy_name", "symbol"], name="input_status_once_per_symbol"
            )
        ]

    def __str__(self) -> str:
        return f"{self.strategy_name} on {self.symbol}: {self.reason}"
