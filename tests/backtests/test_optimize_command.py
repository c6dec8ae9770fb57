from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.conftest import SAMPLE_DIR


@pytest.fixture(autouse=True)
def _eager_celery():
    """No worker runs in the test suite, also when REDIS_URL points at a real broker."""
    from scalpradar.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


BTC_1M = str(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")


def optimize(*args: str) -> dict:
    out = StringIO()
    call_command("optimize", "--strategy", "momentum_breakout", "--symbol", "BTC/USDT:USDT",
                 "--data", BTC_1M, "--json", *args, stdout=out)  # fmt: skip
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_the_grid_is_ranked_on_net_results() -> None:
    report = optimize("--grid", "range_lookback=10,20", "--min-trades", "1")
    nets = [row["net_pnl"] for row in report["ranking"] if row["enough_trades"]]
    assert report["parameter_sets"] == 2
    assert nets == sorted(nets, reverse=True)


@pytest.mark.django_db
def test_walk_forward_reports_each_out_of_sample_window() -> None:
    report = optimize("--grid", "volume_mult=1.5,2", "--walk-forward", "3:2", "--min-trades", "1")
    assert [w["window"] for w in report["walk_forward"]] == [0, 1]
    assert report["out_of_sample_net_pnl"] == pytest.approx(
        sum(w["out_net_pnl"] for w in report["walk_forward"])
    )


@pytest.mark.django_db
def test_an_unknown_grid_parameter_exits_with_code_2() -> None:
    with pytest.raises(CommandError, match="unknown parameter") as caught:
        optimize("--grid", "nope=1,2")
    assert caught.value.returncode == 2


@pytest.mark.django_db
def test_walk_forward_ranking_and_windows_show_profit_factors() -> None:
    """Pooled out-of-sample PF = Σ winning net P&L / Σ |losing net P&L| of every window."""
    report = optimize("--grid", "volume_mult=1.2,1.5", "--walk-forward", "3:2",
                      "--min-trades", "1")  # fmt: skip
    rows = report["ranking"]
    assert any(row["profit_factor_net"] is not None for row in rows)
    for row in rows:
        if row["net_losses"] > 0:
            assert row["profit_factor_net"] == pytest.approx(row["net_gains"] / row["net_losses"])
    assert all("out_profit_factor_net" in w for w in report["walk_forward"])
