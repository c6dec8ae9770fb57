"""The Arena and Session pages as a trader reads them: fees and fees % of |gross| on every row
(losing ones too), every figure through the desk formatter, daily net P&L and cumulative equity
from the closed paper trades, per-pair and per-exit-reason tables, paper and live apart.

The ``desk_arena`` fixture extends the shared ``arena`` (tests/web/conftest.py, real candles)
with vwap_rsi's second market day on ETH, a shadow trade, a live book and a strategy without a
session; the expected figures are worked in each test's docstring.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape

import pytest
from django.urls import reverse

from common.presenters import render_event
from strategies.arena_selectors import arena_row, fees_share_of_gross_pct
from strategies.arena_stats import arena_breakdowns
from strategies.models import StrategyConfig
from tests.web.conftest import BTC, ETH, T0
from trading.models import LivePosition, Position

DAY_MS = 86_400_000
MINUS = "\u2212"


def _closed(session, symbol, *, ledger_id, exit_ms, gross, fee, funding, reason, shadow=False):
    """A closed paper trade of 0.1 with ``gross`` and ``fee`` (half at entry, half at exit):
    net = gross − fee − funding, as the paper ledger books it."""
    return Position.objects.create(
        session=session,
        strategy_name=session.strategy_name,
        symbol=symbol,
        side="long",
        status="closed",
        shadow=shadow,
        ledger_id=ledger_id,
        qty=0.1,
        leverage=10,
        entry_price=2_500.0,
        entry_time_ms=exit_ms - 1_800_000,
        entry_fee=fee / 2,
        entry_liquidity="taker",
        stop_loss=2_450.0,
        take_profit=2_600.0,
        liquidation_price=2_260.0,
        exit_price=2_500.0 + gross / 0.1,
        exit_time_ms=exit_ms,
        exit_fee=fee / 2,
        exit_liquidity="taker",
        exit_reason=reason,
        funding_usdt=funding,
        gross_pnl=gross,
        net_pnl=gross - fee - funding,
    )


@pytest.fixture
def desk_arena(arena) -> dict:
    """``arena`` plus, for vwap_rsi on 2025-06-18 (the second market day): an ETH stop-loss
    (gross −30, fees 9, funding 0.2 → net −39.2) and an ETH time stop at gross exactly 0 (fees
    4 → net −4); a SHADOW BTC trade of gross +500 (not in its ledger: never counted); vwap_rsi
    goes live with one real position closed now (gross +70, fees 7, net +62.6: the live book,
    never the paper figures); funding_arbitrage configured without a session (gross 0)."""
    s1, _ = arena["sessions"]
    day2 = T0 + DAY_MS + 3_600_000
    _closed(s1, ETH, ledger_id="e1", exit_ms=day2, gross=-30.0, fee=9.0, funding=0.2,
            reason="stop_loss")  # fmt: skip
    _closed(s1, ETH, ledger_id="e2", exit_ms=day2 + 600_000, gross=0.0, fee=4.0, funding=0.0,
            reason="time_stop")  # fmt: skip
    _closed(s1, BTC, ledger_id="sh1", exit_ms=day2, gross=500.0, fee=10.0, funding=0.0,
            reason="take_profit", shadow=True)  # fmt: skip
    StrategyConfig.objects.filter(name="vwap_rsi").update(live=True)
    now_ms = int(datetime.now(tz=UTC).timestamp() * 1000)
    LivePosition.objects.create(
        strategy_name="vwap_rsi",
        symbol=BTC,
        side="long",
        status="closed",
        qty=0.1,
        entry_price=104_000.0,
        opened_ms=now_ms - 60_000,
        closed_ms=now_ms,
        exit_price=104_700.0,
        exit_reason="take_profit",
        gross_pnl=70.0,
        fees_usdt=7.0,
        funding_usdt=0.4,
        net_pnl=62.6,
    )
    StrategyConfig.objects.create(name="funding_arbitrage", kind="funding_arbitrage")
    return arena


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def _arena_cells(html: str, strategy: str) -> list[str]:
    """The text of each cell of ``strategy``'s ranking row (its live span flattened)."""
    start = html.index(f'id="live-arena-row-{strategy}"')
    row = html[start : html.find('<div class="tr" id=', start + 10)]
    row = re.sub(r'<span class="contents"[^>]*>', "", row)
    return [_text(c) for c in re.findall(r"\n\s*(<span.*?</span>)\s*(?=\n)", row, re.DOTALL)]


def _table_rows(html: str, table_id: str) -> list[list[str]]:
    table = re.search(rf'<table[^>]*id="{table_id}"[^>]*>(.*?)</table>', html, re.DOTALL)
    assert table is not None, f"no table {table_id}"
    body = table.group(1).split("<tbody>")[1]
    return [
        [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.DOTALL)]
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)
    ]


def test_fees_share_is_taken_on_the_size_of_the_gross():
    """Gross −50, fees 20 → 40 % (a losing book shows it too); gross +120, fees 40 → 33.3 %;
    gross exactly 0 → no share (None)."""
    assert fees_share_of_gross_pct(20.0, -50.0) == pytest.approx(40.0)
    assert fees_share_of_gross_pct(40.0, 120.0) == pytest.approx(100 / 3)
    assert fees_share_of_gross_pct(4.0, 0.0) is None


def test_arena_rows_show_fees_and_their_share_of_gross_even_when_losing(client_in, desk_arena):
    """vwap_rsi (session): gross +120, fees 40 (33.3 %), net +80, 3 trades, 2 wins (66.7 %),
    equity 10,080 → +0.80 %. momentum_breakout: gross −400, fees 120 → 30.0 % (blank before),
    net −520, equity 9,480 → −5.20 %. funding_arbitrage: no session, gross 0 → "—" with why."""
    html = client_in.get(reverse("arena")).content.decode()
    assert "Fees (USDT)" in html and "Fees % |gross|" in html and "Net (USDT)" in html
    vwap = _arena_cells(html, "vwap_rsi")
    assert vwap[1:11] == [
        "vwap_rsi paper",
        "active",
        "+0.80 %",
        "+120.00",
        "40.00",
        "+80.00",
        "33.3 %",
        "66.7 %",
        "3",
        "1.00",
    ]
    mom = _arena_cells(html, "momentum_breakout")
    assert mom[3:9] == [f"{MINUS}5.20 %", f"{MINUS}400.00", "120.00", f"{MINUS}520.00",
                        "30.0 %", "0.0 %"]  # fmt: skip
    assert mom[9] == "2"
    start = html.index('id="live-arena-row-funding_arbitrage"')
    idle = html[start : start + 3000]
    assert 'title="gross P&amp;L is exactly 0: there is no share of it to show">—<' in idle
    for figure in ("3.00", "120.0000", "-520", "%}"):
        assert f">{figure}<" not in html
    assert "floatformat" not in html


def test_the_pushed_arena_row_renders_the_same_cells_as_the_page(client_in, desk_arena):
    """``arena.update`` carries ``arena_row(session)`` as the radar's recorder publishes it:
    through JSON, the fragment the socket swaps in has the page's cells, fees included."""
    s1, _ = desk_arena["sessions"]
    page = client_in.get(reverse("arena")).content.decode()
    payload = json.loads(json.dumps(arena_row(s1)))
    assert payload["fees_usdt"] == 40.0 and payload["book"] == "paper"
    pushed = render_event("arena.update", payload)
    assert 'id="live-arena-live-vwap_rsi" hx-swap-oob="true"' in pushed
    cells = [_text(c) for c in re.findall(r"\n\s*(<span.*?</span>)\s*(?=\n)", pushed, re.DOTALL)]
    assert cells == _arena_cells(page, "vwap_rsi")[1:11]


def test_daily_pnl_and_equity_stand_on_closed_paper_trades_by_exit_day(client_in, desk_arena):
    """vwap_rsi: 2025-06-17 nets 47 + 36.9 − 5.4 = +78.5 → equity 10,078.50; 2025-06-18 nets
    −39.2 − 4 = −43.2 → 10,035.30; the shadow +490 never counted. The chart's line starts at
    the capital the day before. All strategies: 06-17 sums momentum's −521 too → −442.5."""
    html = client_in.get(reverse("arena"), {"strategy": "vwap_rsi"}).content.decode()
    assert _table_rows(html, "arena-daily-table") == [
        ["2025-06-17", "3", "66.7 %", "+120.00", "40.00", "+1.50", "+78.50", "10,078.50"],
        ["2025-06-18", "2", "0.0 %", f"{MINUS}30.00", "13.00", "+0.20", f"{MINUS}43.20",
         "10,035.30"],
    ]  # fmt: skip
    data = json.loads(
        re.search(r'id="arena-chart-data" type="application/json">(.*?)</script>', html).group(1)
    )
    assert data["daily"] == [
        {"time": "2025-06-17", "value": 78.5},
        {"time": "2025-06-18", "value": -43.2},
    ]
    assert data["equity"] == [
        {
            "name": "vwap_rsi",
            "key": 0,
            "points": [
                {"time": "2025-06-16", "value": 10_000.0},
                {"time": "2025-06-17", "value": 10_078.5},
                {"time": "2025-06-18", "value": 10_035.3},
            ],
        }
    ]
    assert "net of fees and funding, by UTC market day of the exit" in html
    assert "shadow trades and live fills excluded" in html
    everyone = arena_breakdowns()
    assert [line["name"] for line in everyone["chart"]["equity"]] == [
        "momentum_breakout",
        "vwap_rsi",
    ]
    assert everyone["chart"]["daily"][0] == {"time": "2025-06-17", "value": -442.5}
    assert everyone["capital"] == 20_000.0


def test_per_pair_and_per_exit_reason_tables(client_in, desk_arena):
    """vwap_rsi per pair: BTC 3 trades, 2 wins, gross +120, fees 40 (33.3 %), funding +1.50,
    net +78.50; ETH 2 trades, gross −30, fees 13 (43.3 % of |−30|), net −43.20. Per exit:
    take profit 3 (BTC), stop loss 1 (fees 9 = 30.0 % of 30), time stop 1 at gross 0: "—"."""
    html = client_in.get(reverse("arena"), {"strategy": "vwap_rsi"}).content.decode()
    assert _table_rows(html, "arena-by-symbol") == [
        ["BTC/USDT", "3", "66.7 %", "+120.00", "40.00", "+1.50", "+78.50", "33.3 %"],
        ["ETH/USDT", "2", "0.0 %", f"{MINUS}30.00", "13.00", "+0.20", f"{MINUS}43.20", "43.3 %"],
    ]
    assert _table_rows(html, "arena-by-exit") == [
        ["take profit", "3", "66.7 %", "+120.00", "40.00", "+1.50", "+78.50", "33.3 %"],
        ["stop loss", "1", "0.0 %", f"{MINUS}30.00", "9.00", "+0.20", f"{MINUS}39.20", "30.0 %"],
        ["time stop", "1", "0.0 %", "0.00", "4.00", "0.00", f"{MINUS}4.00", "—"],
    ]
    assert 'title="gross P&amp;L is exactly 0: there is no share of it to show">—</td>' in html
    everyone = client_in.get(reverse("arena")).content.decode()
    btc = _table_rows(everyone, "arena-by-symbol")[0]
    # All strategies on BTC: vwap's 3 and momentum's 2, gross 120 − 400 = −280, fees 160.
    assert btc[:5] == ["BTC/USDT", "5", "40.0 %", f"{MINUS}280.00", "160.00"]


def test_live_results_stay_apart_from_the_paper_figures(client_in, desk_arena):
    """vwap_rsi's live trade (gross +70, fees 7 = 10.0 %, net +62.60) is in the live book with
    its LIVE marker; the paper row, tables and charts keep their paper figures (+120 gross)."""
    html = client_in.get(reverse("arena"), {"strategy": "vwap_rsi"}).content.decode()
    book = html[html.index('id="arena-live-books"') :]
    live_row = re.search(r'<tr data-book="live" data-strategy="vwap_rsi">(.*?)</tr>', book, re.S)
    cells = [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", live_row.group(1), re.S)]
    assert cells == ["vwap_rsi", "LIVE", "1", "1", "100.0 %", "+70.00", "7.00", "10.0 %",
                     "+0.40", "+62.60"]  # fmt: skip
    assert 'class="tag live"' in html[html.index('id="live-arena-row-vwap_rsi"') :][:4000]
    assert "+190.00" not in html  # paper 120 + live 70 added nowhere
    assert _table_rows(html, "arena-by-symbol")[0][3] == "+120.00"


def test_session_page_has_fees_share_on_gross_and_the_same_charts(client_in, desk_arena):
    """Session, paper account: gross 120 − 400 = −280, fees 160 = 57.1 % of |gross| (blank
    before: gross < 0), net 80 − 520 = −440, 5 trades; momentum's row 30.0 %. The charts'
    island is the Arena's."""
    html = client_in.get(reverse("session")).content.decode()
    kpis = _text(re.search(r'<div class="kpis" data-book="paper">(.*?)\n  </div>', html, re.S)[1])
    assert f"Gross P&L (USDT) {MINUS}280.00" in kpis
    assert "Fees (USDT) 160.00 57.1 % of |gross|" in kpis
    assert f"Net P&L (USDT) {MINUS}440.00" in kpis and "Trades 5" in kpis
    mom = re.search(
        r'<tr data-book="paper" data-strategy="momentum_breakout">(.*?)</tr>', html, re.S
    )
    cells = [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", mom.group(1), re.S)]
    assert cells[2:8] == ["2", "0", "0.0 %", f"{MINUS}400.00", "120.00", "30.0 %"]
    assert 'id="arena-chart-data"' in html and 'id="arena-by-exit"' in html
    assert "css/arena.css" in html and "js/arena-charts.js" in html


def test_a_strategy_without_closed_trades_says_so_instead_of_empty_charts(client_in, db):
    """No session at all: the Arena shows its empty states, no chart island."""
    html = client_in.get(reverse("arena")).content.decode()
    assert 'id="arena-chart-data"' not in html
    assert "No closed paper trade yet" in html


def test_an_unknown_strategy_in_the_query_shows_all_strategies(client_in, desk_arena):
    """``?strategy=nope`` (no paper session of that name): the breakdowns of every strategy,
    "All strategies" marked as shown — never an empty page that looks like no trades."""
    html = client_in.get(reverse("arena"), {"strategy": "nope"}).content.decode()
    assert '<a class="tf active" href="?">All strategies</a>' in html
    assert _table_rows(html, "arena-by-symbol")[0][:2] == ["BTC/USDT", "5"]
