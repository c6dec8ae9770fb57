"""Every live input reaches the kernels; the account kill switch; one arena row; stored alerts."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.db import transaction

from radar.launch import load_replay, store_replay_funding
from strategies.selectors import arena_row, arena_rows, market_rows
from strategies.services import kill_switch_reset, strategy_pause
from tests.radar.test_radar import SAMPLE, running_radar, sample_candles, slice_sample
from trading.core.risk import ACCOUNT_SCOPE, start_session
from trading.models import Alert, FundingRate, Position, TradingSession

SYMBOL = "BTC/USDT:USDT"
TESTS_DATA = Path(__file__).resolve().parents[1] / "data"


def feed_until_open(runtime, candles, start=0):
    """Feed candles until some strategy holds a real paper position; its entry and the index."""
    for i in range(start, len(candles)):
        runtime.process_candle(SYMBOL, tuple(candles[i]))
        for entry in runtime.arena:
            if entry.kernel.ledger.positions:
                return entry, i
    raise AssertionError("no position opened on the sample")


@pytest.mark.django_db(transaction=True)
def test_polled_funding_stored_after_the_start_is_paid_by_an_open_position_at_settlement():
    """A FundingRate row stored while the radar runs (as the poller does) is read at the next
    batch; the position open at its instant pays it: FundingApplied, stored on the Position."""
    candles = sample_candles(2 * 1440)
    runtime = running_radar()
    i = 0
    while True:
        entry, i = feed_until_open(runtime, candles, i + 1)
        settle_ms = int(candles[i + 1][0]) + 60_000  # the close of the next candle
        FundingRate.objects.create(
            exchange="bitget", symbol=SYMBOL, funding_time_ms=settle_ms, rate=0.001
        )
        events = runtime.process_candles([(SYMBOL, tuple(candles[i + 1]))])
        funding = [p for g, t, p in events if t == "position.funding"]
        if funding:
            break
        i += 1
    assert funding[0]["strategy"] == entry.config.name
    assert funding[0]["time_ms"] == settle_ms
    assert funding[0]["rate"] == 0.001
    stored = Position.objects.filter(
        strategy_name=entry.config.name, status=Position.Status.OPEN, symbol=SYMBOL
    )
    assert (
        any(p.funding_usdt != 0 for p in stored)
        or Position.objects.filter(strategy_name=entry.config.name, funding_usdt__gt=0).exists()
    )


@pytest.mark.django_db(transaction=True)
def test_trades_reach_the_kernels_as_a_signed_rolling_window():
    import asyncio

    runtime = running_radar()
    trades = [
        {"timestamp": 1_000, "price": 100.0, "amount": 2.0, "side": "buy"},
        {"timestamp": 2_000, "price": 101.0, "amount": 0.5, "side": "sell"},
        {"timestamp": 3_000, "price": 101.0, "amount": 1.0, "side": None},  # no side: not flow
    ]
    asyncio.run(runtime.on_trades(SYMBOL, trades))
    for entry in runtime.arena:
        seen = entry.kernel._symbols[SYMBOL].trades
        assert seen.tolist() == [[1_000, 100.0, 2.0], [2_000, 101.0, -0.5]]
    # The window is bounded in time: a trade 31 minutes later pushes the old ones out.
    asyncio.run(
        runtime.on_trades(
            SYMBOL, [{"timestamp": 31 * 60_000 + 2_000, "price": 1.0, "amount": 1.0, "side": "buy"}]
        )
    )
    assert runtime.inputs.trades(SYMBOL).shape == (1, 3)


@pytest.mark.django_db(transaction=True)
def test_a_replay_attaches_only_a_funding_file_of_its_own_period_and_stores_it(tmp_path):
    path = slice_sample(tmp_path, "BTC", 0, 600)
    shutil.copy(next(SAMPLE.glob("binance-usdm_BTC-USDT_funding_*.csv.gz")), tmp_path)
    # SOL candles of June with a funding file of May next to them: another period.
    sol = slice_sample(tmp_path, "SOL", 0, 600)
    source = TESTS_DATA / "strat_binance-usdm_SOL-USDT_funding_20250501-20250531.csv.gz"
    (tmp_path / "binance-usdm_SOL-USDT_funding_20250501-20250531.csv").write_bytes(
        gzip.decompress(source.read_bytes())
    )
    candles, funding = load_replay([path, sol], [SYMBOL, "SOL/USDT:USDT"])
    assert set(candles) == {SYMBOL, "SOL/USDT:USDT"}
    assert set(funding) == {SYMBOL}
    store_replay_funding(funding, "bitget")
    store_replay_funding(funding, "bitget")  # idempotent
    assert FundingRate.objects.filter(symbol=SYMBOL).count() == len(funding[SYMBOL])
    running_radar()  # seeds the assets
    btc = next(m for m in market_rows() if m["symbol"] == SYMBOL)
    assert btc["funding_rate_pct"] is not None


@pytest.mark.django_db(transaction=True)
def test_the_account_kill_switch_trips_blocks_every_strategy_survives_a_restart_and_resets():
    candles = sample_candles(2 * 1440)
    runtime = running_radar()
    runtime.process_candle(SYMBOL, tuple(candles[0]))
    guard = runtime.accounts["paper"]
    # The account started 10 % richer than it is: a combined loss past the 5 % limit.
    guard.kill_switch = start_session(ACCOUNT_SCOPE, guard.equity() * 1.1, 0)
    runtime.process_candle(SYMBOL, tuple(candles[1]))
    account = TradingSession.objects.get(strategy_name="", mode="paper")
    assert account.kill_switch_tripped
    assert "account" in account.kill_switch_reason
    assert Alert.objects.filter(source="account", level="error").exists()
    assert all(e.kernel.account.kill_switch.tripped for e in runtime.arena)
    # A restart finds it tripped.
    restarted = running_radar()
    assert restarted.accounts["paper"].kill_switch.tripped
    from strategies.models import Signal

    for row in candles[2:]:
        restarted.process_candle(SYMBOL, tuple(row))
        if Signal.objects.filter(shadow=False).exists():
            break
    refused = Signal.objects.filter(shadow=False)
    assert refused.exists()
    assert all(s.status == "refused" and "account kill switch" in s.refusal_reason for s in refused)
    # Only the recorded control resets it.
    kill_switch_reset(name="", user=None, reason="losses accepted")
    with transaction.atomic():  # as the runtime reads the controls: in the batch's transaction
        restarted.sync_controls(now_ms=int(candles[-1][0]))
    assert not restarted.accounts["paper"].kill_switch.tripped


@pytest.mark.django_db(transaction=True)
def test_the_arena_row_is_the_same_on_the_page_and_in_the_live_update_with_an_open_position():
    candles = sample_candles(2 * 1440)
    runtime = running_radar()
    entry, i = feed_until_open(runtime, candles)
    runtime.process_candles([(SYMBOL, tuple(candles[i + 1]))])
    entry.published = True  # as after an event: its row is published (and stored) at the commit
    events = runtime.process_candles([(SYMBOL, tuple(candles[i + 3]))])
    live = [p for g, t, p in events if t == "arena.update" and p["strategy"] == entry.config.name]
    assert live, "the strategy that moved publishes its row"
    page = next(r for r in arena_rows() if r["strategy"] == entry.config.name)
    assert {k: page[k] for k in live[0]} == live[0]
    session = TradingSession.objects.get(pk=entry.session.pk)
    assert arena_row(session) == live[0]
    if entry.kernel.ledger.positions:
        assert np.isfinite(live[0]["equity_usdt"])


@pytest.mark.django_db(transaction=True)
def test_control_alerts_are_stored():
    runtime = running_radar()
    runtime.process_candle(SYMBOL, tuple(sample_candles(1)[0]))
    strategy_pause(name="swing_1h", user=None, reason="test")
    assert Alert.objects.filter(source="swing_1h", message__contains="paused").exists()
