"""Every page reads at 1440 px and on a phone (390 px) in Debian's Chromium: nothing overflows
the page horizontally (wide tables scroll inside their card), no figure is cut by an ellipsis,
figures are right-aligned, and the navigation collapses behind a menu button on the phone.

Pages come from pytest-django's ``live_server`` with the ``arena`` fixture's real candles and
rows; the live socket is Playwright's (silent), as in test_truthful_state_browser. Screenshots:
``test-artifacts/layout-<page>-<width>.png``.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.web.conftest import BTC, T0
from tests.web.test_browser import ARTIFACTS, CSP_PAGES, _login, browser  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]

# What the page measures: the document's overflow, every cut element, every left-aligned figure.
MEASURE = """() => {
  const doc = document.documentElement;
  const cut = [], left = [];
  for (const el of document.querySelectorAll('main *')) {
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || el.closest('[hidden]')) continue;
    const clips = cs.textOverflow === 'ellipsis' || cs.overflowX === 'hidden';
    if (clips && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0)
      cut.push(el.tagName + '.' + el.className + ': ' + el.textContent.trim().slice(0, 40));
    if (el.classList.contains('num') && cs.textAlign !== 'right' && cs.textAlign !== 'end')
      left.push(el.tagName + ': ' + el.textContent.trim().slice(0, 30) + ' (' + cs.textAlign + ')');
  }
  return {page: doc.scrollWidth, viewport: innerWidth, cut: cut, left: left};
}"""


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.split("?")[0].strip("/").lower()) or "radar"


@pytest.fixture
def run_id(arena):
    from backtests.models import BacktestRun

    run = BacktestRun.objects.create(
        strategy_name="vwap_rsi",
        strategy_kind="vwap_rsi",
        symbol=BTC,
        status="done",
        progress=1.0,
        start_ms=T0,
        end_ms=T0 + 86_400_000,
        results={"return_pct": 1.5, "trades": 1, "net_pnl": 150.0},
        equity_curve=[[T0, 10_000.0], [T0 + 3_600_000, 10_150.0]],
        trades=[
            {
                "side": "long",
                "entry_time_ms": T0,
                "exit_time_ms": T0 + 3_600_000,
                "net_pnl": 150.0,
            }
        ],
    )
    return run.pk


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_every_page_fits_its_screen_and_cuts_no_figure(
    live_server,
    arena,
    staff,
    run_id,
    browser,  # noqa: F811
    width,
    height,
):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.route_web_socket(re.compile(r".*/ws/live/.*"), lambda ws: None)
    _login(page, live_server.url, "boss")
    paths = (
        *CSP_PAGES,
        "/live/",
        f"/backtests/{run_id}/",
        f"/backtests/compare/?run={run_id}",
    )
    problems = []
    for path in paths:
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        m = page.evaluate(MEASURE)
        page.screenshot(path=str(ARTIFACTS / f"layout-{_slug(path)}-{width}.png"), full_page=True)
        if m["page"] > m["viewport"]:
            problems.append(f"{path}: page {m['page']} px wide in a {m['viewport']} px window")
        if m["cut"]:
            problems.append(f"{path}: cut {m['cut'][:5]}")
        if m["left"]:
            problems.append(f"{path}: figures not right-aligned {m['left'][:5]}")
    assert problems == [], "\n".join(problems)
    page.close()


def test_the_phone_menu_collapses_and_opens(live_server, user, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.route_web_socket(re.compile(r".*/ws/live/.*"), lambda ws: None)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/trades/")
    assert page.locator(".topbar nav").is_hidden()
    page.click("label.nav-toggle-label")
    assert page.locator(".topbar nav").is_visible()
    page.click(".topbar nav a:has-text('Positions')")
    page.wait_for_url(live_server.url + "/positions/")
    assert page.locator(".topbar nav").is_hidden()  # a new page starts collapsed
    # At 1440 px there is no menu button: the links are in the bar.
    page.set_viewport_size({"width": 1440, "height": 900})
    assert page.locator("label.nav-toggle-label").is_hidden()
    assert page.locator(".topbar nav").is_visible()
    page.close()
