"""The Live page's Close in Debian's Chromium: a folded, confirmed form on each open live row
for a steering user (the browser refuses it unconfirmed), recorded when sent; hidden on a row
pushed live for a viewer; nothing overflows at 1440 or 390 px, the form opened included.

Pages come from pytest-django's ``live_server``; the live socket is Playwright's
(``page.route_web_socket``) and sends the very fragment the consumer would
(``common.presenters.render_event``). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re

import pytest

from common.presenters import render_event
from strategies.models import ControlAction
from tests.web import test_live_close as view_tests
from tests.web.test_browser import ARTIFACTS, _login, browser  # noqa: F401 (fixture)
from trading.execution import store
from trading.models import LivePosition

# The view tests' fixtures: the same rows.
live_book, steerer = view_tests.live_book, view_tests.steerer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]

SIZES = ((1440, 900), (390, 844))
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"


def _mocked_socket(page) -> list:
    sockets: list = []
    page.route_web_socket(re.compile(r".*/ws/live/.*"), lambda ws: sockets.append(ws))
    return sockets


def _shoot(page, name: str) -> None:
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)
        assert page.evaluate(NO_OVERFLOW), f"{name} overflows at {width} px"
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)


def test_a_trader_closes_a_live_position_through_a_confirmed_form(
    live_server,
    steerer,
    live_book,
    browser,  # noqa: F811
):
    left = live_book["left"]
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    _mocked_socket(page)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/live/")
    row = page.locator(f"#live-livepos-{left.pk}")
    button = row.locator(f"button:has-text('{view_tests.BUTTON}')")
    assert not button.is_visible()  # folded in its <details> until asked for
    _shoot(page, "live-close-folded")
    row.locator("summary:has-text('Close')").click()
    button.click()  # not confirmed: the browser refuses the form (required checkbox)
    assert not ControlAction.objects.filter(live_position__isnull=False).exists()
    row.locator("input[name=reason]").fill("flat before the CPI print")
    row.locator("input[name=confirm]").check()
    assert row.locator("input[name=confirm]").is_visible()
    _shoot(page, "live-close-form")
    page.set_viewport_size({"width": 1440, "height": 900})
    with page.expect_navigation():
        button.click()
    assert "requested: the live executor closes it at market" in page.inner_text(".messages")
    action = ControlAction.objects.get(live_position__isnull=False)
    assert action.user == steerer and action.live_position == left
    assert action.reason == "flat before the CPI print" and action.done_at is None
    assert LivePosition.objects.get(pk=left.pk).status == "open"  # the executor closes it
    page.close()


def test_a_viewer_never_sees_the_live_close_even_on_a_row_pushed_live(
    live_server,
    user,
    live_book,
    browser,  # noqa: F811
):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    sockets = _mocked_socket(page)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/live/")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    assert page.locator("details.live-close").count() == 0
    pushed = live_book["left"]
    pushed.qty = 0.02
    sockets[-1].send(render_event("live.position", store.position_event(pushed)))
    page.locator(f"#live-livepos-{pushed.pk}").wait_for(timeout=5_000)
    assert page.locator("details.live-close").count() == 1
    assert not page.locator("details.live-close").is_visible()
    assert page.evaluate(NO_OVERFLOW)
    page.close()
