"""The live gate (off by default, demo first, mainnet only on a second variable) and the order
store (written before the request, moved only by the state machine, fills stored once)."""

from __future__ import annotations

import pytest

from trading.core.execution import IllegalOrderTransition, OrderRole, OrderStatus
from trading.core.types import Side
from trading.exchanges.clients import ExchangeSettings
from trading.execution import store
from trading.execution.settings import DATA_URL_ENV, ENABLED_ENV, MAINNET_ENV, live_gate
from trading.models import Fill, Order

KEYS = {"BITGET_API_KEY": "k", "BITGET_API_SECRET": "s", "BITGET_API_PASSWORD": "p"}


def _exchange(bitget_settings: ExchangeSettings, *, sandbox: bool) -> ExchangeSettings:
    from dataclasses import replace

    return replace(bitget_settings, sandbox=sandbox)


def test_live_trading_is_off_unless_enabled_and_keyed(bitget_settings):
    demo = _exchange(bitget_settings, sandbox=True)
    off = live_gate(demo, KEYS)
    assert not off.allowed and ENABLED_ENV in off.reason
    keyless = live_gate(demo, {ENABLED_ENV: "true"})
    assert not keyless.allowed and "BITGET_API_KEY, BITGET_API_SECRET" in keyless.reason
    on = live_gate(demo, {ENABLED_ENV: "true", **KEYS})
    assert on.allowed and on.demo and on.credentials == ("k", "s", "p")
    assert "'k'" not in repr(on) and "'s'" not in repr(on)  # the keys never show


def test_live_trading_is_refused_on_market_data_from_another_server(bitget_settings):
    demo = _exchange(bitget_settings, sandbox=True)
    enabled = {ENABLED_ENV: "true", **KEYS}
    assert live_gate(demo, enabled).allowed
    elsewhere = live_gate(demo, {**enabled, DATA_URL_ENV: "http://127.0.0.1:8765"})
    assert not elsewhere.allowed and "http://127.0.0.1:8765" in elsewhere.reason
    assert elsewhere.credentials == ("", "", "")  # the keys are not handed out


def test_mainnet_needs_its_own_second_variable(bitget_settings):
    mainnet = _exchange(bitget_settings, sandbox=False)
    refused = live_gate(mainnet, {ENABLED_ENV: "true", **KEYS})
    assert not refused.allowed and MAINNET_ENV in refused.reason
    allowed = live_gate(mainnet, {ENABLED_ENV: "true", MAINNET_ENV: "true", **KEYS})
    assert allowed.allowed and not allowed.demo


def _order(cid: str = "sr-en-abc") -> Order:
    order, created = store.order_record(
        client_id=cid,
        strategy="vwap_rsi",
        symbol="BTC/USDT:USDT",
        role=OrderRole.ENTRY,
        side="buy",
        order_type="limit",
        qty=0.01,
        price=100_000.0,
        post_only=True,
    )
    assert created
    return order


@pytest.mark.django_db
def test_an_order_is_recorded_once_and_a_second_record_returns_it_untouched():
    order = _order()
    again, created = store.order_record(
        client_id=order.client_id,
        strategy="other",
        symbol="ETH/USDT:USDT",
        role=OrderRole.EXIT,
        side="sell",
        order_type="market",
        qty=5.0,
    )
    assert not created and (again.pk, again.strategy_name, again.qty) == (
        order.pk,
        "vwap_rsi",
        0.01,
    )
    assert again.status == OrderStatus.PENDING_SUBMIT.value


@pytest.mark.django_db
def test_a_stale_report_cannot_move_an_order_back_or_shrink_its_fill():
    order = _order()
    store.order_transition(client_id=order.client_id, status=OrderStatus.OPEN)
    store.order_transition(client_id=order.client_id, status=OrderStatus.FILLED, filled_qty=0.01)
    with pytest.raises(IllegalOrderTransition):
        store.order_transition(client_id=order.client_id, status=OrderStatus.OPEN)
    with pytest.raises(IllegalOrderTransition, match="stale"):
        store.order_transition(
            client_id=order.client_id, status=OrderStatus.FILLED, filled_qty=0.005
        )
    stored = Order.objects.get(client_id=order.client_id)
    assert (stored.status, stored.filled_qty) == ("filled", 0.01)


@pytest.mark.django_db
def test_a_fill_seen_twice_is_stored_once():
    kwargs = {
        "trade_id": "t-1",
        "order": None,
        "client_id": "sr-en-abc",
        "symbol": "BTC/USDT:USDT",
        "side": "buy",
        "qty": 0.01,
        "price": 100_000.0,
        "fee_usdt": 0.2,
        "liquidity": "maker",
        "time_ms": 1,
    }
    assert store.fill_record(**kwargs) is not None
    assert store.fill_record(**kwargs) is None
    assert Fill.objects.count() == 1


@pytest.mark.django_db
def test_a_close_is_booked_from_its_fills_gross_fees_net():
    """Long 0.02 BTC: 0.01 @ 100,000 and 0.01 @ 100,100 (avg 100,050), exit 0.02 @ 100,500.
    gross = (100,500 − 100,050) × 0.02 = 9.00; fees 0.2 + 0.2 + 1.206 = 1.606;
    funding 0.5 paid → net = 9.00 − 1.606 − 0.5 = 6.894 USDT."""
    position = store.live_position_open(
        strategy="vwap_rsi",
        symbol="BTC/USDT:USDT",
        side=Side.LONG,
        qty=0.02,
        entry_price=100_050.0,
        leverage=10,
        stop_loss=99_000.0,
        take_profit=101_000.0,
        opened_ms=0,
    )
    for i, (side, qty, price, fee) in enumerate(
        [
            ("buy", 0.01, 100_000.0, 0.2),
            ("buy", 0.01, 100_100.0, 0.2),
            ("sell", 0.02, 100_500.0, 1.206),
        ]
    ):
        store.fill_record(
            trade_id=f"t{i}",
            order=None,
            client_id="",
            symbol="BTC/USDT:USDT",
            side=side,
            qty=qty,
            price=price,
            fee_usdt=fee,
            liquidity="taker",
            time_ms=i,
            live_position=position,
        )
    closed = store.live_position_close(
        position_id=position.pk, closed_ms=9, exit_reason="take_profit", funding_usdt=0.5
    )
    assert closed.gross_pnl == pytest.approx(9.0, abs=1e-9)
    assert closed.fees_usdt == pytest.approx(1.606, abs=1e-12)
    assert closed.net_pnl == pytest.approx(6.894, abs=1e-9)
    assert (closed.status, closed.qty, closed.exit_price) == ("closed", 0.0, 100_500.0)


@pytest.mark.django_db
def test_a_close_without_exit_fills_shows_no_pnl_rather_than_zero():
    position = store.live_position_open(
        strategy="vwap_rsi",
        symbol="BTC/USDT:USDT",
        side=Side.SHORT,
        qty=0.01,
        entry_price=100_000.0,
        leverage=10,
        stop_loss=101_000.0,
        take_profit=None,
        opened_ms=0,
    )
    closed = store.live_position_close(position_id=position.pk, closed_ms=1, exit_reason="x")
    assert closed.gross_pnl is None and closed.net_pnl is None
