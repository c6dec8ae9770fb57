"""A trader's Close of one LIVE position (the Live page), carried out by the live executor on the
fake Bitget through the real ccxt (request building, signing, error mapping, parsing).

The request is recorded by ``strategies.closes.live_position_close_request``; the live router
reads it with the flatten requests (``LiveRouter.refresh``), hands it over at ``committed`` and
the executor closes the position reduce-only at market (``Executor.close_on_request``). Each
test checks the EXCHANGE's state (the fake's account) after the fact, then the stored rows.

The positions here have no paper twin: ``vwap_rsi`` is not live (as after "back to paper"),
and one is adopted — the Close the Positions page cannot offer.
"""

from __future__ import annotations

import asyncio

import pytest
from django.contrib.auth.models import User

from radar.live import LiveRouter
from strategies.closes import live_position_close_request
from strategies.models import ControlAction
from tests.trading.execution.conftest import (  # noqa: F401  (fixtures)
    BTC,
    alerts,
    bitget_settings,
    fake,
    intent,
    keyed_exchange,
    make_executor,
    market,
    price_now,
    until,
)
from trading.execution import streams
from trading.models import Alert, Fill, LivePosition, Order

pytestmark = pytest.mark.django_db(transaction=True)
MARKET_ID = "BTCUSDT"


def held(fake) -> float:  # noqa: F811
    position = fake.account.positions.get(MARKET_ID)
    return position.total if position is not None else 0.0


def live_plans(fake) -> list:  # noqa: F811
    """The stop and target plan orders the exchange still holds for BTC."""
    return [p for p in fake.account.plans.values() if p.symbol == MARKET_ID and p.status == "live"]


def resting(fake) -> list:  # noqa: F811
    return [o for o in fake.account.open_orders if o.symbol == MARKET_ID]


async def open_protected(ex, fake, cid: str) -> LivePosition:  # noqa: F811
    """A market long 0.01 BTC with its preset stop and target, both held on the exchange."""
    await ex.submit_entry(intent(fake, cid=cid))
    [position] = await ex.db(lambda: list(LivePosition.objects.filter(status="open")))
    await until(lambda: ex.db(lambda: LivePosition.objects.get(pk=position.pk).protected))
    assert sorted(p.plan_type for p in live_plans(fake)) == ["pos_loss", "pos_profit"]
    return position


async def request_and_carry_out(ex, position: LivePosition, reason: str) -> ControlAction:
    """The Live page's request by a trader, then the router's controls read and hand-over."""

    def request() -> ControlAction:
        user, _ = User.objects.get_or_create(username="closer")
        return live_position_close_request(live_position_id=position.pk, user=user, reason=reason)

    action = await ex.db(request)
    router = LiveRouter(ex)
    await ex.db(router.refresh)
    router.committed()
    assert router._queue.qsize() == 1
    while not router._queue.empty():
        await router.dispatch(*router._queue.get_nowait())
    # Read again: the stamped request is not handed over twice.
    await ex.db(router.refresh)
    router.committed()
    assert router._queue.empty()
    return await ex.db(ControlAction.objects.select_related("user").get, pk=action.pk)


async def alerts_of(ex, action: ControlAction) -> list[tuple[str, str]]:
    return await ex.db(
        lambda: list(
            Alert.objects.filter(payload__control_id=action.pk)
            .order_by("pk")
            .values_list("level", "message")
        )
    )


async def test_a_live_close_leaves_the_exchange_flat_with_no_stop_or_target_resting(
    fake,  # noqa: F811
    make_executor,  # noqa: F811
):
    ex = await make_executor()
    balance_before = fake.account.balance
    position = await open_protected(ex, fake, "sr-en-mclose1")
    fake.advance(5 * 60_000)
    await asyncio.sleep(0.2)

    action = await request_and_carry_out(ex, position, "news in 5 minutes")

    # The exchange: flat, no stop, no target, no order resting.
    assert held(fake) == 0
    assert live_plans(fake) == [] and resting(fake) == []
    close = fake.requests_to("/order/place-order")[-1].body
    assert close["clientOid"] == f"sr-mc-{action.pk}"
    assert close["orderType"] == "market" and close["side"] == "sell"
    assert close["reduceOnly"] == "YES"
    # The stored position: closed "manual", booked from the exchange's fills.
    closed = await ex.db(LivePosition.objects.get, pk=position.pk)
    assert closed.status == "closed" and closed.exit_reason == "manual" and closed.qty == 0
    fills = await ex.db(lambda: list(Fill.objects.filter(live_position=closed)))
    assert sorted(f.side for f in fills) == ["buy", "sell"]
    assert sum(f.qty for f in fills if f.side == "sell") == pytest.approx(0.01)
    exit_fill = next(f for f in fills if f.side == "sell")
    assert closed.exit_price == pytest.approx(exit_fill.price)
    assert closed.fees_usdt == pytest.approx(sum(f.fee_usdt for f in fills))
    # gross − fees is exactly what the exchange booked to the wallet (no funding crossed).
    assert closed.net_pnl == pytest.approx(fake.account.balance - balance_before, abs=1e-6)
    order = await ex.db(Order.objects.get, client_id=f"sr-mc-{action.pk}")
    assert order.reduce_only and order.status == "filled" and order.role == "exit"
    # Its stop and target rows are cancelled too: the Live page lists no open order of it.
    roles = await ex.db(
        lambda: dict(Order.objects.filter(live_position=closed).values_list("role", "status"))
    )
    assert roles == {
        "entry": "filled",
        "stop": "cancelled",
        "target": "cancelled",
        "exit": "filled",
    }
    # The request: done, with an info alert after the warning of the request itself.
    assert action.done_at is not None and action.market_time_ms == closed.closed_ms
    levels = [level for level, _ in await alerts_of(ex, action)]
    assert levels == ["warning", "info"]
    done_message = (await alerts_of(ex, action))[-1][1]
    assert "closed at market by closer (manual)" in done_message
    assert "net " in done_message and "USDT" in done_message


async def test_a_refused_market_close_keeps_the_position_and_its_stop(
    fake,  # noqa: F811
    make_executor,  # noqa: F811
    alerts,  # noqa: F811
):
    ex = await make_executor()  # exit_attempts=2: two exits, then two emergency closes
    position = await open_protected(ex, fake, "sr-en-mclose2")
    stop_before = [p.order_id for p in live_plans(fake) if p.plan_type == "pos_loss"]
    fake.reject_next("place-order", "40762", "The order amount exceeds the balance", times=4)

    action = await request_and_carry_out(ex, position, "")

    assert held(fake) == pytest.approx(0.01)
    # The same stop is still held: it was never cancelled.
    assert [p.order_id for p in live_plans(fake) if p.plan_type == "pos_loss"] == stop_before
    kept = await ex.db(LivePosition.objects.get, pk=position.pk)
    assert kept.status == "open" and kept.protected
    assert action.done_at is not None
    level, message = (await alerts_of(ex, action))[-1]
    assert level == "error" and "NOT carried out" in message
    assert "exceeds the balance" in message and "its stop is held on the exchange" in message
    assert any("CLOSE IT BY HAND" in m for m in alerts.of("error"))
    # Refused, not forgotten: the trader may ask again, and this time it goes through.
    again = await request_and_carry_out(ex, kept, "second try")
    assert held(fake) == 0 and live_plans(fake) == []
    assert (await alerts_of(ex, again))[-1][0] == "info"


async def test_a_refused_close_with_the_stop_gone_places_the_stop_again(
    fake,  # noqa: F811
    make_executor,  # noqa: F811
):
    ex = await make_executor()
    position = await open_protected(ex, fake, "sr-en-mclose3")
    await fake.remove_plan_orders(BTC)  # cancelled by hand in Bitget's app, unseen so far
    fake.reject_next("place-order", "40762", "The order amount exceeds the balance", times=4)

    action = await request_and_carry_out(ex, position, "")

    assert held(fake) == pytest.approx(0.01)
    [stop] = [p for p in live_plans(fake) if p.plan_type == "pos_loss"]
    assert stop.client_oid == "sr-en-mclose3-sl"  # placed again by the executor
    assert stop.trigger_price == pytest.approx(position.stop_loss)
    level, message = (await alerts_of(ex, action))[-1]
    assert level == "error" and "its stop is held on the exchange" in message


async def test_a_close_of_an_adopted_position_closes_it_on_the_exchange(
    fake,  # noqa: F811
    make_executor,  # noqa: F811
    bitget_settings,  # noqa: F811
):
    manual = keyed_exchange(bitget_settings, fake)
    await manual.load_markets()
    await manual.create_order(BTC, "market", "buy", 0.01, None, {"marginMode": "isolated"})
    await manual.close()
    ex = await make_executor(unknown_positions="adopt", adopt_stop_pct=2.0)
    [position] = await ex.db(lambda: list(LivePosition.objects.filter(status="open")))
    assert position.adopted and position.protected and len(live_plans(fake)) == 1

    action = await request_and_carry_out(ex, position, "not mine")

    assert held(fake) == 0 and live_plans(fake) == [] and resting(fake) == []
    closed = await ex.db(LivePosition.objects.get, pk=position.pk)
    assert closed.status == "closed" and closed.exit_reason == "manual"
    assert closed.gross_pnl is not None
    assert (await alerts_of(ex, action))[-1][0] == "info"


async def test_a_position_its_stop_closed_first_is_finished_with_a_note(
    fake,  # noqa: F811
    make_executor,  # noqa: F811
    bitget_settings,  # noqa: F811
):
    """Flat on the exchange before the request is carried out (closed by hand here, as a
    fired stop would): nothing is sent, the position is booked from its fills, and the note
    says it was already closed."""
    ex = await make_executor()
    position = await open_protected(ex, fake, "sr-en-mclose4")
    manual = keyed_exchange(bitget_settings, fake)
    await manual.load_markets()
    await manual.create_order(
        BTC, "market", "sell", 0.01, None, {"marginMode": "isolated", "reduceOnly": True}
    )
    await manual.close()
    assert held(fake) == 0
    sent_before = len(fake.requests_to("/order/place-order"))

    action = await request_and_carry_out(ex, position, "")

    assert len(fake.requests_to("/order/place-order")) == sent_before
    assert live_plans(fake) == []
    closed = await ex.db(LivePosition.objects.get, pk=position.pk)
    assert closed.status == "closed" and closed.exit_price is not None
    level, message = (await alerts_of(ex, action))[-1]
    assert level == "info" and "already closed" in message


async def test_a_resting_entry_remainder_is_cancelled_before_the_close(
    fake,  # noqa: F811
    make_executor,  # noqa: F811
):
    """A limit entry half filled: the rest would reopen the position after the close."""
    ex = await make_executor()
    limit = price_now(fake) * 0.9995
    fake.partial_fill_next(BTC, 0.5)
    await ex.submit_entry(
        intent(fake, cid="sr-en-mclose5", limit=limit, qty=0.02, expires_in_ms=40 * 60_000)
    )
    task = asyncio.create_task(streams.run(ex))
    try:
        await until(lambda: held(fake) > 0, timeout_s=15)
        fake.clock.set_speed(1e-6)  # the rest cannot fill now
        await until(lambda: ex.db(lambda: LivePosition.objects.filter(protected=True).exists()))
    finally:
        task.cancel()
    [position] = await ex.db(lambda: list(LivePosition.objects.filter(status="open")))
    assert [o.client_oid for o in resting(fake)] == ["sr-en-mclose5"]

    await request_and_carry_out(ex, position, "")

    assert held(fake) == 0 and resting(fake) == [] and live_plans(fake) == []
    entry = await ex.db(Order.objects.get, client_id="sr-en-mclose5")
    assert entry.status == "cancelled" and entry.filled_qty == pytest.approx(0.01)
    closed = await ex.db(LivePosition.objects.get, pk=position.pk)
    assert closed.status == "closed" and closed.exit_reason == "manual"
