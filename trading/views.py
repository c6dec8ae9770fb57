"""Pages about money: open positions, trade history (+ CSV), risk calculator, alerts.

Every view returns the full page, or its named partial when htmx asks (``request.htmx``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from common.presenters import IDS, dom_id, market_slug
from common.streaming import streaming_content_for
from trading import selectors
from trading.config import read_assets_file
from trading.core.pnl import fees_share_of_gross
from trading.core.types import TradingCoreError
from trading.markets import market_rules_table
from trading.models import Asset, Position
from trading.risk_calculator import RiskForm, read_risk_file, risk_outcome

TRADES_PER_PAGE = 50


def ws_url(groups: Iterable[str]) -> str:
    """The websocket address a page connects to for its live groups."""
    return "/ws/live/?groups=" + ",".join(groups)


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str,
    groups: Iterable[str] = (),
) -> HttpResponse:
    """The full page, or only ``template#partial`` for an htmx request."""
    context = {**context, "ids": IDS, "ws_url": ws_url(groups) if groups else ""}
    if getattr(request, "htmx", False):
        return render(request, f"{template}#{partial}", context)
    return render(request, template, context)


def _enabled_symbols() -> list[str]:
    return list(Asset.objects.filter(enabled=True).values_list("symbol", flat=True))


def market_groups(symbols: Iterable[str] | None = None) -> list[str]:
    """``market.<BASE>-<QUOTE>`` groups (live prices) of ``symbols``, default enabled assets."""
    symbols = _enabled_symbols() if symbols is None else symbols
    return ["market." + market_slug(s) for s in symbols]


@login_required
@require_GET
def positions(request: HttpRequest) -> HttpResponse:
    """Open positions; every mark-dependent figure follows ``market.price`` live.

    A price tick carries no positions (the consumer queries nothing), so the tick is swapped
    into a hidden receiver per symbol and ``static/js/positions.js`` recomputes the rows of
    that symbol from their data attributes, with :func:`trading.selectors.mark_figures`'s
    formulas and ``trading.core.numbers``' formats. A steering user gets a Close button per
    row (``strategies.close_views``: confirmed, recorded, carried out by the radar).
    """
    symbols = _enabled_symbols()
    context = {
        "positions": selectors.open_positions(),
        "price_receivers": [
            {"symbol": s, "price_id": dom_id("price", market_slug(s))} for s in symbols
        ],
        "taker_rate": selectors.TAKER_RATE,
        "page": "positions",
    }
    return render_page(
        request,
        "trading/positions.html",
        context,
        partial="open_positions",
        groups=("positions", *market_groups(symbols)),
    )


class TradeFilterForm(forms.Form):
    strategy = forms.CharField(required=False, max_length=64)
    symbol = forms.CharField(required=False, max_length=40)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    result = forms.ChoiceField(
        required=False, choices=[("", "all"), ("win", "wins"), ("loss", "losses")]
    )
    shadow = forms.BooleanField(required=False, label="include shadow trades")

    def filters(self) -> selectors.TradeFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return selectors.TradeFilters(
            strategy=data.get("strategy", ""),
            symbol=data.get("symbol", ""),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            result=data.get("result", ""),
            include_shadow=bool(data.get("shadow")),
        )


@login_required
@require_GET
def trades(request: HttpRequest) -> HttpResponse:
    form = TradeFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound else selectors.TradeFilters()
    qs = selectors.closed_trades(filters)
    page = Paginator(qs, TRADES_PER_PAGE).get_page(request.GET.get("page"))
    strategies = (
        Position.objects.filter(status=Position.Status.CLOSED)
        .order_by("strategy_name")
        .values_list("strategy_name", flat=True)
        .distinct()
    )
    context = {
        "form": form,
        "page_obj": page,
        "rows": [_trade_row(p) for p in page.object_list],
        "totals": selectors.trades_totals(qs),
        "query": filters.as_query(),
        "include_shadow": filters.include_shadow,
        "strategies": list(strategies),
        "symbols": selectors.trade_symbols(),
        "page": "trades",
    }
    return render_page(request, "trading/trades.html", context, partial="trade_table")


def _trade_row(p: Position) -> dict[str, Any]:
    fees = p.fees_usdt
    share = fees_share_of_gross(fees, p.gross_pnl or 0.0)
    return {
        "strategy": p.strategy_name,
        "symbol": p.symbol,
        "side": p.side,
        "qty": p.qty,
        "leverage": p.leverage,
        "entry_time": selectors.fmt_time_ms(p.entry_time_ms),
        "exit_time": selectors.fmt_time_ms(p.exit_time_ms),
        "entry_price": p.entry_price,
        "exit_price": p.exit_price,
        "gross": p.gross_pnl,
        "fees": fees,
        "fees_share_pct": share * 100 if share is not None else None,
        "funding": p.funding_usdt,
        "slippage": p.slippage_usdt,
        "net": p.net_pnl,
        "exit_reason": p.exit_reason,
        "shadow": p.shadow,
    }


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@require_GET
def trades_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The trade history as CSV, with the same filters as the page (all rows, no pagination)."""
    form = TradeFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound else selectors.TradeFilters()
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(selectors.TRADE_CSV_COLUMNS)
        for row in selectors.trade_csv_rows(selectors.closed_trades(filters)):
            yield writer.writerow(row)

    response = StreamingHttpResponse(
        streaming_content_for(request, lines()), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="trades-{date.today():%Y%m%d}.csv"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def risk(request: HttpRequest) -> HttpResponse:
    """Risk calculator: GET shows the form, POST asks the risk gate (the form carries a CSRF
    token); :mod:`trading.risk_calculator` builds the gate from risk.yaml."""
    rules = market_rules_table(read_assets_file(Path(settings.CONFIG_DIR)))
    risk_file = read_risk_file()
    form = RiskForm(request.POST or None, rules=rules, risk=risk_file)
    result = None
    if form.is_bound and form.is_valid():
        try:
            result = risk_outcome(form.cleaned_data, rules, risk_file)
        except TradingCoreError as exc:
            form.add_error(None, str(exc))
    context = {"form": form, "result": result, "page": "risk"}
    return render_page(request, "trading/risk.html", context, partial="risk_result")


@login_required
@require_GET
def alerts(request: HttpRequest) -> HttpResponse:
    """Stored alerts, newest first (paginated); new ones are prepended live on the first page."""
    page, rows = selectors.alert_history(request.GET.get("page"))
    context = {
        "alerts": rows,
        "page_obj": page,
        "stale": selectors.stale_assets(),
        "stale_after_minutes": selectors.STALE_AFTER_MINUTES,
        "page": "alerts",
    }
    return render_page(
        request,
        "trading/alerts.html",
        context,
        partial="alert_feed",
        groups=("alerts",) if page.number == 1 else (),
    )
