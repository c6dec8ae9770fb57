"""Admin of markets and money.

Assets are edited here (``load_config`` seeds them, ``export_config`` writes them back). Market
data is view-only and its lists stay fast on millions of rows: no full-count query, only
choice-based filters (no DISTINCT scan), the natural-key index as ordering. Sessions and positions
are the ledger's records: read-only except a session's capital weight.

Every edit is checked by the model's ``clean()``, which calls the YAML loader's own function
(``trading.config.asset_problems`` / ``session_problems``): a refused value comes back as an
error on its field, with the loader's reason, and nothing is saved. A session's status is
read-only here: pausing, resuming and resetting a kill switch go through the Arena page's
controls (``strategies.services``), which require a reason where it matters and record who did
it (``ControlAction``) — the admin offers no second way around that audit trail.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from trading.config import asset_context
from trading.core.numbers import fmt_pct
from trading.core.pnl import fees_share_of_gross
from trading.markets import RULE_FIELDS
from trading.models import (
    Alert,
    Asset,
    Candle,
    FundingRate,
    OpenInterest,
    Position,
    TradingSession,
)
from trading.services import session_capital_weight_set


def utc_from_ms(time_ms: int | None) -> str:
    if time_ms is None:
        return "-"
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty_json(value: Any) -> str:
    """A JSON value as an indented ``<pre>`` block (read-only display)."""
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )


class ValidatedModelForm(forms.ModelForm):
    """A ModelForm whose model ``clean()`` may name a field the form does not show (a read-only
    one): that error is shown on top of the form instead of failing the request."""

    def _update_errors(self, errors: ValidationError) -> None:
        if hasattr(errors, "error_dict"):
            moved: dict[str, list[Any]] = {}
            for field, messages in errors.error_dict.items():
                if field == NON_FIELD_ERRORS or field in self.fields:
                    moved.setdefault(field, []).extend(messages)
                else:
                    moved.setdefault(NON_FIELD_ERRORS, []).extend(
                        f"{field}: {message}" for error in messages for message in error
                    )
            errors = ValidationError(moved)
        super()._update_errors(errors)


class AssetForm(ValidatedModelForm):
    """The asset's change form: checked against the correlation groups and exchanges of the
    configuration directory (what ``export_config`` writes back with the rows)."""

    class Meta:
        model = Asset
        fields = (
            "exchange",
            "symbol",
            "base",
            "quote",
            "enabled",
            *RULE_FIELDS,
            "correlation_group",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.validation_context = asset_context(Path(settings.CONFIG_DIR))


class ReadOnlyAdmin(admin.ModelAdmin):
    """View and delete only: rows written by the feed or the ledger, never by hand."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    form = AssetForm
    list_display = (
        "symbol",
        "exchange",
        "enabled",
        "correlation_group",
        "price_tick",
        "qty_step",
        "min_qty",
        "min_notional_usdt",
        "max_leverage",
        "rules_source",
    )
    list_filter = ("enabled", "exchange", "correlation_group")
    search_fields = ("symbol", "base")
    fieldsets = (
        (None, {"fields": ("exchange", "symbol", "base", "quote", "enabled")}),
        (
            "Market rules (sizing and rounding in backtest, paper and live)",
            {
                "fields": (
                    "price_tick",
                    "qty_step",
                    "min_qty",
                    "min_notional_usdt",
                    "max_leverage",
                    "rules_source",
                )
            },
        ),
        ("Risk", {"fields": ("correlation_group",)}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Market data and positions refer to an asset by exchange + symbol: renaming orphans them.
        return ("exchange", "symbol", "rules_source") if obj is not None else ("rules_source",)

    def save_model(self, request: HttpRequest, obj: Asset, form: Any, change: bool) -> None:
        # A rule typed in here is neither the YAML's nor the exchange's: say so.
        if set(form.changed_data) & set(RULE_FIELDS):
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            obj.rules_source = f"admin {request.user.get_username()} {now}"[:64]
        super().save_model(request, obj, form, change)


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdmin):
    list_display = (
        "symbol",
        "timeframe",
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "exchange",
    )
    list_filter = ("timeframe",)
    search_fields = ("=symbol",)
    list_per_page = 100

    @admin.display(description="open time (UTC)", ordering="open_time_ms")
    def open_time(self, obj: Candle) -> str:
        return utc_from_ms(obj.open_time_ms)


@admin.register(FundingRate)
class FundingRateAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "funding_time", "rate", "rate_pct", "mark_price", "exchange")
    search_fields = ("=symbol",)

    @admin.display(description="funding time (UTC)", ordering="funding_time_ms")
    def funding_time(self, obj: FundingRate) -> str:
        return utc_from_ms(obj.funding_time_ms)

    @admin.display(description="rate (%)")
    def rate_pct(self, obj: FundingRate) -> str:
        return f"{obj.rate * 100:+.4f} %"


@admin.register(OpenInterest)
class OpenInterestAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "time", "open_interest", "open_interest_usdt", "exchange")
    search_fields = ("=symbol",)

    @admin.display(description="time (UTC)", ordering="time_ms")
    def time(self, obj: OpenInterest) -> str:
        return utc_from_ms(obj.time_ms)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "level", "source", "message")
    list_filter = ("level",)
    search_fields = ("message", "=source")


class SessionForm(ValidatedModelForm):
    class Meta:
        model = TradingSession
        fields = ("capital_weight",)


@admin.register(TradingSession)
class TradingSessionAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "mode",
        "status",
        "started_at",
        "initial_capital_usdt",
        "realised_net_pnl",
        "fees_usdt",
        "fees_share_of_gross",
        "trades_count",
        "win_rate_pct",
        "kill_switch_tripped",
    )
    list_filter = ("mode", "status", "kill_switch_tripped")
    search_fields = ("strategy_name",)
    show_full_result_count = False
    form = SessionForm
    # Only the capital weight is edited here; the rest is the ledger's or the controls'.
    fields = (
        "strategy_name",
        "mode",
        "status",
        "status_controls",
        "capital_weight",
        "started_at",
        "ended_at",
        "initial_capital_usdt",
        "equity_usdt",
        "peak_equity_usdt",
        "realised_gross_pnl",
        "realised_net_pnl",
        "fees_usdt",
        "funding_usdt",
        "slippage_usdt",
        "trades_count",
        "wins_count",
        "kill_switch_tripped",
        "kill_switch_reason",
        "kill_switch_tripped_at",
        "error_reason",
        "errored_at",
        "ledger_snapshot",
    )
    readonly_fields = tuple(name for name in fields if name != "capital_weight")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the runtime opens sessions

    def save_model(
        self, request: HttpRequest, obj: TradingSession, form: Any, change: bool
    ) -> None:
        # Only the weight: a whole-row save would write back the status and equity the form
        # read, over a kill-switch trip or a checkpoint the radar stored meanwhile.
        session_capital_weight_set(session=obj, capital_weight=obj.capital_weight)

    @admin.display(description="win rate")
    def win_rate_pct(self, obj: TradingSession) -> str:
        return "-" if obj.win_rate is None else f"{obj.win_rate * 100:.1f} %"

    @admin.display(description="fees / |gross P&L|")
    def fees_share_of_gross(self, obj: TradingSession) -> str:
        share = fees_share_of_gross(obj.fees_usdt, obj.realised_gross_pnl)
        return "-" if share is None else fmt_pct(share * 100, signed=False, places=0)

    @admin.display(description="ledger state")
    def ledger_snapshot(self, obj: TradingSession) -> str:
        return pretty_json(obj.ledger_state)

    @admin.display(description="pause / resume / reset")
    def status_controls(self, obj: TradingSession) -> str:
        return format_html(
            'Read-only here: use the controls of the <a href="{}">Arena page</a> (a kill-switch '
            "reset needs a reason; every control is recorded with who and why).",
            reverse("arena"),
        )


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = (
        "strategy_name",
        "symbol",
        "side",
        "status",
        "shadow",
        "qty",
        "leverage",
        "entry_price",
        "exit_price",
        "net_pnl",
        "fees",
        "exit_reason",
        "entry_time",
    )
    list_filter = ("status", "side", "shadow", "exit_reason", "margin_mode")
    search_fields = ("strategy_name", "=symbol", "=ledger_id")
    list_select_related = ("session",)
    raw_id_fields = ("session",)

    @admin.display(description="entry (UTC)", ordering="entry_time_ms")
    def entry_time(self, obj: Position) -> str:
        return utc_from_ms(obj.entry_time_ms)

    @admin.display(description="fees (USDT)")
    def fees(self, obj: Position) -> str:
        return f"{obj.fees_usdt:.4f}"
