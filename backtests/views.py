"""Backtest pages: list and start runs, a run's progress and results, compare runs.

Progress is read from the stored run (``BacktestRun.progress``, written once per percent by the
service that executes it, in whatever process): the run page and the list poll it every 2 s
while a run is pending or running, so a run started by ``manage.py backtest --save`` in another
process moves too; a websocket ``backtest.progress`` event (same process) swaps the same partial.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from backtests import results as shaped
from backtests import services
from backtests.forms import ArenaForm, BacktestForm
from backtests.models import BacktestRun
from backtests.selectors import backtest_run_list, candle_coverages, compare_runs
from common.presenters import dom_id
from trading.models import Asset
from trading.views import render_page

TRADES_PER_PAGE = 100


def progress_of(run: BacktestRun) -> dict[str, Any]:
    """The context of ``backtests/run.html#progress`` (as ``common.presenters._progress``
    builds it from a websocket event)."""
    return {
        "progress_id": dom_id("backtest-progress", run.pk),
        "run_id": run.pk,
        "progress_pct": round(run.progress * 100, 1),
        "status": run.status,
        "message": run.error,
    }


def list_row(run: BacktestRun) -> BacktestRun:
    """``run`` with what its row of the list shows besides its fields."""
    run.row_id = dom_id("backtest-row", run.pk)  # type: ignore[attr-defined]
    run.period_text = shaped.period_text(run)  # type: ignore[attr-defined]
    run.progress_pct = round(run.progress * 100, 1)  # type: ignore[attr-defined]
    return run


def _list_context(form: BacktestForm, arena_form: ArenaForm) -> dict[str, Any]:
    runs = [list_row(r) for r in backtest_run_list()[:100]]
    symbols = list(Asset.objects.values_list("symbol", flat=True))
    return {
        "form": form,
        "arena_form": arena_form,
        "runs": runs,
        "coverages": candle_coverages(symbols),
        "page": "backtests",
    }


@login_required
@require_http_methods(["GET", "POST"])
def backtest_list(request: HttpRequest) -> HttpResponse:
    form = BacktestForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and form.window is not None:
        data = form.cleaned_data
        start_ms, end_ms = form.window
        try:
            run = services.backtest_run_create(
                strategy=data["strategy"],
                symbol=data["symbol"],
                params=data["params"],
                start_ms=start_ms,
                end_ms=end_ms,
                fees_enabled=data["fees_enabled"],
                created_by=request.user,
                params_source=data["params_source"],
            )
        except (services.BacktestInputError, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            _enqueue(run.pk)
            return redirect("backtest_detail", run_id=run.pk)
    context = _list_context(form, ArenaForm())
    return render_page(request, "backtests/list.html", context, partial="run_table")


@login_required
@require_http_methods(["POST"])
def backtest_arena(request: HttpRequest) -> HttpResponse:
    """The whole enabled arena, exactly as the radar runs it, on the stored candles."""
    from backtests.arena import arena_run_create

    form = ArenaForm(request.POST)
    if form.is_valid():
        try:
            run = arena_run_create(
                days=form.cleaned_data["days"],
                selector_every=form.cleaned_data["selector_every"],
                created_by=request.user,
            )
        except services.BacktestInputError as exc:
            form.add_error(None, str(exc))
        else:
            _enqueue(run.pk)
            return redirect("backtest_detail", run_id=run.pk)
    context = _list_context(BacktestForm(), form)
    return render_page(request, "backtests/list.html", context, partial="run_table")


def _enqueue(run_id: int) -> None:
    from backtests.tasks import backtest_run_execute_task

    backtest_run_execute_task.delay_on_commit(run_id)


def _curves(run: BacktestRun) -> dict[str, Any]:
    """Equity (USDT) and drawdown (% below the running peak) for the charts, in seconds."""
    equity = [{"time": int(t) // 1000, "value": v} for t, v in run.equity_curve or []]
    drawdown = []
    peak = None
    for point in equity:
        peak = point["value"] if peak is None else max(peak, point["value"])
        drawdown.append(
            {"time": point["time"], "value": -(peak - point["value"]) / peak * 100 if peak else 0}
        )
    return {"equity": equity, "drawdown": drawdown}


def _data_island(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block (no ``</`` can close it)."""
    return json.dumps(value).replace("</", "<\\/")


def _detail_context(run: BacktestRun, page_number: str | None) -> dict[str, Any]:
    results = run.results or {}
    covered = shaped.period(run)
    rows = [shaped.trade_row(t, run.symbol) for t in run.trades or []]
    trades_page = Paginator(rows, TRADES_PER_PAGE).get_page(page_number)
    context: dict[str, Any] = {
        "obj": run,
        "run": progress_of(run),
        "period": covered,
        "data_source": shaped.data_source(run, covered) if run.status == "done" else None,
        "params_source": shaped.params_source(run),
        "kill_switch": shaped.kill_switch(run),
        "assumptions": shaped.assumptions(results),
        "trades_page": trades_page,
        "breakdowns": [
            ("Exit reason", shaped.breakdown(rows, "exit_reason"), "bt-by-exit-reason"),
            ("Regime at entry", shaped.regime_breakdown(rows, results), "bt-by-regime"),
        ],
        "is_arena": run.strategy_kind == "arena",
        "page": "backtests",
    }
    if run.strategy_kind == "arena":
        context["report"] = results
        return context
    without = (results.get("without_fees") or {}) if run.fees_enabled else {}
    context.update(
        metrics=shaped.metric_rows(results, run.fees_enabled),
        has_without=bool(without),
        # Runs stored before the like-for-like twin carry a re-simulation without a "basis".
        without_label=shaped.FEES_REMOVED if without.get("basis") else shaped.OLD_TWIN,
        summary=shaped.summary_notes(results),
        chart_json=_data_island(_curves(run)),
    )
    return context


@login_required
@require_GET
def backtest_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(BacktestRun, pk=run_id)
    page_number = request.GET.get("trades_page")
    context = _detail_context(run, page_number)
    template = "backtests/arena_run.html" if context["is_arena"] else "backtests/run.html"
    if page_number and getattr(request, "htmx", False):  # the pager: the trade table only
        return render(request, "backtests/_trades.html", context)
    return render_page(
        request, template, context, partial="results", groups=(f"backtest.{run.pk}",)
    )


@login_required
@require_GET
def backtest_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The stored progress of a run, polled every 2 s while it is pending or running: the run
    page's progress bar, or (``?row=1``) its row of the list. The bar of a run that has just
    finished carries a "show results" link that loads them (``hx-trigger="load"``); either
    answer stops the polling once the run is done or failed."""
    run = get_object_or_404(BacktestRun.objects.defer("equity_curve", "trades"), pk=run_id)
    if request.GET.get("row"):
        return render(request, "backtests/list.html#run_row", {"r": list_row(run)})
    context = {"run": progress_of(run), "polled": True}
    return render(request, "backtests/run.html#progress", context)


COMPARE_MAX_RUNS = 8
_RUN_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits, below the database's 2**63 - 1
# (key, label, format) of the comparison: the result figures, then what they stand on.
COMPARED = shaped.RESULT_FIELDS


def run_ids(values: list[str]) -> list[int]:
    """The first ``COMPARE_MAX_RUNS`` distinct well-formed run ids of a query; others are
    ignored (a 20-digit number, "²" or "-1" reaches no run and must not reach the database)."""
    ids: list[int] = []
    for value in values:
        if _RUN_ID.fullmatch(value) and int(value) > 0 and int(value) not in ids:
            ids.append(int(value))
    return ids[:COMPARE_MAX_RUNS]


def _compare_column(run: BacktestRun) -> dict[str, Any]:
    covered = shaped.period(run)
    return {
        "run": run,
        "period": covered,
        "data_source": shaped.data_source(run, covered) if run.status == "done" else None,
        "params_source": shaped.params_source(run),
        "kill_switch": shaped.kill_switch(run),
    }


@login_required
@require_GET
def backtest_compare(request: HttpRequest) -> HttpResponse:
    ids = run_ids(request.GET.getlist("run"))
    runs = compare_runs(ids)
    table = [
        {"label": label, "fmt": fmt, "values": [(r.results or {}).get(key) for r in runs]}
        for key, label, fmt in COMPARED
    ]
    curves = [
        {
            "name": f"#{r.pk} {r.strategy_name} {r.symbol}",
            "points": [{"time": int(t) // 1000, "value": v} for t, v in r.equity_curve or []],
        }
        for r in runs
    ]
    context = {
        "runs": runs,
        "columns": [_compare_column(r) for r in runs],
        "table": table,
        "curves_json": _data_island(curves),
        "has_curves": any(c["points"] for c in curves),
        "all_runs": list(BacktestRun.objects.only("id", "strategy_name", "symbol", "status")[:100]),
        "selected": ids,
        "page": "backtests",
    }
    return render_page(request, "backtests/compare.html", context, partial="compare_table")
