"""End to end through Debian's Chromium (Playwright) against Daphne serving the real ASGI app.

Daphne runs in a thread of this process, so the in-memory channel layer and the in-memory test
database are shared with the test. Skipped only with ``SCALPRADAR_SKIP_BROWSER=1``; a missing
Chromium FAILS (CI installs it). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.web.conftest import BTC

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "s3cret-pass-123"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server_url():
    """One Daphne for the module: Twisted's reactor cannot be started twice in a process."""
    from daphne.server import Server
    from twisted.internet import reactor

    from scalpradar.asgi import application

    port = _free_port()
    server = Server(
        application,
        endpoints=[f"tcp:port={port}:interface=127.0.0.1"],
        signal_handlers=False,
        verbosity=0,
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", reactor._asyncioEventloop
    reactor.callFromThread(reactor.stop)
    thread.join(timeout=5)


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM
    # calls are still synchronous, so Django's async guard is relaxed for this test only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def _login(page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]:has-text('Log in')")
    page.wait_for_url(base + "/")


def test_browser_desk(arena, staff, live_server_url, browser):
    base, loop = live_server_url
    page = browser.new_page(viewport={"width": 1500, "height": 900})

    page.goto(base + "/arena/")
    assert "/login/" in page.url, "anonymous visitor must be sent to the login page"

    _login(page, base, "boss")
    page.screenshot(path=str(ARTIFACTS / "radar.png"), full_page=True)

    # A live update arrives on the Signals page after an event is published.
    page.goto(base + "/signals/")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    from scalpradar.events import apublish

    payload = {
        "strategy": "vwap_rsi",
        "symbol": BTC,
        "timeframe": "5m",
        "candle_open_ms": 1_750_200_000_000,
        "accepted": True,
        "signal": {"side": "short", "score": 0.93, "reasons": ["browser live check"]},
    }
    asyncio.run_coroutine_threadsafe(apublish("signals", "signal.new", payload), loop).result(5)
    page.wait_for_selector("#live-signal-feed >> text=browser live check", timeout=10_000)
    first = page.locator("#live-signal-feed .feed-row").first
    assert "browser live check" in first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "signals-live.png"), full_page=True)

    # Pause a strategy from the Arena page (confirmation + reason), recorded.
    page.goto(base + "/arena/")
    row = page.locator("#live-arena-row-vwap_rsi")
    row.locator("summary").click()
    row.locator("input[name=reason]").fill("browser test")
    row.locator("input[name=confirm]").check()
    row.locator("button[type=submit]").click()
    page.wait_for_selector("text=pause vwap_rsi: done")
    assert "paused" in page.locator("#live-arena-live-vwap_rsi").inner_text()
    page.screenshot(path=str(ARTIFACTS / "arena-paused.png"), full_page=True)

    # Edit a strategy parameter in the admin and see it on the change page.
    from strategies.models import StrategyConfig

    config = StrategyConfig.objects.get(name="momentum_breakout")
    page.goto(f"{base}/admin/strategies/strategyconfig/{config.pk}/change/")
    page.fill("textarea[name=description]", "edited in the browser")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success, ul.messagelist li")
    config.refresh_from_db()
    assert config.description == "edited in the browser"
    page.screenshot(path=str(ARTIFACTS / "admin-edit.png"), full_page=True)
    page.close()


def test_positions_follow_live_prices_in_the_browser(arena, user, live_server_url, browser):
    """Open long 0.05 BTC from 104,000, entry fee 1.5, liquidation 99,320. A market.price tick
    of 105,000 re-marks the row in the page: gross 0.05 × 1,000 = 50.00; exit fee 0.05 ×
    105,000 × 0.0006 = 3.15 → net 50 − 1.5 − 3.15 = 45.35; liquidation (105,000 − 99,320) /
    105,000 = 5.41 % away."""
    position = arena["open"]
    position.entry_price, position.liquidation_price = 104_000.0, 99_320.0
    position.save()
    base, loop = live_server_url
    page = browser.new_page(viewport={"width": 1500, "height": 700})
    _login(page, base, "trader")
    page.goto(base + "/positions/")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    from scalpradar.events import apublish

    tick = {"symbol": BTC, "price": 105_000.0, "time_ms": 1_750_298_460_000, "kind": "last"}
    publish = apublish("market.BTC-USDT", "market.price", tick)
    asyncio.run_coroutine_threadsafe(publish, loop).result(5)
    row = page.locator("#live-pos-vwap_rsi-o1")
    page.wait_for_function(
        "document.querySelector('#live-pos-vwap_rsi-o1 [data-cell=mark]').textContent === '105000'",
        timeout=10_000,
    )
    assert row.locator("[data-cell=gross]").inner_text() == "50.00"
    assert row.locator("[data-cell=net]").inner_text() == "45.35"
    assert row.locator("[data-cell=liq-distance]").inner_text() == "5.41 %"
    assert "up" in (row.locator("[data-cell=net]").get_attribute("class") or "")
    page.screenshot(path=str(ARTIFACTS / "positions-live.png"), full_page=True)
    page.close()
