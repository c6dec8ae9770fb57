"""Every page renders for a logged-in trader, with data and with an empty database."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from strategies.models import ControlAction
from trading.models import TradingSession

PAGES = [
    ("radar", {}),
    ("arena", {}),
    ("positions", {}),
    ("trades", {}),
    ("signals", {}),
    ("session", {}),
    ("chart", {}),
    ("risk", {}),
    ("alerts", {}),
    ("backtests", {}),
    ("backtest_compare", {}),
    ("live", {}),
]


@pytest.fixture
def trader_in(client_in, user):
    """The logged-in user, in the "trader" group (the steer permission, migration 0004)."""
    user.groups.add(Group.objects.get(name="trader"))
    return client_in


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "kwargs"), PAGES)
def test_every_page_renders_with_an_empty_database(client_in, name, kwargs):
    response = client_in.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 200
    assert b"<nav>" in response.content


@pytest.mark.parametrize(("name", "kwargs"), PAGES)
def test_every_page_renders_with_an_arena(client_in, arena, name, kwargs):
    response = client_in.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "kwargs"), PAGES)
def test_anonymous_visitor_is_sent_to_login(client, name, kwargs):
    response = client.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_radar_shows_price_change_regime_and_heatmap(client_in, arena):
    html = client_in.get(reverse("radar")).content.decode()
    assert "BTC/USDT:USDT" in html
    assert "live-price-BTC-USDT" in html
    assert "0.0100 %" in html  # funding 0.0001 per period
    assert "live-heat-vwap_rsi-BTC-USDT" in html
    assert "0.82" in html


def test_arena_ranks_strategies_with_fee_share_and_controls(trader_in, arena):
    html = trader_in.get(reverse("arena")).content.decode()
    assert html.index("vwap_rsi") < html.index("momentum_breakout")
    # vwap_rsi: gross 60 + 50 + 10 = 120, fees 12.5 + 12.6 + 14.9 = 40 → 33.3 % of gross
    assert "33.3 %" in html
    assert "<polyline" in html
    assert "Reset kill switch" in html and ">Pause<" in html


def test_positions_show_mark_liquidation_distance_and_net_unrealised(client_in, arena):
    html = client_in.get(reverse("positions")).content.decode()
    assert "live-pos-vwap_rsi-o1" in html
    # Liquidation set 4.5 % below the entry; the mark (last close, 9 minutes later) is 0.1
    # below the entry: (99,852.8 − 104,557.8) / 104,557.8 = −4.50 %, on BTC's 0.1 tick.
    assert 'data-cell="liq">−4.50 % · 99,852.8<' in html


def test_htmx_request_returns_only_the_partial(client_in, arena):
    full = client_in.get(reverse("arena")).content.decode()
    part = client_in.get(reverse("arena"), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" in full and "<html" not in part
    assert part.strip().startswith('<section class="card" id="live-arena"')


def test_trades_filter_and_csv_export(client_in, arena):
    html = client_in.get(reverse("trades"), {"strategy": "vwap_rsi", "result": "win"}).content
    assert b"2 trades" in html
    response = client_in.get(reverse("trades_csv"), {"strategy": "momentum_breakout"})
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "strategy" and rows[0][-1] == "net_pnl_usdt"
    assert len(rows) == 3
    assert {r[0] for r in rows[1:]} == {"momentum_breakout"}
    assert float(rows[1][-1]) == pytest.approx(-260.5)  # −200 − 60 fees − 0.5 funding


def test_trades_are_paginated(client_in, arena):
    html = client_in.get(reverse("trades")).content.decode()
    assert "page 1 / 1" in html


def test_risk_calculator_worked_example(client_in):
    """Long BTC 40,000, stop 39,800, target 40,400, capital 10,000, risk 1 %, taker entry:
    sized by the risk gate itself (trading.core.risk via trading.risk_calculator).

    Cost per BTC at the stop: 200 + 39,800 × 0.0006 (23.88) + 40,000 × 0.0006 (24)
    + slippage 0.05 % on both (19.9 + 20) = 287.78 → qty = 100 / 287.78 = 0.3475 → 0.347 BTC.
    ONE loss at the stop, fees and slippage included: 0.347 × 287.78 = 99.86 USDT (the page
    used to show a second, slippage-free −86.01 beside it). The gate's margin budget per slot:
    10,000 / 3 / (1 + 20 × 0.0006) = 3,293.81 → leverage ceil(13,880 / 3,293.81 = 4.21) = 5×.
    """
    response = client_in.post(
        reverse("risk"),
        {
            "symbol": "BTC/USDT:USDT",
            "side": "long",
            "entry": 40000,
            "stop": 39800,
            "target": 40400,
            "capital": 10000,
            "risk_pct": 1,
            "max_leverage": 20,
            "entry_liquidity": "taker",
        },
    )
    html = response.content.decode()
    assert '<dd id="risk-qty">0.347 ' in html
    assert '<dd id="risk-leverage">5× ' in html
    assert "<b>99.86 USDT</b>" in html and "-86.01" not in html


def test_risk_calculator_reports_bad_input(client_in):
    response = client_in.post(
        reverse("risk"),
        {
            "symbol": "BTC/USDT:USDT",
            "side": "long",
            "entry": 40000,
            "stop": 40100,
            "target": 40400,
            "capital": 10000,
            "risk_pct": 1,
            "max_leverage": 20,
            "entry_liquidity": "taker",
        },
    )
    assert response.status_code == 200
    assert "a long stop must be below the entry" in response.content.decode()


def test_pause_resume_and_reset_are_recorded_with_who_and_why(trader_in, arena, user):
    url = reverse("control")
    trader_in.post(url, {"action": "pause", "name": "vwap_rsi", "reason": "news", "confirm": "on"})
    assert TradingSession.objects.get(strategy_name="vwap_rsi").status == "paused"
    trader_in.post(url, {"action": "resume", "name": "vwap_rsi", "confirm": "on"})
    assert TradingSession.objects.get(strategy_name="vwap_rsi").status == "active"
    trader_in.post(
        url,
        {"action": "reset", "name": "momentum_breakout", "reason": "reviewed", "confirm": "on"},
    )
    session = TradingSession.objects.get(strategy_name="momentum_breakout")
    assert session.status == "active" and not session.kill_switch_tripped
    actions = list(ControlAction.objects.order_by("created_at", "id"))
    assert [(a.strategy_name, a.action, a.user, a.reason) for a in actions] == [
        ("vwap_rsi", "pause", user, "news"),
        ("vwap_rsi", "resume", user, ""),
        ("momentum_breakout", "reset_kill_switch", user, "reviewed"),
    ]


def test_control_needs_confirmation_and_a_reason_for_a_reset(trader_in, arena):
    url = reverse("control")
    trader_in.post(url, {"action": "pause", "name": "vwap_rsi"})
    trader_in.post(url, {"action": "reset", "name": "momentum_breakout", "confirm": "on"})
    assert ControlAction.objects.count() == 0
    assert TradingSession.objects.get(strategy_name="vwap_rsi").status == "active"


def test_control_refuses_get(trader_in):
    assert trader_in.get(reverse("control")).status_code == 405


@pytest.mark.django_db
def test_logout_is_a_post(client_in):
    assert client_in.post(reverse("logout")).status_code == 302
    assert client_in.get(reverse("radar")).status_code == 302


def test_admin_is_for_staff_only(client_in, staff, client):
    assert client_in.get("/admin/").status_code == 302
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
