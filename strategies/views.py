"""Pages about strategies: radar, arena, session, signals, chart; the controls (pause, resume,
reset, go live, back to paper, flatten live). The Live page is ``strategies.live_views``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from common.presenters import market_slug
from strategies import arena_selectors, arena_stats, chart_data, selectors, services
from strategies.models import StrategyConfig
from trading import selectors as trading_selectors
from trading.models import Asset
from trading.views import market_groups, render_page

# Steering the radar (pause, resume, kill-switch resets, parameters): the "trader" group holds
# it, superusers have it implicitly (docs/security.md). Viewing needs a login only.
STEER_PERMISSION = "strategies.steer_radar"


@login_required
@require_GET
def radar(request: HttpRequest) -> HttpResponse:
    context = {
        "markets": selectors.market_rows(),
        "heatmap": selectors.heatmap(),
        "filters": arena_selectors.filter_cards(),
        "stale": trading_selectors.stale_assets(),
        "stale_after_minutes": trading_selectors.STALE_AFTER_MINUTES,
        "page": "radar",
    }
    return render_page(
        request,
        "strategies/radar.html",
        context,
        partial="markets",
        groups=("signals", *market_groups()),
    )


@login_required
@require_GET
def arena(request: HttpRequest) -> HttpResponse:
    """The ranking, the live books apart, the daily / cumulative charts and the per-pair and
    per-exit-reason tables of ``?strategy=<name>`` (all strategies without it)."""
    context = {
        "rows": arena_selectors.arena_rows(),
        "filters": arena_selectors.filter_cards(),
        "actions": selectors.recent_control_actions(),
        "stats": arena_stats.arena_breakdowns(request.GET.get("strategy", "")[:64]),
        "live_books": arena_stats.live_books(),
        "page": "arena",
    }
    return render_page(
        request, "strategies/arena.html", context, partial="ranking", groups=("arena",)
    )


@login_required
@require_GET
def session(request: HttpRequest) -> HttpResponse:
    """Session results and kill-switch gauges, with the arena's daily / cumulative charts of
    ``?strategy=<name>`` (all strategies without it)."""
    context = {
        **selectors.session_summary(),
        "stats": arena_stats.arena_breakdowns(request.GET.get("strategy", "")[:64]),
        "actions": selectors.recent_control_actions(),
        "page": "session",
    }
    return render_page(
        request, "strategies/session.html", context, partial="summary", groups=("session",)
    )


@login_required
@require_GET
def signals(request: HttpRequest) -> HttpResponse:
    strategy = request.GET.get("strategy", "")[:64]
    symbol = request.GET.get("symbol", "")[:40]
    context = {
        "signals": selectors.recent_signals(strategy=strategy, symbol=symbol),
        "strategies": list(StrategyConfig.objects.values_list("name", flat=True)),
        "symbols": list(Asset.objects.values_list("symbol", flat=True)),
        "strategy": strategy,
        "symbol": symbol,
        "page": "signals",
    }
    return render_page(
        request, "strategies/signals.html", context, partial="signal_feed", groups=("signals",)
    )


@login_required
@require_GET
def chart(request: HttpRequest) -> HttpResponse:
    """Candles, volume, the studies of the strategy in view, markers and open positions of one
    symbol, live (``market.candle`` pushes, then a refetch of :func:`chart_json`); with
    ``?run=<id>`` a backtest run's period and trades instead (``strategies.chart_data``)."""
    try:
        selection = chart_data.selection_from(request.GET)
    except chart_data.RunNotFound as exc:
        raise Http404(str(exc)) from None
    live = selection.run is None
    context = {
        "sel": selection,
        "chart": chart_data.chart_page(selection),
        "timeframes": chart_data.CHART_TIMEFRAMES,
        "candle_id": "live-candle-" + market_slug(selection.symbol),
        "page": "chart",
    }
    return render_page(
        request,
        "strategies/chart.html",
        context,
        partial="chart_panel",
        groups=("market." + market_slug(selection.symbol),) if live else (),
    )


@login_required
@require_GET
def chart_json(request: HttpRequest) -> JsonResponse:
    """The tail of a live chart since ``since`` (s), its window starting at ``start`` (s)."""
    try:
        selection = chart_data.selection_from(request.GET)
        start_s, since_s = (int(request.GET.get(k, "")) for k in ("start", "since"))
    except chart_data.RunNotFound as exc:
        raise Http404(str(exc)) from None
    except ValueError:
        return JsonResponse({"error": "start and since must be whole seconds"}, status=400)
    if not 0 <= start_s <= since_s < 2**40:
        return JsonResponse({"error": "need 0 <= start <= since"}, status=400)
    return JsonResponse(chart_data.chart_tail(selection, start_s=start_s, since_s=since_s))


class ControlForm(forms.Form):
    action = forms.ChoiceField(
        choices=[
            ("pause", "pause"),
            ("resume", "resume"),
            ("reset", "reset"),
            ("live", "go live"),
            ("paper", "back to paper"),
            ("flatten", "flatten live"),
        ]
    )
    name = forms.CharField(required=False, max_length=64)
    reason = forms.CharField(required=False, max_length=500)
    confirm = forms.BooleanField(required=True, error_messages={"required": "tick confirm"})


def form_errors_text(form: forms.Form) -> str:
    """A refused steering form's errors on one line, for the message shown after the redirect."""
    return "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())


def redirect_back(request: HttpRequest, default: str) -> HttpResponse:
    """Back to the page the form posted from (its ``next`` field) when it is on this site,
    else to the ``default`` URL name."""
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse(default)
    return redirect(back)


@login_required
@permission_required(STEER_PERMISSION, raise_exception=True)
@require_POST
def control(request: HttpRequest) -> HttpResponse:
    """Pause, resume or reset the kill switch of a strategy, send it live, back to paper, or
    flatten its live positions (name "" = the account: every live strategy); recorded with who
    and why.

    Without the steer permission: 403 and nothing changes. A flatten is a request: the live
    executor carries it out at its next controls read (``strategies.services``).
    """
    form = ControlForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not done — {form_errors_text(form)}")
    else:
        data = form.cleaned_data
        service = {
            "pause": services.strategy_pause,
            "resume": services.strategy_resume,
            "reset": services.kill_switch_reset,
            "live": services.strategy_go_live,
            "paper": services.strategy_go_paper,
            "flatten": services.live_flatten_request,
        }[data["action"]]
        try:
            service(name=data["name"], user=request.user, reason=data["reason"])
        except services.ControlError as exc:
            messages.error(request, str(exc))
        else:
            done = "requested" if data["action"] == "flatten" else "done"
            messages.success(request, f"{data['action']} {data['name'] or 'account'}: {done}")
    return redirect_back(request, "arena")
