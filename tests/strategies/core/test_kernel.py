"""The strategy kernel on crafted candles: every number below is worked by hand.

Common set-up: capital 10,000 USDT, risk 1 % per trade, Bitget fees (maker 0.02 %, taker
0.06 %), slippage 0.05 %. A scripted strategy signals LONG BTC at the close of candle 0:
entry reference 100,000, stop 99,000, target 102,000, MARKET entry.

Sizing (taker entry): cost per BTC = distance 1,000 + exit fee 99,000 × 0.0006 = 59.4
+ entry fee 100,000 × 0.0006 = 60 + slippage 99,000 × 0.0005 + 100,000 × 0.0005 = 99.5
→ 1,218.9 USDT; qty = 100 / 1,218.9 = 0.08204 → 0.082 BTC (step 0.001).
Entry: candle 1 OPENS at 100,000 → fill 100,000 × 1.0005 = 100,050, entry fee
0.082 × 100,050 × 0.0006 = 4.92246 USDT.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

import numpy as np
import pytest

from strategies.core.base import EntryType, Inputs, MarketSnapshot, Signal, Strategy, StrategyParams
from strategies.core.catalog import build_strategy
from strategies.core.kernel import (
    CloseIntent,
    FundingApplied,
    KernelConfig,
    KernelError,
    Mode,
    OrderIntent,
    PositionClosed,
    PositionOpened,
    SignalEvent,
    StrategyKernel,
    client_order_id,
)
from strategies.core.regime import RegimeThresholds
from trading.core.candles import CandleNotClosed, read_candles_csv
from trading.core.risk import (
    ACCOUNT_SCOPE,
    AccountState,
    RiskLimits,
    evaluate_account_kill_switch,
    start_session,
)
from trading.core.types import ExitReason, OrderType, Side

SYMBOL = "BTC/USDT:USDT"
T0 = 1_750_146_000_000 + 57 * 60_000  # 2025-06-17 07:57 UTC
ENTRY_FEE = 0.082 * 100_050 * 0.0006


class ScriptParams(StrategyParams):
    timeframe: str = "1m"
    max_hold_minutes: int = 10_000


class Scripted(Strategy):
    """Returns the scripted signal at the given decision times, nothing otherwise."""

    kind: ClassVar[str] = "test_scripted"
    Params = ScriptParams
    inputs = Inputs(timeframes=("1m",))

    def __init__(self, script: dict[int, Signal]) -> None:
        super().__init__()
        self.script = script

    def warmup_candles(self) -> dict[str, int]:
        return {"1m": 1}

    def decide(self, market: MarketSnapshot) -> Signal | None:
        return self.script.get(market.now_ms)


LONG = Signal(Side.LONG, EntryType.MARKET, 100_000.0, 99_000.0, 102_000.0, 0.7, ("scripted",))


def config(**changes: object) -> KernelConfig:
    base: dict[str, object] = {"risk_limits": RiskLimits(max_risk_per_trade_pct=1.0)}
    base.update(changes)
    return KernelConfig(**base)  # type: ignore[arg-type]


def row(i: int, o: float, h: float, lo: float, c: float) -> np.ndarray:
    return np.array([T0 + i * 60_000, o, h, lo, c, 10.0])


def run(candles: list[np.ndarray], kernel: StrategyKernel | None = None, **inputs: object):
    kernel = kernel or StrategyKernel("test", {SYMBOL: Scripted({T0 + 60_000: LONG})}, config())
    if inputs:
        kernel.set_inputs(SYMBOL, **inputs)  # type: ignore[arg-type]
    events = []
    for candle in candles:
        events += kernel.on_candle(SYMBOL, candle, int(candle[0]) + 60_000)
    return kernel, events


def closed(events: list) -> list:
    return [e.trade for e in events if isinstance(e, PositionClosed)]


CANDLE_0 = row(0, 100_000, 100_100, 99_900, 100_000)
CANDLE_1 = row(1, 100_000, 100_200, 99_900, 100_100)


def test_the_market_entry_fills_at_the_open_of_the_candle_after_the_decision() -> None:
    _, events = run([CANDLE_0, CANDLE_1])
    signal = next(e for e in events if isinstance(e, SignalEvent))
    opened = next(e for e in events if isinstance(e, PositionOpened))
    assert signal.accepted and signal.time_ms == T0 + 60_000
    assert opened.position.entry_time_ms == T0 + 60_000  # candle 1's open, not candle 0's
    assert opened.position.entry_price == pytest.approx(100_050.0)
    assert opened.position.qty == pytest.approx(0.082)
    assert opened.position.entry_fee == pytest.approx(ENTRY_FEE)


def test_a_stopped_trade_loses_the_risk_budget_with_fees_and_slippage() -> None:
    """Candle 2 O 99,500 H 99,600 L 98,800 C 99,000 (red: O→H→L) reaches the 99,000 stop:
    fill 99,000 × 0.9995 = 98,950.5; gross 0.082 × (98,950.5 − 100,050) = −90.159; exit fee
    0.082 × 98,950.5 × 0.0006 = 4.8683646; net −90.159 − 4.92246 − 4.8683646 = −99.9498246."""
    _, events = run([CANDLE_0, CANDLE_1, row(2, 99_500, 99_600, 98_800, 99_000)])
    (trade,) = closed(events)
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.exit_price == pytest.approx(98_950.5)
    assert trade.gross_pnl == pytest.approx(-90.159)
    assert trade.net_pnl == pytest.approx(-99.9498246)


def test_a_take_profit_trade_exits_at_the_target_as_maker() -> None:
    """Candle 2 O 100,500 H 102,100 L 100,400 C 101,900 trades through 102,000: gross
    0.082 × 1,950 = 159.9, maker exit fee 0.082 × 102,000 × 0.0002 = 1.6728,
    net 159.9 − 4.92246 − 1.6728 = 153.30474."""
    _, events = run([CANDLE_0, CANDLE_1, row(2, 100_500, 102_100, 100_400, 101_900)])
    (trade,) = closed(events)
    assert trade.exit_reason is ExitReason.TAKE_PROFIT
    assert trade.net_pnl == pytest.approx(153.30474)


def test_a_gap_through_the_liquidation_price_loses_the_whole_margin() -> None:
    """Notional 0.082 × 100,050 = 8,204.1; margin budget 3,333.33 / 1.012 = 3,293.87 →
    the gate's lowest workable leverage is 3× (margin 2,734.70). Isolated liquidation
    (100,050 − 100,050 / 3) / (1 − 0.004 − 0.0006) = 67,008.24. Candle 2 opens at 60,000, below
    it: liquidated, gross − exit fee = −margin → net = −2,734.70 − 4.92246 = −2,739.62."""
    _, events = run([CANDLE_0, CANDLE_1, row(2, 60_000, 60_500, 59_000, 60_000)])
    opened = next(e for e in events if isinstance(e, PositionOpened)).position
    (trade,) = closed(events)
    assert opened.leverage == 3
    assert opened.liquidation_price == pytest.approx(67_008.24, abs=0.01)
    assert trade.exit_reason is ExitReason.LIQUIDATION
    assert trade.net_pnl == pytest.approx(-8_204.1 / 3 - ENTRY_FEE)


def test_funding_is_paid_at_the_settlement_the_position_holds() -> None:
    """Candle 2 (07:59–08:00) closes at 100,100 on the 08:00 settlement, rate +0.01 %: the
    long pays 0.082 × 100,100 × 0.0001 = 0.820820 USDT. Candle 3 hits the target: net
    153.30474 − 0.82082 = 152.48392."""
    funding = np.array([[T0 + 3 * 60_000, 0.0001]])
    candles = [CANDLE_0, CANDLE_1, row(2, 100_100, 100_200, 100_000, 100_100)]
    candles.append(row(3, 100_500, 102_100, 100_400, 101_900))
    _, events = run(candles, funding=funding)
    (paid,) = [e for e in events if isinstance(e, FundingApplied)]
    (trade,) = closed(events)
    assert paid.time_ms == T0 + 3 * 60_000
    assert paid.amount == pytest.approx(-0.82082)
    assert trade.funding == pytest.approx(0.82082)
    assert trade.net_pnl == pytest.approx(152.48392)


def test_a_settlement_polled_after_its_instant_is_booked_at_the_next_candle() -> None:
    """Live polling stores the 08:00 settled rate minutes after 08:00: the kernel has already
    closed candle 2 (08:00) without it. Given at candle 3, it is booked then, at its own time
    and with candle 3's close as the mark (the mark the kernel has: 100,250): the long of
    0.082 BTC pays 0.082 × 100,250 × 0.0001 = 0.822050 USDT, paid once even when the same
    rows are handed again."""
    kernel = StrategyKernel("test", {SYMBOL: Scripted({T0 + 60_000: LONG})}, config())
    events: list = []
    for candle in [CANDLE_0, CANDLE_1, row(2, 100_100, 100_200, 100_000, 100_100)]:
        events += kernel.on_candle(SYMBOL, candle, int(candle[0]) + 60_000)
    assert not [e for e in events if isinstance(e, FundingApplied)]
    late = np.array([[T0 + 3 * 60_000, 0.0001]])
    kernel.set_inputs(SYMBOL, funding=late)
    events = kernel.on_candle(SYMBOL, row(3, 100_100, 100_300, 100_050, 100_250), T0 + 4 * 60_000)
    (paid,) = [e for e in events if isinstance(e, FundingApplied)]
    assert paid.time_ms == T0 + 3 * 60_000
    assert paid.amount == pytest.approx(-0.82205)
    kernel.set_inputs(SYMBOL, funding=late)
    again = kernel.on_candle(SYMBOL, row(4, 100_250, 100_300, 100_200, 100_250), T0 + 5 * 60_000)
    assert not [e for e in again if isinstance(e, FundingApplied)]


def test_a_forming_candle_never_reaches_the_kernel() -> None:
    kernel = StrategyKernel("test", {SYMBOL: Scripted({})}, config())
    with pytest.raises(CandleNotClosed, match="forming candle"):
        kernel.on_candle(SYMBOL, CANDLE_0, int(CANDLE_0[0]) + 30_000)


def test_a_paused_strategy_trades_in_the_shadow_ledger() -> None:
    kernel = StrategyKernel("test", {SYMBOL: Scripted({T0 + 60_000: LONG})}, config())
    kernel.set_mode(Mode.PAUSED)
    kernel, events = run([CANDLE_0, CANDLE_1], kernel)
    opened = next(e for e in events if isinstance(e, PositionOpened))
    assert opened.shadow
    assert not kernel.ledger.positions
    assert len(kernel.shadow_ledger.positions) == 1


def test_restoring_the_state_mid_run_gives_the_same_trades_as_an_uninterrupted_run() -> None:
    """Real BTC 1m candles (bundled sample), momentum breakout: cut after 4,000 candles, the
    state goes through JSON, a new kernel resumes; every closed trade is identical."""
    from tests.conftest import SAMPLE_DIR

    candles = read_candles_csv(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")

    def fresh(state: dict | None = None) -> StrategyKernel:
        kernel = StrategyKernel(
            "mb", {SYMBOL: build_strategy("momentum_breakout", {})}, config(seed=7), state=state
        )
        kernel.preload(SYMBOL, candles)
        return kernel

    def feed(kernel: StrategyKernel, rows: np.ndarray) -> list:
        out = []
        for r in rows:
            out += kernel.on_candle(SYMBOL, r, int(r[0]) + 60_000)
        return out

    whole = closed(feed(fresh(), candles))
    first = fresh()
    part = closed(feed(first, candles[:4000]))
    state = json.loads(json.dumps(first.state()))
    part += closed(feed(fresh(state), candles[4000:]))
    assert len(whole) >= 5
    assert part == whole


def test_the_risk_gate_sees_both_volatility_states_on_real_candles() -> None:
    """The gate's high-volatility flag (it doubles the slippage estimate) must be computable
    from the snapshot: the ATR percentile window fits in it. Over the bundled BTC week, sampled
    hourly once the 500-period window is full, the flag is sometimes on and sometimes off, and
    always equals the regime rule applied to the snapshot's own 5m candles."""
    from strategies.core.regime import Volatility, last_regime
    from tests.conftest import SAMPLE_DIR

    candles = read_candles_csv(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")
    kernel = StrategyKernel(
        "vol", {"BTC/USDT:USDT": build_strategy("vwap_rsi", {})}, KernelConfig()
    )
    kernel.preload("BTC/USDT:USDT", candles)
    builder = kernel._sym("BTC/USDT:USDT").builder
    assert builder is not None
    seen = []
    start = int(candles[0, 0]) + 48 * 3_600_000  # the 5m window: 500 x 5 min = 41.7 h
    for now_ms in range(start, int(candles[-1, 0]), 3_600_000):
        snapshot = builder.at(now_ms)
        _, high_vol = kernel._market_regime(snapshot, "5m")
        bars = snapshot.candles["5m"]
        assert (
            len(bars) >= kernel.regime_rules.atr_period + kernel.config.regime.atr_percentile_window
        )
        _, volatility = last_regime(bars, kernel.regime_rules)
        assert volatility is not Volatility.UNKNOWN
        assert high_vol == (volatility is Volatility.HIGH)
        seen.append(high_vol)
    assert any(seen) and not all(seen), sum(seen)


# -- the decision seam: order and close intents ----------------------------------------------


def test_an_accepted_signal_emits_one_order_intent_carrying_the_sized_order() -> None:
    """The market entry of the module docstring: 0.082 BTC, stop 99,000, target 102,000; the id
    is the same whatever engine makes the decision (a function of strategy, symbol, time)."""
    _, events = run([CANDLE_0])
    signal = next(e for e in events if isinstance(e, SignalEvent))
    (intent,) = [e for e in events if isinstance(e, OrderIntent)]
    assert intent.client_order_id == client_order_id("test", SYMBOL, T0 + 60_000, "entry")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", intent.client_order_id)
    assert (intent.order_type, intent.limit_price, intent.qty) == (OrderType.MARKET, None, 0.082)
    assert (intent.stop_loss, intent.take_profit, intent.reduce_only) == (99_000, 102_000, False)
    assert intent.leverage == signal.leverage > 0 and intent.time_ms == T0 + 60_000
    assert (signal.client_order_id, signal.order_type, signal.qty) == (
        intent.client_order_id, OrderType.MARKET, 0.082,
    )  # fmt: skip
    opened = next(e for e in run([CANDLE_0, CANDLE_1])[1] if isinstance(e, PositionOpened))
    assert opened.client_order_id == intent.client_order_id


def test_a_limit_intent_rounds_the_entry_passively_and_the_stop_and_target_toward_it() -> None:
    """BTC tick 0.1, long: entry 100,000.07 → 100,000.0 (a buy rounds down), stop 99,000.04 →
    99,000.1 (up, toward the entry), target 102,000.06 → 102,000.0 (down, toward the entry)."""
    limit = Signal(Side.LONG, EntryType.LIMIT, 100_000.07, 99_000.04, 102_000.06, 0.7, ("s",))
    kernel = StrategyKernel("test", {SYMBOL: Scripted({T0 + 60_000: limit})}, config())
    (intent,) = [e for e in run([CANDLE_0], kernel)[1] if isinstance(e, OrderIntent)]
    assert intent.order_type is OrderType.LIMIT and intent.post_only
    assert (intent.limit_price, intent.stop_loss, intent.take_profit) == (
        100_000.0, 99_000.1, 102_000.0,
    )  # fmt: skip
    assert (intent.expires_after_candles, intent.expires_at_ms) == (5, T0 + 60_000 + 5 * 60_000)


def test_a_close_the_kernel_decides_is_a_reduce_only_close_intent_the_venue_fills() -> None:
    kernel, _ = run([CANDLE_0, CANDLE_1])
    events = kernel.flatten(SYMBOL, T0 + 2 * 60_000, ExitReason.MANUAL)
    intent, closed_event = events
    assert isinstance(intent, CloseIntent) and isinstance(closed_event, PositionClosed)
    assert intent.reduce_only and intent.qty == 0.082 and intent.side is Side.LONG
    assert intent.purpose == "exit-manual" and intent.reference_price == 100_100
    assert closed_event.client_order_id == intent.client_order_id
    assert closed_event.trade.exit_price == pytest.approx(100_100 * 0.9995)


def test_no_entry_is_sized_once_the_account_kill_switch_tripped() -> None:
    kernel = StrategyKernel("test", {SYMBOL: Scripted({T0 + 60_000: LONG})}, config())
    tripped = evaluate_account_kill_switch(
        start_session(ACCOUNT_SCOPE, 30_000, 0), 28_440, time_ms=0
    )
    kernel.set_account(AccountState("paper", 28_440, 0, (), tripped))
    _, events = run([CANDLE_0], kernel)
    (signal,) = [e for e in events if isinstance(e, SignalEvent)]
    assert not signal.accepted and signal.client_order_id is None and signal.qty == 0
    assert signal.reason.startswith("account kill switch tripped (paper)")
    assert not [e for e in events if isinstance(e, OrderIntent)]


def test_a_symbol_without_market_rules_is_refused_when_the_kernel_is_built() -> None:
    with pytest.raises(KernelError, match="no market rules for XRP/USDT:USDT"):
        StrategyKernel("test", {"XRP/USDT:USDT": Scripted({})}, config())


def test_every_regime_threshold_acts_on_the_kernels_label_and_volatility_flag() -> None:
    """Over the bundled BTC week (hourly): a lower high-volatility percentile flags more
    candles; an ADX trend/range bar of 100 (never reached) labels every candle ranging."""
    from tests.conftest import SAMPLE_DIR

    candles = read_candles_csv(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")

    def sample(**rules: float) -> tuple[int, set[str]]:
        regime = RegimeThresholds(atr_percentile_window=288, **rules)  # type: ignore[arg-type]
        kernel = StrategyKernel(
            "vol", {SYMBOL: build_strategy("vwap_rsi", {})}, KernelConfig(regime=regime)
        )
        kernel.preload(SYMBOL, candles)
        builder = kernel._sym(SYMBOL).builder
        assert builder is not None
        flags, labels = 0, set()
        for now_ms in range(int(candles[0, 0]) + 30 * 3_600_000, int(candles[-1, 0]), 3_600_000):
            label, high_vol = kernel._market_regime(builder.at(now_ms), "5m")
            flags += high_vol
            labels.add(label)
        return flags, labels

    default_flags, default_labels = sample()
    assert sample(high_vol_percentile=50.0)[0] > default_flags
    assert len(default_labels) > 1
    assert sample(adx_trend=100.0, adx_range=100.0)[1] == {"ranging"}
