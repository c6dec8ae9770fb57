"""Truthful state in Debian's Chromium: a dropped websocket greys the page until it reconnects;
a replay is announced as a replay; the favicon loads.

The pages come from pytest-django's ``live_server``; the live socket is Playwright's
(``page.route_web_socket``): the test opens, drops and refuses it as a server outage would,
without a second Daphne in the process (Twisted's reactor starts once: tests/web/test_browser.py
owns it). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re

import pytest

from radar.health import radar_status
from tests.web.test_browser import ARTIFACTS, _login, browser  # noqa: F401 (fixture)
from tests.web.test_truthful_state import MINUTE_MS, T0, _replaying

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]

DOWN = "document.body.classList.contains('ws-down')"


def test_a_dropped_socket_greys_the_page_until_it_reconnects(live_server, user, browser):  # noqa: F811
    """Open → the server drops the socket (1012, restart) → reconnects are refused (1013)
    while it is down: banner + greyed figures stay → the server is back: the next reconnect
    opens and the page is live again."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    server = {"up": True, "sockets": [], "attempts": 0}

    def on_socket(ws):
        server["attempts"] += 1
        if server["up"]:
            server["sockets"].append(ws)  # mocked: open, silent
        else:
            ws.close(code=1013, reason="try again later")

    page.route_web_socket(re.compile(r".*/ws/live/.*"), on_socket)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/alerts/")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    assert not page.evaluate(DOWN)
    assert page.locator("#ws-down-banner").count() == 0

    server["up"] = False
    server["sockets"][-1].close(code=1012, reason="service restart")  # this page's
    page.wait_for_selector("#ws-down-banner", state="visible", timeout=10_000)
    assert page.evaluate(DOWN)
    assert "Disconnected from the server since" in page.inner_text("#ws-down-banner")
    assert page.get_attribute("#ws-status", "class") == "ws-status off"
    assert page.evaluate("getComputedStyle(document.querySelector('main')).opacity") == "0.45"
    # A refused reconnect keeps the page down.
    deadline_attempts = server["attempts"] + 1
    for _ in range(200):
        if server["attempts"] >= deadline_attempts:
            break
        page.wait_for_timeout(50)
    assert server["attempts"] >= deadline_attempts, "the page never retried"
    assert page.evaluate(DOWN)
    page.screenshot(path=str(ARTIFACTS / "ws-disconnected-1440.png"), full_page=True)

    server["up"] = True
    page.wait_for_selector("#ws-status.on", timeout=20_000)
    assert not page.evaluate(DOWN)
    assert page.locator("#ws-down-banner").is_hidden()
    assert page.evaluate("getComputedStyle(document.querySelector('main')).opacity") == "1"
    page.close()


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_a_replay_banner_replaces_stale_and_the_favicon_loads(
    live_server,
    arena,
    user,
    browser,  # noqa: F811
    width,
    height,
):
    """The arena's 2025 candles during a replay at 60×, market time 2025-06-20 14:32: the
    banner says so, fits the viewport, and no "stale data" banner is shown."""
    _replaying(T0 + (3 * 1440 + 14 * 60 + 32) * MINUTE_MS)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.route_web_socket(re.compile(r".*/ws/live/.*"), lambda ws: None)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/alerts/")
    banner = page.locator("#replay-banner")
    assert "Replay of 2025-06-17 → 06-23 at 60×, market time 14:32" in banner.inner_text()
    assert page.locator("#stale-data").count() == 0
    assert page.evaluate(
        "(() => { const b = document.getElementById('replay-banner');"
        " return b.scrollWidth <= b.clientWidth && b.getBoundingClientRect().right <= innerWidth;"
        " })()"
    )
    icon = page.evaluate(
        "fetch(document.querySelector('link[rel=icon]').href)"
        ".then(r => [r.status, r.headers.get('content-type')])"
    )
    assert icon[0] == 200 and "svg" in icon[1]
    page.screenshot(path=str(ARTIFACTS / f"replay-banner-{width}.png"), full_page=True)
    page.close()
    radar_status.reset()
