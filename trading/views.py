from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from trading import selectors


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {"markets": selectors.market_overview()}
    return render(request, "trading/dashboard.html", context)
