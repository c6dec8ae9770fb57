"""The radar in LIVE mode against the in-process fake Bitget: the real ccxt.pro code path.

Not the replay source: closed candles come from ccxt.pro's websocket (``watch_ohlcv``) of a
local server serving the bundled REAL candles and funding (``trading.exchanges.fake``) on a
market clock 1,800× faster than real time; funding and open interest come from the embedded
pollers (ccxt REST) into the database and from there into the kernels. The fake's open
interest is synthesised (stated by the fake), its funding is the bundled real series.
"""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from radar import launch
from strategies.models import Signal, StrategyConfig
from trading.models import Candle, FundingRate, OpenInterest, Position

SPEED = 1_800.0  # 30 market minutes per wall second: an 8 h funding period in 16 s
WALL_LIMIT_S = 90.0


def _arena_of_funding_and_liquidation_strategies() -> None:
    """Only the two strategies that need the polled inputs (the run stays short). The funding
    threshold is lowered to 0.004 % so that the week's real rates (up to 0.01 %) are extreme:
    the strategy then trades on the polled rates and holds across a settlement."""
    call_command("load_config", stdout=io.StringIO())
    StrategyConfig.objects.exclude(name__in=["funding_arbitrage", "liquidation_zones"]).update(
        enabled=False
    )
    funding = StrategyConfig.objects.get(name="funding_arbitrage")
    funding.params = {**funding.params, "extreme_rate": 0.00004}
    funding.save()


def _progress() -> dict[str, int]:
    return {
        "candles": Candle.objects.count(),
        "funding_rows": FundingRate.objects.count(),
        "oi_rows": OpenInterest.objects.count(),
        "funding_signals": Signal.objects.filter(strategy__name="funding_arbitrage").count(),
        "liquidation_signals": Signal.objects.filter(strategy__name="liquidation_zones").count(),
        "funded_positions": Position.objects.exclude(funding_usdt=0).count(),
    }


def _done(p: dict[str, int]) -> bool:
    return bool(p["funding_signals"] and p["liquidation_signals"] and p["funded_positions"])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_live_radar_on_the_fake_exchange_trades_on_polled_funding_and_open_interest(
    monkeypatch,
):
    await sync_to_async(_arena_of_funding_and_liquidation_strategies)()
    # With REDIS_URL (CI's second run) production polls from Celery beat; this test wants the
    # embedded pollers of one process either way.
    monkeypatch.setattr(launch, "embedded", lambda: True)
    out = io.StringIO()
    exchange, feed, runtime = await launch.build(
        replay_paths=None,
        speed=None,
        fallback_to_replay=False,
        out=out,
        selector_every=0,
        fake_speed=SPEED,
    )
    assert "Fake exchange" in out.getvalue()
    assert "Live feed" in out.getvalue()
    # The market rules now come from the exchange's load_markets, stored on the Asset rows.
    assert "(exchange load_markets" in out.getvalue(), out.getvalue()
    running = asyncio.ensure_future(launch.run_feed(exchange, feed, runtime))
    started = time.monotonic()
    progress: dict[str, int] = {}
    try:
        while time.monotonic() - started < WALL_LIMIT_S and not running.done():
            await asyncio.sleep(1.0)
            progress = await sync_to_async(_progress)()
            if _done(progress):
                break
    finally:
        feed.stop()
        await asyncio.wait_for(running, 30)
    assert _done(progress), progress
    stored = await sync_to_async(_funding_facts)()
    # Every settlement paid is a polled row, at its settlement instant.
    assert stored["paid_at_polled_instants"], stored
    assert stored["funding_signal_reasons_quote_the_polled_rate"], stored


def _funding_facts() -> dict[str, bool]:
    polled = set(FundingRate.objects.values_list("funding_time_ms", flat=True))
    funded = Position.objects.exclude(funding_usdt=0)
    # A position funded is one that was open at a polled settlement instant.
    paid = all(
        any(p.entry_time_ms < t <= (p.exit_time_ms or 2**62) for t in polled) for p in funded
    )
    reasons = [
        " ".join(s.reasons) for s in Signal.objects.filter(strategy__name="funding_arbitrage")
    ]
    return {
        "paid_at_polled_instants": paid and funded.exists(),
        "funding_signal_reasons_quote_the_polled_rate": all("fund" in r.lower() for r in reasons),
    }
