"""The backtest pages (issue 17, point 6): a date range refused without stored data instead of
silently shrunk, the period actually covered, the data and parameter sources, the kill switch,
the trade list with its breakdowns, progress polled from the stored run, and the comparison.

The data: the bundled week of real BTC 1m candles (2025-06-17 00:00 → 2025-06-23 23:59 UTC,
10,080 candles), stored with the source "rest"; momentum_breakout trades it with the
database's configuration (manage.py load_config).
"""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils.html import escape

from backtests import services
from backtests.models import BacktestRun
from backtests.results import breakdown, trade_row
from tests.conftest import SAMPLE_DIR
from trading.core.candles import read_candles_csv
from trading.core.numbers import fmt_count, fmt_money, fmt_price, fmt_qty
from trading.services import candles_upsert

BTC = "BTC/USDT:USDT"
BTC_1M = SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC
DAY = 86_400_000


@pytest.fixture
def stored(db):
    """The configuration (assets, strategies) and the week of BTC candles, source "rest"."""
    call_command("load_config", stdout=StringIO())
    rows = read_candles_csv(BTC_1M)
    candles_upsert(
        rows=[(int(r[0]), *map(float, r[1:])) for r in rows],
        exchange="bitget", symbol=BTC, timeframe="1m", source="rest",
    )  # fmt: skip
    return rows


@pytest.fixture
def trader(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("trader", password="x-12345678"))
    return client


def launch(client, start: str, end: str, **extra: str):
    data = {"strategy": "momentum_breakout", "symbol": BTC, "start": start, "end": end,
            "params": "", "fees_enabled": "on", "params_source": "db", **extra}  # fmt: skip
    return client.post(reverse("backtests"), data)


def test_a_range_without_stored_candles_is_refused_with_what_is_stored(stored, trader):
    page = launch(trader, "2025-07-01", "2025-07-07")
    assert page.status_code == 200
    html = page.content.decode()
    assert escape(f"{BTC} has 1m candles 2025-06-17 → 2025-06-23 only") in html
    assert "nothing stored in 2025-07-01 → 2025-07-07" in html
    assert not BacktestRun.objects.exists()


def test_a_symbol_without_any_candle_is_refused(stored, trader):
    eth = {"symbol": "ETH/USDT:USDT", "start": "2025-06-17", "end": "2025-06-18"}
    page = trader.post(reverse("backtests"), {"strategy": "momentum_breakout", **eth})
    assert page.status_code == 200
    assert "ETH/USDT:USDT has no stored 1m candles" in page.content.decode()
    assert not BacktestRun.objects.exists()


def test_a_partly_covered_range_is_refused_unless_confirmed_and_then_flagged(
    stored, trader, eager_celery, django_capture_on_commit_callbacks
):
    """2025-06-20 → 2025-06-30 is 11 days = 15,840 minutes; the stored candles cover
    06-20 → 06-23 = 4 days = 5,760 minutes: 5,760 / 15,840 = 36.4 %."""
    refused = launch(trader, "2025-06-20", "2025-06-30").content.decode()
    assert "2025-06-20 → 2025-06-30 is only partly covered" in refused
    stored_part = f"{BTC} has 1m candles 2025-06-20 → 2025-06-23 (5,760 of 15,840 minutes, 36.4 %)"
    assert escape(stored_part) in refused
    assert not BacktestRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        answer = launch(trader, "2025-06-20", "2025-06-30", allow_partial="on")
    run = BacktestRun.objects.get()
    assert answer.status_code == 302 and run.status == "done", run.error
    assert (run.start_ms, run.end_ms) == (T0 + 3 * DAY, T0 + 14 * DAY)
    assert run.results["candles"] == 5_760
    html = trader.get(answer["Location"]).content.decode()
    covered = re.search(r'<dd id="bt-period">(.*?)</dd>', html, re.S).group(1)
    assert "2025-06-20 → 2025-06-23" in covered and "5,760" in covered
    asked = re.search(r'<dd id="bt-period-asked">(.*?)</dd>', html, re.S).group(1)
    assert "2025-06-20 → 2025-06-30" in asked and 'id="bt-period-differs"' in asked
    assert "36.4 % of the requested minutes" in asked


def test_the_result_page_shows_period_sources_kill_switch_and_every_trade(
    stored, trader, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = launch(trader, "2025-06-17", "2025-06-23")
    run = BacktestRun.objects.get()
    assert run.status == "done", run.error
    html = trader.get(answer["Location"]).content.decode()

    asked = re.search(r'<dd id="bt-period-asked">(.*?)</dd>', html, re.S).group(1)
    assert "2025-06-17 → 2025-06-23" in asked and "differs" not in asked
    source = re.search(r'<dd id="bt-data-source">(.*?)</dd>', html, re.S).group(1)
    assert "<code>rest</code>" in source and "10,080" in source and "bitget" in source
    params = re.search(r'<dd id="bt-params-source">(.*?)</dd>', html, re.S).group(1)
    assert "database config" in params and escape(run.results["params_source"]) in params
    kill = re.search(r'<dd id="bt-kill-switch">(.*?)</dd>', html, re.S).group(1)
    tripped = run.results["kill_switch_tripped"]
    assert ("tripped</span>" in kill) and (("not tripped" in kill) is not tripped)
    if tripped:
        assert f"{fmt_count(run.results['shadow_trades'])} later trades ran in shadow" in kill

    trades = run.trades
    assert trades, "the week trades: a table to check"
    assert all(t["regime"] for t in trades)  # recorded at entry by the service
    table = re.search(r'<table class="grid compact bt-trades">(.*?)</table>', html, re.S).group(1)
    assert table.count("<tr>") == len(trades) + 1  # + the header
    for t in trades:
        assert f'<td class="num">{fmt_price(t["entry_price"], 0.1)}</td>' in table
        assert f'<td class="num">{fmt_qty(t["qty"], 0.001)}</td>' in table
        assert fmt_money(t["net_pnl"], signed=True) in table
    by_reason = re.search(r'id="bt-by-exit-reason">(.*?)</table>', html, re.S).group(1)
    for reason in {t["exit_reason"] for t in trades}:
        mine = [t for t in trades if t["exit_reason"] == reason]
        net = fmt_money(sum(t["net_pnl"] for t in mine), signed=True)
        label = reason.replace("_", " ")
        row = rf'<td>{label}</td><td class="num">{len(mine)}</td>.*?{re.escape(net)}'
        assert re.search(row, by_reason)
    by_regime = re.search(r'id="bt-by-regime">(.*?)</table>', html, re.S).group(1)
    for regime in {t["regime"] for t in trades}:
        assert f"<td>{regime}</td>" in by_regime
    assert f'href="{reverse("chart")}?run={run.pk}"' in html
    assert 'id="backtest-assumptions"' in html and 'id="backtest-data"' in html


def test_breakdowns_add_up_by_hand():
    """Three trades: stop (net −12.40, gross −10, fees 2.40), target (+30.00: gross 33, fees
    3), target (−1.00: gross 2, fees 3). Take profit: 2 trades, 1 win = 50 %, gross 35,
    fees 6, net 29; stop loss: 1 trade, 0 %, net −12.40."""
    trades = [
        {"side": "long", "exit_reason": "stop_loss", "gross_pnl": -10.0, "entry_fee": 1.2,
         "exit_fee": 1.2, "funding": 0.0, "net_pnl": -12.4, "regime": "ranging"},
        {"side": "short", "exit_reason": "take_profit", "gross_pnl": 33.0, "entry_fee": 1.5,
         "exit_fee": 1.5, "funding": 0.0, "net_pnl": 30.0, "regime": "trending_down"},
        {"side": "long", "exit_reason": "take_profit", "gross_pnl": 2.0, "entry_fee": 1.5,
         "exit_fee": 1.5, "funding": 0.0, "net_pnl": -1.0, "regime": "ranging"},
    ]  # fmt: skip
    rows = [trade_row(t, BTC) for t in trades]
    target, stop = breakdown(rows, "exit_reason")
    assert (target["name"], target["trades"], target["win_rate"]) == ("take profit", 2, 50.0)
    assert (target["gross"], target["fees"], target["net"]) == (35.0, 6.0, 29.0)
    assert (stop["name"], stop["trades"], stop["win_rate"]) == ("stop loss", 1, 0.0)
    assert stop["net"] == -12.4
    ranging = breakdown(rows, "regime")[0]
    assert (ranging["name"], ranging["trades"], ranging["net"]) == ("ranging", 2, -13.4)


def _running(**fields) -> BacktestRun:
    run = services.backtest_run_create(strategy="momentum_breakout", symbol=BTC,
                                       start_ms=T0, end_ms=T0 + 7 * DAY)  # fmt: skip
    BacktestRun.objects.filter(pk=run.pk).update(**fields)
    return BacktestRun.objects.get(pk=run.pk)


def test_the_run_page_and_the_list_poll_the_stored_progress_until_done(stored, trader):
    run = _running(status="running", progress=0.27)
    poll = reverse("backtest_progress", args=[run.pk])
    page = trader.get(reverse("backtest_detail", args=[run.pk])).content.decode()
    assert f'hx-get="{poll}" hx-trigger="every 2s"' in page and "27.0 %" in page
    listed = trader.get(reverse("backtests")).content.decode()
    assert f'hx-get="{poll}?row=1" hx-trigger="every 2s"' in listed

    # Another process moves the stored run on: the polled fragment follows it.
    BacktestRun.objects.filter(pk=run.pk).update(progress=0.64)
    fragment = trader.get(poll).content.decode()
    assert "64.0 %" in fragment and 'hx-trigger="every 2s"' in fragment
    BacktestRun.objects.filter(pk=run.pk).update(status="done", progress=1.0)
    fragment = trader.get(poll).content.decode()
    assert "every 2s" not in fragment and "100.0 %" in fragment
    assert 'hx-trigger="click, load" hx-target="#backtest-results"' in fragment  # loads results
    row = trader.get(poll, {"row": "1"}).content.decode()
    assert row.startswith(f'<tr id="live-backtest-row-{run.pk}"') and "every 2s" not in row


def test_the_command_stores_its_progress_while_it_runs(stored, monkeypatch):
    """``manage.py backtest --save`` runs in its own process: what reaches a page is the
    stored ``BacktestRun.progress``, read back here while the run is going."""
    seen: list[float] = []
    publisher = services._progress_publisher

    def watching(run_id: int):
        report = publisher(run_id)

        def observed(fraction: float) -> None:
            report(fraction)
            seen.append(BacktestRun.objects.get(pk=run_id).progress)

        return observed

    monkeypatch.setattr(services, "_progress_publisher", watching)
    call_command("backtest", "--strategy", "momentum_breakout", "--symbol", BTC,
                 "--start", "2025-06-17", "--end", "2025-06-20", "--save", "--json",
                 stdout=StringIO())  # fmt: skip
    assert any(0 < p < 1 for p in seen), seen
    assert seen == sorted(seen) and BacktestRun.objects.get().progress == 1.0


def test_compare_lines_up_metrics_sources_and_equity_curves(
    stored, trader, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        launch(trader, "2025-06-17", "2025-06-23")
        launch(trader, "2025-06-20", "2025-06-23", params_source="yaml")
    first, second = BacktestRun.objects.order_by("pk")
    page = trader.get(reverse("backtest_compare"), {"run": [first.pk, second.pk, "abc", "-1",
                      "99999999999999999999", "1e3", ""]})  # fmt: skip
    assert page.status_code == 200
    html = page.content.decode()
    assert "2025-06-17 → 2025-06-23" in html and "2025-06-20 → 2025-06-23" in html
    assert "database config" in html and "YAML" in html
    for run in (first, second):
        net = fmt_money(run.results["net_pnl"])
        assert f'<td class="num">{net}</td>' in html
        assert f'<td class="num">{fmt_count(run.results["trades"])}</td>' in html
    curves = json.loads(re.search(r'id="compare-data" type="application/json">(.*?)</script>',
                                  html, re.S).group(1))  # fmt: skip
    assert [c["name"].split()[0] for c in curves] == [f"#{first.pk}", f"#{second.pk}"]
    assert [len(c["points"]) for c in curves] == [len(first.equity_curve), len(second.equity_curve)]
    assert "js/backtest-charts.js" in html and "js/chart.js" not in html


def test_the_arena_run_page_shares_the_assumptions_partial_and_lists_trades(stored, trader):
    trade = {"strategy": "momentum_breakout", "symbol": BTC, "side": "long", "qty": 0.0123,
             "leverage": 10, "entry_price": 104131.4083, "entry_time_ms": T0 + 60_000,
             "exit_price": 104500.0, "exit_time_ms": T0 + 3_600_000, "exit_reason": "take_profit",
             "gross_pnl": 4.53, "entry_fee": 0.77, "exit_fee": 0.77, "funding_usdt": 0.0,
             "net_pnl": 2.99}  # fmt: skip
    run = BacktestRun.objects.create(
        strategy_name="arena", strategy_kind="arena", symbol="1 symbols", status="done",
        start_ms=T0, end_ms=T0 + 2 * DAY, params={"selector_every": 0, "symbols": [BTC]},
        params_source="database: the enabled arena as the radar runs it", progress=1.0,
        results={"strategies": [{"strategy": "momentum_breakout", "status": "active",
                 "trades": 1, "wins": 1, "gross_pnl": 4.53, "fees": 1.54, "funding": 0.0,
                 "net_pnl": 2.99, "kill_switch_tripped": False, "selector_decisions": []}],
                 "assumptions": {"engine": "the radar itself", "data": ["a.csv", "b.csv"]},
                 "replay": ["Replay of 2 files"]},
        trades=[trade],
    )  # fmt: skip
    html = trader.get(reverse("backtest_detail", args=[run.pk])).content.decode()
    assert 'id="backtest-assumptions"' in html and "<dd>a.csv, b.csv</dd>" in html
    assert "<dd>the radar itself</dd>" in html and "Replay of 2 files" in html
    assert "<td>momentum_breakout</td><td>BTC/USDT:USDT</td>" in html
    assert '<td class="num">104,131.4</td>' in html and '<td class="num">0.012</td>' in html
    assert "2025-06-17 00:01" in html and "take profit" in html
    covered = re.search(r'<dd id="bt-period">(.*?)</dd>', html, re.S).group(1)
    assert "2025-06-17 → 2025-06-18" in covered and "2,880" in covered


def test_an_arena_run_longer_than_the_stored_candles_is_refused(stored, trader):
    """The newest BTC candle opens 2025-06-23 23:59: the last 30 days would start 2025-05-25,
    and 7 of those 30 days are stored: refused, naming what is stored."""
    page = trader.post(reverse("backtest_arena"), {"days": "30", "selector_every": "0"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "the last 30 days (2025-05-25 → 2025-06-23) are not all stored" in html
    assert escape(f"{BTC} has 1m candles 2025-06-17 → 2025-06-23 only") in html
    assert not BacktestRun.objects.exists()


def test_the_trade_list_pages_by_100_while_the_breakdowns_count_every_trade(stored, trader):
    """150 stored trades, one a minute from 2025-06-17 00:00, alternately a 2.00 USDT win
    (take profit) and a 1.00 USDT loss (stop loss): page 1 shows 100, page 2 (the pager's
    htmx request) the other 50; the breakdown counts 75 + 75."""
    trades = [
        {"side": "long", "qty": 0.01, "entry_price": 104_000.0, "exit_price": 104_100.0,
         "entry_time_ms": T0 + i * 60_000, "exit_time_ms": T0 + i * 60_000 + 30_000,
         "gross_pnl": 2.5 if i % 2 == 0 else -0.5, "entry_fee": 0.25, "exit_fee": 0.25,
         "funding": 0.0, "net_pnl": 2.0 if i % 2 == 0 else -1.0, "regime": "ranging",
         "exit_reason": "take_profit" if i % 2 == 0 else "stop_loss"}
        for i in range(150)
    ]  # fmt: skip
    run = BacktestRun.objects.create(
        strategy_name="momentum_breakout", strategy_kind="momentum_breakout", symbol=BTC,
        status="done", progress=1.0, results={"trades": 150}, trades=trades,
    )  # fmt: skip
    url = reverse("backtest_detail", args=[run.pk])
    html = trader.get(url).content.decode()
    table = re.search(r'<table class="grid compact bt-trades">(.*?)</table>', html, re.S).group(1)
    assert table.count("<tr>") == 100 + 1 and "page 1 of 2" in html
    assert 'hx-get="?trades_page=2" hx-target="#bt-trades"' in html
    by_reason = re.search(r'id="bt-by-exit-reason">(.*?)</table>', html, re.S).group(1)
    assert '<td>take profit</td><td class="num">75</td><td class="num">100.0 %</td>' in by_reason
    assert '<td class="num up">+150.00</td>' in by_reason  # 75 × 2.00
    assert '<td class="num down">−75.00</td>' in by_reason  # 75 × −1.00

    second = trader.get(url, {"trades_page": "2"}, headers={"HX-Request": "true"})
    part = second.content.decode().strip()
    assert part.startswith('<div id="bt-trades">') and "<nav>" not in part
    assert part.count("<tr>") == 50 + 1 and "page 2 of 2" in part
    assert "2025-06-17 02:29" in part  # the 150th trade's entry (00:00 + 149 min)
