"""``manage.py radar --exchange fake`` end to end: a strategy set live trades real orders on the
fake Bitget (its private API, through the real ccxt) beside its paper twin, and the Live page
shows both.

funding_arbitrage alone, its threshold lowered so that the bundled week's real funding rates
are extreme (as in test_live_fake_exchange): it enters within minutes of market time. The
paper kernel decides; the live executor carries the same intent out, clipped to risk.yaml's
live caps (200 USDT notional), with its stop confirmed on the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from radar import launch
from strategies.models import StrategyConfig
from trading.core.fills import LimitFillModel
from trading.exchanges.fake import FakeAccount, FakeBitget, FakeMarket
from trading.models import Alert, LivePosition, Order, Position

SPEED = 1_800.0
# Wall-clock bound only (the loops end as soon as the condition holds: ~15–30 s here); one CI
# run on a loaded machine saw no live fill within 90 s.
WALL_LIMIT_S = 240.0


def _entries_rest_longer(monkeypatch) -> None:
    """A limit entry rests 5 market minutes (the kernel's default): 0.17 s of wall time at
    1800×, so a radar lagging the fake's clock by that much (a loaded CI machine) saw every
    live entry expire before it could fill. Two market hours (4 s here) for both twins."""
    real = launch.kernel_config_from

    def longer(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), limit_order_ttl_candles=120)

    monkeypatch.setattr(launch, "kernel_config_from", longer)


def _one_live_strategy() -> None:
    call_command("load_config", stdout=io.StringIO())
    StrategyConfig.objects.exclude(name="funding_arbitrage").update(enabled=False)
    funding = StrategyConfig.objects.get(name="funding_arbitrage")
    funding.params = {**funding.params, "extreme_rate": 0.00004}
    funding.save()
    StrategyConfig.objects.filter(pk=funding.pk).update(live=True)


def _twins() -> list[tuple[Order, Position | None]]:
    entries = Order.objects.filter(role="entry", status__in=["filled", "partially_filled"])
    return [
        (o, Position.objects.filter(entry_client_id=o.client_id, shadow=False).first())
        for o in entries
    ]


def _diagnosis(fake) -> dict:
    """What the live side did, for a failure message: its orders, the executor's alerts, the
    paths it called on the fake and how far market time ran."""
    return {
        "orders": list(Order.objects.values_list("role", "status", "client_id")),
        "alerts": list(Alert.objects.values_list("source", "message")[:20]),
        "paths": sorted({r.path for r in fake.requests}),
        "market_now_ms": fake.now_ms(),
    }


def _protected() -> bool:
    return (
        LivePosition.objects.filter(protected=True).exists()
        or LivePosition.objects.filter(status="closed").exists()
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_live_strategy_trades_on_the_fake_exchange_beside_its_paper_twin(monkeypatch):
    await sync_to_async(_one_live_strategy)()
    monkeypatch.setattr(launch, "embedded", lambda: True)
    _entries_rest_longer(monkeypatch)
    # The fake fills a post-only entry whenever the market trades through it (its default
    # draws 80 %, independently of the paper venue's draw): the live twin of a paper fill is
    # then never left resting by chance.
    market = FakeMarket.from_files()
    certain = LimitFillModel(
        base_fill_probability=1.0, touch_probability_factor=1.0, min_fill_fraction=1.0
    )
    own_fake = FakeBitget(market, speed=SPEED, account=FakeAccount(market, fill_model=certain))
    await own_fake.start()
    out = io.StringIO()
    exchange, feed, runtime = await launch.build(
        replay_paths=None,
        speed=None,
        fallback_to_replay=False,
        out=out,
        selector_every=0,
        fake=own_fake,
    )
    assert "Live trading: the fake Bitget" in out.getvalue(), out.getvalue()
    assert "live strategies: funding_arbitrage" in out.getvalue()
    fake = exchange.scalpradar_fake
    running = asyncio.ensure_future(launch.run_feed(exchange, feed, runtime))
    started = time.monotonic()
    twins: list = []
    held_stop = False
    try:
        while time.monotonic() - started < WALL_LIMIT_S and not running.done():
            await asyncio.sleep(0.5)
            # A live entry whose paper twin has filled too (each venue draws its own fill;
            # with entries resting two hours, either may fill first).
            twins = [t for t in await sync_to_async(_twins)() if t[1] is not None]
            held_stop = held_stop or any(
                p.plan_type == "pos_loss" and p.status == "live"
                for p in fake.account.plans.values()
            )
            if twins and held_stop and await sync_to_async(_protected)():
                break
    finally:
        feed.stop()
        await asyncio.wait_for(running, 30)
        await own_fake.stop()
    assert twins, (out.getvalue(), await sync_to_async(_diagnosis)(fake))
    live_entry, paper = twins[0]
    # The same decision: the live order's client id is the paper position's entry intent id.
    assert paper is not None and paper.strategy_name == "funding_arbitrage"
    assert live_entry.side == ("buy" if paper.side == "long" else "sell")
    # Clipped to the live cap (200 USDT), never enlarged; the paper twin traded its own size.
    assert live_entry.qty * live_entry.average_price <= 200.0 + 1e-6
    assert live_entry.qty <= paper.qty
    assert held_stop  # the exchange held the live position's stop
    sent = {r.body["clientOid"]: r.body for r in fake.requests_to("/order/place-order")}
    assert "presetStopLossPrice" in sent[live_entry.client_id]
    page = await sync_to_async(_live_page)()
    assert live_entry.client_id in page or "funding_arbitrage" in page


def _live_page() -> str:
    user = User.objects.create_user("viewer-live")
    client = Client()
    client.force_login(user)
    response = client.get("/live/")
    assert response.status_code == 200
    return response.content.decode()


def _open_protected() -> list[LivePosition]:
    return list(LivePosition.objects.filter(status="open", protected=True))


async def _run_until(fake, condition, limit_s: float, on_reached=None) -> tuple[str, bool]:
    """One radar on the running ``fake`` until ``condition()`` holds; then stopped abruptly
    (its feed task cancelled mid-flight: no flatten, no final checkpoint)."""
    out = io.StringIO()
    exchange, feed, runtime = await launch.build(
        replay_paths=None,
        speed=None,
        fallback_to_replay=False,
        out=out,
        selector_every=0,
        fake=fake,
    )
    running = asyncio.ensure_future(launch.run_feed(exchange, feed, runtime))
    started, reached = time.monotonic(), False
    while time.monotonic() - started < limit_s and not running.done():
        await asyncio.sleep(0.25)
        if await sync_to_async(condition)():
            reached = True
            if on_reached is not None:
                on_reached()
            break
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await running
    return out.getvalue(), reached


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_restart_with_an_open_live_position_finds_it_and_its_stop(monkeypatch):
    """The radar dies with a live position open (its task cancelled: no flatten, no clean
    shutdown of the kernels); the exchange keeps running. The next radar's start-up
    reconciliation finds the position and the stop it holds: clean, nothing sent twice."""
    await sync_to_async(_one_live_strategy)()
    monkeypatch.setattr(launch, "embedded", lambda: True)
    # Entries keep the kernel's 5-minute rest here (it passed so in every CI run). With two
    # hours, one CI run found the exchange holding 0.06 where 0.07 was booked before the kill
    # (start-up: 1 quantity mismatch, 1 fill not booked — an exit part-filled around the kill,
    # probably; not investigated): the next radar adopted 0.06, against this test's premise
    # that only the entry can grow while the radar is down.
    fake = FakeBitget(speed=SPEED)
    await fake.start()
    try:
        # Once a protected live position is open, the market all but stops (so that its stop
        # or target cannot fire while the radar is down), and the radar dies.
        _, reached = await _run_until(
            fake,
            lambda: bool(_open_protected()),
            WALL_LIMIT_S,
            on_reached=lambda: fake.clock.set_speed(1e-3),
        )
        assert reached, "no live position opened"
        [before] = await sync_to_async(_open_protected)()
        entries = [r.body["clientOid"] for r in fake.requests_to("/order/place-order")]
        out, _ = await _run_until(fake, lambda: True, 5)
        notes = await sync_to_async(
            lambda: list(Alert.objects.filter(source="executor").values_list("message", flat=True))
        )()
        assert "; ready; live strategies: funding_arbitrage" in out, (out, notes)
        [after] = await sync_to_async(_open_protected)()
        # The same position; its quantity is the exchange's (the entry may have filled its
        # remainder while the radar was down: the start-up look-up books that fill), on the lot.
        market_id = before.symbol.split(":")[0].replace("/", "")
        held = fake.account.positions[market_id].total
        assert after.pk == before.pk and before.qty <= after.qty
        assert after.qty == pytest.approx(held, abs=1e-12) and after.qty == round(after.qty, 8)
        entry = await sync_to_async(Order.objects.get)(client_id=after.entry_client_id)
        assert entry.filled_qty == pytest.approx(after.qty, abs=1e-12)
        stops = [
            p
            for p in fake.account.plans.values()
            if p.symbol == market_id and p.plan_type == "pos_loss" and p.status == "live"
        ]
        assert len(stops) == 1
        resent = [r.body["clientOid"] for r in fake.requests_to("/order/place-order")]
        assert resent[: len(entries)] == entries and len(set(resent)) == len(resent)
    finally:
        await fake.stop()
