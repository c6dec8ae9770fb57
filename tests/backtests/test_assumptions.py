"""Nothing silent (issue 14): every result — the JSON summary stored as
``BacktestRun.results``, the command's table and the run page — states what it stands on, and
says which figure is the same trades without fees and which a zero-fee re-simulation."""

from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils.html import escape

from backtests import services
from backtests.core import fee_twin
from backtests.core.assumptions import NOT_MODELLED, iso_utc
from backtests.core.metrics import MIN_RATIO_DAYS
from backtests.models import BacktestRun
from strategies.core.kernel import OrderIntent, PositionOpened
from strategies.kernel_config import kernel_config_from
from tests.conftest import SAMPLE_DIR
from trading.core.fees import Liquidity
from trading.core.numbers import fmt_money
from trading.core.types import ExitReason

BTC = "BTC/USDT:USDT"
BTC_1M = str(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")
BTC_FUNDING = str(SAMPLE_DIR / "binance-usdm_BTC-USDT_funding_20250617-20250623.csv.gz")
ITEMS = {"data", "parameters", "fees", "funding", "fill_model", "slippage_model",
         "price_rounding", "ratios", "kill_switch"}  # fmt: skip

pytestmark = pytest.mark.django_db


def backtest(*args: str, json_out: bool = True) -> dict | str:
    out = StringIO()
    call_command("backtest", "--strategy", "momentum_breakout", "--symbol", BTC, *args,
                 *(["--json"] if json_out else []), stdout=out)  # fmt: skip
    return json.loads(out.getvalue()) if json_out else out.getvalue()


def test_every_result_states_its_data_funding_fills_slippage_and_rounding() -> None:
    s = backtest("--data", BTC_1M, BTC_FUNDING)
    a = s["assumptions"]
    assert set(a) == ITEMS
    assert all(item["text"] and item["label"] for item in a.values())
    data = services.read_data_files([BTC_1M, BTC_FUNDING], BTC)
    first_open, last_close = int(data.candles[0, 0]), int(data.candles[-1, 0]) + 60_000
    assert (a["data"]["start"], a["data"]["end"]) == (iso_utc(first_open), iso_utc(last_close))
    assert a["data"]["source"] == data.source and a["data"]["candles"] == len(data.candles)
    times = data.funding[:, 0]
    assert a["funding"]["source"] == "binance-usdm_BTC-USDT_funding_20250617-20250623.csv.gz"
    assert a["funding"]["settlements_in_period"] == int(
        np.sum((times > first_open) & (times <= last_close))
    )
    config = kernel_config_from(services.load_radar_config())
    fill, slip = config.fill_model, config.slippage
    assert a["fill_model"]["limit_fill_probability_through"] == fill.base_fill_probability
    assert a["fill_model"]["limit_fill_probability_touch"] == pytest.approx(
        fill.base_fill_probability * fill.touch_probability_factor
    )
    assert a["fill_model"]["min_fill_fraction"] == fill.min_fill_fraction
    assert a["fill_model"]["partial_fills"] is (fill.min_fill_fraction < 1)
    assert a["slippage_model"]["estimate_pct"] == pytest.approx(slip.estimate_pct * 100)
    assert a["slippage_model"]["high_volatility_pct"] == pytest.approx(
        slip.estimate_pct * slip.high_vol_multiplier * 100
    )
    assert a["slippage_model"]["book_walk"] is False and a["slippage_model"]["book_snapshots"] == 0
    rounding = a["price_rounding"]
    assert rounding["order_prices"] > 0
    assert rounding["order_prices_on_tick"] == rounding["order_prices"]
    assert rounding["fill_prices"] > 0 and "not rounded to tick" in rounding["text"]


def test_without_a_funding_file_funding_is_said_not_modelled() -> None:
    s = backtest("--data", BTC_1M)
    funding = s["assumptions"]["funding"]
    assert s["funding"] == 0.0
    assert funding["source"] is None and funding["settlements_in_period"] == 0
    assert funding["text"].startswith(NOT_MODELLED)


def test_the_high_volatility_slippage_counted_is_the_one_the_orders_carried() -> None:
    """Entries charged the high-volatility rate are exactly the filled market entries whose
    order intent was flagged high volatility; every taker exit is counted once."""
    data = services.read_data_files([BTC_1M, BTC_FUNDING], BTC)
    computed = services.backtest_compute(
        kind="momentum_breakout", params={}, symbol=BTC, data=data, name="momentum_breakout",
        config=kernel_config_from(services.load_radar_config()),
    )  # fmt: skip
    events = computed.result.events
    flagged = {e.client_order_id: e.high_volatility for e in events if isinstance(e, OrderIntent)}
    opened = {e.position.position_id: e for e in events
              if isinstance(e, PositionOpened) and not e.shadow}  # fmt: skip
    market = [t for t in computed.result.trades if t.entry_liquidity is Liquidity.TAKER]
    high = sum(1 for t in market if flagged[opened[t.position_id].client_order_id])
    fills = computed.summary["assumptions"]["slippage_model"]["fills"]
    assert fills["entries"] == {"base": len(market) - high, "high_volatility": high, "other": 0}
    taker_exits = [t for t in computed.result.trades if t.exit_liquidity is Liquidity.TAKER
                   and t.exit_reason is not ExitReason.LIQUIDATION]  # fmt: skip
    assert sum(fills["exits"].values()) == len(taker_exits) > 0
    assert high > 0, "the case must cover high-volatility entries"


def test_the_parameter_source_given_is_recorded() -> None:
    data = services.read_data_files([BTC_1M], BTC)
    kwargs = {"kind": "swing_baseline", "params": {}, "symbol": BTC, "data": data,
              "name": "swing_baseline", "config": kernel_config_from(None)}  # fmt: skip
    default = services.backtest_compute(**kwargs).summary
    stated = services.backtest_compute(**kwargs, params_source="yaml: swing_baseline").summary
    assert default["params_source"] == default["assumptions"]["parameters"]["source"] == "given"
    assert stated["params_source"] == "yaml: swing_baseline"
    assert stated["assumptions"]["parameters"]["source"] == "yaml: swing_baseline"


def test_sharpe_is_not_shown_over_the_bundled_week_and_says_why() -> None:
    s = backtest("--data", BTC_1M)
    assert s["ratio_days"] < MIN_RATIO_DAYS
    assert s["sharpe"] is None and s["sortino"] is None and s["ratio_note"]
    assert s["assumptions"]["ratios"]["days"] == s["ratio_days"]


def test_the_table_labels_the_fees_removed_column_and_adds_up() -> None:
    s = backtest("--data", BTC_1M, BTC_FUNDING)
    text = backtest("--data", BTC_1M, BTC_FUNDING, json_out=False)
    header = next(line for line in text.splitlines() if "fees on" in line)
    assert "fees removed" in header
    assert f"fees removed = {fee_twin.BASIS}" in text
    assert (
        f"adds up: gross − fees − funding − liquidation losses = net: {s['gross_pnl']:,.2f} − "
        f"{s['fees']:,.2f} − {s['funding']:,.2f} − {s['liquidation_loss']:,.2f} = "
        f"{s['net_pnl']:,.2f} USDT"
    ) in text
    trades_row = next(line for line in text.splitlines() if line.startswith("trades"))
    assert trades_row.split()[1:] == [str(s["trades"])] * 2
    assert "assumptions:" in text and s["assumptions"]["funding"]["text"] in text
    assert f"Sharpe ({s['ratio_days']} days" in text and s["ratio_note"] in text


def test_no_fees_is_labelled_a_re_simulation_and_never_printed_as_fees_on() -> None:
    s = backtest("--data", BTC_1M, "--no-fees")
    text = backtest("--data", BTC_1M, "--no-fees", json_out=False)
    assert s["run_basis"] == fee_twin.RESIMULATED and s["fees"] == 0.0
    assert fee_twin.RESIMULATED in text
    assert "fees on" not in text and "fees removed" not in text.split("assumptions:")[0]
    assert any(line.strip() == "zero fees" for line in text.splitlines())  # the one column


def test_the_run_page_shows_the_fees_removed_column_the_sum_and_the_assumptions(
    client, django_user_model
) -> None:
    saved = backtest("--data", BTC_1M, BTC_FUNDING, "--save")
    run = BacktestRun.objects.get(pk=saved["run_id"])
    assert run.results["assumptions"] == saved["assumptions"]
    client.force_login(django_user_model.objects.create_user("trader", password="x-12345678"))
    html = client.get(reverse("backtest_detail", kwargs={"run_id": run.pk})).content.decode()
    assert "<h2>Assumptions</h2>" in html
    for item in saved["assumptions"].values():
        text = saved["params_source"] if item["label"] == "Parameters" else item["text"]
        assert escape(text) in html, item["label"]
    assert "Same trades, fees removed" in html and "Fees % of |gross|" in html
    assert "Liquidation losses" in html and escape(saved["ratio_note"]) in html
    assert escape(f"= {fmt_money(saved['net_pnl'])} USDT") in html  # the desk's format


def test_a_zero_fee_run_page_is_labelled_a_re_simulation(client, django_user_model) -> None:
    saved = backtest("--data", BTC_1M, "--no-fees", "--save")
    client.force_login(django_user_model.objects.create_user("trader", password="x-12345678"))
    html = client.get(reverse("backtest_detail", kwargs={"run_id": saved["run_id"]})).content
    page = html.decode()
    assert "Zero fees (re-simulated)" in page and escape(fee_twin.RESIMULATED) in page
    assert "Same trades, fees removed" not in page and ">Fees on<" not in page


def test_a_run_stored_before_assumptions_says_they_were_not_recorded(
    client, django_user_model
) -> None:
    run = BacktestRun.objects.create(
        strategy_name="vwap_rsi", strategy_kind="vwap_rsi", symbol=BTC, status="done",
        results={"trades": 1, "net_pnl": 1.0, "without_fees": {"trades": 2, "net_pnl": 3.0}},
    )  # fmt: skip
    client.force_login(django_user_model.objects.create_user("trader", password="x-12345678"))
    html = client.get(reverse("backtest_detail", kwargs={"run_id": run.pk})).content.decode()
    assert "Not recorded: this run was stored before" in html
    assert "Re-simulated with zero fees (different orders)" in html
