"""The Positions and Trades pages in Debian's Chromium: the live script formats every figure as
the server does, a row pushed live replaces the empty state (which comes back when it closes),
the Close button is a confirmed form for steering users only, and nothing overflows at 1440 or
390 px.

Pages come from pytest-django's ``live_server``; the live socket is Playwright's
(``page.route_web_socket``) and sends the very fragments the consumer would
(``common.presenters.render_event``), without a second Daphne in the process (Twisted's
reactor starts once: tests/web/test_browser.py owns it). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re

import pytest

from common.presenters import render_event
from strategies.models import ControlAction
from tests.web import test_positions_desk as desk
from tests.web.conftest import BTC, T0
from tests.web.test_browser import ARTIFACTS, _login, browser, wait_until  # noqa: F401 (fixture)
from trading import selectors
from trading.core import numbers

# The Positions fixtures of the view tests, shared (same rows, same hand-worked figures).
desk_rows, shadow_trade, steerer = desk.desk_rows, desk.shadow_trade, desk.steerer
MINUTE_MS = desk.MINUTE_MS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]

SIZES = ((1440, 900), (390, 844))
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
CELLS = """id => Object.fromEntries([...document.getElementById(id)
  .querySelectorAll('[data-cell]')].map(c => [c.dataset.cell, c.textContent]))"""
REMARK = """([id, mark, timeMs]) => {
  const row = document.getElementById(id);
  const rate = parseFloat(document.getElementById('price-receivers').dataset.takerRate);
  window.scalpPositions.remarkRow(row, mark, timeMs, rate);
}"""


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


def test_the_live_script_formats_every_figure_as_the_server(
    live_server,
    user,
    desk_rows,
    browser,  # noqa: F811
):
    """Each row re-marked by positions.js at the server's own mark and market time reads
    exactly as the server rendered it (long BTC on the 0.1 tick, shadow short ETH on 0.01,
    no liquidation price); and the ported formatters agree with trading.core.numbers on the
    cases that trip naive rounding (decimal ties, tiny and huge numbers, negative zero)."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    _mocked_socket(page)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/positions/")
    marks = {"live-pos-vwap_rsi-7": 101_000.0, "live-pos-vwap_rsi-3-shadow": 2_480.5}
    for dom_id, mark in marks.items():
        server = page.evaluate(CELLS, dom_id)
        assert server["mark"] != "—" and server["roe"].endswith(" %")
        page.evaluate(REMARK, [dom_id, mark, T0 + MINUTE_MS])
        assert page.evaluate(CELLS, dom_id) == server

    cases = [
        (104_131.4083, 0.1),
        (104_131.45, 0.1),
        (2_500, 0.01),
        (0.125, 0.01),
        (1.005, 0.01),
        (1.015, 0.01),
        (-2.675, 0.01),
        (0.000123456, None),
        (104_131.4083, None),
        (1e-7, 0.0000001),
        (123_456_789.125, 0.001),
        (-0.00004, 0.0001),
    ]
    js = page.evaluate(
        "cases => cases.map(([x, t]) => window.scalpPositions.fmtPrice(x, t))", cases
    )
    assert js == [numbers.fmt_price(x, t) for x, t in cases]
    amounts = [0.125, 1.005, 1.015, -2.675, -0.004, 0.005, 12_345.675, -1_234_567.891, 0.0]
    assert page.evaluate("xs => xs.map(x => window.scalpPositions.fmtMoneySigned(x))", amounts) == [
        numbers.fmt_money(x, signed=True) for x in amounts
    ]
    assert page.evaluate("xs => xs.map(x => window.scalpPositions.fmtPct(x))", amounts) == [
        numbers.fmt_pct(x) for x in amounts
    ]
    seconds = [0, 45.9, 725, 3_600, 11_220, 200_000]
    assert page.evaluate("xs => xs.map(x => window.scalpPositions.fmtDuration(x))", seconds) == [
        numbers.fmt_duration(x) for x in seconds
    ]
    page.close()


def _expected(position: dict, mark: float, time_ms: int, tick: float) -> dict[str, str]:
    """The cells the server's formulas and formats give for ``position`` at ``mark``."""
    f = selectors.mark_figures(position, mark)

    def level(pct: float | None, price: float) -> str:
        return f"{numbers.fmt_pct(pct)} · {numbers.fmt_price(price, tick)}" if price else "—"

    return {
        "mark": numbers.fmt_price(mark, tick),
        "gross": numbers.fmt_money(f["upnl_gross"], signed=True),
        "net": numbers.fmt_money(f["upnl_net"], signed=True),
        "roe": numbers.fmt_pct(f["roe_pct"]),
        "stop": level(f["stop_distance_pct"], position["stop_loss"]),
        "target": level(f["target_distance_pct"], position["take_profit"]),
        "liq": level(f["liq_distance_pct"], position["liquidation_price"]),
        "age": numbers.fmt_duration((time_ms - position["entry_time_ms"]) / 1000),
    }


def test_a_row_pushed_live_replaces_the_empty_state_and_follows_the_price(
    live_server,
    user,
    desk_rows,
    browser,  # noqa: F811
):
    """No position open: "No open position" shows. A position.opened push adds the row (the
    text goes), a market.price tick re-marks every figure and the time in trade (market time
    of the tick), a position.closed push removes it (the text is back)."""
    for position in desk_rows.values():
        position.delete()
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    sockets = _mocked_socket(page)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/positions/")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    empty = page.locator("#live-positions .empty")
    assert empty.is_visible()

    opened = {
        "position_id": "42",
        "symbol": BTC,
        "side": "long",
        "qty": 0.05,
        "leverage": 20.0,
        "margin_mode": "isolated",
        "margin_usdt": 255.0,
        "entry_price": 102_000.0,
        "entry_time_ms": T0 - 30 * MINUTE_MS,
        "entry_fee": 3.06,
        "entry_liquidity": "taker",
        "stop_loss": 101_490.0,
        "take_profit": 103_020.0,
        "liquidation_price": 97_461.3,
        "funding": 0.0,
        "slippage_cost": 0.0,
    }
    payload = {"strategy": "vwap_rsi", "type": "position_opened", "position": opened}
    sockets[-1].send(render_event("position.opened", {**payload, "shadow": False}))
    row = page.locator("#live-pos-vwap_rsi-42")
    row.wait_for(timeout=5_000)
    assert not empty.is_visible()
    assert page.evaluate(CELLS, "live-pos-vwap_rsi-42")["mark"] == "—"  # no mark yet

    tick_ms = T0 + 5 * MINUTE_MS + 12_000
    tick = {"symbol": BTC, "price": 101_873.25, "time_ms": tick_ms, "kind": "last"}
    sockets[-1].send(render_event("market.price", tick))
    wait_until(page, "document.querySelector('#live-pos-vwap_rsi-42 [data-cell=mark]')"
               ".textContent !== '—'")  # fmt: skip
    row_dict = {**opened, "funding": 0.0}
    assert page.evaluate(CELLS, "live-pos-vwap_rsi-42") == _expected(
        row_dict, 101_873.25, tick_ms, 0.1
    )
    assert "down" in (row.locator("[data-cell=net]").get_attribute("class") or "")
    _shoot(page, "positions-live-row")

    closed = {"strategy": "vwap_rsi", "type": "position_closed", "shadow": False}
    sockets[-1].send(render_event("position.closed", {**closed, "position": opened}))
    row.wait_for(state="detached", timeout=5_000)
    assert empty.is_visible()
    page.close()


def test_a_trader_closes_a_position_through_a_confirmed_form(
    live_server,
    steerer,
    desk_rows,
    browser,  # noqa: F811
):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    _mocked_socket(page)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/positions/")
    row = page.locator("#live-pos-vwap_rsi-7")
    button = row.locator("button:has-text('Close at market')")
    assert not button.is_visible()  # folded in its <details> until asked for
    row.locator("summary:has-text('Close')").click()
    button.click()  # not confirmed: the browser refuses the form (required checkbox)
    assert not ControlAction.objects.filter(action="close_position").exists()
    row.locator("input[name=reason]").fill("flat before the CPI print")
    row.locator("input[name=confirm]").check()
    grid = "document.querySelector('.pos-tbl')"
    assert page.evaluate(f"{grid}.scrollWidth <= {grid}.clientWidth")  # the form floats
    assert row.locator("input[name=confirm]").is_visible()
    _shoot(page, "positions-close-form")
    with page.expect_navigation():
        button.click()
    assert "requested: the radar closes it at market" in page.inner_text(".messages")
    action = ControlAction.objects.get(action="close_position")
    assert action.user == steerer and action.position == desk_rows["long"]
    assert action.reason == "flat before the CPI print"
    page.close()


def test_a_viewer_never_sees_the_close_button_even_on_a_row_pushed_live(
    live_server,
    user,
    desk_rows,
    browser,  # noqa: F811
):
    """A pushed row carries the form (rendered once for every client): hidden without the
    steer permission, as the Arena's controls are."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    sockets = _mocked_socket(page)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/positions/")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    assert page.locator("details.pos-close").count() == 0
    opened = {
        "position_id": "43",
        "symbol": BTC,
        "side": "short",
        "qty": 0.02,
        "leverage": 10.0,
        "entry_price": 101_500.0,
        "entry_time_ms": T0,
        "entry_fee": 1.22,
        "stop_loss": 102_000.0,
        "take_profit": 100_500.0,
        "liquidation_price": 111_000.0,
        "funding": 0.0,
    }
    sockets[-1].send(
        render_event(
            "position.opened", {"strategy": "vwap_rsi", "shadow": False, "position": opened}
        )
    )
    page.locator("#live-pos-vwap_rsi-43").wait_for(timeout=5_000)
    assert page.locator("details.pos-close").count() == 1
    assert not page.locator("details.pos-close").is_visible()
    page.close()


def test_the_trades_page_with_shadow_trades_reads_at_both_widths(
    live_server,
    user,
    shadow_trade,
    browser,  # noqa: F811
):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    _mocked_socket(page)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/trades/")
    assert page.locator(".tag:has-text('shadow')").count() == 0
    page.check("input[name=shadow]")
    page.click("form.filters button[type=submit]")
    page.locator("#trade-table .tag:has-text('shadow')").wait_for(timeout=5_000)
    assert "6 trades (shadow included)" in page.inner_text("#trade-table .kpis-line")
    cell = page.locator("#trade-table td.num").first
    assert page.evaluate("e => getComputedStyle(e).textAlign", cell.element_handle()) == "right"
    _shoot(page, "trades-shadow")
    page.close()
