"""The Live page: live positions, orders, fills, the journal beside the paper twin, the go-live /
back-to-paper / flatten controls, and its live rows over Channels."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from common.presenters import ORDER_TERMINAL_STATUSES, render_event
from scalpradar.asgi import application
from strategies.models import ControlAction, StrategyConfig
from tests.web.test_security import INLINE_HANDLER, INLINE_SCRIPT
from trading import live_selectors
from trading.core.execution import OrderRole, OrderStatus
from trading.core.types import Side
from trading.execution import store
from trading.models import Asset, Fill, LivePosition, Order, Position, TradingSession

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC
ENTRY_ID = "sr-en-abc123"


@pytest.fixture
def trader_in(client_in, user):
    """The logged-in user, in the "trader" group (the steer permission)."""
    user.groups.add(Group.objects.get(name="trader"))
    return client_in


@pytest.fixture
def book(db) -> dict:
    """vwap_rsi on paper with a closed live trade beside its paper twin (the docstring's worked
    example); momentum_breakout live with an open unprotected position, an open stop order and
    an adopted position closed while the executor was away."""
    for symbol, base, tick, lot in ((BTC, "BTC", 0.1, 0.001), (ETH, "ETH", 0.01, 0.01)):
        Asset.objects.create(symbol=symbol, base=base, price_tick=tick, qty_step=lot, min_qty=lot)
    StrategyConfig.objects.create(name="vwap_rsi", kind="vwap_rsi")
    StrategyConfig.objects.create(name="momentum_breakout", kind="momentum_breakout", live=True)
    paper_session = TradingSession.objects.create(strategy_name="vwap_rsi")
    TradingSession.objects.create(strategy_name="momentum_breakout")
    twin = Position.objects.create(
        session=paper_session,
        strategy_name="vwap_rsi",
        symbol=BTC,
        side="long",
        status="closed",
        ledger_id="p1",
        entry_client_id=ENTRY_ID,
        qty=0.1,
        leverage=10,
        entry_price=100_000.0,
        entry_time_ms=T0,
        entry_fee=6.0,
        entry_liquidity="taker",
        stop_loss=99_500.0,
        take_profit=101_000.0,
        liquidation_price=90_500.0,
        exit_price=101_000.0,
        exit_time_ms=T0 + 1_800_000,
        exit_fee=6.06,
        exit_liquidity="taker",
        exit_reason="take_profit",
        funding_usdt=0.5,
        gross_pnl=100.0,
        net_pnl=100.0 - 12.06 - 0.5,
    )
    closed = LivePosition.objects.create(
        strategy_name="vwap_rsi",
        symbol=BTC,
        side="long",
        status="closed",
        entry_client_id=ENTRY_ID,
        qty=0.0,
        entry_price=100_010.0,
        leverage=10,
        stop_loss=99_500.0,
        take_profit=101_000.0,
        protected=True,
        opened_ms=T0 + 300,
        closed_ms=T0 + 1_800_400,
        exit_price=100_990.0,
        exit_reason="take_profit",
        gross_pnl=98.0,
        fees_usdt=12.1,
        funding_usdt=0.4,
        net_pnl=98.0 - 12.1 - 0.4,
    )
    entry = Order.objects.create(
        client_id=ENTRY_ID,
        live_position=closed,
        strategy_name="vwap_rsi",
        symbol=BTC,
        role="entry",
        side="buy",
        order_type="limit",
        qty=0.1,
        price=100_010.0,
        status="filled",
        filled_qty=0.1,
        average_price=100_010.0,
        signal_ms=T0,
        submitted_ms=T0 + 12,
        acknowledged_ms=T0 + 55,
        filled_ms=T0 + 302,
    )
    Fill.objects.create(
        trade_id="t-1",
        order=entry,
        live_position=closed,
        client_id=ENTRY_ID,
        symbol=BTC,
        side="buy",
        qty=0.1,
        price=100_010.0,
        fee_usdt=6.0006,
        liquidity="taker",
        time_ms=T0 + 302,
    )
    adopted = LivePosition.objects.create(
        strategy_name="momentum_breakout",
        symbol=ETH,
        side="short",
        status="closed",
        adopted=True,
        qty=0.0,
        entry_price=2_500.0,
        opened_ms=T0 + 60_000,
        closed_ms=T0 + 900_000,
        exit_reason="closed on the exchange",
    )
    unprotected = LivePosition.objects.create(
        strategy_name="momentum_breakout",
        symbol=BTC,
        side="long",
        entry_client_id="sr-en-def456",
        qty=0.05,
        entry_price=104_000.0,
        leverage=10,
        stop_loss=103_500.0,
        take_profit=105_000.0,
        protected=False,
        liquidation_price=94_321.5,
        mark_price=104_100.0,
        opened_ms=T0 + 3_600_000,
    )
    stop = Order.objects.create(
        client_id="sr-en-def456-sl",
        live_position=unprotected,
        strategy_name="momentum_breakout",
        symbol=BTC,
        role="stop",
        side="sell",
        order_type="market",
        qty=0.05,
        trigger_price=103_500.0,
        reduce_only=True,
        status="pending_submit",
        error="timeout: looked up next",
    )
    Order.objects.create(
        client_id="sr-en-old-tp",
        strategy_name="momentum_breakout",
        symbol=BTC,
        role="target",
        side="sell",
        order_type="limit",
        qty=0.05,
        status="cancelled",
    )
    return {
        "twin": twin,
        "closed": closed,
        "adopted": adopted,
        "unprotected": unprotected,
        "stop": stop,
    }


def _html(client: Client, **extra: str) -> str:
    response = client.get(reverse("live"), **extra)
    assert response.status_code == 200
    return response.content.decode()


# --- the page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_live_page_needs_a_login(client):
    response = client.get(reverse("live"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_the_live_page_renders_with_an_empty_database_and_says_live_trading_is_off(client_in):
    html = _html(client_in)
    assert '<a href="/live/" class="active">Live</a>' in html
    assert "LIVE_TRADING_ENABLED=true" in html and "--exchange fake" in html
    assert "none — every strategy trades on paper only" in html
    assert "0 open live positions · 0 open orders" in html
    assert 'ws-connect="/ws/live/?groups=live"' in html


def test_the_header_names_the_live_strategies_and_counts_what_is_open(client_in, book):
    html = _html(client_in)
    assert '<b>momentum_breakout</b> <span class="tag live">LIVE</span>' in html
    assert "<b>vwap_rsi</b>" not in html
    assert "1 open live position (" in html and "1 without a stop held" in html
    assert "1 open order " in html


def test_an_unprotected_open_position_shows_no_stop_with_the_exchange_stop_and_target(
    client_in, book
):
    html = _html(client_in)
    row = html.split(f'id="live-livepos-{book["unprotected"].pk}"', 1)[1].split("</div>", 1)[0]
    assert '<span class="tag down">NO STOP</span>' in row
    # On the BTC tick (0.1) and lot (0.001), thousands grouped (trading.core.numbers).
    cells = ("0.050", "104,000.0", "104,100.0", "103,500.0", "105,000.0", "94,321.5", "10×")
    for cell in (*cells, "2025-06-17 01:00:00"):
        assert f">{cell}<" in row, cell
    assert f'id="live-livepos-{book["closed"].pk}"' not in html  # closed: not an open row


def test_a_protected_open_position_shows_its_stop_held(client_in, book):
    LivePosition.objects.filter(pk=book["unprotected"].pk).update(protected=True)
    html = _html(client_in)
    assert "NO STOP" not in html and '<span class="tag accepted">stop held</span>' in html


def test_open_orders_list_what_is_not_terminal_with_its_error(client_in, book):
    html = _html(client_in)
    row = html.split('id="live-order-sr-en-def456-sl"', 1)[1].split("</div>", 1)[0]
    assert ">stop<" in row and ">103,500.0<" in row and "pending_submit" in row
    assert "timeout: looked up next" in row
    assert "sr-en-old-tp" not in html  # cancelled
    assert f'id="live-order-{ENTRY_ID}"' not in html  # filled: not open


def test_recent_fills_show_price_fee_liquidity_and_the_order_client_id(client_in, book):
    fills = html_section(_html(client_in), "Recent fills")
    assert ">100,010.0<" in fills and ">6.0006<" in fills and ">taker<" in fills
    assert f">{ENTRY_ID}<" in fills and "exchange trade t-1" in fills


def html_section(html: str, title: str) -> str:
    return html.split(title, 1)[1].split("</section>", 1)[0]


# --- the journal ---------------------------------------------------------------------------


def test_price_gaps_are_in_basis_points_positive_when_worse_for_the_trader():
    # The docstring's worked example (long): bought 10 higher, sold 10 lower.
    entry = live_selectors.price_gap_bp(Side.LONG, 100_010.0, 100_000.0, leg="entry")
    exit_ = live_selectors.price_gap_bp(Side.LONG, 100_990.0, 101_000.0, leg="exit")
    assert entry == pytest.approx(1.0, abs=1e-12)
    assert exit_ == pytest.approx(10 / 101_000 * 10_000, abs=1e-12)  # 0.990099 bp
    # A short: selling lower on entry and buying back higher on exit are worse.
    assert live_selectors.price_gap_bp(Side.SHORT, 99_990.0, 100_000.0, leg="entry") == (
        pytest.approx(1.0, abs=1e-12)
    )
    assert live_selectors.price_gap_bp(Side.SHORT, 101_010.0, 101_000.0, leg="exit") == (
        pytest.approx(10 / 101_000 * 10_000, abs=1e-12)
    )
    # Better than paper is negative; a missing price is None (shown "—"), never 0.
    assert live_selectors.price_gap_bp(Side.LONG, 99_990.0, 100_000.0, leg="entry") < 0
    assert live_selectors.price_gap_bp(Side.LONG, None, 100_000.0, leg="exit") is None


def _journal_cells(html: str, live_id: int) -> list[str]:
    """The cells of one journal line (``<td>`` texts, tags stripped), in column order."""
    table = html_section(html, "Journal")
    row = table.split(f'data-live-id="{live_id}"', 1)[1].split("</tr>", 1)[0]
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]


JOURNAL_COLUMNS = (
    "closed",
    "strategy",
    "symbol",
    "side",
    "live_entry",
    "paper_entry",
    "entry_bp",
    "live_exit",
    "paper_exit",
    "exit_bp",
    "live_fees",
    "paper_fees",
    "live_funding",
    "paper_funding",
    "live_gross",
    "paper_gross",
    "live_net",
    "paper_net",
    "live_reason",
    "paper_reason",
    "signal_to_request",
    "request_to_ack",
    "ack_to_fill",
)


def test_the_journal_sets_a_live_trade_beside_its_paper_twin(client_in, book):
    row = next(r for r in live_selectors.journal() if r["id"] == book["closed"].pk)
    assert row["paper_entry"] == 100_000.0 and row["paper_exit"] == 101_000.0
    assert row["entry_bp"] == pytest.approx(1.0)
    assert row["exit_bp"] == pytest.approx(0.990099, abs=1e-6)
    assert row["live_fees"] == pytest.approx(12.1) and row["paper_fees"] == pytest.approx(12.06)
    assert row["live_net"] == pytest.approx(85.5) and row["paper_net"] == pytest.approx(87.44)
    assert (row["signal_to_request"], row["request_to_ack"], row["ack_to_fill"]) == (12, 43, 247)
    html = _html(client_in)
    assert "POSITIVE = WORSE for the trader" in html_section(html, "Journal")  # the convention
    cells = dict(zip(JOURNAL_COLUMNS, _journal_cells(html, book["closed"].pk), strict=True))
    assert cells == {
        "closed": "2025-06-17 00:30:00",
        "strategy": "vwap_rsi",
        "symbol": BTC,
        "side": "long",
        "live_entry": "100,010.0",
        "paper_entry": "100,000.0",
        "entry_bp": "+1.00 bp",
        "live_exit": "100,990.0",
        "paper_exit": "101,000.0",
        "exit_bp": "+0.99 bp",
        "live_fees": "12.10",
        "paper_fees": "12.06",
        "live_funding": "0.40",
        "paper_funding": "0.50",
        "live_gross": "98.00",
        "paper_gross": "100.00",
        "live_net": "85.50",
        "paper_net": "87.44",
        "live_reason": "take_profit",
        "paper_reason": "take_profit",
        "signal_to_request": "12 ms",
        "request_to_ack": "43 ms",
        "ack_to_fill": "247 ms",
    }


def test_an_adopted_position_has_no_paper_columns_and_no_made_up_numbers(client_in, book):
    row = next(r for r in live_selectors.journal() if r["id"] == book["adopted"].pk)
    assert row["adopted"] and not row["has_twin"]
    cells = dict(zip(JOURNAL_COLUMNS, _journal_cells(_html(client_in), row["id"]), strict=True))
    assert cells["strategy"] == "momentum_breakout adopted" and cells["live_entry"] == "2,500.00"
    unknown = [k for k in JOURNAL_COLUMNS if k.startswith("paper_") or "_to_" in k]
    unknown += ["entry_bp", "exit_bp", "live_exit", "live_fees", "live_gross", "live_net"]
    assert {k: cells[k] for k in unknown} == dict.fromkeys(unknown, "—")
    assert cells["live_reason"] == "closed on the exchange"


def test_the_journal_is_newest_close_first_and_capped(book):
    rows = live_selectors.journal()
    assert [r["id"] for r in rows] == [book["closed"].pk, book["adopted"].pk]
    assert [r["id"] for r in live_selectors.journal(limit=1)] == [book["closed"].pk]


def test_a_twin_still_open_shows_open_not_an_exit(client_in, book):
    Position.objects.filter(pk=book["twin"].pk).update(
        status="open", exit_price=None, exit_fee=None, gross_pnl=None, net_pnl=None
    )
    row = next(r for r in live_selectors.journal() if r["id"] == book["closed"].pk)
    assert row["twin_open"] and row["paper_exit"] is None and row["exit_bp"] is None
    assert row["paper_fees"] == pytest.approx(6.0)  # its entry fee so far
    assert '<span class="muted">open</span>' in html_section(_html(client_in), "Journal")


# --- controls ------------------------------------------------------------------------------


def test_the_controls_are_rendered_for_traders_only(client, user, book):
    client.force_login(user)
    viewer = _html(client)
    user.groups.add(Group.objects.get(name="trader"))
    trader = _html(client)
    for marker in ('action="/control/"', "Go live", "Back to paper", "Flatten all"):
        assert marker in trader
        assert marker not in viewer
    assert 'name="next" value="/live/"' in trader


def test_a_viewer_is_refused_going_live_and_nothing_changes(client_in, book):
    post = {"action": "live", "name": "vwap_rsi", "reason": "ready", "confirm": "on"}
    assert client_in.post(reverse("control"), post).status_code == 403
    assert not StrategyConfig.objects.get(name="vwap_rsi").live
    for action in ("paper", "flatten"):
        post = {"action": action, "name": "momentum_breakout", "reason": "x", "confirm": "on"}
        assert client_in.post(reverse("control"), post).status_code == 403
    assert StrategyConfig.objects.get(name="momentum_breakout").live
    assert ControlAction.objects.count() == 0


def test_a_trader_goes_live_with_a_reason_and_it_is_recorded(trader_in, user, book):
    post = {
        "action": "live",
        "name": "vwap_rsi",
        "reason": "30 days of paper",
        "confirm": "on",
        "next": "/live/",
    }
    response = trader_in.post(reverse("control"), post)
    assert response.status_code == 302 and response["Location"] == "/live/"
    assert StrategyConfig.objects.get(name="vwap_rsi").live
    action = ControlAction.objects.get()
    assert (action.strategy_name, action.action, action.user, action.reason) == (
        "vwap_rsi",
        ControlAction.Action.GO_LIVE,
        user,
        "30 days of paper",
    )
    assert "<b>vwap_rsi</b>" in _html(trader_in)


def test_going_live_without_a_reason_is_refused_with_a_message(trader_in, book):
    post = {"action": "live", "name": "vwap_rsi", "reason": " ", "confirm": "on", "next": "/live/"}
    page = trader_in.post(reverse("control"), post, follow=True).content.decode()
    assert "say why the strategy goes live" in page
    assert not StrategyConfig.objects.get(name="vwap_rsi").live
    assert ControlAction.objects.count() == 0


def test_going_live_needs_the_confirm_tick(trader_in, book):
    post = {"action": "live", "name": "vwap_rsi", "reason": "ready", "next": "/live/"}
    page = trader_in.post(reverse("control"), post, follow=True).content.decode()
    assert "tick confirm" in page
    assert not StrategyConfig.objects.get(name="vwap_rsi").live


def test_back_to_paper_and_flatten_all_are_recorded(trader_in, user, book):
    url = reverse("control")
    trader_in.post(
        url, {"action": "paper", "name": "momentum_breakout", "reason": "drift", "confirm": "on"}
    )
    assert not StrategyConfig.objects.get(name="momentum_breakout").live
    trader_in.post(url, {"action": "live", "name": "vwap_rsi", "reason": "go", "confirm": "on"})
    post = {"action": "flatten", "name": "", "reason": "exchange outage", "confirm": "on"}
    page = trader_in.post(url, {**post, "next": "/live/"}, follow=True).content.decode()
    assert "flatten account: requested" in page
    assert "Flatten of every live strategy requested" in page and "not carried out yet" in page
    assert not StrategyConfig.objects.filter(live=True).exists()
    actions = list(ControlAction.objects.order_by("created_at", "id"))
    assert [(a.strategy_name, a.action, a.reason) for a in actions] == [
        ("momentum_breakout", "go_paper", "drift"),
        ("vwap_rsi", "go_live", "go"),
        ("", "flatten", "exchange outage"),
    ]


def test_the_live_page_has_no_inline_script_style_or_handler(trader_in, book):
    html = _html(trader_in)
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_HANDLER.search(html)


def test_htmx_gets_only_the_board(client_in, book):
    part = _html(client_in, HTTP_HX_REQUEST="true")
    assert "<html" not in part and part.strip().startswith('<div id="live-trading">')
    assert "NO STOP" in part


# --- live updates --------------------------------------------------------------------------


def test_order_terminal_statuses_are_the_state_machines():
    assert {s.value for s in OrderStatus if s.terminal} == ORDER_TERMINAL_STATUSES


def test_a_live_position_event_replaces_its_row_out_of_band(client_in, book):
    position = book["unprotected"]
    html = render_event("live.position", store.position_event(position))
    row_id = f"live-livepos-{position.pk}"
    assert html.startswith(f'<div id="{row_id}" hx-swap-oob="delete"></div>')
    assert '<div hx-swap-oob="afterbegin:#live-livepos-body"><div class="tr"' in html
    assert f'id="{row_id}"' in html and "NO STOP" in html and ">103,500.0<" in html
    assert '<span class="muted">2025-06-17 01:00:00</span>' in html  # its opening time
    page = _html(client_in)
    assert 'id="live-livepos-body"' in page and f'id="{row_id}"' in page  # same ids


def test_a_closed_live_position_event_only_removes_its_row(book):
    html = render_event("live.position", store.position_event(book["closed"]))
    assert html == f'<div id="live-livepos-{book["closed"].pk}" hx-swap-oob="delete"></div>'


def test_a_live_order_event_upserts_its_row_and_a_terminal_one_removes_it(book):
    order = book["stop"]
    html = render_event("live.order", store.order_event(order))
    assert html.startswith('<div id="live-order-sr-en-def456-sl" hx-swap-oob="delete"></div>')
    assert 'hx-swap-oob="afterbegin:#live-orders-body"' in html and ">pending_submit<" in html
    order.status, order.filled_qty = "filled", 0.05
    html = render_event("live.order", store.order_event(order))
    assert html == '<div id="live-order-sr-en-def456-sl" hx-swap-oob="delete"></div>'


# --- paper and live elsewhere --------------------------------------------------------------


def test_the_arena_tags_live_strategies(client_in, book):
    html = client_in.get(reverse("arena")).content.decode()
    row = html.split('id="live-arena-row-momentum_breakout"', 1)[1].split('class="tr"', 1)[0]
    assert 'class="tag live"' in row and ">LIVE</a>" in row
    paper_row = html.split('id="live-arena-row-vwap_rsi"', 1)[1].split('class="tr"', 1)[0]
    paper_row = paper_row.split("</section>", 1)[0]  # the last row: not the live book below
    assert "tag live" not in paper_row


def test_the_trades_page_points_to_the_live_journal(client_in):
    html = client_in.get(reverse("trades")).content.decode()
    assert '<a href="/live/">Live journal</a>' in html


# --- the socket ----------------------------------------------------------------------------


def _session_cookie() -> bytes:
    user = User.objects.create_user("watcher", password="s3cret-pass-123")
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


@pytest.mark.django_db(transaction=True)
async def test_a_socket_joins_live_and_receives_the_stores_order_frames():
    cookie = await sync_to_async(_session_cookie)()
    communicator = WebsocketCommunicator(
        application,
        "/ws/live/?groups=live",
        headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)],
    )
    assert (await communicator.connect())[0]
    # The executor's own write: the frame is published after its commit.
    await sync_to_async(store.order_record)(
        client_id="sr-en-ws1",
        strategy="vwap_rsi",
        symbol=BTC,
        role=OrderRole.ENTRY,
        side="buy",
        order_type="limit",
        qty=0.1,
        price=100_000.0,
    )
    html = await communicator.receive_from(timeout=5)
    assert 'hx-swap-oob="afterbegin:#live-orders-body"' in html
    assert 'id="live-order-sr-en-ws1"' in html and ">100,000<" in html  # no tick known
    await sync_to_async(store.order_transition)(client_id="sr-en-ws1", status=OrderStatus.REJECTED)
    html = await communicator.receive_from(timeout=5)
    assert html == '<div id="live-order-sr-en-ws1" hx-swap-oob="delete"></div>'
    await communicator.disconnect()
