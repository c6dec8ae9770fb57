"""Backtest pages: list and start runs, a run's live progress and results, compare runs."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_http_methods

from backtests import services
from backtests.models import BacktestRun
from common.presenters import dom_id
from strategies.models import StrategyConfig
from trading.models import Asset, Candle
from trading.views import render_page

DAY_MS = 86_400_000
RESULT_FIELDS = (  # (summary key, label, decimals)
    ("return_pct", "Net return %", 2),
    ("trades", "Trades", 0),
    ("win_rate", "Win rate %", 2),
    ("gross_pnl", "Gross P&L", 2),
    ("fees", "Fees", 2),
    ("fees_pct_of_gross", "Fees % of |gross|", 2),
    ("funding", "Funding", 2),
    ("liquidation_loss", "Liquidation losses", 2),
    ("slippage", "Slippage (in prices)", 2),
    ("net_pnl", "Net P&L", 2),
    ("profit_factor_net", "Profit factor (net)", 2),
    ("expectancy", "Expectancy", 2),
    ("max_drawdown_pct", "Max drawdown %", 2),
    ("sharpe", "Sharpe", 2),
    ("sortino", "Sortino", 2),
    ("ratio_days", "Days under Sharpe / Sortino", 0),
    ("exposure_pct", "Exposure %", 2),
    ("final_equity", "Final equity", 2),
)
FEES_REMOVED = "Same trades, fees removed"
OLD_TWIN = "Re-simulated with zero fees (different orders)"


class BacktestForm(forms.Form):
    strategy = forms.ChoiceField(choices=[])
    symbol = forms.ChoiceField(choices=[])
    days = forms.IntegerField(min_value=1, max_value=365, initial=7)
    params = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"rsi_period": 10}'}),
        help_text="JSON object of parameter overrides (empty = configured values)",
    )
    fees_enabled = forms.BooleanField(
        required=False,
        initial=True,
        label="Fees on",
        help_text="off = re-simulate with zero fees: different orders, as sizing follows the "
        "equity; a fees-on run already shows the same trades with their fees removed",
    )

    params_source = forms.ChoiceField(
        choices=[
            ("db", "what the radar trades (database)"),
            ("yaml", "config/strategies.yaml"),
            ("defaults", "the strategy's defaults"),
        ],
        initial="db",
        required=False,  # not sent (an older page, a script): what the radar trades
        label="Parameters",
        help_text="the overrides above go on top",
    )

    def clean_params_source(self) -> str:
        return self.cleaned_data.get("params_source") or "db"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = list(StrategyConfig.objects.values_list("name", flat=True))
        self.fields["strategy"].choices = [(n, n) for n in names]
        symbols = list(Asset.objects.values_list("symbol", flat=True))
        self.fields["symbol"].choices = [(s, s) for s in symbols]

    def clean_params(self) -> dict[str, Any]:
        raw = (self.cleaned_data.get("params") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError('must be a JSON object: {"name": value}')
        return value


def _window(symbol: str, days: int) -> tuple[int | None, int | None]:
    """The last ``days`` of stored 1m candles of ``symbol`` (``None`` ends when none stored)."""
    last = (
        Candle.objects.filter(symbol=symbol, timeframe="1m")
        .order_by("-open_time_ms")
        .values_list("open_time_ms", flat=True)
        .first()
    )
    if last is None:
        return None, None
    end = last + 60_000
    return end - days * DAY_MS, end


@login_required
@require_http_methods(["GET", "POST"])
def backtest_list(request: HttpRequest) -> HttpResponse:
    form = BacktestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        start_ms, end_ms = _window(data["symbol"], data["days"])
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
    runs = list(BacktestRun.objects.defer("equity_curve", "trades")[:100])
    context = {"form": form, "arena_form": ArenaForm(), "runs": runs, "page": "backtests"}
    return render_page(request, "backtests/list.html", context, partial="run_table")


class ArenaForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=90, initial=7, help_text="of stored candles")
    selector_every = forms.IntegerField(
        min_value=0, max_value=1440, initial=60, label="Selector every (min)",
        help_text="minutes of market time per selector round; 0 = off",
    )  # fmt: skip


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
    runs = list(BacktestRun.objects.defer("equity_curve", "trades")[:100])
    context = {"form": BacktestForm(), "arena_form": form, "runs": runs, "page": "backtests"}
    return render_page(request, "backtests/list.html", context, partial="run_table")


def _enqueue(run_id: int) -> None:
    from backtests.tasks import backtest_run_execute_task

    backtest_run_execute_task.delay_on_commit(run_id)


def _curves(run: BacktestRun) -> dict[str, Any]:
    equity = [{"time": int(t) // 1000, "value": v} for t, v in run.equity_curve or []]
    drawdown = []
    peak = None
    for point in equity:
        peak = point["value"] if peak is None else max(peak, point["value"])
        drawdown.append(
            {"time": point["time"], "value": -(peak - point["value"]) / peak * 100 if peak else 0}
        )
    markers = []
    for t in (run.trades or [])[:500]:
        side = t.get("side")
        markers.append(
            {
                "time": int(t.get("entry_time_ms", 0)) // 1000,
                "position": "belowBar" if side == "long" else "aboveBar",
                "color": "#2ebd85" if side == "long" else "#f0616d",
                "shape": "arrowUp" if side == "long" else "arrowDown",
                "text": side or "",
            }
        )
        if t.get("exit_time_ms"):
            net = t.get("net_pnl")
            markers.append(
                {
                    "time": int(t["exit_time_ms"]) // 1000,
                    "position": "aboveBar" if side == "long" else "belowBar",
                    "color": "#d7dde5",
                    "shape": "square",
                    "text": f"{net:+.2f}" if isinstance(net, int | float) else "exit",
                }
            )
    markers.sort(key=lambda m: m["time"])
    return {"equity": equity, "drawdown": drawdown, "markers": markers}


def _candles_for(run: BacktestRun) -> list[dict[str, Any]]:
    if run.start_ms is None or run.end_ms is None:
        return []
    from strategies.selectors import chart_data  # the same chart rows as the Chart page

    days = max(1, (run.end_ms - run.start_ms) // DAY_MS)
    timeframe = "5m" if days <= 3 else ("15m" if days <= 10 else "1h")
    return chart_data(run.symbol, timeframe, bars=1000)["candles"]


@login_required
@require_GET
def backtest_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(BacktestRun, pk=run_id)
    results = run.results or {}
    if run.strategy_kind == "arena":
        context = {
            "obj": run,
            "run": {
                "progress_id": dom_id("backtest-progress", run.pk), "run_id": run.pk,
                "progress_pct": round(run.progress * 100, 1), "status": run.status,
                "message": run.error,
            },
            "report": results,
            "page": "backtests",
        }  # fmt: skip
        return render_page(request, "backtests/arena_run.html", context, partial="results")
    without = (results.get("without_fees") or {}) if run.fees_enabled else {}
    metrics = [
        {"label": label, "value": results.get(key), "without": without.get(key), "digits": digits}
        for key, label, digits in RESULT_FIELDS
        if key in results
    ]
    progress = {
        "progress_id": dom_id("backtest-progress", run.pk),
        "run_id": run.pk,
        "progress_pct": round(run.progress * 100, 1),
        "status": run.status,
        "message": run.error,
    }
    chart = {**_curves(run), "candles": _candles_for(run) if run.status == "done" else []}
    context = {
        "run": progress,
        "obj": run,
        "metrics": metrics,
        "has_without": bool(without),
        # Runs stored before the like-for-like twin carry a re-simulation without a "basis".
        "without_label": FEES_REMOVED if without.get("basis") else OLD_TWIN,
        "summary": _summary_notes(results),
        "chart_json": json.dumps(chart).replace("</", "<\\/"),
        "page": "backtests",
    }
    return render_page(
        request,
        "backtests/run.html",
        context,
        partial="results",
        groups=(f"backtest.{run.pk}",),
    )


def _summary_notes(results: dict[str, Any]) -> dict[str, Any]:
    """What the result page says under the metrics: the run's basis, the sum that adds up,
    the notes on undefined figures, and the assumptions (label, text) in their order."""
    assumptions = []
    for key, item in (results.get("assumptions") or {}).items():
        text = item.get("text", "")
        if key == "parameters" and results.get("params_source"):
            text = results["params_source"]  # the source the run recorded last
        assumptions.append({"label": item.get("label", key), "text": text})
    keys = ("gross_pnl", "fees", "funding", "liquidation_loss", "net_pnl")
    adds_up = None
    if all(isinstance(results.get(k), int | float) for k in keys):
        g, f, fu, liq, net = (results[k] for k in keys)
        adds_up = (
            f"gross − fees − funding − liquidation losses = net: {g:,.2f} − {f:,.2f} − "
            f"{fu:,.2f} − {liq:,.2f} = {net:,.2f} USDT"
        )
    notes = [n for n in (results.get("fees_pct_note"), results.get("ratio_note")) if n]
    return {
        "basis": results.get("run_basis"),
        "without_basis": (results.get("without_fees") or {}).get("basis"),
        "adds_up": adds_up,
        "notes": notes,
        "assumptions": assumptions,
    }


COMPARE_MAX_RUNS = 8
_RUN_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits, below the database's 2**63 - 1


def run_ids(values: list[str]) -> list[int]:
    """The first ``COMPARE_MAX_RUNS`` well-formed run ids of a query; others are ignored (a
    20-digit number, "²" or "-1" reaches no run and must not reach the database either)."""
    ids = [int(v) for v in values if _RUN_ID.fullmatch(v) and int(v) > 0]
    return ids[:COMPARE_MAX_RUNS]


@login_required
@require_GET
def backtest_compare(request: HttpRequest) -> HttpResponse:
    ids = run_ids(request.GET.getlist("run"))
    runs = list(BacktestRun.objects.filter(pk__in=ids).order_by("-created_at"))
    table = [
        {
            "label": label,
            "digits": digits,
            "values": [(r.results or {}).get(key) for r in runs],
        }
        for key, label, digits in RESULT_FIELDS
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
        "table": table,
        "curves_json": json.dumps(curves).replace("</", "<\\/"),
        "all_runs": list(BacktestRun.objects.only("id", "strategy_name", "symbol", "status")[:100]),
        "selected": ids,
        "page": "backtests",
    }
    return render_page(request, "backtests/compare.html", context, partial="compare_table")
