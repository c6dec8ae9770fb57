"""Arena assembly: one kernel per enabled strategy, restored from its session and preloaded.

:func:`build_arena` rebuilds each kernel from its last checkpoint (``TradingSession``'s
``ledger_state``) and preloads it with the stored 1m candles it needs
(:func:`preload_stored_history`); :func:`trim_history` keeps a long-running kernel's history
to that same window. The runtime (:mod:`radar.runtime`) then catches up on the candles stored
since the checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from radar.faults import strategy_errored
from strategies.core.base import Strategy
from strategies.core.catalog import build_strategy
from strategies.core.kernel import KernelConfig, StrategyKernel
from strategies.models import Signal, StrategyConfig
from trading.core.candles import timeframe_ms
from trading.models import Candle, TradingMode, TradingSession
from trading.services import session_start

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
CONFIRMATION_KIND = "order_flow"


@dataclass(slots=True)
class ArenaEntry:
    """One strategy of the arena: its config, kernel, session, and what rebuilds the kernel."""

    config: StrategyConfig
    kernel: StrategyKernel
    session: TradingSession
    symbols: tuple[str, ...]
    kernel_config: KernelConfig  # base settings, capital = the session's
    confirmers: tuple[StrategyConfig, ...] = ()
    signal_count: int = 0
    applied_weight: float = 1.0  # capital weight the kernel's risk gate currently uses
    checkpoint_due: bool = False  # its controls changed: save its state with the next candle
    save_fields: set[str] | None = None  # checkpoint due at the commit, with these columns
    published: bool = False  # its arena row is due for an ``arena.update`` at the commit
    errored: str = ""  # why its kernel failed; it takes no candle until resumed (runtime doc)
    # the StrategyInputStatus rows stored for it, read on its first candle (radar.input_status)
    input_status: dict[tuple[str, str], str] | None = None

    @property
    def mode(self) -> str:
        return self.session.mode


def session_for(config: StrategyConfig, mode: str = TradingMode.PAPER) -> TradingSession:
    """The running session of a strategy, created on first use (survives restarts)."""
    return session_start(
        strategy_name=config.name, mode=mode, initial_capital_usdt=config.virtual_capital_usdt
    )


def build_arena(
    configs: Iterable[StrategyConfig],
    symbols: Sequence[str],
    kernel_config: KernelConfig,
    *,
    exchange: str,
) -> list[ArenaEntry]:
    """One kernel per enabled strategy, restored from its session (state, history, controls).

    Confirmation strategies (``order_flow``) trade nothing: they become every kernel's
    confirmers, built with their base parameters (a kernel's confirmers are shared by all its
    symbols, so their per-symbol overrides do not apply).
    """
    from radar.controls import apply_controls  # controls act on entries: below in the module map

    configs = list(configs)
    confirmers = tuple(c for c in configs if c.kind == CONFIRMATION_KIND)
    arena = []
    for config in configs:
        if config.kind == CONFIRMATION_KIND:
            continue
        session = session_for(config)
        own_config = replace(kernel_config, capital_usdt=session.initial_capital_usdt)
        try:
            config.check_stored()
            kernel = new_kernel(
                config, confirmers, symbols, own_config, state=session.ledger_state or None
            )
        except Exception as exc:  # that strategy's alone: left out, errored, told
            _left_out(config, session, exc)
            continue
        arena.append(
            ArenaEntry(
                config=config,
                kernel=kernel,
                session=session,
                symbols=tuple(symbols),
                kernel_config=own_config,
                confirmers=confirmers,
                signal_count=Signal.objects.filter(strategy=config).count(),
                errored=(session.error_reason or "errored")
                if session.status == TradingSession.Status.ERRORED
                else "",
            )
        )
    preload_stored_history([e.kernel for e in arena], exchange)
    for entry in arena:
        try:
            apply_controls(entry, now_ms=last_close_ms(entry.kernel) or 0)
        except Exception as exc:  # a stored control its schema refuses: that strategy errored
            if not entry.errored:
                entry.errored = f"{type(exc).__name__}: {exc} (at start)"
                strategy_errored(
                    session=entry.session,
                    name=entry.config.name,
                    reason=entry.errored,
                    message=f"{entry.config.name} stopped with an error: {entry.errored}",
                )
    return arena


def _left_out(config: StrategyConfig, session: TradingSession, exc: Exception) -> None:
    """A strategy whose kernel cannot be built from its stored configuration: errored, and
    left out of this run (fix it in the admin, Resume it, restart the radar)."""
    reason = f"{type(exc).__name__}: {exc} (building its kernel at start)"
    strategy_errored(
        session=session,
        name=config.name,
        reason=reason,
        message=f"{config.name} left out of the radar: {reason}. Fix it in the admin, Resume "
        "it, then restart the radar; the other strategies trade.",
    )


def new_kernel(
    config: StrategyConfig,
    confirmers: Sequence[StrategyConfig],
    symbols: Sequence[str],
    kernel_config: KernelConfig,
    *,
    state: dict[str, Any] | None,
) -> StrategyKernel:
    """A strategy's kernel with its per-symbol parameters, restored from ``state`` if any.

    No candle history yet (:func:`preload_stored_history`). A symbol the state knows but the
    feed no longer carries keeps its place, so its ledger and open positions are restored
    intact (no candle reaches it until it is fed again).
    """
    known = list((state or {}).get("symbols", {}))
    strategies = {
        symbol: build_strategy(
            config.kind, config.params, (config.symbol_overrides or {}).get(symbol)
        )
        for symbol in dict.fromkeys([*symbols, *known])
    }
    filters: list[Strategy] = [build_strategy(c.kind, c.params) for c in confirmers]
    return StrategyKernel(config.name, strategies, kernel_config, filters, state=state)


def needs_input(arena: Sequence[ArenaEntry], name: str) -> bool:
    """Whether a strategy or confirmer of the arena declares input ``name`` (``order_book``,
    ``trades``, ``funding``, ``open_interest``): the feed then watches that stream."""
    for entry in arena:
        for symbol in entry.kernel.symbols():
            st = entry.kernel._symbols[symbol]
            if any(getattr(s.inputs, name) for s in (st.strategy, *entry.kernel.confirmers)):
                return True
    return False


def history_span_ms(kernel: StrategyKernel, symbol: str) -> int:
    """How much closed 1m history (ms) a restored kernel needs to see what it saw uninterrupted.

    A snapshot shows, per timeframe ``tf``, the last ``max_candles`` periods by TIME
    (``strategies.core.snapshot.window_start_ms``): at the next decision ``now`` its window
    starts after ``now - (max_candles + 1) × tf``. ``(max_candles + 2)`` periods of the longest
    timeframe before the last processed candle therefore hold every candle any later snapshot
    can show. Example: 500 candles (the default), longest timeframe 1h -> 502 h, about 21 days
    or 30,120 rows per symbol (~1.4 MB of float64) — the bound on what a restart loads.
    """
    longest = max(timeframe_ms(tf) for tf in kernel.timeframes(symbol))
    # The kernel's own rule for the window length (config.max_candles, raised to the warm-up).
    return (kernel._max_candles(symbol) + 2) * longest


def stored_candles(exchange: str, symbol: str, after_ms: int, until_ms: int) -> np.ndarray:
    """Stored 1m candles ``[open_ms, o, h, l, c, v]`` with ``after_ms < open_ms <= until_ms``."""
    return (
        Candle.objects.filter(
            exchange=exchange,
            symbol=symbol,
            timeframe="1m",
            open_time_ms__gt=after_ms,
            open_time_ms__lte=until_ms,
        )
        .order_by("open_time_ms")
        .as_array()
    )


def trim_history(kernel: StrategyKernel, symbol: str) -> int:
    """Drop the candles of ``symbol`` that no later snapshot of ``kernel`` can show; returns how
    many 1m rows were dropped.

    A live kernel appends every candle to its history, which would grow without end. The
    window kept is the one a restart reloads (:func:`history_span_ms` before the last processed
    candle), and the kernel is re-preloaded with it exactly as a restart preloads it
    (:func:`preload_stored_history`, proved by the restart parity tests) — from its own
    candles, not the database. Memory bound per kernel and symbol: the span (1h longest,
    500 candles: ~30,000 rows, 1.4 MB) plus what arrives until the next trim.
    """
    state = kernel._symbols.get(symbol)
    if state is None or state.builder is None or state.last_row is None:
        return 0
    minutes = state.builder.history().candles["1m"]
    last = int(state.last_row[0])
    times = minutes[:, 0]
    lo = int(np.searchsorted(times, last - history_span_ms(kernel, symbol), side="right"))
    hi = int(np.searchsorted(times, last, side="right"))
    if lo == 0:
        return 0
    # The indicator series continue their states, as after a restart (a checkpoint carries
    # them): re-seeding them on the trimmed window would change their values.
    state.saved_series = state.builder.series_states()
    kernel.preload(symbol, np.array(minutes[lo:hi]))
    return lo


def preload_stored_history(kernels: Sequence[StrategyKernel], exchange: str) -> None:
    """Preload each restored kernel with the stored candles up to its last processed one.

    ``StrategyKernel.state()`` holds no candle history; without this a restart would re-warm
    every indicator from scratch and decide differently from an uninterrupted run. Each symbol
    is read ONCE (the widest span any kernel needs) and each kernel gets its own slice ending
    at its last processed candle, so the next candle it receives is the next one it appends.
    A kernel that never processed a symbol starts cold, as it did the first time.
    """
    needs: dict[str, list[tuple[StrategyKernel, int, int]]] = {}
    for kernel in kernels:
        for symbol in kernel.symbols():
            last = last_candle_ms(kernel, symbol)
            if last is not None:
                start = last - history_span_ms(kernel, symbol)
                needs.setdefault(symbol, []).append((kernel, start, last))
    for symbol, wanted in needs.items():
        history = stored_candles(
            exchange, symbol, min(s for _, s, _ in wanted), max(e for _, _, e in wanted)
        )
        times = history[:, 0]
        for kernel, start, last in wanted:
            lo = int(np.searchsorted(times, start, side="right"))
            hi = int(np.searchsorted(times, last, side="right"))
            kernel.preload(symbol, history[lo:hi])


def last_candle_ms(kernel: StrategyKernel, symbol: str) -> int | None:
    """Open time of the last 1m candle ``kernel`` processed for ``symbol`` (restored state)."""
    state = kernel._symbols.get(symbol)
    if state is None or state.last_row is None:
        return None
    return int(state.last_row[0])


def last_close_ms(kernel: StrategyKernel) -> int | None:
    """Close time of the latest candle ``kernel`` processed on any symbol."""
    opens = [last_candle_ms(kernel, s) for s in kernel.symbols()]
    known = [t for t in opens if t is not None]
    return max(known) + MINUTE_MS if known else None


def apply_capital_weight(kernel: StrategyKernel, weight: float) -> None:
    """The selector's capital weight scales the risk taken per trade (sizing follows)."""
    base = kernel.config.risk_limits
    limits = replace(base, max_risk_per_trade_pct=base.max_risk_per_trade_pct * weight)
    kernel.gate = replace(kernel.gate, limits=limits)  # market rules and tiers kept
