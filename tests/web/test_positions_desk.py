"""Positions and trades as a trader reads them: duration in market time, ROE, distances to
stop / target / liquidation, the Close button (permission, record, carried out by the radar),
shadow trades behind a filter, and the trades CSV in plain numbers."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.urls import reverse

from radar.live import LiveRouter
from strategies.closes import position_close_request
from strategies.core.kernel import PositionOpened
from strategies.models import ControlAction, StrategyConfig
from strategies.services import ControlError
from tests.radar.test_radar import SYMBOL, entry_of, running_radar, sample_candles
from tests.web.conftest import BTC, ETH, T0
from trading import selectors
from trading.core.types import Side
from trading.models import Alert, Asset, Position, TradingSession
from trading.services import candles_upsert

MINUTE_MS = 60_000


def cells(html: str, dom_id: str) -> dict[str, str]:
    """``{data-cell: text}`` of the row ``dom_id`` in a rendered Positions page."""
    start = html.index(f'id="{dom_id}"')
    row = html[start : html.index('<span class="close-cell">', start)]
    return dict(re.findall(r'data-cell="([a-z-]+)"[^>]*>([^<]*)<', row))


@pytest.fixture
def desk_rows(db) -> dict[str, Position]:
    """BTC (tick 0.1, lot 0.001) marked at 101,000.0 and ETH (tick 0.01, lot 0.01) at
    2,480.50 by their only 1m candle (opened at T0, closed at T0 + 1 min: market time), a long
    BTC and a short ETH open."""
    markets = ((BTC, "BTC", 0.1, 0.001, 101_000.0), (ETH, "ETH", 0.01, 0.01, 2_480.5))
    for symbol, base, tick, lot, close in markets:
        Asset.objects.create(symbol=symbol, base=base, price_tick=tick, qty_step=lot, min_qty=lot)
        candles_upsert(
            rows=[(T0, close, close, close, close, 1.0)],
            exchange="bitget",
            symbol=symbol,
            timeframe="1m",
        )
    session = TradingSession.objects.create(strategy_name="vwap_rsi")
    mark_close_ms = T0 + MINUTE_MS
    long_btc = Position.objects.create(
        session=session,
        strategy_name="vwap_rsi",
        symbol=BTC,
        side="long",
        ledger_id="7",
        qty=0.1,
        leverage=10,
        entry_price=100_000.0,
        entry_time_ms=mark_close_ms - 725_000,  # 12 min 05 s of market time before the mark
        entry_fee=6.0,
        entry_liquidity="taker",
        stop_loss=99_500.0,
        take_profit=102_000.0,
        liquidation_price=91_000.0,
    )
    short_eth = Position.objects.create(
        session=session,
        strategy_name="vwap_rsi",
        symbol=ETH,
        side="short",
        shadow=True,
        ledger_id="3:shadow",
        qty=2.0,
        leverage=5,
        entry_price=2_500.0,
        entry_time_ms=mark_close_ms - 3 * 3_600_000 - 7 * MINUTE_MS,
        entry_fee=3.0,
        entry_liquidity="taker",
        stop_loss=2_550.0,
        take_profit=2_400.0,
        liquidation_price=0.0,
        funding_usdt=-0.4,  # received
    )
    return {"long": long_btc, "short": short_eth}


@pytest.fixture
def steerer(user):
    """The user in the "trader" group, which holds the steer permission (migration 0004; made
    again here for the transactional tests, whose flush empties the group table)."""
    group, _ = Group.objects.get_or_create(name="trader")
    group.permissions.add(Permission.objects.get(codename="steer_radar"))
    user.groups.add(group)
    return user


def test_a_long_row_shows_roe_distances_and_market_time_in_trade(client_in, desk_rows):
    """Long 0.1 BTC from 100,000 at 10×, entry fee 6, mark 101,000: gross 0.1 × 1,000 =
    +100.00; exit fee 0.1 × 101,000 × 0.06 % = 6.06 → net 100 − 6 − 6.06 = +87.94; margin
    0.1 × 100,000 / 10 = 1,000 → ROE +8.79 %. Stop 99,500: (99,500 − 101,000) / 101,000 =
    −1.49 %; target 102,000: +0.99 %; liquidation 91,000: −9.90 %. Entered 12 min 05 s of
    market time before the mark's close (the wall clock is 500 days later)."""
    html = client_in.get(reverse("positions")).content.decode()
    row = cells(html, "live-pos-vwap_rsi-7")
    assert row == {
        "mark": "101,000.0",
        "gross": "+100.00",
        "net": "+87.94",
        "roe": "+8.79 %",
        "stop": "−1.49 % · 99,500.0",
        "target": "+0.99 % · 102,000.0",
        "liq": "−9.90 % · 91,000.0",
        "age": "12m 05s",
    }
    assert '<span class="num">0.100</span>' in html and '<span class="num">10×</span>' in html
    assert '<span class="num">100,000.0</span>' in html
    assert 'data-tick="0.1"' in html and 'data-lev="10.0"' in html


def test_a_shadow_short_without_liquidation_price_reads_the_other_way(client_in, desk_rows):
    """Short 2 ETH from 2,500.00 at 5×, fee 3, funding 0.40 received, mark 2,480.50: gross
    −2 × (2,480.5 − 2,500) = +39.00; exit fee 2 × 2,480.5 × 0.06 % = 2.9766 → net 39 − 3 −
    2.9766 + 0.4 = +33.42; margin 2 × 2,500 / 5 = 1,000 → ROE +3.34 %. Stop 2,550 is above:
    +69.5 / 2,480.5 = +2.80 %; target 2,400: −80.5 / 2,480.5 = −3.25 %; no liquidation price
    (0): "—". In trade 3 h 07 min."""
    html = client_in.get(reverse("positions")).content.decode()
    row = cells(html, "live-pos-vwap_rsi-3-shadow")
    assert row == {
        "mark": "2,480.50",
        "gross": "+39.00",
        "net": "+33.42",
        "roe": "+3.34 %",
        "stop": "+2.80 % · 2,550.00",
        "target": "−3.25 % · 2,400.00",
        "liq": "—",
        "age": "3h 07m",
    }
    assert '<span class="tag">shadow</span>' in html
    assert 'data-funding="-0.4"' in html


def test_mark_figures_follow_the_docstring_example():
    """The worked example of ``trading.selectors.mark_figures``."""
    figures = selectors.mark_figures(
        {
            "side": "long",
            "qty": 0.1,
            "leverage": 10,
            "entry_price": 100_000.0,
            "entry_fee": 6.0,
            "funding": 0.0,
            "stop_loss": 99_500.0,
            "take_profit": None,
            "liquidation_price": 0.0,
        },
        101_000.0,
    )
    assert figures["upnl_gross"] == pytest.approx(100.0)
    assert figures["upnl_net"] == pytest.approx(87.94)
    assert figures["margin_usdt"] == pytest.approx(1_000.0)
    assert figures["roe_pct"] == pytest.approx(8.794)
    assert figures["stop_distance_pct"] == pytest.approx(-1.4851, abs=1e-4)
    assert figures["target_distance_pct"] is None and figures["liq_distance_pct"] is None


def test_the_empty_state_is_always_there_for_the_stylesheet_to_hide(client_in, desk_rows):
    """Rendered even with rows: positions.css hides it while the table holds a row (the
    browser test watches it go when a row arrives live)."""
    html = client_in.get(reverse("positions")).content.decode()
    assert '<p class="empty">No open position.' in html
    assert 'href="/static/css/positions.css"' in html
    css = (Path(settings.BASE_DIR) / "static" / "css" / "positions.css").read_text()
    assert ".pos-tbl:has(.tr[id]) + .empty { display:none; }" in css


def test_a_viewer_gets_no_close_button_and_cannot_post_one(client_in, desk_rows):
    html = client_in.get(reverse("positions")).content.decode()
    assert "Close at market" not in html
    response = client_in.post(
        reverse("position_close"),
        {"strategy": "vwap_rsi", "position_id": "7", "confirm": "on"},
    )
    assert response.status_code == 403
    assert not ControlAction.objects.filter(action="close_position").exists()


def test_a_trader_close_is_confirmed_and_recorded_with_who_and_which_position(
    client, steerer, desk_rows
):
    client.force_login(steerer)
    html = client.get(reverse("positions")).content.decode()
    assert html.count("Close at market") == 2
    assert 'name="position_id" value="3"' in html and 'name="shadow" value="1"' in html
    unconfirmed = client.post(
        reverse("position_close"), {"strategy": "vwap_rsi", "position_id": "7"}
    )
    assert unconfirmed.status_code == 302
    assert not ControlAction.objects.filter(action="close_position").exists()

    response = client.post(
        reverse("position_close"),
        {"strategy": "vwap_rsi", "position_id": "7", "reason": "news", "confirm": "on"},
        follow=True,
    )
    assert "requested: the radar closes it at market" in response.content.decode()
    action = ControlAction.objects.get(action="close_position")
    assert (action.user, action.position, action.reason) == (steerer, desk_rows["long"], "news")
    assert action.done_at is None and action.created_at is not None
    alert = Alert.objects.get(payload__control_id=action.pk)
    assert alert.message == f"close of vwap_rsi long 0.1 {BTC} requested by trader"

    again = client.post(
        reverse("position_close"),
        {"strategy": "vwap_rsi", "position_id": "7", "confirm": "on"},
        follow=True,
    )
    assert "already requested" in again.content.decode()
    assert ControlAction.objects.filter(action="close_position").count() == 1


def test_closing_a_position_that_is_not_open_is_refused(steerer, desk_rows):
    with pytest.raises(ControlError, match="no open position"):
        position_close_request(strategy="vwap_rsi", position_id="7", shadow=True, user=steerer)


@pytest.mark.django_db(transaction=True)
def test_the_running_radar_closes_the_position_at_market_through_the_kernel():
    """A long 0.01 BTC opened in swing_1h's kernel at the first candle's close; a Close is
    requested; the next candle closes it at THAT candle's close less the sell's slippage
    (taker), at its close time: the stored trade, the session's checkpointed totals and the
    kernel's ledger agree, and the request is stamped done with an alert."""
    candles = sample_candles(3)
    runtime = running_radar()
    runtime.process_candle(SYMBOL, tuple(candles[0]))
    entry = entry_of(runtime, "swing_1h")
    position_id = _open_in_kernel(runtime, "swing_1h", candles[0])
    stored = Position.objects.get(strategy_name="swing_1h", status="open")
    action = position_close_request(
        strategy="swing_1h", position_id=position_id, shadow=False, user=None
    )

    runtime.process_candle(SYMBOL, tuple(candles[1]))

    stored.refresh_from_db()
    close1, now1 = float(candles[1][4]), int(candles[1][0]) + MINUTE_MS
    assert stored.status == "closed" and stored.exit_reason == "manual"
    assert stored.exit_time_ms == now1
    assert close1 * 0.998 < stored.exit_price <= close1  # a sell slips down
    assert stored.exit_fee == pytest.approx(0.01 * stored.exit_price * 0.0006)
    assert stored.net_pnl == pytest.approx(
        0.01 * (stored.exit_price - stored.entry_price) - stored.entry_fee - stored.exit_fee
    )
    assert position_id not in entry.kernel.ledger.positions
    session = TradingSession.objects.get(pk=entry.session.pk)
    assert session.realised_net_pnl == pytest.approx(stored.net_pnl)
    assert session.trades_count == 1
    action.refresh_from_db()
    assert action.done_at is not None and action.market_time_ms == now1
    done = Alert.objects.filter(payload__control_id=action.pk).order_by("-id").first()
    assert done is not None and "closed at market by —" in done.message

    # Nothing waits any more: the next candle closes nothing twice.
    runtime.process_candle(SYMBOL, tuple(candles[2]))
    assert Position.objects.filter(strategy_name="swing_1h", exit_reason="manual").count() == 1


class ClosingExecutor:
    """Stands for the live executor: records the close intents the router hands it."""

    def __init__(self) -> None:
        self.closes: list[dict] = []

    async def submit_close(self, intent: dict) -> None:
        self.closes.append(intent)


def _open_in_kernel(runtime, name: str, candle) -> str:
    """A long 0.01 BTC opened in ``name``'s real ledger at ``candle``'s close and stored the
    way the recorder stores a kernel's fill; returns its kernel position id."""
    entry = entry_of(runtime, name)
    close, now = float(candle[4]), int(candle[0]) + MINUTE_MS
    opened = entry.kernel.ledger.open(
        symbol=SYMBOL,
        side=Side.LONG,
        qty=0.01,
        price=close,
        time_ms=now,
        leverage=5,
        stop_loss=close * 0.9,
        take_profit=close * 1.1,
    )
    with transaction.atomic():
        runtime.recorder.store(entry, SYMBOL, [PositionOpened(SYMBOL, opened)], checkpoint=True)
        runtime.recorder.save_due(runtime.arena)
    return opened.position_id


@pytest.mark.django_db(transaction=True)
def test_a_live_strategys_close_goes_on_to_the_live_executor_as_its_own_exits_do():
    """swing_1h is live: the kernel's close intent of the trader's Close is forwarded, after the
    commit, to the executor (reduce-only market there: ``Executor.submit_close``), with the
    strategy, symbol, side and the manual reason."""
    candles = sample_candles(2)
    runtime = running_radar()
    StrategyConfig.objects.filter(name="swing_1h").update(live=True)
    executor = ClosingExecutor()
    router = LiveRouter(executor)  # type: ignore[arg-type]
    runtime.recorder.live = router
    runtime.process_candle(SYMBOL, tuple(candles[0]))
    position_id = _open_in_kernel(runtime, "swing_1h", candles[0])
    position_close_request(strategy="swing_1h", position_id=position_id, shadow=False, user=None)
    router.begin()
    runtime.process_candle(SYMBOL, tuple(candles[1]))
    router.committed()
    while not router._queue.empty():
        asyncio.run(router.dispatch(*router._queue.get_nowait()))
    assert [(c["strategy"], c["symbol"], c["side"], c["reason"]) for c in executor.closes] == [
        ("swing_1h", SYMBOL, "long", "manual")
    ]
    assert executor.closes[0]["client_order_id"].startswith("sr-")


@pytest.mark.django_db(transaction=True)
def test_a_close_no_running_strategy_holds_is_finished_with_an_error_alert():
    candles = sample_candles(1)
    runtime = running_radar()
    ghost = TradingSession.objects.create(strategy_name="ghost")
    Position.objects.create(
        session=ghost,
        strategy_name="ghost",
        symbol=SYMBOL,
        side="short",
        ledger_id="1",
        qty=0.01,
        leverage=5,
        entry_price=100_000.0,
        entry_time_ms=int(candles[0][0]) - MINUTE_MS,
        entry_fee=0.6,
        entry_liquidity="taker",
        stop_loss=101_000.0,
        take_profit=98_000.0,
        liquidation_price=119_000.0,
    )
    action = position_close_request(strategy="ghost", position_id="1", shadow=False, user=None)
    runtime.process_candle(SYMBOL, tuple(candles[0]))
    action.refresh_from_db()
    assert action.done_at is not None
    alert = Alert.objects.filter(payload__control_id=action.pk, level="error").get()
    assert "NOT carried out" in alert.message and "close it by hand" in alert.message
    assert Position.objects.get(strategy_name="ghost").status == "open"


@pytest.fixture
def shadow_trade(arena) -> Position:
    """A shadow trade of the killed momentum_breakout: long 0.1 BTC 103,000 → 103,500, gross
    +50, fees 12, funding 0.5 → net +37.50."""
    _, killed = arena["sessions"]
    return Position.objects.create(
        session=killed,
        strategy_name="momentum_breakout",
        symbol=BTC,
        side="long",
        status="closed",
        shadow=True,
        ledger_id="9:shadow",
        qty=0.1,
        leverage=10,
        entry_price=103_000.0,
        entry_time_ms=T0 + 6 * 3_600_000,
        entry_fee=6.0,
        entry_liquidity="taker",
        stop_loss=102_000.0,
        take_profit=103_500.0,
        liquidation_price=93_000.0,
        exit_price=103_500.0,
        exit_time_ms=T0 + 7 * 3_600_000,
        exit_fee=6.0,
        exit_liquidity="taker",
        exit_reason="take_profit",
        funding_usdt=0.5,
        gross_pnl=50.0,
        net_pnl=37.5,
    )


def test_shadow_trades_appear_only_behind_the_filter_tagged_shadow(client_in, shadow_trade):
    """Default: the 5 real trades of the arena fixture, net 47 + 36.9 − 5.4 − 260.5 − 260.5 =
    −442.50. With shadow trades: 6, net −442.50 + 37.50 = −405.00, the shadow one tagged."""
    default = client_in.get(reverse("trades")).content.decode()
    assert "5 trades ·" in default and "−442.50</b> USDT" in default
    assert '<span class="tag">shadow</span>' not in default
    assert 'name="shadow"' in default and "include shadow trades" in default
    shown = client_in.get(reverse("trades"), {"shadow": "on"}).content.decode()
    assert "6 trades (shadow included)" in shown and "−405.00</b> USDT" in shown
    assert shown.count('<span class="tag">shadow</span>') == 1
    assert "shadow=1" in shown  # the CSV link and the pager keep the filter
    assert '<td class="num">103,500.0</td>' in shown


def test_the_csv_writes_plain_numbers_on_the_tick_and_tags_shadow_rows(client_in, shadow_trade):
    def rows(params: dict[str, str]) -> list[list[str]]:
        response = client_in.get(reverse("trades_csv"), params)
        return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    default = rows({"strategy": "momentum_breakout"})
    header = default[0]
    assert header[-1] == "net_pnl_usdt" and "shadow" in header
    assert len(default) == 3 and {r[header.index("shadow")] for r in default[1:]} == {"false"}
    with_shadow = rows({"strategy": "momentum_breakout", "shadow": "1"})
    assert len(with_shadow) == 4
    shadow_row = next(r for r in with_shadow[1:] if r[header.index("shadow")] == "true")
    record = dict(zip(header, shadow_row, strict=True))
    assert record["qty"] == "0.100" and record["leverage"] == "10"
    assert record["entry_price"] == "103000.0" and record["exit_price"] == "103500.0"
    assert record["gross_pnl_usdt"] == "50.00" and record["fees_usdt"] == "12.00"
    assert record["net_pnl_usdt"] == "37.50"
    loss = dict(zip(header, default[1], strict=True))
    assert loss["net_pnl_usdt"] in {"-260.50"}  # −200 − 60 fees − 0.5 funding, ASCII minus
    text = "".join(",".join(r) for r in with_shadow)
    assert "\u2212" not in text and "," not in "".join(
        r[header.index("entry_price")] for r in with_shadow
    )


@pytest.mark.django_db(transaction=True)
def test_a_close_of_a_position_its_stop_closed_first_is_finished_with_a_note():
    """Requested while open; the stop closed it before the radar's next batch: nothing is
    sold twice, the request is finished at the trade's exit time with an info alert."""
    candles = sample_candles(1)
    runtime = running_radar()
    session = TradingSession.objects.create(strategy_name="ghost")
    position = Position.objects.create(
        session=session,
        strategy_name="ghost",
        symbol=SYMBOL,
        side="long",
        ledger_id="2",
        qty=0.01,
        leverage=5,
        entry_price=100_000.0,
        entry_time_ms=T0 - 10 * MINUTE_MS,
        entry_fee=0.6,
        entry_liquidity="taker",
        stop_loss=99_000.0,
        take_profit=102_000.0,
        liquidation_price=81_000.0,
    )
    action = position_close_request(strategy="ghost", position_id="2", shadow=False, user=None)
    Position.objects.filter(pk=position.pk).update(
        status="closed",
        exit_price=99_000.0,
        exit_time_ms=T0 - MINUTE_MS,
        exit_fee=0.59,
        exit_reason="stop_loss",
        gross_pnl=-10.0,
        net_pnl=-11.19,
    )
    runtime.process_candle(SYMBOL, tuple(candles[0]))
    action.refresh_from_db()
    assert action.done_at is not None and action.market_time_ms == T0 - MINUTE_MS
    alert = Alert.objects.filter(payload__control_id=action.pk, level="info").get()
    assert "already closed (stop_loss)" in alert.message
