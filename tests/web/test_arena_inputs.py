"""A strategy without its inputs says why on the Arena and Radar pages; order_flow is shown as
the filter it is, with the signals it raised and lowered; the control log names the selector.

The reasons come from a real headless replay of the bundled SOL candles (no open interest, no
funding file, no book or trades): the radar stores them (``radar.input_status``) and the pages,
which may run in another process, read them from the database.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from strategies.arena_selectors import arena_rows, filter_cards
from strategies.core.base import EntryType, MarketSnapshot, Signal
from strategies.core.order_flow import OrderFlow
from strategies.core.orderflow_data import read_order_books
from strategies.core.params import OrderFlowParams
from strategies.core.scoring import apply_confirmation
from strategies.models import ControlAction, StrategyConfig, StrategyInputStatus
from strategies.models import Signal as SignalRow
from tests.radar.test_radar import SAMPLE, running_radar, sample_candles, slice_sample
from tests.web.conftest import BTC, T0
from trading.core.types import Side
from trading.models import OpenInterest

SOL = "SOL/USDT:USDT"
NO_OI = "no open-interest history"
NO_FUNDING = "no funding-rate history"
NO_FLOW = "no order book and no trades received, so it adjusts no score"


def replay(tmp_path, start: int, rows: int) -> str:
    folder = tmp_path / f"from-{start}"
    folder.mkdir()
    path = slice_sample(folder, "SOL", start, rows)
    out = StringIO()
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless", stdout=out)
    return out.getvalue()


def stored() -> dict[str, tuple[str, int]]:
    return {
        s.strategy_name: (s.reason, s.market_time_ms)
        for s in StrategyInputStatus.objects.filter(symbol=SOL)
    }


def row_html(html: str, dom_id: str) -> str:
    """The markup of one Arena row: from its id to the next row (or the table's end)."""
    start = html.index(f'id="{dom_id}"')
    end = html.find('<div class="tr"', start)
    return html[start : end if end > 0 else len(html)]


def logged_in(client):
    client.force_login(User.objects.create_user("watcher", password="s3cret-pass-123"))
    return client


@pytest.mark.django_db(transaction=True)
def test_a_replay_without_inputs_says_why_on_the_arena_and_the_radar_pages(tmp_path, client):
    """Two hours of SOL: liquidation_zones lacks open interest (first 5m decision, 00:05),
    funding_arbitrage the funding history (first 1h decision, 01:00), order_flow any book or
    trades (first candle, 00:01). The strategies with their inputs get no row and no line."""
    replay(tmp_path, 0, 120)
    assert stored() == {
        "liquidation_zones": (NO_OI, T0 + 5 * 60_000),
        "funding_arbitrage": (NO_FUNDING, T0 + 60 * 60_000),
        "order_flow": (NO_FLOW, T0 + 60_000),
    }
    client = logged_in(client)
    arena = client.get(reverse("arena")).content.decode()
    zones = row_html(arena, "live-arena-row-liquidation_zones")
    assert f"no signal possible on SOL: {NO_OI}" in zones
    assert f"no signal possible on SOL: {NO_FUNDING}" in row_html(
        arena, "live-arena-row-funding_arbitrage"
    )
    for name in ("momentum_breakout", "vwap_rsi", "swing_1h"):
        assert "no signal possible" not in row_html(arena, f"live-arena-row-{name}")
    # order_flow is no contestant: no ranking row, its own filter card with why it is idle
    assert 'id="live-arena-row-order_flow"' not in arena
    card = arena[arena.index('id="live-filter-order_flow"') :]
    assert "Filter: order_flow" in card
    assert f"inactive on SOL: {NO_FLOW}" in card
    assert "raised <b>0</b> signals · lowered <b>0</b>" in card

    radar = client.get(reverse("radar")).content.decode()
    cell = re.search(r'id="live-heat-liquidation_zones-SOL-USDT"[^>]*>(.*?)</span>', radar)
    assert cell is not None and f"no signal possible: {NO_OI}" in cell.group(1)
    assert "live-heat-order_flow-" not in radar  # a filter scores nothing: not a heatmap row
    assert f"inactive on SOL: {NO_FLOW}" in radar


@pytest.mark.django_db(transaction=True)
def test_the_reason_is_written_when_it_changes_and_goes_when_the_input_arrives(tmp_path):
    """The next two hours, with open interest stored from 02:00: liquidation_zones can decide
    again, so its row goes; funding_arbitrage still lacks funding and keeps the row of its
    first sighting (01:00), untouched by the 120 candles since: written on change only."""
    replay(tmp_path, 0, 120)
    before = StrategyInputStatus.objects.get(strategy_name="funding_arbitrage", symbol=SOL)
    OpenInterest.objects.bulk_create(
        OpenInterest(
            exchange="bitget", symbol=SOL, time_ms=T0 + (120 + i) * 60_000, open_interest=5e6
        )
        for i in range(0, 60, 5)
    )
    replay(tmp_path, 120, 120)
    assert "liquidation_zones" not in stored()
    after = StrategyInputStatus.objects.get(strategy_name="funding_arbitrage", symbol=SOL)
    assert (after.pk, after.market_time_ms, after.updated_at) == (
        before.pk,
        T0 + 60 * 60_000,
        before.updated_at,
    )
    rows = {r["strategy"]: r["skipped"] for r in arena_rows()}
    assert rows["liquidation_zones"] == []
    assert [s["reason"] for s in rows["funding_arbitrage"]] == [NO_FUNDING]


def test_a_stored_reason_wins_over_an_older_signal_and_a_disabled_strategy_shows_none(
    client_in, arena
):
    """vwap_rsi signalled on BTC (score 0.82) before it lost an input: the heatmap shows why it
    cannot decide now, not the old score. momentum_breakout, disabled since, shows nothing."""
    vwap, mom = arena["configs"]
    for name in (vwap.name, mom.name):
        StrategyInputStatus.objects.create(
            strategy_name=name,
            symbol=BTC,
            reason="no 1h candles in the snapshot",
            market_time_ms=T0,
        )
    StrategyConfig.objects.filter(pk=mom.pk).update(enabled=False)
    rows = {r["strategy"]: r["skipped"] for r in arena_rows()}
    assert [(s["base"], s["reason"]) for s in rows["vwap_rsi"]] == [
        ("BTC", "no 1h candles in the snapshot")
    ]
    assert rows["momentum_breakout"] == []
    radar = client_in.get(reverse("radar")).content.decode()
    cell = re.search(r'id="live-heat-vwap_rsi-BTC-USDT"[^>]*>(.*?)</span>', radar)
    assert cell is not None
    assert (
        cell.group(1)
        == '<small class="skipped">no signal possible: no 1h candles in the snapshot</small>'
    )
    mom_cell = re.search(r'id="live-heat-momentum_breakout-BTC-USDT"[^>]*>(.*?)</span>', radar)
    assert mom_cell is not None and mom_cell.group(1) == "0.55"


@pytest.mark.django_db(transaction=True)
def test_the_filter_is_active_again_once_a_book_arrives():
    """The radar on BTC, candle by candle: without a book or trades order_flow's reason is
    stored at the first candle and left alone by the next ones; a real L2 book (the bundled
    capture, stamped at the next candle's close) arrives from the feed: at that candle the
    row goes, and the Arena's filter card has no "inactive" line."""
    runtime = running_radar()
    candles = sample_candles(4)
    for row in candles[:3]:
        runtime.process_candle(BTC, tuple(row))
    first = StrategyInputStatus.objects.get(strategy_name="order_flow", symbol=BTC)
    assert (first.reason, first.market_time_ms) == (NO_FLOW, int(candles[0, 0]) + 60_000)
    book = read_order_books(SAMPLE / "binance-usdm_BTC-USDT_book20-1s_20240808.csv.gz")[0]
    close_ms = int(candles[3, 0]) + 60_000
    ccxt_book = {"bids": book.bids.tolist(), "asks": book.asks.tolist(), "timestamp": close_ms}
    asyncio.run(runtime.on_order_book(BTC, ccxt_book))
    runtime.process_candle(BTC, tuple(candles[3]))
    assert not StrategyInputStatus.objects.filter(strategy_name="order_flow").exists()
    (card,) = filter_cards()
    assert card["inactive"] == []


def adjusted(raw: Signal, book, params: OrderFlowParams) -> Signal:
    """``raw`` after the order-flow filter, as the kernel applies it (``apply_confirmation``)."""
    market = MarketSnapshot(symbol=BTC, now_ms=book.time_ms if book else 0, candles={})
    if book is not None:
        market = replace(market, order_book=book)
    return apply_confirmation(raw, [OrderFlow(params).confirm(raw, market)])


def test_the_filter_card_counts_the_signals_it_raised_and_lowered(client_in, arena):
    """A real BTC book leaning one way moves a long signal and a short one by opposite deltas
    (|delta| > 0.0006, so neither shows as ±0.000): one raised, one lowered; a signal decided
    with no book is left unchanged. Each signal is stored as the recorder stores it."""
    StrategyConfig.objects.create(name="order_flow", kind="order_flow")
    params = OrderFlowParams()
    books = read_order_books(SAMPLE / "binance-usdm_BTC-USDT_book20-1s_20240808.csv.gz")
    long = Signal(Side.LONG, EntryType.LIMIT, 60_000.0, 59_700.0, 60_600.0, 0.6, ("setup",))
    book = next(b for b in books if abs(adjusted(long, b, params).score - 0.6) > 0.0006)
    short = replace(long, side=Side.SHORT, stop_loss=60_300.0, take_profit=59_400.0)
    vwap = StrategyConfig.objects.get(name="vwap_rsi")
    for i, sig in enumerate(
        [adjusted(long, book, params), adjusted(short, book, params), adjusted(long, None, params)]
    ):
        SignalRow.objects.create(
            strategy=vwap,
            symbol=BTC,
            timeframe="5m",
            candle_open_time_ms=T0 + (10 + i) * 300_000,
            side=sig.side.value,
            entry_type="limit",
            entry_price=sig.entry_price,
            stop_loss=sig.stop_loss,
            take_profit=sig.take_profit,
            score=sig.score,
            reasons=list(sig.reasons),
            status="accepted",
        )
    (card,) = filter_cards()
    assert (card["raised"], card["lowered"], card["unchanged"]) == (1, 1, 1)
    html = client_in.get(reverse("arena")).content.decode()
    assert "raised <b>1</b> signal · lowered <b>1</b> · left 1 unchanged" in html
    assert 'id="live-arena-row-order_flow"' not in html


def test_the_control_log_says_selector_for_the_selectors_decisions(client_in, arena, user):
    ControlAction.objects.create(
        strategy_name="vwap_rsi",
        action="pause",
        actor="selector",
        reason="profit factor 0.41 < 0.8 over 12 trades",
    )
    ControlAction.objects.create(strategy_name="momentum_breakout", action="resume", user=user)
    html = client_in.get(reverse("arena")).content.decode()
    log = html[html.index("Control log") :]
    assert "<td>Pause</td><td>selector</td><td>profit factor 0.41" in log
    assert "<td>Resume</td><td>trader</td>" in log
    assert "—</td><td>profit factor" not in log


def test_the_admin_control_log_lists_the_actor(client, staff):
    ControlAction.objects.create(strategy_name="swing_1h", action="pause", actor="selector")
    client.force_login(staff)
    html = client.get(reverse("admin:strategies_controlaction_changelist")).content.decode()
    assert "column-actor" in html
    assert "Arena selector" in html
