"""Parity: the live radar and the backtester take the same trades on the same real candles.

Two days of the bundled real 1m sample (2025-06-17/18) of one symbol go through the live
pipeline — ``radar.build``: replay exchange -> ``MarketFeed`` -> ``RadarRuntime`` -> database —
and through ``backtests.core.engine.run_backtest`` with the same ``KernelConfig``
(``kernel_config_from`` + the strategy's capital), the same per-symbol parameters, funding
and confirmation filter. Every trade (entry/exit time, price, quantity, leverage, fees,
funding, slippage, P&L, exit reason) and every signal must be identical, bit for bit.

Why one symbol per run: an arena kernel trades all its symbols from ONE ledger (shared equity
sizes every trade; correlation-group and concurrency limits span symbols), while a backtest
runs one symbol. Replaying a single symbol makes the two the same computation; the
multi-symbol rules are covered by the kernel's own tests. The selector is off
(``selector_every=0``): it changes capital and modes by arena-wide rules a single backtest
does not have. ``momentum_breakout`` trades on these days (6 trades on each symbol);
``swing_1h`` only decides (its first trade comes on day 4); ``order_flow`` is the
confirmation filter of both.

The restart case stops the replay with a momentum position open, rebuilds the radar from the
database and resumes — with ``max_candles`` lowered so the history reloaded on restart
(``runtime.history_span_ms``) is really cut — and must still match the uninterrupted backtest.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command

from backtests.core.engine import BacktestResult, run_backtest
from radar import launch as radar
from strategies.config import RadarConfig, get_config
from strategies.core.catalog import build_strategy
from strategies.core.kernel import KernelConfig
from strategies.kernel_config import kernel_config_from
from strategies.models import Signal, StrategyConfig
from tests.radar.test_radar import SAMPLE, slice_sample
from trading.core.types import ExitReason
from trading.models import Candle, Position, TradingSession

DAY_CANDLES = 1440
STRATEGIES = ("momentum_breakout", "swing_1h", "order_flow")
# ClosedTrade field -> Position column holding it
TRADE_FIELDS = {
    "symbol": "symbol",
    "side": "side",
    "qty": "qty",
    "leverage": "leverage",
    "entry_price": "entry_price",
    "entry_time_ms": "entry_time_ms",
    "entry_fee": "entry_fee",
    "exit_price": "exit_price",
    "exit_time_ms": "exit_time_ms",
    "exit_fee": "exit_fee",
    "exit_reason": "exit_reason",
    "funding": "funding_usdt",
    "slippage_cost": "slippage_usdt",
    "gross_pnl": "gross_pnl",
    "net_pnl": "net_pnl",
    "stop_loss": "stop_loss",
    "take_profit": "take_profit",
    "liquidation_price": "liquidation_price",
}


def replay_file(tmp_path: Path, base: str, rows: int, name: str) -> Path:
    """The first ``rows`` sample candles of ``base`` in ``tmp_path/name``, with its funding."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(next(SAMPLE.glob(f"*_{base}-USDT_funding_*.csv.gz")), folder)
    return slice_sample(folder, base, 0, rows)


def seed_arena() -> None:
    call_command("load_config", stdout=StringIO())
    StrategyConfig.objects.exclude(name__in=STRATEGIES).update(enabled=False)


def replay(path: Path) -> None:
    """One radar run over ``path`` (headless, max speed, no selector), resuming if it can."""

    async def main() -> None:
        exchange, feed, _runtime = await radar.build(
            replay_paths=[path],
            speed=None,
            fallback_to_replay=False,
            out=StringIO(),
            selector_every=0,
        )
        try:
            await feed.run()
        finally:
            await exchange.close()

    asyncio.run(main())


def backtests(path: Path, symbol: str, kernel_config: KernelConfig) -> dict[str, BacktestResult]:
    """Each enabled strategy backtested alone over the same file, as the arena runs it.

    First, the candles the runtime received (it stores each one it processes) must be the
    file's: a feed that hands over a FORMING candle as closed fails here, not as a trade diff.
    """
    candles, funding = radar.load_replay([path], [symbol])
    stored = Candle.objects.filter(symbol=symbol, timeframe="1m").order_by("open_time_ms")
    received = np.array(
        stored.values_list("open_time_ms", "open", "high", "low", "close", "volume"), dtype=float
    )
    differing = np.flatnonzero((received != candles[symbol]).any(axis=1))
    assert not len(differing), (
        f"{len(differing)} of {len(received)} candles reached the runtime with other values "
        f"than the replay file's, first at open time {int(received[differing[0], 0])} ms"
    )
    enabled = StrategyConfig.objects.filter(enabled=True)
    confirmers = [build_strategy(c.kind, c.params) for c in enabled if c.kind == "order_flow"]
    return {
        config.name: run_backtest(
            config.kind,
            config.params_for(symbol),
            symbol,
            candles[symbol],
            funding=funding.get(symbol),
            config=replace(kernel_config, capital_usdt=config.virtual_capital_usdt),
            confirmers=confirmers,
            name=config.name,
        )
        for config in enabled
        if config.kind != "order_flow"
    }


def stored_trades(name: str, status: str) -> list[dict[str, Any]]:
    """The real-ledger positions of ``name`` stored by the runtime, in the core's field names."""
    rows = Position.objects.filter(strategy_name=name, shadow=False, status=status)
    return [
        {core: getattr(p, column) for core, column in TRADE_FIELDS.items()}
        for p in rows.order_by("entry_time_ms")
    ]


def assert_same_as_backtest(results: dict[str, BacktestResult]) -> int:
    """Compare trades, open positions, signals and session totals; return the trade count."""
    trades = 0
    for name, result in results.items():
        finished = [t for t in result.trades if t.exit_reason is not ExitReason.END_OF_DATA]
        still_open = [t for t in result.trades if t.exit_reason is ExitReason.END_OF_DATA]
        expected = [{f: t.to_dict()[f] for f in TRADE_FIELDS} for t in finished]
        assert stored_trades(name, Position.Status.CLOSED) == expected, name
        opened = [
            (p["entry_time_ms"], p["entry_price"], p["qty"])
            for p in stored_trades(name, Position.Status.OPEN)
        ]
        assert opened == [(t.entry_time_ms, t.entry_price, t.qty) for t in still_open], name
        stored_signals = list(
            Signal.objects.filter(strategy__name=name)
            .order_by("candle_open_time_ms")
            .values_list("candle_open_time_ms", "side", "entry_price", "stop_loss", "score")
        )
        assert stored_signals == [
            (s.candle_open_ms, s.signal.side.value, s.signal.entry_price, s.signal.stop_loss,
             s.signal.score)
            for s in result.signals
        ], name  # fmt: skip
        session = TradingSession.objects.get(strategy_name=name)
        assert session.trades_count == len(finished), name
        assert session.realised_net_pnl == pytest.approx(sum(t.net_pnl for t in finished))
        trades += len(finished)
    return trades


def kernel_config_with_short_windows(config: RadarConfig) -> KernelConfig:
    """The production settings with snapshot windows of 31 periods (momentum's floor)."""
    return replace(kernel_config_from(config), max_candles=31)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_radar_takes_the_backtests_trades_on_two_days_of_btc(tmp_path):
    seed_arena()
    path = replay_file(tmp_path, "BTC", 2 * DAY_CANDLES, "full")
    replay(path)
    results = backtests(path, "BTC/USDT:USDT", kernel_config_from(get_config()))
    assert assert_same_as_backtest(results) > 0  # momentum_breakout trades: never vacuous


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_radar_restarted_mid_trade_takes_the_uninterrupted_backtests_trades_on_eth(
    tmp_path, monkeypatch
):
    """Restart at hour 34.6, inside momentum's 34.4 h -> 34.9 h ETH trade. With
    ``max_candles`` 31 (momentum's floor: warm-up 21 + 10) the restart reloads 33 h of
    history for the 1h confirmation, not the 34.6 h stored: the cut must not change a thing."""
    monkeypatch.setattr(radar, "kernel_config_from", kernel_config_with_short_windows)
    seed_arena()
    restart_at = int(34.6 * 60)
    replay(replay_file(tmp_path, "ETH", restart_at, "first"))
    assert Position.objects.filter(strategy_name="momentum_breakout", status="open").exists()
    path = replay_file(tmp_path, "ETH", 2 * DAY_CANDLES, "full")
    replay(path)
    results = backtests(path, "ETH/USDT:USDT", kernel_config_with_short_windows(get_config()))
    assert assert_same_as_backtest(results) > 0
