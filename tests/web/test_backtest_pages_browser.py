"""The backtest pages in Debian's Chromium (issue 17, point 6): the date range refused without
data, a run's result page with its period, sources, kill switch, trades and charts, progress
that follows the stored run with no websocket event (as for a run started by
``manage.py backtest --save`` in another process), and the comparison of two runs.

The pages come from pytest-django's ``live_server``; the live socket is Playwright's and stays
silent (``page.route_web_socket``), so every update the page shows came from polling the stored
run. Screenshots at 1440×900 and 390×844 go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections

from backtests import services
from backtests.models import BacktestRun
from tests.conftest import SAMPLE_DIR
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

BTC = "BTC/USDT:USDT"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC, the sample's first candle
DAY = 86_400_000
SIZES = ((1440, 900), (390, 844))
NO_OVERFLOW = "document.documentElement.scrollWidth <= innerWidth"


@pytest.fixture
def stored(db):
    """The configuration and the bundled week of BTC 1m candles (source "rest")."""
    call_command("load_config", stdout=StringIO())
    rows = read_candles_csv(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")
    candles_upsert(
        rows=[(int(r[0]), *map(float, r[1:])) for r in rows],
        exchange="bitget", symbol=BTC, timeframe="1m", source="rest",
    )  # fmt: skip


def _page(browser, width: int, height: int):  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": height})
    page.route_web_socket(re.compile(r".*/ws/live/.*"), lambda ws: None)  # silent: no push
    return page


def _elsewhere(fn, *args) -> None:
    """``fn(*args)`` in a thread of its own, with its own database connection, as another
    process would run it (and away from Playwright's event loop in this thread)."""
    outcome: list[object] = []

    def work() -> None:
        try:
            outcome.append(fn(*args))
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=120)
    assert outcome == [True], outcome


def _launch(page, start: str, end: str) -> None:
    page.select_option("select[name=strategy]", "momentum_breakout")
    page.select_option("select[name=symbol]", BTC)
    page.fill("input[name=start]", start)
    page.fill("input[name=end]", end)
    page.click("#backtest-form button[type=submit]")


def test_a_range_without_data_is_refused_and_a_run_shows_what_it_stands_on(
    live_server,
    stored,
    user,
    browser,  # noqa: F811
    eager_celery,
):
    page = _page(browser, 1440, 900)
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/backtests/")
    assert page.get_attribute("input[name=start]", "type") == "date"
    _launch(page, "2025-07-01", "2025-07-07")
    error = page.inner_text("#backtest-form-error")
    assert "BTC/USDT:USDT has 1m candles 2025-06-17 → 2025-06-23 only" in error
    page.screenshot(path=str(ARTIFACTS / "backtest-range-refused-1440.png"), full_page=True)
    assert not BacktestRun.objects.exists()

    # Partly covered: refused, then run once confirmed, with both periods on its page.
    _launch(page, "2025-06-20", "2025-06-30")
    assert "is only partly covered" in page.inner_text("#backtest-form-error")
    page.check("input[name=allow_partial]")
    page.click("#backtest-form button[type=submit]")
    page.wait_for_selector("#bt-period-differs", timeout=30_000)
    assert "2025-06-20 → 2025-06-23" in page.inner_text("#bt-period-differs")
    page.locator("#backtest-facts").screenshot(path=str(ARTIFACTS / "backtest-partial-1440.png"))

    page.goto(live_server.url + "/backtests/")
    _launch(page, "2025-06-17", "2025-06-23")
    page.wait_for_selector("#backtest-facts", timeout=30_000)
    run = BacktestRun.objects.get(start_ms=T0)
    assert run.status == "done", run.error
    assert "2025-06-17 → 2025-06-23" in page.inner_text("#bt-period")
    assert "rest" in page.inner_text("#bt-data-source")
    assert "database config" in page.inner_text("#bt-params-source")
    assert page.inner_text("#bt-kill-switch").startswith(
        "tripped" if run.results["kill_switch_tripped"] else "not tripped"
    )
    assert page.locator("table.bt-trades tbody tr").count() == len(run.trades)
    wait_until(page, "document.querySelectorAll('#bt-equity canvas').length > 0")
    # Figures right-aligned (the desk's rule beats the table's left alignment).
    align = page.evaluate(
        "getComputedStyle(document.querySelector('table.bt-trades td.num')).textAlign"
    )
    assert align == "right"
    assert page.get_attribute("#bt-chart-link", "href") == f"/chart/?run={run.pk}"
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        assert page.evaluate(NO_OVERFLOW), f"the run page overflows at {width} px"
        page.screenshot(path=str(ARTIFACTS / f"backtest-run-{width}.png"), full_page=True)
        page.locator("#backtest-facts").screenshot(
            path=str(ARTIFACTS / f"backtest-run-facts-{width}.png")
        )
    page.close()


def test_progress_follows_the_stored_run_without_any_push(live_server, stored, user, browser):  # noqa: F811
    """A run executed outside the page's server process writes only its stored progress: the
    page (and the list) poll it, then load the results by themselves."""
    run = services.backtest_run_create(
        strategy="momentum_breakout", symbol=BTC, start_ms=T0, end_ms=T0 + 3 * DAY,
    )  # fmt: skip
    page = _page(browser, 1440, 900)
    _login(page, live_server.url, "trader")
    page.goto(f"{live_server.url}/backtests/{run.pk}/")
    progress = f"#live-backtest-progress-{run.pk}"
    assert "pending" in page.inner_text(progress)
    BacktestRun.objects.filter(pk=run.pk).update(status="running", progress=0.42)
    page.wait_for_selector(f"{progress} >> text=42.0 %", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "backtest-progress-polled-1440.png"), full_page=True)

    listing = _page(browser, 390, 844)
    _login(listing, live_server.url, "trader")
    listing.goto(live_server.url + "/backtests/")
    assert "42.0 %" in listing.inner_text(f"#live-backtest-row-{run.pk}")

    BacktestRun.objects.filter(pk=run.pk).update(status="pending", progress=0.0)
    _elsewhere(services.backtest_run_execute, run.pk)  # as the other process would
    page.wait_for_selector("#backtest-facts", timeout=15_000)
    assert "100.0 %" in page.inner_text(progress)
    listing.wait_for_selector(f"#live-backtest-row-{run.pk} .status.done", timeout=10_000)
    assert listing.evaluate(NO_OVERFLOW), "the list overflows at 390 px"
    listing.screenshot(path=str(ARTIFACTS / "backtest-list-390.png"), full_page=True)
    page.close()
    listing.close()


def test_compare_lines_up_two_runs_and_overlays_their_equity(
    live_server,
    stored,
    user,
    browser,  # noqa: F811
):
    for first_day in (0, 3):  # 06-17 → 06-23 and 06-20 → 06-23
        run = services.backtest_run_create(
            strategy="momentum_breakout", symbol=BTC, start_ms=T0 + first_day * DAY,
            end_ms=T0 + 7 * DAY,
        )  # fmt: skip
        _elsewhere(services.backtest_run_execute, run.pk)
    runs = list(BacktestRun.objects.order_by("pk"))
    assert [r.status for r in runs] == ["done", "done"]
    for width, height in SIZES:
        page = _page(browser, width, height)
        _login(page, live_server.url, "trader")
        page.goto(live_server.url + "/backtests/")
        for r in runs:
            page.check(f"input[name=run][value='{r.pk}']")
        page.click("#run-table button[type=submit]")
        page.wait_for_selector("#compare-table table")
        text = page.inner_text("#compare-table table")
        assert "2025-06-17 → 2025-06-23" in text and "2025-06-20 → 2025-06-23" in text
        assert "Net P&L (USDT)" in text and "Period covered (UTC)" in text
        wait_until(page, "document.querySelectorAll('#compare-equity canvas').length > 0")
        assert page.locator("#compare-legend li").count() == 2
        assert page.evaluate(NO_OVERFLOW), f"the compare page overflows at {width} px"
        page.screenshot(path=str(ARTIFACTS / f"backtest-compare-{width}.png"), full_page=True)
        page.close()
