"""Admin of backtest runs: what was asked, how far it got, what it found (read-mostly).

Runs are created and executed by the backtest service (it enqueues the work); the admin views
them, shows the results readably and deletes old ones. The equity curve and trade list can hold
thousands of points: the change page shows their size, not their content.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from backtests.models import BacktestRun


@admin.register(BacktestRun)
class BacktestRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "strategy_name",
        "strategy_kind",
        "symbol",
        "timeframe",
        "status",
        "progress_pct",
        "created_at",
        "created_by",
    )
    list_filter = ("status", "strategy_kind", "timeframe")
    search_fields = ("strategy_name", "=symbol")
    list_select_related = ("created_by",)
    show_full_result_count = False
    exclude = ("params", "results", "equity_curve", "trades")
    readonly_fields = ("params_json", "results_json", "equity_points", "trades_count")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a run is started by the backtest service, which also enqueues it

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="progress")
    def progress_pct(self, obj: BacktestRun) -> str:
        return f"{obj.progress * 100:.0f} %"

    @admin.display(description="params")
    def params_json(self, obj: BacktestRun) -> SafeString:
        return _pre(obj.params)

    @admin.display(description="results")
    def results_json(self, obj: BacktestRun) -> SafeString:
        return _pre(obj.results)

    @admin.display(description="equity curve")
    def equity_points(self, obj: BacktestRun) -> str:
        return f"{len(obj.equity_curve or [])} points"

    @admin.display(description="trades")
    def trades_count(self, obj: BacktestRun) -> str:
        return f"{len(obj.trades or [])} trades"


def _pre(value: Any) -> SafeString:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )
