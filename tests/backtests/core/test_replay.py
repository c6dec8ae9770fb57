"""The replay's idle skipping changes nothing: every event, the equity curve and the final
kernel state equal those of the reference loop that sends EVERY candle through ``on_candle``
(what the live runtime does), for every strategy on the bundled real data."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from backtests.core.engine import run_backtest
from strategies.core.base import (
    EntryType,
    ExitDecision,
    Inputs,
    MarketSnapshot,
    PositionView,
    Signal,
    Strategy,
    StrategyParams,
)
from strategies.core.kernel import (
    FundingApplied,
    KernelConfig,
    KillSwitchTripped,
    OrderCancelled,
    PositionClosed,
    StrategyKernel,
)
from strategies.core.snapshot import History
from tests.backtests.core.test_lookahead import BTC, BTC_FUNDING
from tests.strategies.core.factories import eth_1m, recorded_style_open_interest, synthetic_rules
from trading.core.risk import RiskLimits
from trading.core.types import ExitReason, InvalidCandle, Side

RELAXED_VWAP = {"timeframe": "1m", "rsi_long_below": 35, "rsi_short_above": 65,
                "adx_range_max": 30}  # fmt: skip
# 5m sets that trade on the bundled week (the bench's): stop loss, take profit, time stop,
# regime change (should_exit), a funding settlement held
TRADING_VWAP = {"rsi_long_below": 40, "rsi_short_above": 60, "volume_spike_mult": 1.2,
                "adx_range_max": 25}  # fmt: skip
TRADING_VWAP_WIDE = {"rsi_long_below": 35, "rsi_short_above": 65, "volume_spike_mult": 1.2,
                     "adx_range_max": 35}  # fmt: skip
CASES = {
    "vwap_rsi default": ("vwap_rsi", {}, {}, {}),
    "vwap_rsi 1m relaxed": ("vwap_rsi", RELAXED_VWAP, {}, {}),
    "vwap_rsi 5m trading": ("vwap_rsi", TRADING_VWAP, {"funding": BTC_FUNDING}, {}),
    "vwap_rsi 5m trading, wide": ("vwap_rsi", TRADING_VWAP_WIDE, {"funding": BTC_FUNDING}, {}),
    "vwap_rsi 5m trading, long hold": ("vwap_rsi",
                                       {**TRADING_VWAP, "max_hold_minutes": 600,
                                        "adx_range_max": 35},
                                       {"funding": BTC_FUNDING}, {"max_session_loss_pct": 50.0}),
    "vwap_rsi 5m trading, market entries, window 300": ("vwap_rsi",
                                                        {**TRADING_VWAP, "entry_type": "market"},
                                                        {"funding": BTC_FUNDING},
                                                        {"max_candles": 300}),
    "momentum_breakout": ("momentum_breakout", {}, {}, {}),
    "funding_arbitrage": ("funding_arbitrage", {"extreme_rate": 0.00005},
                          {"funding": BTC_FUNDING}, {}),
    "swing_baseline": ("swing_baseline", {}, {}, {}),
    "liquidation_zones skipped": ("liquidation_zones", {}, {}, {}),
    "kill switch then shadow": ("momentum_breakout", {"volume_mult": 1.2}, {},
                                {"max_session_loss_pct": 0.3}),
}  # fmt: skip


def _both(kind: str, params: dict, inputs: dict, config: dict, candles: np.ndarray = BTC):
    cfg = KernelConfig(**config)
    skipped = run_backtest(kind, params, "BTC/USDT:USDT", candles, config=cfg, **inputs)
    every = run_backtest(kind, params, "BTC/USDT:USDT", candles, config=cfg, skip_idle=False,
                         **inputs)  # fmt: skip
    return skipped, every


@pytest.mark.parametrize("case", sorted(CASES))
def test_skipping_idle_candles_gives_the_same_run_as_feeding_every_candle(case: str) -> None:
    kind, params, inputs, config = CASES[case]
    fast, reference = _both(kind, params, inputs, config)
    assert [e.to_dict() for e in fast.events] == [e.to_dict() for e in reference.events]
    assert np.array_equal(fast.equity, reference.equity)
    assert np.array_equal(fast.in_position, reference.in_position)
    assert fast.final_state == reference.final_state
    assert fast.skipped_reason == reference.skipped_reason
    if case == "kill switch then shadow":
        assert any(isinstance(e, KillSwitchTripped) for e in fast.events)
        assert fast.shadow_trades


def test_liquidation_zones_with_open_interest_replay_identically() -> None:
    eth = eth_1m()
    oi = recorded_style_open_interest(int(eth[0, 0]), int(eth[-1, 0]) + 60_000,
                                      {1_749_854_400_000: 20_000.0})  # fmt: skip
    fast, reference = _both("liquidation_zones", {}, {"open_interest": oi}, {}, eth)
    assert fast.signals
    assert [e.to_dict() for e in fast.events] == [e.to_dict() for e in reference.events]
    assert fast.final_state == reference.final_state


def test_the_real_trading_runs_compared_cover_every_exit_and_funding() -> None:
    """The 5m cases above are not vacuous: between them they stop out, take profit, time
    out, leave on a regime change and pay funding."""
    trading = [case for case in CASES if "5m trading" in case]
    runs = [_both(*CASES[case])[0] for case in trading]
    exits = {t.exit_reason for run in runs for t in run.trades}
    assert {ExitReason.STOP_LOSS, ExitReason.TAKE_PROFIT, ExitReason.TIME_STOP,
            ExitReason.REGIME_CHANGE} <= exits  # fmt: skip
    paid = [t.funding for run in runs for t in (*run.trades, *run.shadow_trades)]
    assert max(paid) > 0, "no funding paid"
    assert all(len(run.trades) >= 5 for run in runs), [len(run.trades) for run in runs]


# -- a scripted strategy over a synthetic random walk: every path of the fast replay ----------

FIVE_MINUTES = 300_000
START_MS = 1_750_032_000_000  # 2025-06-16 00:00 UTC, a funding settlement


class _ScriptParams(StrategyParams):
    timeframe: str = "5m"
    max_hold_minutes: int = 600


class _Scripted(Strategy):
    """Signals and strategy exits at scripted 5m closes, with exact filters for both."""

    kind: ClassVar[str] = "test_scripted_replay"
    Params = _ScriptParams
    inputs = Inputs(timeframes=("5m",))

    def __init__(self, signals: dict[int, Signal], exits: set[int]) -> None:
        super().__init__()
        self.signals = signals
        self.exits = exits

    def warmup_candles(self) -> dict[str, int]:
        return {"5m": 1}

    def decide(self, market: MarketSnapshot) -> Signal | None:
        return self.signals.get(market.now_ms)

    def signal_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray:
        return np.isin(decision_times_ms, list(self.signals))

    def exit_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray:
        return np.isin(decision_times_ms, list(self.exits))

    def should_exit(self, position: PositionView, market: MarketSnapshot) -> ExitDecision | None:
        return ExitDecision(ExitReason.REGIME_CHANGE) if market.now_ms in self.exits else None


GAP_MINUTE = 1500


def _random_walk(minutes: int, seed: int) -> np.ndarray:
    """1m candles around 100,000 (0.08 % per minute) with a −30 % gap at ``GAP_MINUTE``;
    every bar has low ≤ open, close ≤ high."""
    rng = np.random.default_rng(seed)
    close = 100_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, minutes)))
    open_ = np.r_[100_000.0, close[:-1]]
    open_[GAP_MINUTE:] *= 0.7  # the gap opens the candle: O is already 30 % lower
    close[GAP_MINUTE:] *= 0.7
    wick = np.abs(rng.normal(0.0, 0.0004, (2, minutes))) * close
    return np.column_stack([
        START_MS + np.arange(minutes) * 60_000, open_, np.maximum(open_, close) + wick[0],
        np.minimum(open_, close) - wick[1], close, rng.uniform(1.0, 20.0, minutes),
    ])  # fmt: skip


def _signal(candles: np.ndarray, minute: int, side: Side, width: float, kind: EntryType):
    """At the close of ``minute``; a limit entry rests 0.15 % away (some expire unfilled)."""
    entry = float(candles[minute, 4]) * (1 - side.sign * (0.0015 if kind is EntryType.LIMIT else 0))
    stop = entry * (1 - side.sign * width)
    target = entry * (1 + side.sign * 1.5 * width)
    return Signal(side, kind, entry, stop, target, 0.6, ("scripted",), "5m")


def _script(candles: np.ndarray) -> tuple[dict[int, Signal], set[int]]:
    """A signal every ~50 minutes at a 5m close (long/short, limit/market, tight brackets
    and wide ones that hold for hours: funding, time stops), a tight long market entry just
    before the gap (liquidated), strategy exits at every 173rd 5m close."""
    signals: dict[int, Signal] = {}
    for k, minute in enumerate(range(19, len(candles) - 10, 50)):
        minute -= (minute + 1) % 5  # a 5m close
        side = Side.LONG if k % 3 else Side.SHORT
        kind = EntryType.MARKET if k % 2 else EntryType.LIMIT
        signal = _signal(candles, minute, side, 0.004 if k % 4 else 0.03, kind)
        signals[int(candles[minute, 0]) + 60_000] = signal
    before_gap = GAP_MINUTE - 6  # decided at the 5m close 5 minutes before the gap
    for now in [t for t in signals if 0 <= candles[before_gap, 0] - t < 11 * 3_600_000]:
        del signals[now]  # nothing else open then (a position lives at most 600 minutes)
    signals[int(candles[before_gap, 0]) + 60_000] = _signal(
        candles, before_gap, Side.LONG, 0.004, EntryType.MARKET
    )
    first = int(candles[0, 0]) + FIVE_MINUTES
    exits = set(range(first, int(candles[-1, 0]), 173 * FIVE_MINUTES))
    return signals, exits


def _replay(candles: np.ndarray, funding: np.ndarray, skip_idle: bool):
    signals, exits = _script(candles)
    config = KernelConfig(max_session_loss_pct=20.0, risk_limits=RiskLimits(
        max_risk_per_trade_pct=1.0))  # fmt: skip
    kernel = StrategyKernel("scripted", {"BTC/USDT:USDT": _Scripted(signals, exits)}, config)
    kernel.set_inputs("BTC/USDT:USDT", funding=funding)
    kernel.preload("BTC/USDT:USDT", candles)
    return kernel, kernel.replay("BTC/USDT:USDT", candles, skip_idle=skip_idle)


def test_holding_and_waiting_fast_paths_equal_the_every_candle_loop() -> None:
    """Stop losses, take profits, a liquidation on a gap, time stops, strategy exits, funding
    paid and received, expired limit entries, the kill switch and then shadow positions: the
    replay that steps over held and waiting candles produces every event, the equity curve
    (float for float) and the final state of the loop that feeds every candle."""
    candles = _random_walk(6 * 1440, seed=3)
    settlements = np.arange(START_MS, START_MS + 6 * 86_400_000, 8 * 3_600_000)
    rates = np.where(np.arange(len(settlements)) % 2, 0.0003, -0.0002)
    funding = np.column_stack([settlements, rates])
    fast_kernel, fast = _replay(candles, funding, skip_idle=True)
    slow_kernel, slow = _replay(candles, funding, skip_idle=False)
    assert [e.to_dict() for e in fast.events] == [e.to_dict() for e in slow.events]
    assert np.array_equal(fast.equity, slow.equity)
    assert np.array_equal(fast.in_position, slow.in_position)
    assert fast_kernel.state() == slow_kernel.state()
    assert fast.visited < len(candles) // 4, "nothing was stepped over"

    closed = [e for e in fast.events if isinstance(e, PositionClosed)]
    reasons = {e.trade.exit_reason for e in closed}
    assert {ExitReason.STOP_LOSS, ExitReason.TAKE_PROFIT, ExitReason.LIQUIDATION,
            ExitReason.TIME_STOP, ExitReason.REGIME_CHANGE} <= reasons  # fmt: skip
    amounts = [e.amount for e in fast.events if isinstance(e, FundingApplied)]
    assert min(amounts) < 0 < max(amounts), "funding both paid and received"
    assert any(isinstance(e, KillSwitchTripped) for e in fast.events)
    assert any(e.shadow for e in closed), "no shadow position after the kill switch"
    assert any(isinstance(e, OrderCancelled) and "not filled" in e.reason for e in fast.events)


def test_a_bar_the_ledger_refuses_while_holding_is_refused_by_the_fast_replay_too() -> None:
    """A held position meets every bar in ``Ledger.check_exits``, which refuses a bar whose
    low is above its open: the replay that steps over held candles stops there as well."""
    candles = _random_walk(600, seed=5)
    candles[100, 3] = candles[100, 1] + 1.0  # low above the open
    entry = {int(candles[19, 0]) + 60_000: _signal(candles, 19, Side.LONG, 0.2, EntryType.MARKET)}
    for skip_idle in (True, False):
        kernel = StrategyKernel("scripted", {"X": _Scripted(entry, set())},
                                KernelConfig(market_rules=synthetic_rules("X")))  # fmt: skip
        kernel.preload("X", candles)
        with pytest.raises(InvalidCandle, match="inconsistent"):
            kernel.replay("X", candles, skip_idle=skip_idle)
        assert kernel.ledger.positions
