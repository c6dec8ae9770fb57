"""Issue 14's done-when on data the project does NOT bundle: the fee twin, the parameter
source and the assumptions hold on the command line and in the browser for four days of
Binance USDT-M BTC 2023-07-20 → 07-23 with their funding (../shared/data)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils.html import escape

from backtests.models import BacktestRun
from strategies.models import StrategyConfig
from tests.backtests.test_arena_backtest import SHARED, four_days

BTC = "BTC/USDT:USDT"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED.is_dir(), reason="the shared real data is not on this machine"),
]


def _holds(summary: dict, files: list[str]) -> None:
    """The like-for-like fee twin and the assumptions of one result, from its own figures."""
    twin = summary["without_fees"]
    assert summary["trades"] > 0, "nothing traded: the identities would hold vacuously"
    assert twin["trades"] == summary["trades"]
    assert summary["net_pnl_without_fees"] == pytest.approx(
        summary["gross_pnl"] - summary["funding"] - summary.get("liquidation_loss", 0.0), abs=1e-6
    )
    assert summary["net_pnl_without_fees"] - summary["net_pnl"] == pytest.approx(
        summary["fees"], abs=1e-6
    )
    assumptions = summary["assumptions"]
    assert assumptions["data"]["start"].startswith("2023-07-2")
    assert assumptions["funding"]["source"] in files
    assert assumptions["funding"]["settlements_in_period"] > 0
    assert summary["params_source"].startswith("database: strategy 'momentum_breakout'")


@pytest.mark.django_db(transaction=True)
def test_the_command_and_the_browser_hold_on_unbundled_data(
    tmp_path, django_user_model, eager_celery
):
    call_command("load_config", stdout=StringIO())
    row = StrategyConfig.objects.get(name="momentum_breakout")
    row.params = {**row.params, "volume_mult": 1.5}  # an admin edit: what must run
    row.save()
    [candles] = [p for p in four_days(tmp_path) if "_BTC-" in p.name]
    funding = candles.with_name(candles.name.replace("_1m_", "_funding_"))

    out = StringIO()
    call_command("backtest", "--strategy", "momentum_breakout", "--symbol", BTC, "--data",
                 str(candles), str(funding), "--json", stdout=out)  # fmt: skip
    command = json.loads(out.getvalue())
    _holds(command, [funding.name])
    assert command["params"]["volume_mult"] == 1.5

    # The browser runs on stored candles: import the same four days, then use the form.
    call_command("import_candles", str(candles), stdout=StringIO())
    call_command("import_funding", str(funding), stdout=StringIO())
    client = Client()
    client.force_login(django_user_model.objects.create_user("trader", password="x"))
    answer = client.post(
        "/backtests/",
        {"strategy": "momentum_breakout", "symbol": BTC, "start": "2023-07-20",
         "end": "2023-07-23", "params": "",
         "fees_enabled": "on", "params_source": "db"},
    )  # fmt: skip
    assert answer.status_code == 302, answer.content[:500]
    run = BacktestRun.objects.get()
    assert run.status == run.Status.DONE, run.error
    assert run.params["volume_mult"] == 1.5
    page = client.get(answer["Location"]).content.decode()
    assert "Assumptions" in page and escape(run.results["params_source"]) in page
    assert run.results["trades"] == command["trades"]
    assert run.results["net_pnl"] == pytest.approx(command["net_pnl"], abs=1e-6)
