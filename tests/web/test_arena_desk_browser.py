"""The Arena and Session pages in Debian's Chromium: nothing cut at 1440 px, the tables scroll
inside their card at 390 px, the daily / equity charts drawn, and a row pushed by the socket
swapped in with the same formatted cells.

The pages come from pytest-django's ``live_server``; the live socket is Playwright's
(``page.route_web_socket``), which sends the ``arena.update`` fragment ``render_event`` builds,
as the consumer would (Twisted's reactor starts once per process: tests/web/test_browser.py
owns Daphne). Screenshots at 1440×900 and 390×844 go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re

import pytest

from common.presenters import render_event
from strategies.arena_selectors import arena_row
from tests.web.test_arena_desk import desk_arena  # noqa: F401 (fixture)
from tests.web.test_browser import ARTIFACTS, _login, browser  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]

NO_PAGE_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
# Ranking cells whose text is wider than their box (cut), by text.
CUT_CELLS = """() => [...document.querySelectorAll(
    '.arena-tbl .tr > span, .arena-tbl .tr > .contents > span')]
  .filter(el => el.scrollWidth > el.clientWidth + 1).map(el => el.innerText.trim())"""
# Scroll boxes whose content is wider than they are (hidden columns), by their table's id/class.
HIDDEN_COLUMNS = """() => [...document.querySelectorAll('.arena-scroll')]
  .filter(el => el.scrollWidth > el.clientWidth + 1)
  .map(el => el.firstElementChild.id || el.firstElementChild.className)"""
SCROLLS_INSIDE = """sel => { const el = document.querySelector(sel);
  return el.scrollWidth > el.clientWidth && getComputedStyle(el).overflowX === 'auto'; }"""


def _open(browser, base: str, path: str, width: int, height: int, sockets: list | None = None):  # noqa: F811
    """``path`` logged in, its live socket mocked (open, silent; kept in ``sockets``), once
    the charts are drawn."""
    page = browser.new_page(viewport={"width": width, "height": height})
    held = [] if sockets is None else sockets
    page.route_web_socket(re.compile(r".*/ws/live/.*"), lambda ws: held.append(ws))
    _login(page, base, "trader")
    page.goto(base + path)
    page.wait_for_selector("#arena-equity-chart[data-drawn]", timeout=10_000)
    return page


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_arena_reads_whole_at_the_desk_and_scrolls_its_tables_on_a_phone(
    live_server,
    user,
    desk_arena,  # noqa: F811
    browser,  # noqa: F811
    width,
    height,
):
    """The ranking's headers and names are never cut; the page never overflows; at 390 px the
    ranking scrolls inside its card; both charts are drawn (canvas) from the island: 2 days,
    one equity line per strategy (momentum_breakout and vwap_rsi)."""
    page = _open(browser, live_server.url, "/arena/", width, height)
    assert page.evaluate(NO_PAGE_OVERFLOW), "the Arena overflows the window"
    assert page.evaluate(CUT_CELLS) == []
    assert page.get_attribute("#arena-daily-chart", "data-drawn") == "2"
    assert page.get_attribute("#arena-equity-chart", "data-drawn") == "2"
    assert page.locator("#arena-daily-chart canvas").count() >= 1
    assert page.locator("#arena-equity-legend .arena-key").all_inner_texts() == [
        "momentum_breakout",
        "vwap_rsi",
    ]
    header = page.locator(".arena-tbl .th").inner_text()
    assert "Fees % |gross|" in header and "Fees (USDT)" in header
    if width < 500:
        assert page.evaluate(SCROLLS_INSIDE, "#live-arena .arena-scroll")
    else:  # at the desk every column of every table is in view, none behind a scroll
        assert page.evaluate(HIDDEN_COLUMNS) == []
        last = page.locator(".arena-tbl .th > span").last.bounding_box()
        card = page.locator("#live-arena .arena-scroll").bounding_box()
        assert last["x"] + last["width"] <= card["x"] + card["width"] + 1
    page.screenshot(path=str(ARTIFACTS / f"arena-desk-{width}.png"), full_page=True)
    page.goto(live_server.url + "/arena/?strategy=vwap_rsi")
    page.wait_for_selector("#arena-equity-chart[data-drawn]", timeout=10_000)
    assert page.get_attribute("#arena-equity-chart", "data-drawn") == "1"
    page.click(".arena-days summary")
    assert page.locator("#arena-daily-table tbody tr").count() == 2
    assert page.evaluate(NO_PAGE_OVERFLOW)
    page.screenshot(path=str(ARTIFACTS / f"arena-desk-vwap_rsi-{width}.png"), full_page=True)
    page.close()


def test_a_pushed_arena_row_shows_the_same_formatted_cells(
    live_server,
    user,
    desk_arena,  # noqa: F811
    browser,  # noqa: F811
):
    """The radar checkpoints vwap_rsi after a losing close (gross 120 → 90, fees 40 → 52, net
    80 → 38, 4 trades): the socket's ``arena.update`` swaps the row to +90.00 / 52.00 / +38.00
    / 57.8 % (52 / 90) / "4", never "4.00"."""
    s1, _ = desk_arena["sessions"]
    sockets: list = []
    page = _open(browser, live_server.url, "/arena/", 1440, 900, sockets)
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    s1.realised_gross_pnl, s1.fees_usdt, s1.realised_net_pnl = 90.0, 52.0, 38.0
    s1.trades_count, s1.equity_usdt = 4, 10_038.0
    sockets[-1].send(render_event("arena.update", arena_row(s1)))
    cells = "#live-arena-live-vwap_rsi > span"
    texts: list[str] = []
    for _ in range(100):  # polled from here: wait_for_function uses eval, the CSP refuses it
        texts = page.locator(cells).all_inner_texts()
        if "+90.00" in texts:
            break
        page.wait_for_timeout(50)
    assert [t.strip() for t in texts[2:10]] == [
        "+0.38 %",
        "+90.00",
        "52.00",
        "+38.00",
        "57.8 %",
        "50.0 %",
        "4",
        "1.00",
    ]
    page.screenshot(path=str(ARTIFACTS / "arena-desk-pushed-row.png"), full_page=True)
    page.close()


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_session_page_reads_whole_with_its_charts(
    live_server,
    user,
    desk_arena,  # noqa: F811
    browser,  # noqa: F811
    width,
    height,
):
    """Session: no horizontal overflow, the per-strategy table scrolls inside its card on a
    phone, the charts are drawn, the paper account's fees share reads on |gross|."""
    page = _open(browser, live_server.url, "/session/", width, height)
    assert page.evaluate(NO_PAGE_OVERFLOW), "the Session page overflows the window"
    assert "57.1 % of |gross|" in page.inner_text('.kpis[data-book="paper"]')
    if width < 500:
        assert page.evaluate(SCROLLS_INSIDE, "#live-session .arena-scroll")
    else:
        assert page.evaluate(HIDDEN_COLUMNS) == []
    page.screenshot(path=str(ARTIFACTS / f"session-desk-{width}.png"), full_page=True)
    page.close()
