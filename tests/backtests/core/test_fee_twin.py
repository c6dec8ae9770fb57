"""The "without fees" figure is the run's OWN trades with their fees removed: same sizes, fills,
exits and kill switch, so every figure beside the fees follows from the trades themselves."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from backtests import services
from backtests.core import fee_twin
from backtests.core.engine import BacktestResult, run_backtest
from backtests.core.metrics import cost_split
from backtests.services import load_radar_config
from strategies.core.kernel import KernelConfig, PositionClosed, StrategyKernel
from strategies.kernel_config import kernel_config_from
from tests.backtests.core.test_replay import START_MS, _random_walk, _script, _Scripted
from tests.conftest import SAMPLE_DIR
from trading.core.orders import BUNDLED_ASSET_RULES
from trading.core.risk import RiskLimits
from trading.core.types import ExitReason

SYMBOL = "BTC/USDT:USDT"
BTC_1M = SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
BTC_FUNDING = SAMPLE_DIR / "binance-usdm_BTC-USDT_funding_20250617-20250623.csv.gz"
FEE_FIELDS = {"entry_fee", "exit_fee", "net_pnl"}
TOLERANCE = 1e-9  # USDT: float rounding of sums of a few dozen values


def shipped_config() -> KernelConfig:
    """``config/risk.yaml``'s settings (what the command runs), the bundled contracts' rules."""
    return kernel_config_from(load_radar_config(), market_rules=BUNDLED_ASSET_RULES)


@pytest.fixture(scope="module")
def computed() -> services.Computed:
    """momentum_breakout on the bundled BTC week with funding, the shipped risk settings: it
    trades, pays funding and trips its 5 % kill switch (later decisions go to the shadow
    ledger)."""
    data = services.read_data_files([BTC_1M, BTC_FUNDING], SYMBOL)
    return services.backtest_compute(kind="momentum_breakout", params={}, symbol=SYMBOL,
                                     data=data, config=shipped_config(),
                                     name="momentum_breakout")  # fmt: skip


def test_the_fees_removed_trades_are_the_run_s_own_trades_with_only_the_fees_changed(
    computed: services.Computed,
) -> None:
    run, twin = computed.result.trades, computed.without_fees.trades
    assert computed.summary["kill_switch_tripped"], "the case must cover a tripped kill switch"
    assert len(run) == len(twin) > 0
    kept = [f.name for f in fields(run[0]) if f.name not in FEE_FIELDS]
    for on, off in zip(run, twin, strict=True):
        assert [getattr(off, k) for k in kept] == [getattr(on, k) for k in kept]
        fees, liquidation = cost_split(on, computed.result.config.fee_schedule.taker_rate)
        assert (off.entry_fee, off.exit_fee) == (0.0, liquidation)
        assert off.net_pnl == pytest.approx(on.net_pnl + fees, abs=TOLERANCE)
        assert off.net_pnl == pytest.approx(on.gross_pnl - on.funding - liquidation, abs=TOLERANCE)


def test_the_summary_adds_up_with_and_without_fees(computed: services.Computed) -> None:
    s = computed.summary
    off = s["without_fees"]
    assert s["fees"] > 0 and s["funding"] != 0
    assert s["gross_pnl"] - s["fees"] - s["funding"] - s["liquidation_loss"] == pytest.approx(
        s["net_pnl"], abs=TOLERANCE
    )
    assert s["net_pnl_without_fees"] == off["net_pnl"]
    assert off["net_pnl"] == pytest.approx(
        s["gross_pnl"] - s["funding"] - s["liquidation_loss"], abs=TOLERANCE
    )
    assert off["net_pnl"] - s["net_pnl"] == pytest.approx(s["fees"], abs=TOLERANCE)
    assert off["fees"] == 0.0
    for key in ("trades", "gross_pnl", "funding", "slippage", "exposure_pct", "liquidation_loss"):
        assert off[key] == s[key], key
    assert s["exposure_pct"] > 0
    assert off["basis"] == fee_twin.BASIS and s["run_basis"] == "fees on"


def test_the_equity_without_fees_adds_back_the_fees_booked_up_to_each_point(
    computed: services.Computed,
) -> None:
    """Entry fees are booked when a position opens, exit fees when it closes: the curve
    without fees is the curve plus every fee stamped at or before each point."""
    result, twin = computed.result, computed.without_fees
    times = result.times_ms
    expected = np.zeros(len(times))
    for t in result.trades:
        expected += np.where(times >= t.entry_time_ms, t.entry_fee, 0.0)
        expected += np.where(times >= t.exit_time_ms, t.exit_fee, 0.0)
    assert np.allclose(twin.equity - result.equity, expected, rtol=0, atol=1e-7)
    capital = result.config.capital_usdt
    assert twin.equity[-1] == pytest.approx(capital + sum(t.net_pnl for t in twin.trades))
    assert computed.summary["without_fees"]["final_equity"] == pytest.approx(twin.equity[-1])


def test_a_zero_fee_re_simulation_places_different_orders(computed: services.Computed) -> None:
    """Why the figure is computed from the run and not re-run: with fees off the equity, hence
    every size after the first trade, and the kill switch's timing differ."""
    data = services.read_data_files([BTC_1M, BTC_FUNDING], SYMBOL)
    again = run_backtest("momentum_breakout", {}, SYMBOL, data.candles, funding=data.funding,
                         config=shipped_config().with_fees(False))  # fmt: skip
    orders = [(t.entry_time_ms, t.qty) for t in computed.result.trades]
    assert [(t.entry_time_ms, t.qty) for t in again.trades] != orders
    assert services.summarise(again)["run_basis"] == fee_twin.RESIMULATED


def scripted_gap_run() -> BacktestResult:
    """The replay tests' scripted strategy over a random walk with a −30 % gap: stops,
    targets, time stops, strategy exits, funding paid and received, and an isolated long
    liquidated on the gap, through the real kernel as ``run_backtest`` drives it."""
    candles = _random_walk(3 * 1440, seed=3)
    settlements = np.arange(START_MS, START_MS + 3 * 86_400_000, 8 * 3_600_000)
    rates = np.where(np.arange(len(settlements)) % 2, 0.0003, -0.0002)
    signals, exits = _script(candles)
    config = KernelConfig(max_session_loss_pct=50.0,
                          risk_limits=RiskLimits(max_risk_per_trade_pct=1.0))  # fmt: skip
    kernel = StrategyKernel("scripted", {SYMBOL: _Scripted(signals, exits)}, config)
    kernel.set_inputs(SYMBOL, funding=np.column_stack([settlements, rates]))
    kernel.preload(SYMBOL, candles)
    replay = kernel.replay(SYMBOL, candles)
    times = (candles[:, 0] + 60_000).astype(np.int64)
    events = replay.events + kernel.flatten(SYMBOL, int(times[-1]), ExitReason.END_OF_DATA)
    replay.equity[-1] = kernel.ledger.cash_usdt
    closed = [e for e in events if isinstance(e, PositionClosed)]
    return BacktestResult(
        strategy="scripted", symbol=SYMBOL, config=config, candles=len(candles), times_ms=times,
        equity=replay.equity, in_position=replay.in_position, events=events,
        trades=[e.trade for e in closed if not e.shadow],
        shadow_trades=[e.trade for e in closed if e.shadow],
        trade_regimes=[e.regime for e in closed if not e.shadow], skipped_reason=None,
        elapsed_s=0.0, kernel=kernel,
    )  # fmt: skip


def test_a_liquidation_s_forfeited_margin_is_its_own_line_and_stays_without_fees() -> None:
    result = scripted_gap_run()
    s = services.summarise(result)
    taker = result.config.fee_schedule.taker_rate
    liquidated = [t for t in result.trades if t.exit_reason is ExitReason.LIQUIDATION]
    assert liquidated, "the gap must liquidate a real position"
    forfeited = sum(t.exit_fee - min(t.exit_fee, t.qty * t.exit_price * taker) for t in liquidated)
    assert s["liquidations"] == len(liquidated)
    assert s["liquidation_loss"] == pytest.approx(forfeited, abs=TOLERANCE) and forfeited > 0
    assert s["fees"] == pytest.approx(sum(t.fees for t in result.trades) - forfeited)
    assert s["gross_pnl"] - s["fees"] - s["funding"] - s["liquidation_loss"] == pytest.approx(
        s["net_pnl"], abs=TOLERANCE
    )
    off = s["without_fees"]
    assert off["liquidation_loss"] == pytest.approx(s["liquidation_loss"], abs=TOLERANCE)
    assert off["fees"] == 0.0
    assert off["net_pnl"] == pytest.approx(
        s["gross_pnl"] - s["funding"] - s["liquidation_loss"], abs=TOLERANCE
    )
    assert off["net_pnl"] - s["net_pnl"] == pytest.approx(s["fees"], abs=TOLERANCE)
