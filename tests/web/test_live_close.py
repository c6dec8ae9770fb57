"""The Live page's Close of one LIVE position: a confirmed, reasoned request recorded in the
control log (who, when, why, which live position), steer permission only, one at a time; the
form on every open live row for a steering user, on rows pushed live too (hidden by the
stylesheet for the others), nowhere for a viewer. The executor side is
tests/radar/test_live_close_on_fake.py; the browser side test_live_close_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from common.presenters import render_event
from strategies.closes import live_position_close_request
from strategies.models import ControlAction, StrategyConfig
from strategies.services import ControlError
from tests.web.conftest import BTC, ETH, T0
from tests.web.test_security import INLINE_HANDLER, INLINE_SCRIPT
from trading.execution import store
from trading.models import Alert, Asset, LivePosition

BUTTON = "Close live at market"


@pytest.fixture
def live_book(db) -> dict[str, LivePosition]:
    """vwap_rsi back on paper with a live long still open (no paper twin open: its stop and
    target keep it on the exchange), an adopted ETH short, and a closed live position."""
    for symbol, base, tick, lot in ((BTC, "BTC", 0.1, 0.001), (ETH, "ETH", 0.01, 0.01)):
        Asset.objects.create(symbol=symbol, base=base, price_tick=tick, qty_step=lot, min_qty=lot)
    StrategyConfig.objects.create(name="vwap_rsi", kind="vwap_rsi", live=False)
    common = {"leverage": 5, "protected": True, "opened_ms": T0}
    left = LivePosition.objects.create(
        strategy_name="vwap_rsi",
        symbol=BTC,
        side="long",
        qty=0.012,
        entry_price=104_131.4,
        stop_loss=102_569.4,
        take_profit=107_255.3,
        entry_client_id="sr-en-left1",
        **common,
    )
    adopted = LivePosition.objects.create(
        strategy_name="(adopted)",
        symbol=ETH,
        side="short",
        qty=0.5,
        entry_price=2_480.5,
        stop_loss=2_530.11,
        adopted=True,
        **common,
    )
    closed = LivePosition.objects.create(
        strategy_name="vwap_rsi",
        symbol=ETH,
        side="long",
        status="closed",
        qty=0.0,
        entry_price=2_400.0,
        closed_ms=T0 + 60_000,
        exit_reason="stop_loss",
        **common,
    )
    return {"left": left, "adopted": adopted, "closed": closed}


@pytest.fixture
def steerer(user):
    """The user in the "trader" group (the steer permission), made again for the case of a
    flushed group table."""
    group, _ = Group.objects.get_or_create(name="trader")
    group.permissions.add(Permission.objects.get(codename="steer_radar"))
    user.groups.add(group)
    return user


def _forms(html: str) -> list[str]:
    """The ``live_position_id`` values of the Close forms on a page."""
    return re.findall(r'name="live_position_id" value="(\d+)"', html)


def test_a_viewer_sees_no_close_form_and_cannot_post_one(client_in, live_book):
    html = client_in.get(reverse("live")).content.decode()
    assert BUTTON not in html and _forms(html) == []
    response = client_in.post(
        reverse("live_position_close"),
        {"live_position_id": live_book["left"].pk, "reason": "x", "confirm": "on"},
    )
    assert response.status_code == 403
    assert not ControlAction.objects.filter(live_position__isnull=False).exists()
    assert LivePosition.objects.get(pk=live_book["left"].pk).status == "open"


def test_a_steering_user_gets_one_close_form_per_open_live_position(client, steerer, live_book):
    client.force_login(steerer)
    html = client.get(reverse("live")).content.decode()
    assert sorted(_forms(html)) == sorted([str(live_book["left"].pk), str(live_book["adopted"].pk)])
    assert html.count(BUTTON) == 2
    assert "confirm: close long 0.012 at market" in html
    assert "confirm: close short 0.50 at market" in html
    # One more column in the header (its Close column: no title).
    header = html[
        html.index('<div class="tr th"><span>Strategy</span><span>Symbol</span><span>Side') :
    ]
    header = header[: header.index("</div>")]
    assert header.endswith('<span class="close-head"></span>') and header.count("<span") == 13
    # The Content-Security-Policy: no inline script, handler or style in the page.
    assert not INLINE_SCRIPT.search(html) and not INLINE_HANDLER.search(html)
    # The htmx refresh of the board renders the same forms (the same request, the same perms).
    board = client.get(reverse("live"), headers={"HX-Request": "true"}).content.decode()
    assert sorted(_forms(board)) == sorted(_forms(html))


def test_a_row_pushed_live_carries_the_form_for_the_stylesheet_to_hide(live_book):
    """Rendered once for every websocket client (no user): the ``control`` class is hidden by
    app.css without ``body.can-steer``, and the view refuses a post without the permission."""
    html = render_event("live.position", store.position_event(live_book["adopted"]))
    assert '<details class="control live-close">' in html
    assert _forms(html) == [str(live_book["adopted"].pk)]
    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text(
        encoding="utf-8"
    )
    assert "body:not(.can-steer) .control," in css
    assert (
        render_event("live.position", store.position_event(live_book["closed"])).count(
            "live_position_id"
        )
        == 0
    )


def test_a_close_is_confirmed_and_recorded_with_who_why_and_which_live_position(
    client, steerer, live_book
):
    client.force_login(steerer)
    left = live_book["left"]
    unconfirmed = client.post(
        reverse("live_position_close"), {"live_position_id": left.pk, "reason": "news"}
    )
    assert unconfirmed.status_code == 302
    assert not ControlAction.objects.filter(live_position__isnull=False).exists()

    response = client.post(
        reverse("live_position_close"),
        {"live_position_id": left.pk, "reason": " CPI in 5 minutes ", "confirm": "on"},
        follow=True,
    )
    page = response.content.decode()
    assert "requested: the live executor closes it at market" in page
    action = ControlAction.objects.get(live_position=left)
    assert action.action == ControlAction.Action.CLOSE_POSITION
    assert (action.user, action.reason, action.strategy_name) == (
        steerer,
        "CPI in 5 minutes",
        "vwap_rsi",
    )
    assert action.position is None and action.done_at is None and action.created_at is not None
    alert = Alert.objects.get(payload__control_id=action.pk)
    assert alert.level == "warning" and alert.source == "vwap_rsi"
    assert alert.message == f"close of live vwap_rsi long 0.012 {BTC} requested by trader"
    assert alert.payload["live_position_id"] == left.pk
    # Still open until the executor carries it out: the row and its form stay.
    assert LivePosition.objects.get(pk=left.pk).status == "open"

    again = client.post(
        reverse("live_position_close"),
        {"live_position_id": left.pk, "confirm": "on"},
        follow=True,
    )
    assert "already requested" in again.content.decode()
    assert ControlAction.objects.filter(live_position=left).count() == 1
    # The adopted position is another position: its own request goes through.
    live_position_close_request(
        live_position_id=live_book["adopted"].pk, user=steerer, reason="not mine"
    )
    assert ControlAction.objects.get(live_position=live_book["adopted"]).strategy_name == (
        "(adopted)"
    )


def test_a_close_of_a_done_request_may_be_asked_again(steerer, live_book):
    """Once the executor stamped the request (done, or refused by the exchange), a new one is
    accepted: the position may still be open."""
    first = live_position_close_request(live_position_id=live_book["left"].pk, user=steerer)
    ControlAction.objects.filter(pk=first.pk).update(done_at="2026-12-07T15:00:00Z")
    second = live_position_close_request(live_position_id=live_book["left"].pk, user=steerer)
    assert second.pk != first.pk and second.done_at is None


def test_closing_a_live_position_that_is_not_open_is_refused(client, steerer, live_book):
    with pytest.raises(ControlError, match="no open live position"):
        live_position_close_request(live_position_id=live_book["closed"].pk, user=steerer)
    with pytest.raises(ControlError, match="no open live position"):
        live_position_close_request(live_position_id=999_999, user=steerer)
    client.force_login(steerer)
    response = client.post(
        reverse("live_position_close"),
        {"live_position_id": live_book["closed"].pk, "confirm": "on"},
        follow=True,
    )
    assert "Not closed — no open live position" in response.content.decode()
    bad = client.post(
        reverse("live_position_close"), {"live_position_id": "abc", "confirm": "on"}, follow=True
    )
    assert "Not closed — live_position_id" in bad.content.decode()
    assert not ControlAction.objects.filter(live_position__isnull=False).exists()


def test_the_close_view_takes_posts_only(client, steerer, live_book):
    client.force_login(steerer)
    assert client.get(reverse("live_position_close")).status_code == 405
