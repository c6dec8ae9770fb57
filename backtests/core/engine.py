"""The backtest engine: a thin loop feeding every closed 1m candle to a :class:`StrategyKernel`.

The kernel is the SAME object the live runtime drives (``strategies.core.kernel``), so every
rule of the backtest (order of work per candle, fills, intrabar rule, funding, liquidation,
kill switch, risk gate) is the live rule; this module only loops, records and summarises.

Data timeframe: the base series MUST be 1m candles. Stops, take-profits, limit fills and
liquidations are resolved on 1m bars and every higher timeframe a strategy reads is aggregated
from them (only complete, closed buckets). A 5m or 1h file is refused with
:class:`BacktestDataError` rather than replayed as if each bar were one minute, which would lie
about time (funding instants, time stops, the order of fills inside a bar). Fetch 1m history
(``manage.py fetch_history``) for the period instead.

Equity curve: after each candle, ``cash + unrealised P&L at the close`` of the real ledger.
At the end of the data, open positions are closed at the last close as takers
(``ExitReason.END_OF_DATA``) so totals and trade lists agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from strategies.core.base import OrderBook, Strategy, StrategyParams
from strategies.core.catalog import build_strategy
from strategies.core.kernel import (
    KernelConfig,
    KernelEvent,
    PositionClosed,
    SignalEvent,
    StrategyKernel,
)
from strategies.core.snapshot import CandleSet
from trading.core.candles import MINUTE_MS, validate_candles
from trading.core.ledger import ClosedTrade
from trading.core.types import ExitReason, TradingCoreError


class BacktestDataError(TradingCoreError):
    """The data handed to the engine cannot be backtested honestly (message says why)."""


@dataclass(slots=True)
class BacktestResult:
    """One run. Money in USDT, times in ms (UTC); ``equity[i]`` is at ``times_ms[i]``."""

    strategy: str
    symbol: str
    config: KernelConfig
    candles: int
    times_ms: np.ndarray  # close time of each 1m candle
    equity: np.ndarray  # real ledger equity incl. open P&L after each candle
    in_position: np.ndarray  # bool: the real ledger held a position after the candle
    events: list[KernelEvent]
    trades: list[ClosedTrade]  # real ledger, in exit order
    shadow_trades: list[ClosedTrade]
    trade_regimes: list[str]  # regime at entry of each trade
    skipped_reason: str | None
    elapsed_s: float
    kernel: StrategyKernel = field(repr=False, compare=False)  # as the run left it

    @property
    def final_state(self) -> dict[str, Any]:
        """The kernel's state at the end of the run (:meth:`StrategyKernel.state`), built on
        demand: most runs of a sweep never read it."""
        return self.kernel.state()

    @property
    def signals(self) -> list[SignalEvent]:
        return [e for e in self.events if isinstance(e, SignalEvent)]


def as_strategy(kind: str, params: Mapping[str, Any] | StrategyParams | None) -> Strategy:
    """A strategy of ``kind`` with ``params`` (validated by its schema; ``None`` = defaults)."""
    if isinstance(params, StrategyParams):
        return build_strategy(kind, params.model_dump())
    return build_strategy(kind, dict(params or {}))


def check_base_candles(candles_1m: np.ndarray) -> np.ndarray:
    """Validated (N, 6) 1m candles; a higher-timeframe series raises BacktestDataError."""
    array = np.asarray(candles_1m, dtype=np.float64).reshape(-1, 6)
    _check_minute_steps(array)
    return validate_candles(array, "1m")


def _check_minute_steps(array: np.ndarray) -> None:
    if len(array) == 0:
        raise BacktestDataError("no candles to backtest")
    if len(array) > 1:
        step = int(np.min(np.diff(array[:, 0])))
        if step != MINUTE_MS:
            raise BacktestDataError(
                f"the engine replays 1m candles; these are {step // MINUTE_MS}m apart. Stops, "
                "fills and funding are resolved on 1m bars: give 1m history for the period"
            )


def prepare_candles(candles_1m: np.ndarray | CandleSet) -> CandleSet:
    """The 1m candles checked as :func:`check_base_candles` does, as a read-only
    :class:`CandleSet`: runs given the same set share its aggregation and derived values."""
    if isinstance(candles_1m, CandleSet):
        _check_minute_steps(candles_1m.minutes)
        return candles_1m
    return CandleSet(check_base_candles(candles_1m))


def run_backtest(
    strategy_kind: str,
    params: Mapping[str, Any] | StrategyParams | None,
    symbol: str,
    candles_1m: np.ndarray | CandleSet,
    *,
    funding: np.ndarray | None = None,
    open_interest: np.ndarray | None = None,
    books: Sequence[OrderBook] = (),
    trades: np.ndarray | None = None,
    config: KernelConfig,
    confirmers: Sequence[Strategy] = (),
    progress: Callable[[float], None] | None = None,
    name: str | None = None,
    skip_idle: bool = True,
) -> BacktestResult:
    """Run one strategy over ``candles_1m`` (sorted 1m rows ``[open_ms, o, h, l, c, v]``, or
    a :func:`prepare_candles` set shared by several runs: the same result, less work).

    ``progress(fraction)`` is called about every 1 % of the candles and once with 1.0.
    ``skip_idle=False`` sends every candle through ``on_candle`` (the reference of
    :meth:`StrategyKernel.replay`'s idle skipping; same result, slower).
    """
    started = time.perf_counter()
    prepared = prepare_candles(candles_1m)
    candles = prepared.minutes
    strategy = as_strategy(strategy_kind, params)
    label = name or strategy_kind
    kernel = StrategyKernel(label, {symbol: strategy}, config, confirmers)
    kernel.set_inputs(symbol, funding=funding, open_interest=open_interest, trades=trades)
    kernel.preload(symbol, prepared, order_books=books)

    n = len(candles)
    times = (candles[:, 0] + MINUTE_MS).astype(np.int64)
    replay = kernel.replay(symbol, candles, skip_idle=skip_idle, progress=progress)
    events: list[KernelEvent] = replay.events
    equity, held = replay.equity, replay.in_position
    events.extend(kernel.flatten(symbol, int(times[-1]), ExitReason.END_OF_DATA))
    equity[-1] = kernel.ledger.cash_usdt
    if progress is not None:
        progress(1.0)

    closed = [e for e in events if isinstance(e, PositionClosed)]
    return BacktestResult(
        strategy=label,
        symbol=symbol,
        config=config,
        candles=n,
        times_ms=times,
        equity=equity,
        in_position=held,
        events=events,
        trades=[e.trade for e in closed if not e.shadow],
        shadow_trades=[e.trade for e in closed if e.shadow],
        trade_regimes=[e.regime for e in closed if not e.shadow],
        # Still skipped at the end (e.g. no open interest at all): say so, never a silent zero.
        skipped_reason=kernel.skipped_reason(symbol),
        elapsed_s=time.perf_counter() - started,
        kernel=kernel,
    )
