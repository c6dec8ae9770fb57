"""The REAL ccxt.pro bitget trades against the offline fake's private API: signing, demo header,
error mapping, parsing and private websockets all run through ccxt's own code.

The fake runs 10 market minutes per wall second; resting limits fill whenever the price path
trades through them (fill probability 1, whole size), so each test waits at most a few seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import ccxt
import pytest

from trading.core.fills import LimitFillModel
from trading.exchanges.clients import ExchangeSettings, trading_exchange
from trading.exchanges.fake import FakeAccount, FakeBitget, FakeMarket

BTC = "BTC/USDT:USDT"
KEYS = {"api_key": "fake-key", "secret": "fake-secret", "password": "fake-pass"}
START_BALANCE = 10_000.0
MAKER, TAKER = 0.0002, 0.0006


@pytest.fixture(scope="module")
def market() -> FakeMarket:
    return FakeMarket.from_files()


@pytest.fixture
async def fake(market: FakeMarket) -> AsyncIterator[FakeBitget]:
    """10 market minutes per wall second; limits fill in full once traded through."""
    certain = LimitFillModel(
        base_fill_probability=1.0, touch_probability_factor=1.0, min_fill_fraction=1.0
    )
    account = FakeAccount(market, balance=START_BALANCE, fill_model=certain)
    server = FakeBitget(market, speed=600, account=account)
    await server.start()
    yield server
    await server.stop()


def keyed(settings: ExchangeSettings, fake: FakeBitget, **keys: str) -> Any:
    instance = trading_exchange(settings, base_url=fake.base_url, **{**KEYS, **keys})
    fake.attach(instance)
    instance.timeout_on_exit = 0
    return instance


@pytest.fixture
async def trader(bitget_settings: ExchangeSettings, fake: FakeBitget) -> AsyncIterator[Any]:
    """The keyed demo-mode instance, one-way, BTC isolated at 10x."""
    instance = keyed(bitget_settings, fake)
    await instance.load_markets()
    await instance.set_position_mode(False, BTC)
    await instance.set_margin_mode("isolated", BTC)
    await instance.set_leverage(10, BTC, {"holdSide": "long"})
    yield instance
    await instance.close()


async def until(condition: Callable[[], object], timeout_s: float = 6.0) -> None:
    """Wait (wall time) until ``condition()`` holds; fail after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


def mark(fake: FakeBitget) -> float:
    return fake.account.mark("BTCUSDT", fake.now_ms())


async def buy_at_market(trader: Any, cid: str, **params: Any) -> dict[str, Any]:
    order = {"marginMode": "isolated", "clientOrderId": cid, **params}
    return await trader.create_order(BTC, "market", "buy", 0.01, None, order)


async def test_a_post_only_buy_with_presets_rests_fills_when_traded_through_and_protects_it(
    trader, fake
):
    price = round(mark(fake) - 30, 1)
    params = {
        "postOnly": True,
        "marginMode": "isolated",
        "clientOrderId": "entry-1",
        "stopLoss": {"triggerPrice": price - 1500},
        "takeProfit": {"triggerPrice": price + 1500},
    }
    await trader.create_order(BTC, "limit", "buy", 0.01, price, params)
    [resting] = await trader.fetch_open_orders(BTC)
    assert (resting["clientOrderId"], resting["status"], resting["postOnly"]) == (
        "entry-1",
        "open",
        True,
    )
    assert (resting["stopLossPrice"], resting["takeProfitPrice"]) == (price - 1500, price + 1500)
    assert fake.requests_to("place-order")[-1].body["force"] == "post_only"

    await until(lambda: not fake.account.open_orders)
    filled = await trader.fetch_order(None, BTC, {"clientOrderId": "entry-1"})
    assert (filled["status"], filled["filled"], filled["remaining"]) == ("closed", 0.01, 0)
    assert filled["average"] == price
    assert filled["fee"]["cost"] == pytest.approx(0.01 * price * MAKER)
    [trade] = await trader.fetch_my_trades(BTC)
    assert (trade["order"], trade["takerOrMaker"], trade["price"]) == (filled["id"], "maker", price)
    [position] = await trader.fetch_positions()
    assert (position["side"], position["contracts"], position["entryPrice"]) == (
        "long",
        0.01,
        price,
    )
    assert (position["marginMode"], position["leverage"]) == ("isolated", 10)
    assert position["initialMargin"] == pytest.approx(0.01 * price / 10)
    # Bitget's isolated estimator: (E - M/S) / (1 - MMR - taker), M/S = E / leverage
    assert position["liquidationPrice"] == pytest.approx((price - price / 10) / (1 - 0.0046))
    plans = await trader.fetch_open_orders(BTC, params={"trigger": True, "planType": "profit_loss"})
    by_type = {p["info"]["planType"]: p for p in plans}
    assert set(by_type) == {"pos_loss", "pos_profit"}
    assert (
        by_type["pos_loss"]["stopLossPrice"] == by_type["pos_loss"]["triggerPrice"] == price - 1500
    )
    assert by_type["pos_profit"]["takeProfitPrice"] == price + 1500
    assert {p["side"] for p in plans} == {"sell"}


async def test_a_market_entry_fills_at_once_at_the_ask_with_the_taker_fee(trader, fake):
    created = await buy_at_market(trader, "mkt-1")
    fill = fake.account.fills[-1]
    order = await trader.fetch_order(created["id"], BTC)
    assert (order["status"], order["filled"], order["clientOrderId"]) == ("closed", 0.01, "mkt-1")
    assert order["average"] == fill.price
    assert order["fee"]["cost"] == pytest.approx(0.01 * fill.price * TAKER)
    assert fill.price == round(fake.account.mark("BTCUSDT", fill.c_time) + 0.1, 1)  # bid + tick
    assert fill.scope == "taker"
    assert fake.account.positions["BTCUSDT"].total == 0.01


async def test_a_post_only_buy_that_would_cross_is_accepted_then_cancelled(trader, fake):
    price = round(mark(fake) + 50, 1)  # above the ask: it would take
    params = {"postOnly": True, "marginMode": "isolated", "clientOrderId": "cross-1"}
    created = await trader.create_order(BTC, "limit", "buy", 0.01, price, params)
    order = await trader.fetch_order(created["id"], BTC)
    assert (order["status"], order["filled"], order["postOnly"]) == ("canceled", 0, True)
    assert fake.account.positions == {}


async def test_a_triggered_stop_flattens_the_position_and_cancels_the_target(trader, fake):
    await buy_at_market(trader, "entry-2")
    stop = round(mark(fake) - 40, 1)
    sl = await trader.create_order(
        BTC, "market", "sell", 0.01, None, {"stopLossPrice": stop, "clientOrderId": "sl-2"}
    )
    tp = await trader.create_order(
        BTC, "market", "sell", 0.01, None, {"takeProfitPrice": stop + 5000, "clientOrderId": "tp-2"}
    )
    body = fake.requests_to("place-tpsl-order")[0].body
    assert (body["planType"], body["triggerType"], body["holdSide"]) == (
        "pos_loss",
        "mark_price",
        "buy",
    )
    await until(lambda: "BTCUSDT" not in fake.account.positions)
    assert await trader.fetch_positions() == []
    assert (
        await trader.fetch_open_orders(BTC, params={"trigger": True, "planType": "profit_loss"})
        == []
    )
    done = await trader.fetch_canceled_and_closed_orders(BTC, params={"planType": "profit_loss"})
    status = {o["id"]: o["status"] for o in done}
    assert (status[sl["id"]], status[tp["id"]]) == ("closed", "canceled")
    # freqtrade's rule: the regular order a triggered plan creates carries the plan's id
    close = await trader.fetch_order(None, BTC, {"clientOrderId": sl["id"]})
    assert (close["status"], close["reduceOnly"], close["side"]) == ("closed", True, "sell")
    assert close["average"] == fake.account.fills[-1].price <= stop


async def test_reduce_only_never_flips_the_position(trader, fake):
    await buy_at_market(trader, "entry-3")
    close = await trader.create_order(
        BTC, "market", "sell", 0.05, None, {"reduceOnly": True, "marginMode": "isolated"}
    )
    order = await trader.fetch_order(close["id"], BTC)
    assert (order["filled"], order["reduceOnly"]) == (0.01, True)
    assert fake.account.positions == {}
    with pytest.raises(ccxt.ExchangeError, match="22002"):
        await trader.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})


async def test_an_order_is_cancelled_by_its_client_id(trader, fake):
    price = round(mark(fake) - 3000, 1)
    params = {"postOnly": True, "marginMode": "isolated", "clientOrderId": "far-1"}
    await trader.create_order(BTC, "limit", "buy", 0.01, price, params)
    await trader.cancel_order(None, BTC, {"clientOrderId": "far-1"})
    order = await trader.fetch_order(None, BTC, {"clientOrderId": "far-1"})
    assert order["status"] == "canceled"
    assert await trader.fetch_open_orders(BTC) == []
    with pytest.raises(ccxt.OrderNotFound):
        await trader.cancel_order(None, BTC, {"clientOrderId": "far-1"})


async def test_an_unknown_client_id_raises_order_not_found(trader):
    with pytest.raises(ccxt.OrderNotFound):
        await trader.fetch_order(None, BTC, {"clientOrderId": "never-sent"})


async def test_a_reused_client_id_is_refused_with_bitgets_duplicate_code(trader):
    await buy_at_market(trader, "dup-1")
    with pytest.raises(ccxt.ExchangeError, match="40786"):
        await buy_at_market(trader, "dup-1")


async def test_the_margin_mode_cannot_change_while_a_position_is_open(trader):
    await buy_at_market(trader, "entry-4")
    with pytest.raises(ccxt.ExchangeError, match="45117"):
        await trader.set_margin_mode("cross", BTC)


async def test_a_wrong_secret_raises_authentication_error(bitget_settings, fake):
    intruder = keyed(bitget_settings, fake, secret="not-the-secret")
    try:
        await intruder.load_markets()
        with pytest.raises(ccxt.AuthenticationError, match="40009"):
            await intruder.fetch_balance()
    finally:
        await intruder.close()


async def test_a_demo_key_without_paptrading_gets_40099_as_a_plain_exchange_error(
    bitget_settings, fake
):
    live = keyed(dataclasses.replace(bitget_settings, sandbox=False), fake)
    try:
        await live.load_markets()
        with pytest.raises(ccxt.ExchangeError, match="40099") as raised:
            await live.fetch_balance()
        assert not isinstance(raised.value, ccxt.AuthenticationError)
    finally:
        await live.close()


async def test_a_rejected_stop_placement_raises_the_class_ccxt_maps_and_places_nothing(
    trader, fake
):
    await buy_at_market(trader, "entry-5")
    fake.reject_next("place-tpsl-order", "40917", "Stop price for long positions please < mark")
    with pytest.raises(ccxt.InvalidOrder):
        await trader.create_order(BTC, "market", "sell", 0.01, None, {"stopLossPrice": 1000.0})
    assert fake.account.plan_orders == []


async def test_a_delayed_response_times_out_in_ccxt_while_the_order_exists(trader, fake):
    fake.delay_response_next("place-order", seconds=1.0)
    trader.timeout = 300  # ms
    with pytest.raises(ccxt.RequestTimeout):
        await buy_at_market(trader, "slow-1")
    assert [o.client_oid for o in fake.account.orders.values()] == ["slow-1"]
    trader.timeout = 10_000
    order = await trader.fetch_order(None, BTC, {"clientOrderId": "slow-1"})
    assert order["status"] == "closed"


async def test_a_partial_fill_leaves_the_rest_resting(trader, fake):
    fake.partial_fill_next(BTC, 0.5)
    price = round(mark(fake) - 30, 1)
    params = {"postOnly": True, "marginMode": "isolated", "clientOrderId": "half-1"}
    await trader.create_order(BTC, "limit", "buy", 0.01, price, params)
    await until(lambda: fake.account.fills)
    order = await trader.fetch_order(None, BTC, {"clientOrderId": "half-1"})
    assert (order["status"], order["filled"], order["remaining"]) == ("open", 0.005, 0.005)


async def test_removed_plan_orders_vanish_from_the_exchange(trader, fake):
    await buy_at_market(trader, "entry-6", stopLoss={"triggerPrice": round(mark(fake) - 2000)})
    assert [p.plan_type for p in fake.account.plan_orders] == ["pos_loss"]
    await fake.remove_plan_orders(BTC)
    assert (
        await trader.fetch_open_orders(BTC, params={"trigger": True, "planType": "profit_loss"})
        == []
    )
    assert fake.account.positions["BTCUSDT"].total == 0.01  # the position is unprotected


async def test_the_key_info_reports_its_authorities_without_withdrawal(trader, fake):
    info = (await trader.privateSpotGetV2SpotAccountInfo())["data"]
    assert "wwow" not in info["authorities"] and "coow" in info["authorities"]
    fake.private.authorities = ["coow", "wwow"]
    info = (await trader.privateSpotGetV2SpotAccountInfo())["data"]
    assert "wwow" in info["authorities"]


async def test_each_private_watch_receives_its_frame(trader, fake):
    balance = await trader.watch_balance()  # the account channel answers with a snapshot
    assert balance["USDT"]["total"] == START_BALANCE
    assert await trader.watch_positions() == []  # flat: an empty snapshot
    watches = {
        "orders": asyncio.create_task(trader.watch_orders(BTC)),
        "orders-algo": asyncio.create_task(trader.watch_orders(BTC, params={"trigger": True})),
        "fill": asyncio.create_task(trader.watch_my_trades(BTC)),
        "positions": asyncio.create_task(trader.watch_positions()),
        "account": asyncio.create_task(trader.watch_balance()),
    }

    def subscribed() -> set[str]:
        return {channel for conn in fake.private.connections for channel, _ in conn.subs}

    await until(lambda: subscribed() == set(watches))
    stop = round(mark(fake) - 2000)
    created = await buy_at_market(trader, "ws-1", stopLoss={"triggerPrice": stop})
    async with asyncio.timeout(5):
        orders, plans, trades, positions, balance = await asyncio.gather(*watches.values())
    assert created["id"] in {o["id"] for o in orders}
    assert (plans[-1]["triggerPrice"], plans[-1]["info"]["planType"]) == (stop, "pos_loss")
    assert trades[-1]["order"] == created["id"] and trades[-1]["fee"]["cost"] > 0
    assert (positions[-1]["side"], positions[-1]["contracts"]) == ("long", 0.01)
    assert balance["USDT"]["used"] > 0


async def test_drop_private_websockets_then_ccxt_reconnects_and_logs_in_again(trader, fake):
    await trader.watch_balance()
    await fake.drop_private_websockets()
    balance = None
    async with asyncio.timeout(5):
        while balance is None:
            try:
                balance = await trader.watch_balance()
            except ccxt.NetworkError:
                await asyncio.sleep(0.05)  # the dropped connection's pending watch fails first
    assert balance["USDT"]["total"] == START_BALANCE
    handshakes = [r for r in fake.requests if r.path == "/wspap/v2/ws/private"]
    assert len(handshakes) == 2
    assert all(conn.logged_in for conn in fake.private.connections)


async def test_the_balance_after_a_round_trip_is_start_plus_gross_minus_fees(trader, fake):
    await buy_at_market(trader, "rt-open")
    await trader.create_order(
        BTC, "market", "sell", 0.01, None, {"reduceOnly": True, "clientOrderId": "rt-close"}
    )
    buy, sell = await trader.fetch_my_trades(BTC)
    gross = (sell["price"] - buy["price"]) * 0.01
    fees = buy["fee"]["cost"] + sell["fee"]["cost"]
    balance = await trader.fetch_balance()
    assert balance["USDT"]["total"] == pytest.approx(START_BALANCE + gross - fees, abs=1e-6)
    assert balance["USDT"]["free"] == balance["USDT"]["total"]  # flat: nothing locked
    assert float(sell["info"]["profit"]) == pytest.approx(gross)


async def test_a_plan_order_is_cancelled_by_id_and_an_unknown_one_raises_invalid_order(
    trader, fake
):
    await buy_at_market(trader, "entry-7")
    target = round(mark(fake) + 3000)
    tp = await trader.create_order(BTC, "market", "sell", 0.01, None, {"takeProfitPrice": target})
    await trader.cancel_order(tp["id"], BTC, {"trigger": True, "planType": "pos_profit"})
    assert fake.account.plans[tp["id"]].status == "cancelled"
    with pytest.raises(ccxt.InvalidOrder, match="43025"):
        await trader.cancel_order(tp["id"], BTC, {"trigger": True, "planType": "pos_profit"})


async def test_fail_next_answers_a_post_before_any_action(trader, fake):
    fake.fail_next("/mix/order/place-order", 429)
    with pytest.raises(ccxt.DDoSProtection):
        await buy_at_market(trader, "throttled-1")
    assert fake.account.orders == {}
    assert fake.requests_to("place-order")[-1].body["clientOid"] == "throttled-1"


async def test_a_websocket_login_with_a_wrong_secret_raises_authentication_error(
    bitget_settings, fake
):
    intruder = keyed(bitget_settings, fake, secret="not-the-secret")
    try:
        await intruder.load_markets()
        with pytest.raises(ccxt.AuthenticationError, match="30015"):
            await intruder.watch_balance()
    finally:
        await intruder.close()


async def test_my_trades_since_a_time_leave_out_older_fills(trader, fake):
    await buy_at_market(trader, "old-1")
    since = fake.now_ms() + 1
    await asyncio.sleep(0.01)  # 6 market seconds
    await trader.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    [recent] = await trader.fetch_my_trades(BTC, since=since)
    assert recent["side"] == "sell"
    assert fake.requests_to("/mix/order/fills")[-1].query["startTime"] == str(since)
