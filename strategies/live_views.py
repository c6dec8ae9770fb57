"""The Live page: live positions, open orders, fills and the journal beside the paper twin, with
the go-live / back-to-paper / flatten controls (posted to the ``control`` view).

It lives in ``strategies`` rather than ``trading`` because it reads ``StrategyConfig.live`` and
the flatten requests (``ControlAction``): imports only run down the stack (docs/architecture.md),
so ``trading`` may not read them. The money rows come from :mod:`trading.live_selectors`.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from strategies.models import ControlAction, StrategyConfig
from trading import live_selectors
from trading.views import render_page


@login_required
@require_GET
def live(request: HttpRequest) -> HttpResponse:
    """The Live page (its ``live_board`` partial for htmx); rows follow ``live.position`` and
    ``live.order`` over the websocket (group ``live``). The controls are rendered for the steer
    permission only, as on the Arena, and the ``control`` view refuses them to anyone else."""
    positions = live_selectors.open_live_positions()
    orders = live_selectors.open_orders()
    holding = {p["strategy"] for p in positions} | {o["strategy"] for o in orders}
    strategies = [
        {"name": c.name, "live": c.live, "enabled": c.enabled, "holds": c.name in holding}
        for c in StrategyConfig.objects.order_by("name")
    ]
    context = {
        "strategies": strategies,
        "live_strategies": [s for s in strategies if s["live"]],
        "pending_flattens": ControlAction.objects.filter(
            action=ControlAction.Action.FLATTEN, done_at__isnull=True
        )
        .select_related("user")
        .order_by("created_at"),
        "counts": {
            "positions": len(positions),
            "unprotected": sum(1 for p in positions if not p["protected"]),
            "orders": len(orders),
        },
        "positions": positions,
        "orders": orders,
        "fills": live_selectors.recent_fills(),
        "journal": live_selectors.journal(),
        "fills_shown": live_selectors.FILLS_SHOWN,
        "journal_shown": live_selectors.JOURNAL_SHOWN,
        "page": "live",
    }
    return render_page(
        request, "trading/live.html", context, partial="live_board", groups=("live",)
    )
