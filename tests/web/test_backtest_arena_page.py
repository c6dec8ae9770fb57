"""The arena backtest in the browser (issue 14, point 3): the form on /backtests/ starts a run
of the whole enabled arena on the stored candles, exactly the radar's replay, and its page
shows per strategy the figures the radar's own replay gives."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from backtests.models import BacktestRun
from strategies.management.commands.arena_report import arena_report
from tests.radar.test_radar import slice_sample
from trading.core.numbers import fmt_money


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_arena_form_runs_the_arena_on_the_stored_candles(
    tmp_path: Path, django_user_model, eager_celery
):
    """Two days of the bundled BTC candles stored by a first headless replay (so the database
    holds them, as the radar leaves them); the browser's arena run replays them in a scratch
    radar and must find what that first replay found, strategy by strategy."""
    call_command("load_config", stdout=StringIO())
    path = slice_sample(tmp_path, "BTC", 0, 2 * 1440)
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless",
                 "--selector-every", "0", stdout=StringIO())  # fmt: skip
    replayed = {s["strategy"]: s for s in arena_report()["strategies"]}

    client = Client()
    client.force_login(django_user_model.objects.create_user("trader", password="x"))
    page = client.get("/backtests/")
    assert b"Backtest the arena" in page.content
    answer = client.post("/backtests/arena/", {"days": "2", "selector_every": "0"})
    assert answer.status_code == 302
    run = BacktestRun.objects.get(strategy_kind="arena")
    assert run.status == run.Status.DONE, run.error
    assert run.params["selector_every"] == 0 and "BTC/USDT:USDT" in run.params["symbols"]
    assert run.params_source == "database: the enabled arena as the radar runs it"
    backtested = {s["strategy"]: s for s in run.results["strategies"]}
    assert backtested.keys() == replayed.keys()
    for name, row in backtested.items():
        assert (row["trades"], row["net_pnl"]) == (
            replayed[name]["trades"],
            replayed[name]["net_pnl"],
        )
    html = client.get(answer["Location"]).content.decode()
    assert "Arena backtest #" in html and 'id="arena-results"' in html
    traded = [r for r in backtested.values() if r["trades"]]
    assert traded, "nothing traded: a vacuous comparison"
    for row in traded:
        assert fmt_money(row["net_pnl"], signed=True) in html  # the desk's format


@pytest.mark.django_db
def test_an_arena_run_without_stored_candles_says_so(django_user_model):
    call_command("load_config", stdout=StringIO())
    client = Client()
    client.force_login(django_user_model.objects.create_user("trader", password="x"))
    page = client.post("/backtests/arena/", {"days": "2", "selector_every": "60"})
    assert page.status_code == 200
    assert b"no stored 1m candles to replay" in page.content
    assert not BacktestRun.objects.exists()


@pytest.mark.django_db
def test_the_arena_form_needs_a_login():
    answer = Client().post("/backtests/arena/", {"days": "2", "selector_every": "60"})
    assert answer.status_code == 302 and "/login" in answer["Location"]
