from __future__ import annotations

import numpy as np
import pytest

from backtests.core.engine import BacktestDataError, BacktestResult, prepare_candles, run_backtest
from backtests.core.sweep import DAY_MS, expand_grid, rank, run_sweep, walk_forward_windows
from strategies.core.kernel import KernelConfig
from strategies.core.snapshot import CandleSet
from tests.backtests.core.test_lookahead import BTC, BTC_FUNDING
from trading.core.candles import aggregate_candles


def test_the_grid_expands_to_every_combination_in_order() -> None:
    assert expand_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"},
    ]  # fmt: skip


def test_walk_forward_windows_roll_by_the_out_of_sample_length() -> None:
    """7 days, 3:2 → (d0–d3 | d3–d5), (d2–d5 | d5–d7)."""
    windows = walk_forward_windows(0, 7 * DAY_MS, 3, 2)
    assert [(w.in_start_ms, w.in_end_ms, w.out_end_ms) for w in windows] == [
        (0, 3 * DAY_MS, 5 * DAY_MS), (2 * DAY_MS, 5 * DAY_MS, 7 * DAY_MS),
    ]  # fmt: skip


def test_walk_forward_refuses_windows_longer_than_the_data() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        walk_forward_windows(0, 2 * DAY_MS, 3, 1)


def test_ranking_puts_runs_with_too_few_trades_last_whatever_their_pnl() -> None:
    rows = [{"trades": 2, "net_pnl": 900.0}, {"trades": 30, "net_pnl": 10.0},
            {"trades": 40, "net_pnl": 50.0}]  # fmt: skip
    ranked = rank(rows, min_trades=10)
    assert [r["net_pnl"] for r in ranked] == [50.0, 10.0, 900.0]
    assert not ranked[-1]["enough_trades"]


# -- run_sweep: one prepared candle set, many parameter sets -----------------------------------

SWEEP_GRID = {
    "rsi_period": [10, 14],
    "rsi_long_below": [25.0, 30.0],
    "stop_atr_mult": [1.0, 1.5],
    "adx_range_max": [20.0, 25.0],
}  # the bench's grid without volume_spike_mult: runs with trades, runs without


def _same_run(a: BacktestResult, b: BacktestResult) -> None:
    assert [e.to_dict() for e in a.events] == [e.to_dict() for e in b.events]
    assert np.array_equal(a.equity, b.equity)
    assert np.array_equal(a.in_position, b.in_position)
    assert np.array_equal(a.times_ms, b.times_ms)
    assert a.final_state == b.final_state
    assert a.skipped_reason == b.skipped_reason
    assert [t.to_dict() for t in a.trades] == [t.to_dict() for t in b.trades]


def test_each_sweep_result_equals_the_single_run_of_its_parameters() -> None:
    """The runs share one candle set (aggregation, pre-filter arrays, indicator values at
    each decision); each result is the single ``run_backtest`` of its parameters, in order,
    whichever runs came before it (the sweep is also run backwards)."""
    grid = expand_grid(SWEEP_GRID)
    config = KernelConfig()
    swept = run_sweep("vwap_rsi", grid, "BTC/USDT:USDT", BTC, config=config)
    backwards = run_sweep("vwap_rsi", grid[::-1], "BTC/USDT:USDT", BTC, config=config)[::-1]
    singles = [run_backtest("vwap_rsi", p, "BTC/USDT:USDT", BTC, config=config) for p in grid]
    assert sum(len(r.trades) for r in singles) > 0, "no trade anywhere: the check is vacuous"
    for single, result, reverse in zip(singles, swept, backwards, strict=True):
        _same_run(result, single)
        _same_run(reverse, single)


@pytest.mark.parametrize(
    "params",
    [
        {"rsi_period": 10, "rsi_long_below": 30.0, "stop_atr_mult": 1.5, "adx_range_max": 25.0},
        {"timeframe": "1m", "rsi_long_below": 35, "rsi_short_above": 65, "adx_range_max": 30},
    ],
)
def test_a_sweep_run_equals_the_run_that_feeds_every_candle(params: dict) -> None:
    """After other parameter sets filled the shared caches, a sweep's run still equals the
    reference loop (every candle through ``on_candle``, as live)."""
    others = expand_grid({"rsi_period": [10, 14], "adx_range_max": [20.0, 30.0]})
    config = KernelConfig()
    prepared = prepare_candles(BTC)
    run_sweep("vwap_rsi", others, "BTC/USDT:USDT", prepared, config=config)
    [swept] = run_sweep("vwap_rsi", [params], "BTC/USDT:USDT", prepared, config=config)
    reference = run_backtest(
        "vwap_rsi", params, "BTC/USDT:USDT", BTC, config=config, skip_idle=False
    )
    assert swept.trades
    _same_run(swept, reference)


def test_a_sweep_refuses_higher_timeframe_candles_like_a_single_run() -> None:
    five = aggregate_candles(BTC[:600], "5m")
    with pytest.raises(BacktestDataError, match="replays 1m candles"):
        run_sweep("vwap_rsi", [{}], "BTC/USDT:USDT", five, config=KernelConfig())
    with pytest.raises(BacktestDataError, match="replays 1m candles"):
        run_sweep("vwap_rsi", [{}], "BTC/USDT:USDT", CandleSet(five), config=KernelConfig())


TRADING_GRID = {
    "rsi_long_below": [35.0, 40.0],
    "rsi_short_above": [60.0, 65.0],
    "volume_spike_mult": [1.2, 1.5],
    "adx_range_max": [25.0, 35.0],
}  # the bench's sweep grid (at stop_atr_mult 1.0): every set trades on the bundled week


def test_a_sweep_of_trading_sets_equals_the_runs_that_feed_every_candle() -> None:
    """Every set of the grid trades; the sweep's runs (shared caches, pre-filter, held and
    waiting candles stepped over) equal the reference loop (every candle through
    ``on_candle``, as live), funding included."""
    grid = expand_grid(TRADING_GRID)
    config = KernelConfig()
    swept = run_sweep("vwap_rsi", grid, "BTC/USDT:USDT", BTC, config=config, funding=BTC_FUNDING)
    for params, result in zip(grid, swept, strict=True):
        reference = run_backtest(
            "vwap_rsi", params, "BTC/USDT:USDT", BTC, config=config, funding=BTC_FUNDING,
            skip_idle=False,
        )  # fmt: skip
        assert result.trades, params
        _same_run(result, reference)
    exits = {t.exit_reason.value for result in swept for t in result.trades}
    assert {"stop_loss", "take_profit", "time_stop", "regime_change"} <= exits
