"""Truthful state on the pages: a replay is announced as a replay, not as stale data; the
favicon is linked; alert times say they are wall-clock times."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from radar.health import ReplayFacts, radar_status
from tests.radar.test_radar import slice_sample
from trading.models import Alert

T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC, first candle of the bundled sample
MINUTE_MS = 60_000


class _Stats:
    reconnects = 0


def _replaying(market_ms: int, *, speed: float | None = 60.0, fast_until_ms: int | None = None):
    """The radar status as ``radar.launch.run_feed`` leaves it during a replay of the sample:
    first candle 2025-06-17 00:00, last 2025-06-23 23:59."""
    radar_status.feed_started(
        source="replay",
        stats=_Stats(),
        replay=ReplayFacts(
            first_ms=T0,
            last_ms=T0 + 7 * 1440 * MINUTE_MS - MINUTE_MS,
            speed=speed,
            fast_until_ms=fast_until_ms,
            market_ms=lambda: market_ms,
        ),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["alerts", "radar"])
def test_a_replay_shows_its_range_pace_and_market_time_instead_of_stale(client_in, arena, page):
    """Market time 2025-06-20 14:32 UTC = T0 + 3 days 14 h 32 min; pace 60× (past warm-up).
    The stored candles are 532 days old by the wall clock: no "stale data" banner."""
    _replaying(T0 + (3 * 1440 + 14 * 60 + 32) * MINUTE_MS, fast_until_ms=T0 + 3_600_000)
    html = client_in.get(reverse(page)).content.decode()
    assert 'id="replay-banner"' in html
    assert "Replay of 2025-06-17 → 06-23 at 60×, market time" in html
    assert '<b id="replay-market-time">14:32</b>' in html
    assert "(2025-06-20 UTC)" in html
    assert 'id="stale-data"' not in html


@pytest.mark.django_db
def test_a_replay_in_its_warm_up_says_full_speed(client_in):
    """Warm-up until T0 + 1 h, market time T0 + 30 min: full speed, then 60×."""
    _replaying(T0 + 30 * MINUTE_MS, fast_until_ms=T0 + 3_600_000)
    html = client_in.get(reverse("alerts")).content.decode()
    assert "at full speed (warm-up), then 60×, market time <b" in html


@pytest.mark.django_db
def test_without_a_replay_old_candles_are_stale(client_in, arena):
    """The arena fixture stores 2025 candles and no radar runs: the stale banner stays."""
    html = client_in.get(reverse("alerts")).content.decode()
    assert 'id="stale-data"' in html
    assert 'id="replay-banner"' not in html


@pytest.mark.django_db(transaction=True)
def test_the_radar_exposes_the_replay_it_builds(tmp_path):
    """A headless replay of the sample's first 120 candles (2025-06-17 00:00 → 01:59) at max
    speed: the status holds its range (open times), no pace (max) and the replay's clock,
    which ends past the last candle's close (02:00)."""
    path = slice_sample(tmp_path, "BTC", 0, 120)
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless", stdout=StringIO())
    facts = radar_status.replay
    assert radar_status.source == "replay"
    assert (facts.first_ms, facts.last_ms, facts.speed) == (T0, T0 + 119 * MINUTE_MS, None)
    assert facts.market_ms() >= T0 + 120 * MINUTE_MS


@pytest.mark.django_db
def test_every_page_links_the_favicon_and_it_is_served(client_in):
    html = client_in.get(reverse("alerts")).content.decode()
    assert 'rel="icon" type="image/svg+xml" href="/static/favicon.svg"' in html
    from django.contrib.staticfiles import finders

    assert finders.find("favicon.svg")


@pytest.mark.django_db
def test_alert_times_say_they_are_wall_clock_times(client_in):
    Alert.objects.create(level="warning", source="feed", message="feed reconnected")
    html = client_in.get(reverse("alerts")).content.decode()
    assert 'title="wall-clock time (UTC) the alert was written">wall ' in html


@pytest.mark.django_db
def test_an_alert_about_a_market_moment_shows_its_market_time_beside_the_wall_time(client):
    """A kill-switch trip in a replay happened at a 2025 candle, written today: both shown."""
    from django.contrib.auth.models import User

    from trading.alerts import alert_create

    alert_create(level="error", message="vwap_rsi: session loss 5 %", source="vwap_rsi",
                 payload={"scope": "strategy", "time_ms": 1_750_464_000_000})  # fmt: skip
    alert_create(level="info", message="no market moment", source="radar")
    client.force_login(User.objects.create_user("alert-reader"))
    html = client.get("/alerts/").content.decode()
    assert "market 2025-06-21 00:00:00" in html
    assert html.count("market 20") == 1  # the alert without one shows its wall time only
