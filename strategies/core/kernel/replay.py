"""The replay fast path: a preloaded history through ``on_candle``, skipping provably idle work.

:meth:`ReplayFastPath.replay` feeds a PRELOADED array through ``on_candle`` and skips, without
changing a single event or state field, the candles on which ``on_candle`` provably does nothing
but move the clock: both ledgers flat, no pending entry, no skipped-input state and the kill
switch already marked at the cash, and no decision due — either not an entry-timeframe close,
or a close where the strategy's vectorised ``signal_candidates`` (a NECESSARY condition of a
signal, computed once over the whole history; :class:`CandidateFilter`) rules a signal out. It
also steps over the candles on which ``on_candle`` provably only marks ONE open position
(:meth:`ReplayFastPath._hold`: no level of the position reached by the bar, no funding
settlement, no time stop, no entry-timeframe close where ``should_exit`` — :class:`ExitFilter`
— or the decision may act, no kill-switch trip; the equity curve is filled with the same float
operations) or only ages pending LIMIT entries (:meth:`ReplayFastPath._wait`), and on the
candles it does visit it leaves out ``should_exit`` and the decision where those filters rule
them out. The live runtime calls ``on_candle`` candle by candle; the tests run both ways over
the bundled data and a scripted random walk (every exit kind, funding, the kill switch, shadow
positions) and compare every event, the equity curve and the final state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from strategies.core.base import Strategy
from strategies.core.kernel.events import KernelEvent
from strategies.core.kernel.state import MINUTE_MS, _SymbolState
from strategies.core.kernel.venue import PaperVenue
from strategies.core.snapshot import History
from trading.core.ledger import OpenPosition
from trading.core.types import OrderType, Side


@runtime_checkable
class CandidateFilter(Protocol):
    """A strategy that can rule decisions out in bulk (optional; see :meth:`StrategyKernel.replay`).

    ``signal_candidates(history, decision_times_ms)`` returns one bool per decision time
    (entry-timeframe closes, ms): ``False`` ONLY where ``decide`` on the snapshot at that time
    returns ``None`` and ``missing_inputs`` is ``None``. Exact conditions qualify (a volume
    ratio over fixed rows, a range max/min, a funding row, the snapshot's candle counts, a
    session VWAP whose session the window holds); seed-dependent indicators (RSI, EMA) only
    through bounds valid for the snapshot's window, compared with a margin; never their value.
    """

    def signal_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ExitFilter(Protocol):
    """A strategy that can rule its ``should_exit`` out in bulk (optional; see
    :meth:`StrategyKernel.replay`).

    ``exit_candidates(history, decision_times_ms)`` returns one bool per decision time:
    ``False`` ONLY where ``should_exit`` on the snapshot at that time returns ``None`` for
    every position (same rules as :class:`CandidateFilter`: exact conditions, or bounds with a
    margin).
    """

    def exit_candidates(self, history: History, decision_times_ms: np.ndarray) -> np.ndarray: ...


@dataclass(slots=True)
class Replay:
    """What :meth:`StrategyKernel.replay` returns: the events in order, the real ledger's
    equity (USDT, cash + open P&L at the close) and whether it held a position, per candle;
    ``visited`` counts the candles that went through :meth:`StrategyKernel.on_candle`."""

    events: list[KernelEvent]
    equity: np.ndarray
    in_position: np.ndarray
    visited: int


@dataclass(frozen=True, slots=True)
class _Bars:
    """The replayed 1m candles as contiguous columns for the numpy searches of
    :meth:`ReplayFastPath._hold` and :meth:`ReplayFastPath._wait`; ``refused`` marks the bars
    ``PriceBar`` refuses (a price ≤ 0, or open/close outside low–high)."""

    rows: np.ndarray
    times: np.ndarray  # close times (ms)
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    refused: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray, times: np.ndarray) -> _Bars:
        o, h, lo, c = (np.ascontiguousarray(rows[:, k]) for k in (1, 2, 3, 4))
        refused = (lo <= 0) | (lo > np.minimum(o, c)) | (h < np.maximum(o, c))
        return cls(rows, times, h, lo, c, refused)


class ReplayFastPath(PaperVenue, ABC):
    """:meth:`replay` and the proofs it skips by (module docstring); ``StrategyKernel``
    supplies the loop itself."""

    @abstractmethod
    def _on_candle(
        self, symbol: str, row_1m: np.ndarray, now_ms: int, *, may_exit: bool, may_decide: bool
    ) -> list[KernelEvent]:
        """One candle through the loop (:meth:`StrategyKernel.on_candle`)."""

    @abstractmethod
    def _evaluate_kill_switch(self, equity: float, now_ms: int, events: list[KernelEvent]) -> None:
        """Step 5 of the loop: mark the kill switch at ``equity`` (USDT)."""

    def decision_candidates(self, symbol: str, times_ms: np.ndarray) -> np.ndarray:
        """Per 1m close time: True where a decision is due (an entry-timeframe close) and the
        strategy's :class:`CandidateFilter` (when it has one) does not rule a signal out."""
        st = self._sym(symbol)
        times = np.asarray(times_ms, dtype=np.int64)
        due = times % st.entry_step_ms == 0
        if st.builder is None or not isinstance(st.strategy, CandidateFilter):
            return due
        mask = np.zeros(len(times), dtype=bool)
        mask[due] = st.strategy.signal_candidates(st.builder.history(), times[due])
        return mask

    def exit_candidates(self, symbol: str, times_ms: np.ndarray) -> np.ndarray:
        """Per 1m close time: True where ``should_exit`` may leave a position — an
        entry-timeframe close the strategy's :class:`ExitFilter` (when it has one) does not rule
        out; never for a strategy that keeps :meth:`Strategy.should_exit`'s ``None``."""
        st = self._sym(symbol)
        times = np.asarray(times_ms, dtype=np.int64)
        due = times % st.entry_step_ms == 0
        if type(st.strategy).should_exit is Strategy.should_exit:
            return np.zeros(len(times), dtype=bool)
        if st.builder is None or not isinstance(st.strategy, ExitFilter):
            return due
        mask = np.zeros(len(times), dtype=bool)
        mask[due] = st.strategy.exit_candidates(st.builder.history(), times[due])
        return mask

    def replay(
        self,
        symbol: str,
        candles_1m: np.ndarray,
        *,
        skip_idle: bool = True,
        progress: Callable[[float], None] | None = None,
    ) -> Replay:
        """Feed ``candles_1m`` (closed 1m rows, already :meth:`preload`-ed) one by one through
        :meth:`on_candle`, each at its close time, skipping idle candles and stepping over
        held and waiting ones (module docstring).

        ``skip_idle=False`` visits every candle (the reference the tests compare with).
        ``progress(fraction)`` is called about every 1 %.
        """
        st = self._sym(symbol)
        rows = np.asarray(candles_1m, dtype=np.float64).reshape(-1, 6)
        n = len(rows)
        times = rows[:, 0].astype(np.int64) + MINUTE_MS
        equity = np.empty(n, dtype=np.float64)
        held = np.zeros(n, dtype=bool)
        events: list[KernelEvent] = []
        preloaded = st.builder is not None and n > 0 and int(rows[-1, 0]) <= st.preloaded_until_ms
        ordered = n < 2 or bool(np.all(np.diff(times) > 0))
        skip = skip_idle and preloaded and ordered
        due = np.flatnonzero(times % st.entry_step_ms == 0) if skip else np.empty(0, np.int64)
        candidate_at = self.decision_candidates(symbol, times) if skip else None
        candidates = np.flatnonzero(candidate_at) if candidate_at is not None else due
        exit_at: np.ndarray | None = None  # per candle: should_exit may act (lazily)
        step = max(1, n // 100)
        next_report = 0
        visited = 0
        holding_stops: np.ndarray | None = None  # closes where a held position may change
        bars: _Bars | None = None  # made on the first held or waiting candle
        i = 0
        while i < n:
            j = i
            if skip and self._idle():
                stops = due if st.skipped_reason is not None else candidates
                k = int(np.searchsorted(stops, i, side="left"))
                j = int(stops[k]) if k < len(stops) else n
                if j > i:
                    equity[i:j] = self.ledger.cash_usdt
                    self._skip_to(st, symbol, rows[j - 1], int(times[j - 1]), int(times[i]))
            elif skip and (single := self._single_position(symbol)) is not None:
                if st.skipped_reason is not None:
                    stops = due
                else:
                    if holding_stops is None:
                        if exit_at is None:
                            exit_at = self.exit_candidates(symbol, times)
                        holding_stops = np.flatnonzero(candidate_at | exit_at)
                    stops = holding_stops
                bars = bars or _Bars.of(rows, times)
                j = self._hold(st, symbol, bars, i, stops, single, equity, held, events)
            elif skip:
                stops = due if st.skipped_reason is not None else candidates
                bars = bars or _Bars.of(rows, times)
                j = self._wait(st, symbol, bars, i, stops, equity)
            if j > i:
                i = j
                if progress is not None and i >= next_report:
                    progress(i / n)
                    next_report = i + step
                continue
            may_exit = may_decide = True
            if candidate_at is not None:
                may_decide = st.skipped_reason is not None or bool(candidate_at[i])
                if self.pending or self.ledger.positions or self.shadow_ledger.positions:
                    if exit_at is None:
                        exit_at = self.exit_candidates(symbol, times)
                    may_exit = bool(exit_at[i])
            emitted = self._on_candle(
                symbol, rows[i], int(times[i]), may_exit=may_exit, may_decide=may_decide
            )
            visited += 1
            if emitted:
                events.extend(emitted)
            ledger = self.ledger
            if ledger.positions:
                equity[i] = ledger.equity(self._marks)
                held[i] = True
            else:
                equity[i] = ledger.cash_usdt
            i += 1
            if progress is not None and i >= next_report:
                progress(i / n)
                next_report = i + step
        return Replay(events, equity, held, visited)

    def _wait(
        self,
        st: _SymbolState,
        symbol: str,
        bars: _Bars,
        i: int,
        stops: np.ndarray,
        equity: np.ndarray,
    ) -> int:
        """Step over the candles from ``i`` on which ``on_candle`` provably does nothing but
        age the pending LIMIT entries of ``symbol`` (both ledgers flat, the kill switch marked
        at the cash as in :meth:`_idle`); return the first candle ``on_candle`` must see.

        A candle needs ``on_candle`` when it reaches a limit price (the fill model draws
        there), when an entry's last candle of ``limit_order_ttl_candles`` comes (cancelled
        there), or when it is a close in ``stops`` (a decision may be due). Before it each
        entry's ``candles_left`` drops by one per candle, as ``_fill_pending`` counts."""
        ks = self.kill_switch
        if (
            not self.pending
            or self.ledger.positions
            or self.shadow_ledger.positions
            or not (ks.tripped or ks.last_equity == self.ledger.cash_usdt)
            or any(
                o.intent.symbol != symbol or o.intent.order_type is not OrderType.LIMIT
                for o in self.pending
            )
        ):
            return i
        end = min(len(bars.rows), i + min(o.candles_left for o in self.pending) - 1)
        k = int(stops.searchsorted(i, side="left"))
        if k < len(stops):
            end = min(end, int(stops[k]))
        if end <= i:
            return i
        reached = np.zeros(end - i, dtype=bool)
        for entry in self.pending:
            price = entry.intent.limit_price
            if entry.intent.side is Side.LONG:
                reached |= bars.low[i:end] <= price
            else:
                reached |= bars.high[i:end] >= price
        hits = np.flatnonzero(reached)
        j = i + int(hits[0]) if len(hits) else end
        if j == i:
            return i
        for entry in self.pending:
            entry.candles_left -= j - i
        equity[i:j] = self.ledger.cash_usdt
        self._skip_to(st, symbol, bars.rows[j - 1], int(bars.times[j - 1]), int(bars.times[i]))
        return j

    def _single_position(self, symbol: str) -> tuple[OpenPosition, bool] | None:
        """The one open position (and whether it is the real ledger's) when it is the only
        one, of ``symbol``, and no entry is pending; else ``None``."""
        if self.pending or len(self.ledger.positions) + len(self.shadow_ledger.positions) != 1:
            return None
        in_real = bool(self.ledger.positions)
        ledger = self.ledger if in_real else self.shadow_ledger
        held = ledger.positions_for(symbol)
        return (held[0], in_real) if held else None

    def _hold(
        self,
        st: _SymbolState,
        symbol: str,
        bars: _Bars,
        i: int,
        stops: np.ndarray,
        single: tuple[OpenPosition, bool],
        equity: np.ndarray,
        held: np.ndarray,
        events: list[KernelEvent],
    ) -> int:
        """Step over the candles from ``i`` on which ``on_candle`` provably does nothing but
        mark the single open position at the close (``single``, from
        :meth:`_single_position`); return the first candle ``on_candle`` must see (``i`` when
        none can be stepped over).

        A candle needs ``on_candle`` when its bar reaches the stop, the liquidation price or
        the target (any of O/H/L/C at or beyond it: a superset of what ``Ledger.check_exits``
        meets) or is one ``PriceBar`` refuses, when it crosses a funding settlement, when the
        time stop is due, when it is an entry-timeframe close in ``stops`` (``should_exit`` or
        the decision may act there), or when the kill switch could trip. On the others the
        real ledger's equity is ``cash + (0.0 + sign × qty × (close − entry))`` — the float
        operations ``Ledger.equity`` makes, in numpy — or the cash when the position is the
        shadow ledger's, and the kill switch is marked once at the last of them (the state a
        mark per candle leaves when none trips).
        """
        position, in_real = single
        times = bars.times
        if position.entry_time_ms > bars.rows[i, 0]:
            return i
        end = len(times)
        if st.max_hold_ms is not None:
            due_ms = position.entry_time_ms + st.max_hold_ms
            end = min(end, int(times.searchsorted(due_ms, side="left")))
        k = int(stops.searchsorted(i, side="left"))
        if k < len(stops):
            end = min(end, int(stops[k]))
        if st.funding is not None and st.last_now_ms is not None:
            f = int(st.funding[:, 0].searchsorted(st.last_now_ms, side="right"))
            if f < len(st.funding):
                end = min(end, int(times.searchsorted(st.funding[f, 0], side="left")))
        if end <= i:
            return i
        h, lo = bars.high[i:end], bars.low[i:end]
        visit = bars.refused[i:end].copy()
        adverse = [position.stop_loss]
        if position.liquidation_price > 0:
            adverse.append(position.liquidation_price)
        target = position.take_profit
        if position.side is Side.LONG:
            visit |= lo <= max(adverse)
            if target is not None:
                visit |= h >= target
        else:
            visit |= h >= min(adverse)
            if target is not None:
                visit |= lo <= target
        hits = np.flatnonzero(visit)
        j = i + int(hits[0]) if len(hits) else end
        if j == i:
            return i
        cash = self.ledger.cash_usdt
        if in_real:
            move = bars.close[i:j] - position.entry_price
            curve = cash + (0.0 + position.side.sign * position.qty * move)
        else:
            curve = np.full(j - i, cash)
        ks = self.kill_switch
        if not ks.tripped:
            start = ks.session_start_equity
            loss_pct = (start - curve) / start * 100.0
            trips = np.flatnonzero(loss_pct >= self.config.max_session_loss_pct)
            if len(trips):
                j = i + int(trips[0])
                curve = curve[: j - i]
                if j == i:
                    return i
            if ks.last_equity is None or bool(np.any(curve != ks.last_equity)):
                self._evaluate_kill_switch(float(curve[-1]), int(times[j - 1]), events)
        equity[i:j] = curve
        held[i:j] = in_real
        self._skip_to(st, symbol, bars.rows[j - 1], int(times[j - 1]), int(times[i]))
        return j

    def _idle(self) -> bool:
        """True when ``on_candle`` would only move the clock (no decision due aside)."""
        ks = self.kill_switch
        return (
            not self.pending
            and not self.ledger.positions
            and not self.shadow_ledger.positions
            and (ks.tripped or ks.last_equity == self.ledger.cash_usdt)
        )

    def _skip_to(
        self,
        st: _SymbolState,
        symbol: str,
        row: np.ndarray,
        now_ms: int,
        first_now_ms: int,
    ) -> None:
        """The state ``on_candle`` leaves after idle candles closing from ``first_now_ms`` to
        ``now_ms`` (the last one ``row``): the clock, the mark, the funding cursor (advanced
        past ``now_ms`` as the funding step does whenever a previous close is known) and
        ``funding_seen_ms`` (the first candle's close, then each booked row's time)."""
        seen = st.funding_seen_ms if st.funding_seen_ms is not None else first_now_ms
        if st.funding is not None:
            passed = int(np.searchsorted(st.funding[:, 0], now_ms, side="right"))
            if passed > st.funding_cursor:
                seen = max(seen, int(st.funding[passed - 1, 0]))
            st.funding_cursor = max(st.funding_cursor, passed)
        st.funding_seen_ms = seen
        st.last_row = row.tolist()
        self._marks[symbol] = st.last_row[4]
        st.last_now_ms = now_ms
