"""Admin of strategy configurations and signals.

A strategy's parameters are edited through a form generated from its kind's schema
(``strategies.admin_forms``): one typed field per parameter with its bounds, unit and help
(from ``config/strategies.yaml``'s comments), and the per-symbol overrides as rows. Saving
builds the same ``params`` / ``symbol_overrides`` JSON the radar reads and checks it with the
YAML loader's own function (``strategies.config.strategy_problems``, also called by
``StrategyConfig.clean()``): values ``strategies.yaml`` would refuse come back next to their
field with the loader's reason and are never saved. "Add" generates the fields of the kind
chosen by ``?kind=``, starting from the values of ``strategies.yaml``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from strategies.admin_forms import (
    GENERATED_MARKER,
    StrategyConfigForm,
    param_specs,
    registered_kinds,
    schema_table,
)
from strategies.core.base import UnknownStrategy
from strategies.models import (
    ControlAction,
    SelectorDecision,
    Signal,
    StrategyConfig,
    StrategyInputStatus,
)
from trading.admin import ReadOnlyAdmin

MAIN_FIELDS = ("name", "kind", "enabled", "description", "virtual_capital_usdt")


def _uses_raw_json(request: HttpRequest) -> bool:
    """A POST without the generated fields (a script, an old form): read its raw JSON."""
    return request.method == "POST" and GENERATED_MARKER not in request.POST


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

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Sessions, positions and backtests refer to a strategy by name: renaming orphans them.
        base = ("parameter_schema", "updated_at")
        return ("name", *base) if obj is not None else base

    def params_kind(self, request: HttpRequest, obj: StrategyConfig | None) -> str:
        """The kind whose parameters the form shows: the row's, else ``?kind=`` on "add"
        (the first registered kind when none or an unknown one is asked for)."""
        if obj is not None:
            return obj.kind
        kinds = registered_kinds()
        asked = request.GET.get("kind", "")
        return asked if asked in kinds else kinds[0]

    def _param_fields(self, request: HttpRequest, obj: StrategyConfig | None) -> list[str]:
        if _uses_raw_json(request):
            return []
        try:
            specs = param_specs(self.params_kind(request, obj))
        except UnknownStrategy:
            return []
        return [f"param__{spec.name}" for spec in specs]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        main = (*MAIN_FIELDS, "updated_at") if obj is not None else MAIN_FIELDS
        params = self._param_fields(request, obj)
        if not params:  # raw JSON: a legacy POST, or a stored row of an unknown kind
            return (
                (None, {"fields": main}),
                ("Parameters", {"fields": ("params", "symbol_overrides", "parameter_schema")}),
            )
        kind = self.params_kind(request, obj)
        return (
            (None, {"fields": main}),
            (
                f"Parameters of {kind}",
                {
                    "fields": params,
                    "description": "Bounds, units and help come from the schema and the "
                    "comments of config/strategies.yaml; the check on save is the YAML "
                    "loader's.",
                    "classes": ("param-fields",),
                },
            ),
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        # The generated fields are added by the form itself (they depend on the kind): the
        # model form class is built from the model's fields only.
        readonly = self.get_readonly_fields(request, obj)
        kwargs["fields"] = [name for name in StrategyConfigForm.Meta.fields if name not in readonly]
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"params_kind": self.params_kind(request, obj)})

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if add:  # "add": which kind's parameters to generate (no script: links)
            current = self.params_kind(request, None)
            context["kind_links"] = [(kind, kind == current) for kind in registered_kinds()]
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="parameter schema")
    def parameter_schema(self, obj: StrategyConfig | None) -> SafeString:
        if obj is None or not obj.kind:
            return format_html_join(
                "", "<h4>{}</h4>{}", ((kind, schema_table(kind)) for kind in registered_kinds())
            )
        return format_html(
            "{}<p>Symbol overrides map a unified symbol (e.g. <code>SOL/USDT:USDT</code>) to "
            "the parameters that differ on it; the merged result is validated again.</p>",
            schema_table(obj.kind),
        )

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
