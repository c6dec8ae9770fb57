"""The executor on the fake Bitget through the real ccxt: every entry protected, every failure
injected at each step leaves the exchange with no unprotected position.

Each test checks the EXCHANGE's state (the fake's account) after the fact, not only the rows.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.trading.execution.conftest import BTC, ETH, intent, low_ahead, price_now, until
from trading.execution import streams
from trading.execution.reconciler import reconcile_now
from trading.execution.settings import LiveTradingRefused
from trading.models import Fill, LivePosition, Order

pytestmark = pytest.mark.django_db(transaction=True)


def fake_position(fake, symbol: str = BTC):
    return fake.account.positions.get(symbol.split(":")[0].replace("/", ""))


def live_stops(fake, symbol: str = BTC):
    market_id = symbol.split(":")[0].replace("/", "")
    return [
        p
        for p in fake.account.plans.values()
        if p.symbol == market_id and p.status == "live" and p.plan_type == "pos_loss"
    ]


def held(fake, symbol: str = BTC) -> float:
    position = fake_position(fake, symbol)
    return position.total if position is not None else 0.0


async def rows(ex, model, **filters):
    return await ex.db(lambda **kw: list(model.objects.filter(**kw)), **filters)


async def test_a_market_entry_fills_and_its_preset_stop_is_confirmed_on_the_exchange(
    fake, make_executor
):
    ex = await make_executor()
    assert ex.ready
    wanted = intent(fake, cid="sr-en-market1")
    order = await ex.submit_entry(wanted)
    assert order is not None and order.status == "filled"
    [position] = await rows(ex, LivePosition, status="open")
    await until(lambda: ex.db(lambda: LivePosition.objects.get(pk=position.pk).protected))
    assert held(fake) == pytest.approx(0.01)
    [stop] = live_stops(fake)
    sent = fake.requests_to("/order/place-order")[-1].body
    assert sent["clientOid"] == "sr-en-market1" and sent["marginMode"] == "isolated"
    assert float(sent["presetStopLossPrice"]) == stop.trigger_price
    # The stop is on the tick and rounded TOWARD the entry (a long's stop up).
    assert 0 <= stop.trigger_price - wanted["stop_loss"] < 0.1
    assert stop.trigger_price == round(stop.trigger_price, 1)


async def test_a_limit_entry_rests_post_only_and_fills_when_traded_through(fake, make_executor):
    ex = await make_executor()
    limit = min(price_now(fake) * 0.9995, low_ahead(fake, 20) + 1.0)
    order = await ex.submit_entry(intent(fake, cid="sr-en-limit1", limit=limit))
    assert order is not None and order.status == "open" and order.post_only
    body = fake.requests_to("/order/place-order")[-1].body
    assert body["force"] == "post_only" and body["orderType"] == "limit"
    task = asyncio.create_task(streams.run(ex))
    try:
        await until(lambda: held(fake) > 0, timeout_s=15)
        await until(lambda: ex.db(lambda: LivePosition.objects.filter(protected=True).exists()))
    finally:
        task.cancel()
    assert len(live_stops(fake)) == 1
    stored = await ex.db(Order.objects.get, client_id="sr-en-limit1")
    assert stored.status == "filled" and stored.average_price <= limit


async def test_a_stop_found_missing_is_placed_again(fake, make_executor, alerts):
    ex = await make_executor()
    await ex.submit_entry(intent(fake, cid="sr-en-missing1"))
    await until(lambda: ex.db(lambda: LivePosition.objects.filter(protected=True).exists()))
    task = asyncio.create_task(streams.run(ex))
    try:
        await asyncio.sleep(0.5)  # the private streams are subscribed
        await fake.remove_plan_orders(BTC)
        await until(lambda: [s.client_oid for s in live_stops(fake)] == ["sr-en-missing1-sl"])
    finally:
        task.cancel()
    assert held(fake) == pytest.approx(0.01)
    assert any("stop was cancelled" in m for m in alerts.of("error"))


async def test_a_rejected_stop_closes_the_position_at_market(fake, make_executor, alerts):
    ex = await make_executor()
    await ex.submit_entry(intent(fake, cid="sr-en-reject1"))
    [position] = await rows(ex, LivePosition, status="open")
    await until(lambda: ex.db(lambda: LivePosition.objects.get(pk=position.pk).protected))
    await fake.remove_plan_orders(BTC)
    fake.reject_next("place-tpsl-order", "40917", "The stop price is invalid", times=5)
    assert await ex.ensure_protected(position.pk) is False
    await until(lambda: held(fake) == 0)
    closed = await ex.db(LivePosition.objects.get, pk=position.pk)
    assert closed.status == "closed" and closed.exit_reason == "no_stop"
    assert closed.gross_pnl is not None and closed.fees_usdt > 0
    assert any("could not be placed" in m for m in alerts.of("error"))


async def test_a_timeout_after_the_create_request_is_looked_up_never_resent(fake, make_executor):
    ex = await make_executor(timeout_ms=1000)
    fake.delay_response_next("/order/place-order", 2.5)
    order = await ex.submit_entry(intent(fake, cid="sr-en-timeout1"))
    assert order is not None and order.status == "unknown"
    await until(lambda: held(fake) > 0)
    await until(
        lambda: ex.db(lambda: Order.objects.get(client_id="sr-en-timeout1").status == "filled")
    )
    await until(lambda: ex.db(lambda: LivePosition.objects.filter(protected=True).exists()))
    assert len(fake.requests_to("/order/place-order")) == 1  # found by client id, not resent
    assert held(fake) == pytest.approx(0.01)


async def test_an_order_that_never_arrived_is_resubmitted_with_the_same_id(fake, make_executor):
    ex = await make_executor()
    fake.fail_next("/order/place-order", status=503)  # refused before the fake acts
    order = await ex.submit_entry(intent(fake, cid="sr-en-lost1"))
    assert order is not None and order.status == "unknown"
    await until(lambda: held(fake) > 0, timeout_s=15)
    sent = [r.body["clientOid"] for r in fake.requests_to("/order/place-order")]
    assert sent == ["sr-en-lost1", "sr-en-lost1"]
    await until(
        lambda: ex.db(lambda: Order.objects.get(client_id="sr-en-lost1").status == "filled")
    )
    stored = await ex.db(Order.objects.get, client_id="sr-en-lost1")
    assert stored.attempts == 2 and stored.not_found == 0 and stored.status == "filled"


async def test_a_websocket_drop_during_a_fill_is_healed_by_the_rest_poll(fake, make_executor):
    ex = await make_executor()
    limit = min(price_now(fake) * 0.9995, low_ahead(fake, 20) + 1.0)
    await ex.submit_entry(intent(fake, cid="sr-en-drop1", limit=limit))
    task = asyncio.create_task(streams.run(ex))
    try:
        await asyncio.sleep(0.3)
        await fake.drop_private_websockets()
        await until(lambda: held(fake) > 0, timeout_s=15)
        await until(lambda: ex.db(lambda: LivePosition.objects.filter(protected=True).exists()))
    finally:
        task.cancel()
    assert len(live_stops(fake)) == 1


async def test_a_restart_between_fill_and_stop_places_the_stop_before_trading(fake, make_executor):
    first = await make_executor()
    await first.submit_entry(intent(fake, cid="sr-en-restart1"))
    await first.close()  # killed: its stop-confirming task never ran to the end
    await fake.remove_plan_orders(BTC)  # and the exchange holds no stop
    assert held(fake) > 0 and not live_stops(fake)
    second = await make_executor()
    assert second.ready
    assert [s.client_oid for s in live_stops(fake)] == ["sr-en-restart1-sl"]
    assert len(fake.requests_to("/order/place-order")) == 1  # nothing sent twice
    [position] = await rows(second, LivePosition, status="open")
    assert position.protected and position.qty == pytest.approx(held(fake))


async def test_a_partial_fill_is_protected_and_the_rest_cancelled_at_its_time(fake, make_executor):
    ex = await make_executor()
    limit = min(price_now(fake) * 0.9995, low_ahead(fake, 20) + 1.0)
    fake.partial_fill_next(BTC, 0.5)
    await ex.submit_entry(
        intent(fake, cid="sr-en-part1", limit=limit, qty=0.02, expires_in_ms=40 * 60_000)
    )
    task = asyncio.create_task(streams.run(ex))
    try:
        await until(lambda: held(fake) > 0, timeout_s=15)
        # The market stands still as soon as the first half filled: the rest cannot fill now.
        # (Stilled only after the stop was confirmed, a loaded CI machine once let the market
        # trade through the limit again meanwhile and fill the rest: 0.02 held.)
        fake.clock.set_speed(1e-6)
        await until(lambda: ex.db(lambda: LivePosition.objects.filter(protected=True).exists()))
        assert held(fake) == pytest.approx(0.01)
        entry = await ex.db(Order.objects.get, client_id="sr-en-part1")
        assert entry.status == "partially_filled" and entry.filled_qty == pytest.approx(0.01)
        # Its time runs out (the kernel's expires_at_ms, in market time).
        await ex.db(
            lambda: Order.objects.filter(pk=entry.pk).update(expires_at_ms=fake.now_ms() - 1)
        )
        await until(
            lambda: ex.db(lambda: Order.objects.get(client_id="sr-en-part1").status == "cancelled"),
            timeout_s=10,
        )
    finally:
        task.cancel()
    assert not [o for o in fake.account.open_orders if o.client_oid == "sr-en-part1"]
    assert held(fake) > 0 and len(live_stops(fake)) == 1  # what filled keeps its stop


async def test_a_close_intent_closes_reduce_only_and_books_the_exchanges_money(fake, make_executor):
    ex = await make_executor()
    balance_before = fake.account.balance
    await ex.submit_entry(intent(fake, cid="sr-en-close1"))
    await until(lambda: len(live_stops(fake)) == 1)
    fake.advance(5 * 60_000)
    await asyncio.sleep(0.2)
    close = {
        "strategy": "vwap_rsi",
        "symbol": BTC,
        "side": "long",
        "qty": 0.01,
        "reason": "time_stop",
        "client_order_id": "sr-xts-close1",
    }
    order = await ex.submit_close(close)
    assert order is not None and order.reduce_only and order.status == "filled"
    assert held(fake) == 0 and not live_stops(fake)
    [position] = await rows(ex, LivePosition)
    assert position.status == "closed" and position.exit_reason == "time_stop"
    fills = await rows(ex, Fill, live_position=position)
    assert sorted(f.side for f in fills) == ["buy", "sell"]
    # gross − fees is exactly what the exchange booked to the wallet (no funding crossed).
    assert position.net_pnl == pytest.approx(fake.account.balance - balance_before, abs=1e-6)


async def test_the_kill_switch_flatten_cancels_orders_and_closes_positions(fake, make_executor):
    ex = await make_executor()
    await ex.submit_entry(intent(fake, cid="sr-en-kill1"))
    limit = price_now(fake, ETH) * 0.98  # far below: it rests
    await ex.submit_entry(intent(fake, cid="sr-en-kill2", symbol=ETH, limit=limit, qty=0.5))
    assert held(fake) > 0 and fake.account.open_orders
    report = await ex.flatten(None, "account kill switch")
    assert report.complete and report.cancelled == ["sr-en-kill2"] and report.closed == [BTC]
    assert held(fake) == 0 and held(fake, ETH) == 0
    assert not fake.account.open_orders and not live_stops(fake)


async def test_an_unknown_exchange_position_is_closed_at_start(
    fake, make_executor, alerts, bitget_settings
):
    from tests.trading.execution.conftest import keyed_exchange

    manual = keyed_exchange(bitget_settings, fake)
    await manual.load_markets()
    await manual.create_order(BTC, "market", "buy", 0.01, None, {"marginMode": "isolated"})
    await manual.close()
    ex = await make_executor()
    assert ex.ready and held(fake) == 0
    assert any("unknown long position" in m for m in alerts.of("warning"))


async def test_an_unknown_position_is_adopted_with_a_stop_when_configured(
    fake, make_executor, bitget_settings
):
    from tests.trading.execution.conftest import keyed_exchange

    manual = keyed_exchange(bitget_settings, fake)
    await manual.load_markets()
    await manual.create_order(BTC, "market", "buy", 0.01, None, {"marginMode": "isolated"})
    await manual.close()
    entry = fake_position(fake).open_price_avg
    ex = await make_executor(unknown_positions="adopt", adopt_stop_pct=2.0)
    assert ex.ready and held(fake) == pytest.approx(0.01)
    [stop] = live_stops(fake)
    assert stop.trigger_price == pytest.approx(entry * 0.98, abs=0.11)
    [position] = await rows(ex, LivePosition, status="open")
    assert position.adopted and position.strategy_name == "(adopted)" and position.protected


async def test_a_key_that_can_withdraw_is_refused(fake, make_executor):
    fake.private.authorities.append("wwow")
    ex = await make_executor(start=False)
    with pytest.raises(LiveTradingRefused, match="withdraw"):
        await ex.start()


async def test_entries_are_clipped_to_the_caps_and_one_live_position_per_symbol(
    fake, make_executor, alerts
):
    from trading.core.execution import LiveCaps

    ex = await make_executor(strategy_caps=LiveCaps(500.0, 3, 2))
    order = await ex.submit_entry(intent(fake, cid="sr-en-cap1", qty=0.05, leverage=20))
    assert order is not None and order.qty < 0.05 and order.qty * price_now(fake) <= 500.0
    assert order.intent["leverage"] == 3
    assert await ex.submit_entry(intent(fake, cid="sr-en-cap2")) is None
    assert any("already trades BTC/USDT:USDT live" in m for m in alerts.of("warning"))


async def test_nothing_is_sent_before_the_start_up_reconciliation(fake, make_executor, alerts):
    ex = await make_executor(start=False)
    await ex.exchange.load_markets()
    assert await ex.submit_entry(intent(fake, cid="sr-en-early1")) is None
    assert not fake.requests_to("/order/place-order")
    assert any("reconciliation is not clean" in m for m in alerts.of("warning"))


async def test_fills_the_streams_missed_are_found_by_the_reconciliation(
    fake, make_executor, alerts
):
    """No stream and no poll runs: a resting entry half fills on the exchange and rests on
    (still listed as open, so only its fill tells). The reconciliation stores the fill it had
    not seen, linked to the entry and its position, reads the entry again and books what it
    filled — the position is the executor's, protected, not an unknown one closed."""
    ex = await make_executor()
    limit = min(price_now(fake) * 0.9995, low_ahead(fake, 20) + 1.0)
    fake.partial_fill_next(BTC, 0.5)
    await ex.submit_entry(
        intent(fake, cid="sr-en-missed1", limit=limit, qty=0.02, expires_in_ms=60 * 60_000)
    )
    await until(lambda: held(fake) > 0, timeout_s=15)
    fake.clock.set_speed(1e-6)  # the rest waits
    assert not await rows(ex, Fill)
    first = await reconcile_now(ex)
    assert first.clean, first.summary()
    assert any("1 fill(s) not booked" in m for m in alerts.of("warning"))
    [fill] = await rows(ex, Fill)
    [position] = await rows(ex, LivePosition, status="open")
    entry = await ex.db(Order.objects.get, client_id="sr-en-missed1")
    assert fill.order_id == entry.pk and fill.live_position_id == position.pk
    assert entry.status == "partially_filled" and position.qty == pytest.approx(0.01)
    await until(lambda: ex.db(lambda: LivePosition.objects.get(pk=position.pk).protected))

    # The next pass reads only the fills since this one (a minute of overlap): nothing new,
    # nothing alerted, and the fill is not stored twice.
    warned = len(alerts.of("warning"))
    fills_calls = len(fake.requests_to("/order/fills"))
    second = await reconcile_now(ex)
    assert second.clean and len(alerts.of("warning")) == warned
    assert len(fake.requests_to("/order/fills")) == fills_calls + 1  # every symbol at once
    assert [f.trade_id for f in await rows(ex, Fill)] == [fill.trade_id]
    assert len(fake.requests_to("/order/place-order")) == 1


async def test_funding_paid_while_open_is_fetched_and_charged_in_the_net(fake, make_executor):
    """A position held across a funding settlement of the bundled file: the close books the
    exchange's funding bill, net = gross − fees − funding, and that net is exactly what the
    exchange's wallet moved by."""
    ex = await make_executor()
    balance_before = fake.account.balance
    # Wide stop and target: the jump to the settlement must not trigger them on the way.
    await ex.submit_entry(intent(fake, cid="sr-en-fund1", stop_pct=25.0, target_pct=60.0))
    await until(lambda: len(live_stops(fake)) == 1)
    _, settles_ms = fake.market.funding_now("BTCUSDT", fake.now_ms())
    fake.advance(settles_ms - fake.now_ms() + 60_000)
    await until(lambda: bool(fake.account.bills), timeout_s=5)
    [bill] = fake.account.bills
    assert bill.amount != 0
    order = await ex.submit_close(
        {
            "strategy": "vwap_rsi",
            "symbol": BTC,
            "side": "long",
            "qty": 0.01,
            "reason": "time_stop",
            "client_order_id": "sr-xts-fund1",
        }
    )
    assert order is not None and order.status == "filled"
    [position] = await rows(ex, LivePosition)
    assert position.status == "closed"
    assert position.funding_usdt == pytest.approx(-bill.amount, abs=1e-8)
    assert position.net_pnl == pytest.approx(
        position.gross_pnl - position.fees_usdt - position.funding_usdt, abs=1e-9
    )
    assert position.net_pnl == pytest.approx(fake.account.balance - balance_before, abs=1e-6)
