"""The Chart page in Debian's Chromium: price, volume and RSI/ADX panes, the OHLC legend, marker
tooltips on hover, position lines, the funding countdown, studies that follow a pushed candle,
and a backtest run's chart; at 1440×900 and 390×844, never wider than the viewport.

Pages come from pytest-django's ``live_server``; the live socket is Playwright's
(``page.route_web_socket``), through which the test pushes the very fragment the consumer
forwards for a ``market.candle`` event (``common.presenters.render_event``) — no second Daphne
in the process (tests/web/test_browser.py owns Twisted's reactor). Screenshots go to
``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from backtests import services as backtest_services
from common.presenters import render_event
from tests.web.conftest import BTC, SAMPLE, T0
from tests.web.test_browser import ARTIFACTS, _login, browser, wait_until  # noqa: F401 (fixture)
from trading.core.candles import read_candles_csv
from trading.services import candles_upsert

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]

MINUTE_MS = 60_000
NOW_MS = T0 + 3000 * MINUTE_MS  # close of the newest stored candle: 2025-06-19 02:00 UTC
BTC_FILE = SAMPLE / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
SIZES = [(1440, 900), (390, 844)]
NO_OVERFLOW = "document.documentElement.scrollWidth <= innerWidth"
STACK = "document.getElementById('chart-stack').dataset"


def _island(page) -> dict:
    return json.loads(page.locator("#chart-data").text_content())


def _ready(page) -> None:
    wait_until(page, f"{STACK}.lastCandle && {STACK}.lastCandle !== ''")


@pytest.mark.parametrize("width,height", SIZES)
def test_the_chart_shows_panes_legend_tooltips_lines_and_funding(
    live_server,
    arena,
    user,
    browser,  # noqa: F811
    width,
    height,
):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.route_web_socket(re.compile(r".*/ws/live/.*"), lambda ws: None)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/chart/?symbol=BTC%2FUSDT%3AUSDT&tf=15m&strategy=vwap_rsi")
    _ready(page)
    data = _island(page)
    # Three panes, each drawn (lightweight-charts renders into canvases), the same width.
    boxes = [page.locator(sel).bounding_box() for sel in ("#chart", "#chart-volume", "#chart-osc")]
    assert all(b and b["height"] > 50 for b in boxes)
    assert len({round(b["width"]) for b in boxes}) == 1
    for sel in ("#chart", "#chart-volume", "#chart-osc"):
        assert page.locator(f"{sel} canvas").count() > 0
    # The legend shows the last candle, prices on BTC's 0.1 tick with thousands commas.
    last = data["candles"][-1]
    legend = page.locator("#chart-legend").inner_text()
    tenths = round(last["close"] * 10)
    assert f"{tenths // 10:,}.{tenths % 10}" in legend
    assert re.search(r"O\s*1\d\d,\d{3}\.\d\s*H", legend), legend
    assert "RSI 14" in legend and "ADX 14" in legend and "V" in legend
    # Entry / SL / TP / liquidation of the open BTC long, listed under the chart.
    lines = page.locator("#chart-lines li")
    assert lines.count() == 4
    assert "SL long vwap_rsi" in page.locator("#chart-lines").inner_text()
    # The funding countdown ticks and says where its time comes from.
    countdown = page.locator("#funding-countdown")
    assert re.fullmatch(r"Funding in \d+h \d\dm \d\ds", countdown.inner_text()), (
        countdown.inner_text()
    )
    assert "from the stored settlements" in (countdown.get_attribute("title") or "")
    # Hover the bar of the first trade's entry: a tooltip, not a label, says who, what and why.
    entry_id = next(i for i, t in data["tips"].items() if t["title"] == "entry")
    marker = next(m for m in data["markers"] if m["id"] == entry_id)
    x = page.evaluate(
        "t => window.ScalpCharts.desk.charts[0].timeScale().timeToCoordinate(t)", marker["time"]
    )
    assert x is not None, "the marker's bar is not on screen"
    box = boxes[0]
    page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
    page.wait_for_selector("#chart-tip:not([hidden])", timeout=5_000)
    tip = page.locator("#chart-tip").inner_text()
    expected = data["tips"][entry_id]
    for part in ("vwap_rsi", expected["side"], expected["price"], expected["reason"]):
        assert part in tip, (part, tip)
    # The legend follows the hovered bar (on a phone the nearest of dense bars: within two).
    hovered = int(page.locator("#chart-legend").get_attribute("data-time"))
    assert abs(hovered - marker["time"]) <= 2 * 900
    tip_box = page.locator("#chart-tip").bounding_box()
    assert tip_box["x"] >= 0 and tip_box["x"] + tip_box["width"] <= width
    assert page.evaluate(NO_OVERFLOW)
    page.screenshot(path=str(ARTIFACTS / f"chart-desk-{width}.png"), full_page=True)
    page.close()


def test_a_pushed_candle_moves_the_studies_with_it(live_server, arena, user, browser):  # noqa: F811
    """A 5m chart ends with the 01:55 bucket. The radar stores the 02:00 1m candle and pushes
    it: the chart opens the 02:00 bucket and, after its refetch, EMA, VWAP, RSI, ADX and volume
    all end at 02:00. The 02:01 candle extends that bucket: the legend's close follows."""
    sockets = []
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.route_web_socket(re.compile(r".*/ws/live/.*"), lambda ws: sockets.append(ws))
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/chart/?symbol=BTC%2FUSDT%3AUSDT&tf=5m&strategy=vwap_rsi")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    _ready(page)
    before = _island(page)["candles"][-1]["time"]
    assert before == (NOW_MS - 5 * MINUTE_MS) // 1000
    rows = read_candles_csv(BTC_FILE)[3000:3002]
    studies = ("lastEmaFast", "lastEmaSlow", "lastVwap", "lastRsi", "lastAdx", "lastVolume")
    for i, row in enumerate(rows):
        values = [int(row[0]), *map(float, row[1:])]
        candles_upsert(rows=[tuple(values)], exchange="bitget", symbol=BTC, timeframe="1m")
        payload = {
            "symbol": BTC,
            "candle": values,
            "candles": [values],
            "time_ms": values[0] + MINUTE_MS,
        }
        sockets[-1].send(render_event("market.candle", payload))
        wait_until(page, f"Number({STACK}.fetches) >= {i + 1}")
        state = page.evaluate(f"Object.assign({{}}, {STACK})")
        assert state["lastCandle"] == str(NOW_MS // 1000)
        for key in studies:
            assert state[key] == state["lastCandle"], (key, state)
    legend = page.locator("#chart-legend").inner_text()
    tenths = round(float(rows[-1][4]) * 10)
    assert f"C {tenths // 10:,}.{tenths % 10}" in legend.replace("\n", " "), legend
    assert page.evaluate(NO_OVERFLOW)
    page.screenshot(path=str(ARTIFACTS / "chart-live-studies.png"), full_page=True)
    page.close()


@pytest.fixture
def finished_run(arena):
    """A real momentum_breakout backtest over the stored BTC candles, run before the browser
    starts (its progress events publish synchronously, which Playwright's loop forbids)."""
    run = backtest_services.backtest_run_create(
        strategy="momentum_breakout", symbol=BTC, start_ms=T0, end_ms=NOW_MS
    )
    assert backtest_services.backtest_run_execute(run.pk)
    run.refresh_from_db()
    assert run.trades, run.error
    return run


@pytest.mark.parametrize("width,height", SIZES)
def test_a_backtest_runs_chart_shows_its_trades(
    live_server,
    finished_run,
    user,
    browser,  # noqa: F811
    width,
    height,
):
    run = finished_run
    page = browser.new_page(viewport={"width": width, "height": height})
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + f"/chart/?run={run.pk}")
    _ready(page)
    data = _island(page)
    assert data["candles"][0]["time"] == T0 // 1000
    shown = page.evaluate("window.ScalpCharts.desk.series.candles.markers().length")
    assert shown == len(data["markers"]) >= len(run.trades)
    assert page.locator("h1").inner_text().startswith(f"Backtest run #{run.pk}")
    assert page.locator("#funding-countdown").count() == 0
    assert page.evaluate(NO_OVERFLOW)
    page.screenshot(path=str(ARTIFACTS / f"chart-backtest-run-{width}.png"), full_page=True)
    page.close()
