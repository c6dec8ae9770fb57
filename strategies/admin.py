"""Admin of strategy configurations and signals.

A strategy's params are edited as pretty JSON; saving runs ``StrategyConfig.clean()`` (through the
ModelForm), which calls the YAML loader's own check (``strategies.config.strategy_problems``), so
values ``strategies.yaml`` would refuse come back on the form as field errors with the loader's
reason and are never saved (and the params are stored complete, as ``load_config`` stores
them). The change page shows that schema — every parameter with its type, default, bounds
and meaning — so the editor knows what can be changed.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from strategies.core.base import UnknownStrategy
from strategies.core.catalog import REGISTRY, strategy_class
from strategies.models import (
    ControlAction,
    SelectorDecision,
    Signal,
    StrategyConfig,
    StrategyInputStatus,
)
from trading.admin import ReadOnlyAdmin, ValidatedModelForm


class PrettyJSONField(forms.JSONField):
    """A JSON form field that shows its value indented, one key per line."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


JSON_WIDGET = forms.Textarea(attrs={"rows": 18, "cols": 80, "style": "font-family: monospace"})


def _registered_kinds() -> list[str]:
    from strategies.core import catalog  # noqa: F401  (registers the built-in strategies)

    return sorted(REGISTRY)


def kind_choices() -> list[tuple[str, str]]:
    return [(kind, kind) for kind in _registered_kinds()]


def _bounds(spec: dict[str, Any]) -> str:
    parts = []
    for key, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in spec:
            parts.append(f"{sign} {spec[key]}")
    return ", ".join(parts)


def _type_name(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "one of " + ", ".join(json.dumps(v) for v in spec["enum"])
    if "const" in spec:
        return json.dumps(spec["const"])
    if spec.get("type") == "array":
        items = spec.get("items") or {}
        return f"list of {_type_name(items) if items else 'values'}"
    if "anyOf" in spec:
        return " or ".join(_type_name(option) for option in spec["anyOf"])
    names = {"integer": "whole number", "number": "number", "boolean": "true/false"}
    return names.get(spec.get("type", ""), spec.get("type", "value"))


def schema_table(kind: str) -> SafeString:
    """The params schema of ``kind`` as an HTML table: name, type, default, bounds, meaning."""
    try:
        cls = strategy_class(kind)
    except UnknownStrategy as exc:
        return format_html("<p>{}</p>", exc)
    schema = cls.Params.model_json_schema()
    defs = schema.get("$defs", {})
    rows = []
    for name, spec in schema.get("properties", {}).items():
        if "$ref" in spec:
            spec = {**defs.get(spec["$ref"].rsplit("/", 1)[-1], {}), **spec}
        if "allOf" in spec:
            spec = {**spec["allOf"][0], **spec}
        rows.append(
            (
                name,
                _type_name(spec),
                json.dumps(spec.get("default")),
                _bounds(spec),
                spec.get("description", ""),
            )
        )
    body = format_html_join(
        "", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
    )
    return format_html(
        "<p>{}</p><table><thead><tr><th>parameter</th><th>type</th><th>default</th>"
        "<th>bounds</th><th>meaning</th></tr></thead><tbody>{}</tbody></table>"
        "<p>Symbol overrides map a unified symbol (e.g. <code>SOL/USDT:USDT</code>) to the "
        "parameters that differ on it; the merged result is validated again.</p>",
        cls.description or kind,
        body,
    )


class StrategyConfigForm(ValidatedModelForm):
    kind = forms.ChoiceField(choices=kind_choices)

    class Meta:
        model = StrategyConfig
        fields = (
            "name",
            "kind",
            "enabled",
            "description",
            "virtual_capital_usdt",
            "params",
            "symbol_overrides",
        )


@admin.register(StrategyConfig)
class StrategyConfigAdmin(admin.ModelAdmin):
    form = StrategyConfigForm
    list_display = (
        "name",
        "kind",
        "enabled",
        "virtual_capital_usdt",
        "override_symbols",
        "updated_at",
    )
    list_filter = ("enabled", "kind")
    search_fields = ("name", "kind", "description")
    actions = ("enable", "disable")
    formfield_overrides = {
        models.JSONField: {"form_class": PrettyJSONField, "widget": JSON_WIDGET},
    }

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Sessions, positions and backtests refer to a strategy by name: renaming orphans them.
        base = ("parameter_schema", "updated_at")
        return ("name", *base) if obj is not None else base

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return (
            (None, {"fields": ("name", "kind", "enabled", "description", "virtual_capital_usdt")}),
            ("Parameters", {"fields": ("params", "symbol_overrides", "parameter_schema")}),
            ("History", {"fields": ("updated_at",)}),
        )

    @admin.display(description="parameter schema")
    def parameter_schema(self, obj: StrategyConfig | None) -> SafeString:
        if obj is None or not obj.kind:
            return format_html_join(
                "", "<h4>{}</h4>{}", ((kind, schema_table(kind)) for kind in _registered_kinds())
            )
        return schema_table(obj.kind)

    @admin.display(description="overrides")
    def override_symbols(self, obj: StrategyConfig) -> str:
        return ", ".join(obj.symbol_overrides or {}) or "-"

    @admin.action(description="Enable the selected strategies")
    def enable(self, request: HttpRequest, queryset: QuerySet[StrategyConfig]) -> None:
        for row in queryset:
            row.enabled = True
            row.save(update_fields=["enabled", "updated_at"])
        messages.success(request, f"{queryset.count()} strategies enabled.")

    @admin.action(description="Disable the selected strategies")
    def disable(self, request: HttpRequest, queryset: QuerySet[StrategyConfig]) -> None:
        for row in queryset:
            row.enabled = False
            row.save(update_fields=["enabled", "updated_at"])
        messages.success(request, f"{queryset.count()} strategies disabled.")


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    """Signals are the runtime's record of its decisions: view and delete only."""

    list_display = (
        "created_at",
        "strategy",
        "symbol",
        "timeframe",
        "side",
        "score",
        "status",
        "shadow",
        "entry_type",
        "entry_price",
        "stop_loss",
        "take_profit",
    )
    list_filter = ("status", "side", "shadow", "entry_type", "strategy")
    search_fields = ("=symbol", "strategy__name", "refusal_reason")
    list_select_related = ("strategy",)
    raw_id_fields = ("position",)
    show_full_result_count = False
    readonly_fields = ("reasons_list",)
    exclude = ("reasons",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="reasons")
    def reasons_list(self, obj: Signal) -> SafeString:
        return format_html_join("", "<li>{}</li>", ((reason,) for reason in obj.reasons or []))


@admin.register(SelectorDecision)
class SelectorDecisionAdmin(ReadOnlyAdmin):
    """The arena selector's decisions, with their reasons: a record, never edited."""

    list_display = ("candle_time_ms", "strategy_name", "action", "new_weight", "reason")
    list_filter = ("action",)
    search_fields = ("=strategy_name",)


@admin.register(ControlAction)
class ControlActionAdmin(ReadOnlyAdmin):
    """Who paused, resumed or reset what, and why — a trader or the arena selector: an audit
    trail, never edited."""

    list_display = ("created_at", "strategy_name", "action", "actor", "user", "reason")
    list_filter = ("action", "actor")
    search_fields = ("=strategy_name", "reason")
    list_select_related = ("user",)


@admin.register(StrategyInputStatus)
class StrategyInputStatusAdmin(ReadOnlyAdmin):
    """Why a strategy or filter cannot decide on a symbol, as the radar last stored it."""

    list_display = ("strategy_name", "symbol", "reason", "market_time_ms", "updated_at")
    search_fields = ("=strategy_name", "=symbol")
