"""The risk calculator in Debian's Chromium: fill the form, read the gate's answer.

The page is a plain form with an htmx POST (no websocket), so pytest-django's ``live_server``
serves it; the browser is the one of ``tests/web/test_browser.py``. Screenshots at 1440×900 and
390×844 go to ``test-artifacts/``.
"""

from __future__ import annotations

import os

import pytest

from tests.web.test_browser import ARTIFACTS, _login, browser  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]


def _fill(page, **values: str) -> None:
    for name, value in values.items():
        if name in ("symbol", "side", "entry_liquidity"):
            page.select_option(f"select[name={name}]", value)
        else:
            page.fill(f"input[name={name}]", value)
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"):
        page.locator("form button[type=submit]").last.click()


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_a_trader_fills_the_calculator_and_reads_one_loss_and_the_warnings(
    live_server,
    user,
    browser,  # noqa: F811 (the imported fixture)
    width,
    height,
):
    """BTC long 40,000 / 39,800 / 40,400 at 1 % (worked in test_risk_calculator.py): 0.347 BTC
    at 5×, ONE loss of 99.86 USDT shown twice (the loss line and the stop row's net). Then the
    SOL short at 2 % risk and 5× max leverage: capped, with its warnings on screen. Then a wide
    stop at 1×: liquidation "none by price", never "0.00"."""
    page = browser.new_page(viewport={"width": width, "height": height})
    _login(page, live_server.url, "trader")
    page.goto(live_server.url + "/risk/")
    assert page.input_value("input[name=risk_pct]") == "0.5"  # risk.yaml's default
    _fill(page, symbol="BTC/USDT:USDT", side="long", entry="40000", stop="39800",
          target="40400", risk_pct="1")  # fmt: skip
    page.wait_for_selector("#risk-qty")
    assert page.inner_text("#risk-qty").startswith("0.347")
    assert page.inner_text("#risk-leverage").startswith("5×")
    assert "99.86 USDT" in page.inner_text("#risk-loss")
    assert page.inner_text("#risk-stop td:nth-child(8)") == "\u221299.86"  # typographic minus
    assert "19.63 % below the entry" in page.inner_text("#risk-liq")
    page.screenshot(path=str(ARTIFACTS / f"risk-btc-{width}.png"), full_page=True)

    _fill(page, symbol="SOL/USDT:USDT", side="short", entry="150", stop="150.18",
          target="149", risk_pct="2", max_leverage="5")  # fmt: skip
    page.wait_for_selector("#risk-warnings")
    warnings = page.locator(".risk-warning")
    assert warnings.count() == 3
    assert warnings.first.is_visible()
    text = page.inner_text("#risk-warnings")
    assert "5.9× the capital" in text and "Size capped" in text
    assert page.inner_text("#risk-qty").startswith("110.7")
    page.screenshot(path=str(ARTIFACTS / f"risk-sol-capped-{width}.png"), full_page=True)

    _fill(page, symbol="BTC/USDT:USDT", side="long", entry="104000", stop="99000",
          target="112000", risk_pct="0.5", max_leverage="20")  # fmt: skip
    page.wait_for_selector("#risk-liq >> text=none by price")
    assert "0.00" not in page.inner_text("#risk-liq")
    page.close()
