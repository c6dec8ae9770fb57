"""Alerts: stored with history, pushed live after commit, and the stale-data warning."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.urls import reverse
from django.utils import timezone

from common.presenters import render_event
from tests.web.conftest import BTC, T0
from trading import selectors
from trading.alerts import AlertError, alert_create
from trading.models import Alert

LAST_OPEN_MS = T0 + 2999 * 60_000  # newest of the 3,000 candles the arena stores


@pytest.fixture
def alerts_listener():
    """A channel joined to the ``alerts`` group; returns a function receiving one message."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("alerts", channel)

    def receive() -> dict:
        return async_to_sync(layer.receive)(channel)

    yield receive
    async_to_sync(layer.group_discard)("alerts", channel)


@pytest.mark.django_db
def test_an_alert_is_stored_and_published_only_once_its_transaction_commits(
    django_capture_on_commit_callbacks, alerts_listener
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alert = alert_create(
            level="error",
            message="vwap_rsi: session loss 5.2 % ≥ 5 %",
            source="vwap_rsi",
            payload={"loss_pct": 5.2},
        )
    assert Alert.objects.get() == alert
    assert len(callbacks) == 1  # nothing sent before the commit
    callbacks[0]()
    message = alerts_listener()
    assert message["event"] == "alert.new"
    assert message["payload"] == {
        "id": alert.pk,
        "level": "error",
        "source": "vwap_rsi",
        "message": "vwap_rsi: session loss 5.2 % ≥ 5 %",
        "time_ms": alert.time_ms,
        "payload": {"loss_pct": 5.2},
    }


@pytest.mark.django_db
def test_an_alert_with_an_unknown_level_is_refused():
    with pytest.raises(AlertError, match="'panic' is not one of info, warning, error"):
        alert_create(level="panic", message="feed down")
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_the_alerts_page_lists_history_newest_first_fifty_per_page(client_in):
    now = timezone.now()
    Alert.objects.bulk_create(
        Alert(level="warning", source="feed", message=f"alert {i:02d}", created_at=now)
        for i in range(55)
    )
    for i, alert in enumerate(Alert.objects.order_by("id")):
        alert.created_at = now - timedelta(minutes=55 - i)  # alert 54 is the newest
        alert.save(update_fields=["created_at"])
    first = client_in.get(reverse("alerts")).content.decode()
    assert first.index("alert 54") < first.index("alert 53") < first.index("alert 05")
    assert "alert 04" not in first
    assert "page 1 / 2" in first
    assert 'ws-connect="/ws/live/?groups=alerts"' in first
    second = client_in.get(reverse("alerts"), {"page": 2}, HTTP_HX_REQUEST="true").content
    html = second.decode()
    assert "<html" not in html
    assert [f"alert {i:02d}" in html for i in (4, 0, 5)] == [True, True, False]


@pytest.mark.django_db
def test_a_live_alert_is_the_same_row_as_its_stored_history(client_in):
    alert = alert_create(
        level="warning", message="feed reconnecting", source="bitget", payload={"attempt": 3}
    )
    live = render_event("alert.new", alert.as_event())
    assert 'hx-swap-oob="afterbegin:#live-alert-feed"' in live
    row = live.split('<div class="feed-row alert warning">', 1)[1].split("</div>", 1)[0]
    page = client_in.get(reverse("alerts")).content.decode()
    assert row in page
    assert "<b>bitget</b>" in row and "feed reconnecting" in row and "attempt=3" in row


def test_stale_data_is_an_enabled_asset_whose_newest_candle_closed_too_long_ago(arena):
    """Newest candle opened at LAST_OPEN_MS, so it closed one minute later. 4 minutes after the
    close nothing is stale (limit 5); 6 minutes after, both assets are, aged "6m"."""
    closed = LAST_OPEN_MS + 60_000
    assert selectors.stale_assets(now_ms=closed + 4 * 60_000) == []
    stale = selectors.stale_assets(now_ms=closed + 6 * 60_000)
    assert [(s["symbol"], s["age"]) for s in stale] == [(BTC, "6m"), ("ETH/USDT:USDT", "6m")]
    assert stale[0]["last_close"] == "2025-06-19 02:00:00"


@pytest.mark.parametrize("name", ["radar", "alerts"])
def test_radar_and_alerts_warn_about_stale_data(client_in, arena, name):
    html = client_in.get(reverse(name)).content.decode()
    assert "stale data" in html
    assert "newest 1m candle closed" in html and "2025-06-19 02:00:00" in html


@pytest.mark.django_db
def test_no_stale_warning_without_assets(client_in):
    assert "stale data" not in client_in.get(reverse("radar")).content.decode()
