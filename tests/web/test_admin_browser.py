"""The strategy admin in Debian's Chromium: a staff user edits a parameter through the generated
form, sees a refused value's reason next to its field, saves a good one and an override row,
and the radar's kernel is built with them. Dark theme of the dashboard, no horizontal overflow.

Plain pages (no websocket): pytest-django's ``live_server`` serves them; the browser is the one
of ``tests/web/test_browser.py``. Screenshots at 1440×900 and 390×844 go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from radar.arena import new_kernel
from strategies.config import load_config_dir
from strategies.kernel_config import kernel_config_from
from strategies.management.commands.load_config import load_config_into_db
from strategies.models import StrategyConfig
from tests.web.test_browser import (  # noqa: F401 (browser: the fixture)
    ARTIFACTS,
    WATCH_CSP,
    _login,
    browser,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]

SHIPPED = Path(__file__).resolve().parents[2] / "config"
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def loaded(tmp_path, settings):
    target = tmp_path / "config"
    shutil.copytree(SHIPPED, target)
    settings.CONFIG_DIR = target
    load_config_into_db(load_config_dir(target))
    return target


def _save(page, button: str = "Save") -> None:
    with page.expect_navigation():
        page.click(f"input[type=submit][value='{button}']")


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_staff_edits_a_parameter_through_the_generated_form(
    live_server,
    staff,
    loaded,
    browser,  # noqa: F811 (the imported fixture)
    width,
    height,
):
    row = StrategyConfig.objects.get(name="vwap_rsi")
    url = f"{live_server.url}/admin/strategies/strategyconfig/{row.pk}/change/"
    page = browser.new_page(viewport={"width": width, "height": height})
    page.add_init_script(WATCH_CSP)
    _login(page, live_server.url, "boss")
    page.goto(url)
    # Watched from the admin on (the dashboard after login has no websocket server here).
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    assert page.evaluate("window.__cspViolations") == []

    # The dashboard's palette: body #0e1116, text #d7dde5; the theme toggle is gone.
    colors = page.evaluate(
        "() => { const s = getComputedStyle(document.body); return [s.backgroundColor, s.color]; }"
    )
    assert colors == ["rgb(14, 17, 22)", "rgb(215, 221, 229)"]
    assert not page.locator(".theme-toggle").first.is_visible()
    field = page.locator("input[name=param__rsi_period]")
    assert (field.get_attribute("min"), field.get_attribute("max")) == ("2", "100")
    assert field.input_value() == "7"  # as seeded from strategies.yaml
    assert "RSI length (candles)" in page.inner_text(".field-param__rsi_period")
    assert page.evaluate(NO_OVERFLOW)
    page.screenshot(path=str(ARTIFACTS / f"admin-strategy-form-{width}.png"), full_page=True)

    # Out of bounds: the YAML loader's reason next to the field, nothing saved.
    field.fill("1")
    _save(page)
    assert "rsi_period = 1 — must be ≥ 2" in page.inner_text(".field-param__rsi_period .errorlist")
    assert StrategyConfig.objects.get(pk=row.pk).params["rsi_period"] == 7
    assert page.evaluate(NO_OVERFLOW)
    page.locator(".field-param__rsi_period").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"admin-strategy-refused-{width}.png"))

    # A good value and an override row for ETH, saved.
    page.fill("input[name=param__rsi_period]", "9")
    page.select_option("select[name=overrides-1-symbol]", ETH)
    page.select_option("select[name=overrides-1-parameter]", "rsi_long_below")
    page.fill("input[name=overrides-1-value]", "20")
    _save(page, "Save and continue editing")
    assert "was changed successfully" in page.inner_text(".messagelist")
    saved = StrategyConfig.objects.get(pk=row.pk)
    assert saved.params["rsi_period"] == 9
    assert saved.symbol_overrides == {SOL: {"stop_atr_mult": 1.2}, ETH: {"rsi_long_below": 20.0}}
    kernel = new_kernel(saved, [], [BTC, ETH], kernel_config_from(None), state=None)
    eth = kernel._symbols[ETH].strategy.params
    assert (eth.rsi_period, eth.rsi_long_below) == (9, 20.0)
    # The row, back: first now, the rows being sorted by symbol (ETH before SOL).
    assert page.input_value("select[name=overrides-0-symbol]") == ETH
    assert page.input_value("input[name=overrides-0-value]") == "20.0"
    assert page.evaluate(NO_OVERFLOW)
    page.locator("#param-overrides").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"admin-strategy-saved-{width}.png"))

    # The list and the index in the same theme, inside the viewport.
    page.goto(f"{live_server.url}/admin/strategies/strategyconfig/")
    assert "vwap_rsi" in page.inner_text("#result_list")
    assert page.evaluate(NO_OVERFLOW)
    page.screenshot(path=str(ARTIFACTS / f"admin-strategy-list-{width}.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/")
    assert page.inner_text("#site-name") == "Scalp Radar admin"
    assert page.evaluate(NO_OVERFLOW)
    page.screenshot(path=str(ARTIFACTS / f"admin-index-{width}.png"))
    # The admin's pages pass the Content-Security-Policy: no inline style, no inline script.
    assert page.evaluate("window.__cspViolations") == []
    assert errors == []
    page.close()
