"""The strategy kernel: ONE strategy's trading loop over closed 1m candles.

The backtester (``backtests.core.engine``) and the live runtime (``radar.runtime``) both
drive this class, candle by candle, so a backtest, the paper arena and live trading take the
same decisions with the same fills, fees, funding and risk rules BY CONSTRUCTION: there is no
second copy of the loop to drift apart.

Order of work for each CLOSED 1m candle ``[open_ms, o, h, l, c, v]`` handed to
:meth:`StrategyKernel.on_candle` with ``now_ms = open_ms + 60_000`` (its close time):

1. **Pending entries** decided on an EARLIER candle meet this candle. A market entry fills at
   THIS candle's open with adverse slippage and the taker fee; it is cancelled if the open has
   already gone beyond its stop. A limit entry is tested with the fill model
   (:class:`trading.core.fills.LimitFillModel`: fills only when price trades through it, with a
   seeded probability and a partial-fill fraction; the unfilled rest is cancelled); unfilled,
   it waits at most ``limit_order_ttl_candles`` 1m candles. An entry therefore always happens
   AFTER its decision candle: no same-bar look-ahead.
2. **Intrabar exits** of open positions: ``Ledger.check_exits`` (stops, take-profits,
   liquidation, gapped stops; intrabar rule documented in :mod:`trading.core.ledger`).
   A market entry filled at this open meets this whole candle (its path starts at the fill).
   A limit entry filled inside this candle does not know where in the path it filled, so the
   worst case is taken: if this candle also reached its stop, it is stopped here (taker +
   slippage); a take-profit inside the fill candle is never credited.
3. **Funding** at every settlement instant of the funding series in ``(previous close, now]``
   (``set_inputs(funding=...)``; rows ``[time_ms, rate]``). The mark price is the candle close
   (no separate mark series is carried: on the majors mark and last differ by a few bp).
   A position open at the settlement instant pays or receives.
4. **Close-time exits**: the time stop (``max_hold_minutes`` of the strategy's params) on every
   1m close, and ``strategy.should_exit`` (regime change...) when an entry-timeframe candle
   closes; filled at the close as taker with slippage. They come AFTER funding because the
   close order can only be sent once the candle has closed, i.e. at or after the settlement.
5. **Kill switch** on the active ledger's equity, realised + unrealised at the closes
   (``evaluate_kill_switch``). When it trips, mode becomes ``killed``: pending entries of the
   active ledger are cancelled and new decisions go to the shadow ledger; open positions are
   NOT closed (each has its stop and target on the book; a forced market close would add a
   taker fee and slippage to a loss the stop already bounds).
6. **Decision** when this 1m close also closes an entry-timeframe candle of the strategy
   (``now_ms % timeframe_ms == 0``): the snapshot is cut from CLOSED candles only
   (:class:`strategies.core.snapshot.SnapshotBuilder`), ``missing_inputs`` is checked (a
   :class:`StrategySkippedEvent` once per symbol), ``decide`` runs, the confirmation
   strategies (order flow) adjust the score (``apply_confirmation``), then the risk gate sizes
   the trade from its stop cost, picks leverage with liquidation beyond the stop, applies
   correlation-group, concurrency, per-symbol and free-margin limits and the maker preference.
   A :class:`SignalEvent` records the verdict; an accepted order is queued for the NEXT candle.

Modes: ``active`` trades the real ledger; ``paused`` and ``killed`` keep deciding and trade a
separate SHADOW ledger (events flagged ``shadow=True``) so a stopped strategy's recovery stays
visible. Both ledgers always run steps 1-4 for what they hold.

Fees on/off: ``fees_enabled=False`` books a zero fee schedule in the ledgers while the risk gate
still sizes with the real one, so the same orders are placed and the comparison isolates the
fees (kill-switch timing may still differ: less loss, later trip).

Replay (backtests): :meth:`StrategyKernel.replay` feeds a PRELOADED array through
:meth:`on_candle` and skips, without changing a single event or state field, the candles on
which ``on_candle`` provably does nothing but move the clock: both ledgers flat, no pending
entry, no skipped-input state and the kill switch already marked at the cash, and no decision
due — either not an entry-timeframe close, or a close where the strategy's vectorised
``signal_candidates`` (a NECESSARY condition of a signal, computed once over the whole history;
:class:`CandidateFilter`) rules a signal out. It also steps over the candles on which
``on_candle`` provably only marks ONE open position (:meth:`StrategyKernel._hold`: no level of
the position reached by the bar, no funding settlement, no time stop, no entry-timeframe close
where ``should_exit`` — :class:`ExitFilter` — or the decision may act, no kill-switch trip;
the equity curve is filled with the same float operations) or only ages pending LIMIT entries
(:meth:`StrategyKernel._wait`), and on the candles it does visit it leaves out
``should_exit`` and the decision where those filters rule them out. The live runtime calls
``on_candle`` candle by candle; the tests run both ways over the bundled data and a scripted
random walk (every exit kind, funding, the kill switch, shadow positions) and compare every
event, the equity curve and the final state.

Determinism: every random draw (limit fills) comes from one ``numpy`` generator seeded with
``seed``; its state is part of :meth:`StrategyKernel.state`. Same candles + same inputs + same
seed give the same events, whether the run was interrupted and restored or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from strategies.core.base import (
    EntryType,
    MarketSnapshot,
    OrderBook,
    PositionView,
    Role,
    Signal,
    Strategy,
    StrategyError,
    StrategySkipped,
)
from strategies.core.levels import adx_of
from strategies.core.regime import Regime, RegimeThresholds, Volatility, last_regime
from strategies.core.scoring import apply_confirmation
from strategies.core.snapshot import DEFAULT_MAX_CANDLES, CandleSet, History, SnapshotBuilder
from trading.core.candles import CandleNotClosed, OutOfOrderCandle, timeframe_ms
from trading.core.fees import BITGET_VIP0, FeeSchedule, Liquidity
from trading.core.fills import LimitFillModel, market_fill
from trading.core.ledger import ClosedTrade, Ledger, OpenPosition
from trading.core.risk import (
    BookState,
    Exposure,
    KillSwitchState,
    RiskGate,
    RiskLimits,
    TradeProposal,
    evaluate_kill_switch,
    start_session,
)
from trading.core.sizing import market_rules_for
from trading.core.slippage import SlippageModel
from trading.core.types import ExitReason, MarginMode, OrderType, Side

MINUTE_MS = 60_000
STATE_VERSION = 1
ZERO_FEES = FeeSchedule(maker_rate=0.0, taker_rate=0.0)


class KernelError(StrategyError):
    """The kernel was driven in a way that would break its guarantees."""


class Mode(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    KILLED = "killed"


@dataclass(frozen=True, slots=True)
class KernelConfig:
    """Money, costs and limits of one strategy's loop. Percent fields hold percent (5 = 5 %)."""

    capital_usdt: float = 10_000.0
    fee_schedule: FeeSchedule = BITGET_VIP0
    slippage: SlippageModel = field(default_factory=SlippageModel)
    fill_model: LimitFillModel = field(default_factory=LimitFillModel)
    risk_limits: RiskLimits = field(default_factory=RiskLimits)
    max_session_loss_pct: float = 5.0
    margin_mode: MarginMode = MarginMode.ISOLATED
    fees_enabled: bool = True
    limit_order_ttl_candles: int = 5  # 1m candles a limit entry rests before it is cancelled
    seed: int = 0
    max_positions_per_symbol: int = 1
    min_stop_distance_pct: float = 0.0
    max_stop_distance_pct: float = 100.0
    min_reward_risk: float = 0.0
    max_candles: int = DEFAULT_MAX_CANDLES
    # Entry-timeframe candles over which the current ATR % is ranked: at or above the 80th
    # percentile the market is "high volatility" and the slippage estimate doubles. 288 = one
    # day of 5m candles; the snapshot always holds ATR period + this + 1 candles.
    volatility_window: int = 288

    @property
    def booked_fees(self) -> FeeSchedule:
        """The schedule the ledgers charge: the real one, or zero with ``fees_enabled=False``."""
        return self.fee_schedule if self.fees_enabled else ZERO_FEES

    def with_fees(self, enabled: bool) -> KernelConfig:
        return _replace(self, fees_enabled=enabled)


def _replace(config: KernelConfig, **changes: Any) -> KernelConfig:
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    values.update(changes)
    return KernelConfig(**values)


# -- events ----------------------------------------------------------------------------------


def _signal_dict(signal: Signal) -> dict[str, Any]:
    return {
        "side": signal.side.value,
        "entry_type": signal.entry_type.value,
        "entry_price": signal.entry_price,
        "stop_loss": signal.stop_loss,
        "take_profit": signal.take_profit,
        "score": signal.score,
        "reasons": list(signal.reasons),
        "timeframe": signal.timeframe,
    }


@dataclass(frozen=True, slots=True)
class KernelEvent:
    """Base of the kernel's events; ``to_dict`` is JSON-safe and carries a ``type`` key."""

    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Signal):
                value = _signal_dict(value)
            elif isinstance(value, OpenPosition | ClosedTrade):
                value = value.to_dict()
            elif isinstance(value, StrEnum):
                value = value.value
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class SignalEvent(KernelEvent):
    """A decision: the (confirmed) signal and the risk gate's verdict."""

    type: ClassVar[str] = "signal"
    symbol: str
    timeframe: str
    candle_open_ms: int  # open time of the entry-timeframe candle that produced it
    signal: Signal
    accepted: bool
    reason: str
    shadow: bool = False
    raw_score: float = 0.0  # before the confirmation filters
    regime: str = "unknown"
    time_ms: int = 0  # decision time (the candle close)


@dataclass(frozen=True, slots=True)
class PositionOpened(KernelEvent):
    type: ClassVar[str] = "position_opened"
    symbol: str
    position: OpenPosition
    shadow: bool = False
    regime: str = "unknown"
    requested_qty: float = 0.0


@dataclass(frozen=True, slots=True)
class PositionClosed(KernelEvent):
    type: ClassVar[str] = "position_closed"
    trade: ClosedTrade
    shadow: bool = False
    regime: str = "unknown"


@dataclass(frozen=True, slots=True)
class FundingApplied(KernelEvent):
    """One settlement booked: ``amount`` is the cash flow to the ledger (USDT, < 0 paid)."""

    type: ClassVar[str] = "funding"
    symbol: str
    amount: float
    rate: float
    time_ms: int
    mark_price: float = 0.0
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class KillSwitchTripped(KernelEvent):
    type: ClassVar[str] = "kill_switch"
    scope: str
    reason: str
    time_ms: int = 0


@dataclass(frozen=True, slots=True)
class StrategySkippedEvent(KernelEvent):
    type: ClassVar[str] = "skipped"
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderCancelled(KernelEvent):
    """A queued entry that will not be filled (expired, beyond its stop, kill switch...)."""

    type: ClassVar[str] = "order_cancelled"
    symbol: str
    reason: str
    time_ms: int
    shadow: bool = False


# -- pending orders ----------------------------------------------------------------------------


@dataclass(slots=True)
class PendingOrder:
    symbol: str
    side: Side
    order_type: OrderType
    qty: float
    price: float  # limit price, or the reference of a market order
    stop_loss: float
    take_profit: float | None
    leverage: float
    decided_ms: int
    candles_left: int
    shadow: bool
    high_volatility: bool
    regime: str

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["side"] = self.side.value
        out["order_type"] = self.order_type.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingOrder:
        return cls(
            **{**data, "side": Side(data["side"]), "order_type": OrderType(data["order_type"])}
        )


@dataclass(slots=True)
class _SymbolState:
    strategy: Strategy
    entry_tf: str
    entry_step_ms: int
    max_hold_ms: int | None
    builder: SnapshotBuilder | None = None
    preloaded_until_ms: int = -1  # open time of the last 1m candle the builder already holds
    last_row: list[float] | None = None
    last_now_ms: int | None = None
    funding: np.ndarray | None = None
    funding_cursor: int = 0
    open_interest: np.ndarray | None = None
    trades: np.ndarray | None = None
    order_book: OrderBook | None = None
    skipped_reason: str | None = None


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
    :meth:`StrategyKernel._hold` and :meth:`StrategyKernel._wait`; ``refused`` marks the bars
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


def _entry_timeframe(strategy: Strategy) -> str:
    value = getattr(strategy.params, "timeframe", None)
    if value:
        return str(value)
    return strategy.inputs.timeframes[0] if strategy.inputs.timeframes else "1m"


class StrategyKernel:
    """One strategy (one ledger, one kill switch) over one or more symbols.

    ``strategies`` maps each symbol to its Strategy instance with the per-symbol params already
    applied; ``confirmers`` are confirmation strategies (``Role.CONFIRMATION``) whose
    ``confirm`` adjusts every signal's score. ``state`` restores a :meth:`state` dict.
    """

    def __init__(
        self,
        name: str,
        strategies: Mapping[str, Strategy],
        config: KernelConfig,
        confirmers: Sequence[Strategy] = (),
        state: Mapping[str, Any] | None = None,
    ) -> None:
        if not strategies:
            raise KernelError(f"kernel {name!r} needs at least one symbol to trade")
        self.name = name
        self.config = config
        self.confirmers = tuple(confirmers)
        # The risk gate's regime rule: the ATR percentile is ranked over ``volatility_window``
        # candles, which the snapshot always holds (:meth:`_max_candles`). Invalid -> error here.
        self.regime_rules = RegimeThresholds(atr_percentile_window=config.volatility_window)
        fees = config.booked_fees
        self.ledger = Ledger(config.capital_usdt, fees, config.slippage)
        self.shadow_ledger = Ledger(config.capital_usdt, fees, config.slippage)
        self.gate = RiskGate(config.risk_limits, config.fee_schedule, config.slippage)
        self.kill_switch: KillSwitchState = start_session(name, config.capital_usdt, 0)
        self.mode = Mode.ACTIVE
        self.pending: list[PendingOrder] = []
        self.rng = np.random.default_rng(config.seed)
        self._symbols: dict[str, _SymbolState] = {}
        for symbol, strategy in strategies.items():
            tf = _entry_timeframe(strategy)
            hold = getattr(strategy.params, "max_hold_minutes", None)
            self._symbols[symbol] = _SymbolState(
                strategy=strategy,
                entry_tf=tf,
                entry_step_ms=timeframe_ms(tf),
                max_hold_ms=int(hold) * MINUTE_MS if hold else None,
            )
        self._marks: dict[str, float] = {}
        self._regimes: dict[tuple[str, bool], str] = {}  # regime at entry, per position
        if state is not None:
            self._restore(state)

    # -- inputs --------------------------------------------------------------------------------

    def timeframes(self, symbol: str) -> tuple[str, ...]:
        """Timeframes the snapshot of ``symbol`` must hold (strategy + confirmers)."""
        st = self._sym(symbol)
        tfs: list[str] = ["1m", st.entry_tf]
        for strategy in (st.strategy, *self.confirmers):
            tfs.extend(strategy.inputs.timeframes)
            tfs.extend(strategy.warmup_candles())
        return tuple(dict.fromkeys(tfs))

    def _max_candles(self, symbol: str) -> int:
        st = self._sym(symbol)
        warm = max(st.strategy.warmup_candles().values(), default=0)
        rules = self.regime_rules
        return max(
            self.config.max_candles, warm + 10, rules.atr_period + rules.atr_percentile_window
        )

    def preload(
        self,
        symbol: str,
        history_1m: np.ndarray | CandleSet,
        order_books: Sequence[OrderBook] = (),
    ) -> None:
        """Give the kernel the closed 1m history of ``symbol`` (warm-up, or a whole backtest).

        The snapshot only ever shows candles closed at the decision time, so the rows after
        ``now_ms`` a backtester preloads are invisible until :meth:`on_candle` reaches them;
        the look-ahead check (``backtests.core.lookahead``) proves it per signal. A
        :class:`CandleSet` is read without a copy and shares its aggregation and derived
        values with every other kernel preloaded with it (a sweep).
        """
        st = self._sym(symbol)
        history = (
            history_1m
            if isinstance(history_1m, CandleSet)
            else CandleSet(np.asarray(history_1m, dtype=np.float64).reshape(-1, 6))
        )
        st.builder = SnapshotBuilder(
            symbol,
            history,
            self.timeframes(symbol),
            funding=st.funding,
            open_interest=st.open_interest,
            trades=st.trades,
            order_books=order_books,
            max_candles=self._max_candles(symbol),
        )
        st.preloaded_until_ms = int(history.minutes[-1, 0]) if len(history) else -1

    def set_inputs(
        self,
        symbol: str,
        funding: np.ndarray | None = None,
        open_interest: np.ndarray | None = None,
        order_book: OrderBook | None = None,
        trades: np.ndarray | None = None,
    ) -> None:
        """Data known up to now: funding ``[time_ms, rate]``, open interest ``[time_ms, oi]``,
        the latest order book, trades ``[time_ms, price, signed_qty]``. ``None`` keeps nothing.

        Rows stamped after a decision's ``now_ms`` are never shown to the strategy.
        """
        st = self._sym(symbol)
        st.funding = None if funding is None else np.asarray(funding, np.float64).reshape(-1, 2)
        st.open_interest = (
            None if open_interest is None else np.asarray(open_interest, np.float64).reshape(-1, 2)
        )
        st.trades = None if trades is None else np.asarray(trades, np.float64).reshape(-1, 3)
        st.order_book = order_book
        if st.funding is not None:
            last = st.last_now_ms if st.last_now_ms is not None else -1
            st.funding_cursor = int(np.searchsorted(st.funding[:, 0], last, side="right"))
        if st.builder is not None:
            st.builder.set_inputs(
                funding=st.funding, open_interest=st.open_interest, trades=st.trades
            )

    def set_mode(self, mode: Mode | str) -> None:
        """``active`` trades the real ledger; ``paused``/``killed`` trade the shadow ledger.

        Leaving ``active`` cancels the real ledger's pending entries (nothing new may open).
        """
        new = Mode(mode)
        if new is not Mode.ACTIVE:
            self.pending = [o for o in self.pending if o.shadow]
        self.mode = new

    @property
    def shadow(self) -> bool:
        return self.mode is not Mode.ACTIVE

    def _sym(self, symbol: str) -> _SymbolState:
        try:
            return self._symbols[symbol]
        except KeyError:
            raise KernelError(
                f"kernel {self.name!r} does not trade {symbol} (it trades "
                f"{', '.join(self._symbols)})"
            ) from None

    # -- the loop ------------------------------------------------------------------------------

    def on_candle(self, symbol: str, row_1m: np.ndarray, now_ms: int) -> list[KernelEvent]:
        """Process one CLOSED 1m candle of ``symbol``; ``now_ms`` is its close time."""
        return self._on_candle(symbol, row_1m, now_ms, may_exit=True, may_decide=True)

    def _on_candle(
        self, symbol: str, row_1m: np.ndarray, now_ms: int, *, may_exit: bool, may_decide: bool
    ) -> list[KernelEvent]:
        """:meth:`on_candle`; ``may_exit=False`` / ``may_decide=False`` (replay only) leave out
        ``should_exit`` / the decision where the strategy's :class:`ExitFilter` /
        :class:`CandidateFilter` proved they return ``None`` (no event, no state change)."""
        st = self._sym(symbol)
        open_ms = int(row_1m[0])
        if open_ms + MINUTE_MS > now_ms:
            raise CandleNotClosed(
                f"1m candle {symbol} opened at {open_ms} ms closes at {open_ms + MINUTE_MS} ms, "
                f"after now ({now_ms} ms): a forming candle never reaches a strategy"
            )
        if st.last_row is not None and open_ms <= int(st.last_row[0]):
            raise OutOfOrderCandle(
                f"1m candle {symbol} opened at {open_ms} ms is not after the last one "
                f"({int(st.last_row[0])} ms)"
            )
        values = (
            [float(x) for x in row_1m] if not isinstance(row_1m, np.ndarray) else row_1m.tolist()
        )
        o, h, lo, c = values[1], values[2], values[3], values[4]
        if st.builder is None:
            self.preload(symbol, np.empty((0, 6)))
        assert st.builder is not None  # noqa: S101  (preload above)
        if open_ms > st.preloaded_until_ms:
            st.builder.append_candle(row_1m, now_ms=now_ms)
        events: list[KernelEvent] = []
        previous_now = st.last_now_ms
        self._marks[symbol] = c
        ledgers = (self.ledger, self.shadow_ledger)

        # 1. pending entries
        if self.pending:
            self._fill_pending(symbol, row_1m, open_ms, o, h, lo, c, now_ms, events)

        # 2. intrabar exits
        for shadow, ledger in enumerate(ledgers):
            if ledger.positions:
                for trade in ledger.check_exits(symbol, row_1m, time_ms=now_ms):
                    events.append(PositionClosed(trade, bool(shadow), self._regime_of(trade)))

        # 3. funding
        if st.funding is not None and previous_now is not None:
            self._apply_funding(st, symbol, previous_now, now_ms, c, events)

        # 4. close-time exits (time stop; strategy exit on an entry-timeframe close)
        entry_close = now_ms % st.entry_step_ms == 0
        market: MarketSnapshot | None = None
        for shadow, ledger in enumerate(ledgers):
            if not ledger.positions:
                continue
            for position in ledger.positions_for(symbol):
                if position.entry_time_ms >= now_ms:
                    continue
                reason: ExitReason | None = None
                if st.max_hold_ms is not None and now_ms - position.entry_time_ms >= st.max_hold_ms:
                    reason = ExitReason.TIME_STOP
                elif entry_close and may_exit:
                    if market is None:
                        market = self._snapshot(st, now_ms)
                    view = PositionView(
                        symbol,
                        position.side,
                        position.entry_price,
                        position.entry_time_ms,
                        position.stop_loss,
                        position.take_profit or 0.0,
                        position.qty,
                    )
                    decision = st.strategy.should_exit(view, market)
                    reason = decision.reason if decision is not None else None
                if reason is not None:
                    trade = self._close_at(ledger, position, c, now_ms, reason)
                    events.append(PositionClosed(trade, bool(shadow), self._regime_of(trade)))

        # 5. kill switch on the real ledger, realised + unrealised
        if not self.kill_switch.tripped:
            equity = (
                self.ledger.equity(self._marks) if self.ledger.positions else self.ledger.cash_usdt
            )
            if equity != self.kill_switch.last_equity:
                self._evaluate_kill_switch(equity, now_ms, events)

        # 6. decision on an entry-timeframe close
        if entry_close and may_decide:
            if market is None:
                market = self._snapshot(st, now_ms)
            self._decide(st, symbol, market, now_ms, events)

        st.last_row = values
        st.last_now_ms = now_ms
        return events

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
                    self._skip_to(st, symbol, rows[j - 1], int(times[j - 1]), several=j - 1 > i)
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
            or any(o.symbol != symbol or o.order_type is not OrderType.LIMIT for o in self.pending)
        ):
            return i
        end = min(len(bars.rows), i + min(o.candles_left for o in self.pending) - 1)
        k = int(stops.searchsorted(i, side="left"))
        if k < len(stops):
            end = min(end, int(stops[k]))
        if end <= i:
            return i
        reached = np.zeros(end - i, dtype=bool)
        for order in self.pending:
            if order.side is Side.LONG:
                reached |= bars.low[i:end] <= order.price
            else:
                reached |= bars.high[i:end] >= order.price
        hits = np.flatnonzero(reached)
        j = i + int(hits[0]) if len(hits) else end
        if j == i:
            return i
        for order in self.pending:
            order.candles_left -= j - i
        equity[i:j] = self.ledger.cash_usdt
        self._skip_to(st, symbol, bars.rows[j - 1], int(bars.times[j - 1]), several=True)
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
        self._skip_to(st, symbol, bars.rows[j - 1], int(times[j - 1]), several=True)
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
        self, st: _SymbolState, symbol: str, row: np.ndarray, now_ms: int, *, several: bool
    ) -> None:
        """The state ``on_candle`` leaves after idle candles ending with ``row``: the clock,
        the mark and the funding cursor (advanced past ``now_ms`` as the funding step does
        whenever a previous close is known)."""
        if st.funding is not None and (st.last_now_ms is not None or several):
            passed = int(np.searchsorted(st.funding[:, 0], now_ms, side="right"))
            st.funding_cursor = max(st.funding_cursor, passed)
        st.last_row = row.tolist()
        self._marks[symbol] = st.last_row[4]
        st.last_now_ms = now_ms

    def _evaluate_kill_switch(self, equity: float, now_ms: int, events: list[KernelEvent]) -> None:
        """Step 5; skipped by the caller when equity has not moved (same input, same state)."""
        state = evaluate_kill_switch(
            self.kill_switch,
            equity,
            time_ms=now_ms,
            max_session_loss_pct=self.config.max_session_loss_pct,
        )
        self.kill_switch = state
        if state.tripped:
            events.append(KillSwitchTripped(state.scope, state.reason, now_ms))
            for order in [o for o in self.pending if not o.shadow]:
                events.append(
                    OrderCancelled(order.symbol, "kill switch tripped", now_ms, shadow=False)
                )
            self.set_mode(Mode.KILLED)

    def flatten(self, symbol: str, now_ms: int, reason: ExitReason) -> list[KernelEvent]:
        """Close every position of ``symbol`` at the last close (taker + slippage) and cancel its
        pending entries: the end of a backtest (``END_OF_DATA``) or a manual stop."""
        st = self._sym(symbol)
        events: list[KernelEvent] = []
        self.pending = [o for o in self.pending if o.symbol != symbol]
        if st.last_row is None:
            return events
        for shadow, ledger in enumerate((self.ledger, self.shadow_ledger)):
            for position in ledger.positions_for(symbol):
                trade = self._close_at(ledger, position, st.last_row[4], now_ms, reason)
                events.append(PositionClosed(trade, bool(shadow), self._regime_of(trade)))
        return events

    # -- steps ---------------------------------------------------------------------------------

    def _snapshot(self, st: _SymbolState, now_ms: int) -> MarketSnapshot:
        assert st.builder is not None  # noqa: S101  (on_candle creates it)
        return st.builder.at(now_ms, order_book=st.order_book)

    def _ledger(self, shadow: bool) -> Ledger:
        return self.shadow_ledger if shadow else self.ledger

    def _fill_pending(
        self,
        symbol: str,
        row: np.ndarray,
        open_ms: int,
        o: float,
        h: float,
        lo: float,
        c: float,
        now_ms: int,
        events: list[KernelEvent],
    ) -> None:
        keep: list[PendingOrder] = []
        fees = self.config.booked_fees
        for order in self.pending:
            if order.symbol != symbol:
                keep.append(order)
                continue
            ledger = self._ledger(order.shadow)
            if order.order_type is OrderType.MARKET:
                if order.side.sign * (o - order.stop_loss) <= 0 or (
                    order.take_profit is not None and order.side.sign * (order.take_profit - o) <= 0
                ):
                    events.append(
                        OrderCancelled(
                            symbol,
                            f"market {order.side.value} cancelled: the open {o:g} is already "
                            f"beyond the stop {order.stop_loss:g} or the target",
                            now_ms,
                            order.shadow,
                        )
                    )
                    continue
                fill = market_fill(
                    order.side.open_order,
                    o,
                    order.qty,
                    fee_schedule=fees,
                    slippage=self.config.slippage,
                    high_volatility=order.high_volatility,
                )
                if order.side.sign * (fill.price - order.stop_loss) <= 0:
                    events.append(
                        OrderCancelled(
                            symbol,
                            f"market {order.side.value} cancelled: the slipped fill "
                            f"{fill.price:g} is beyond the stop {order.stop_loss:g}",
                            now_ms,
                            order.shadow,
                        )
                    )
                    continue
                self._open(
                    ledger, order, fill.qty, fill.price, open_ms, Liquidity.TAKER,
                    fill.slippage_usdt, events,
                )  # fmt: skip
                continue
            # limit entry: cheap necessary condition first, then the seeded fill model
            reached = lo <= order.price if order.side is Side.LONG else h >= order.price
            result = None
            if reached:
                result = self.config.fill_model.fill(
                    order.side.open_order,
                    order.price,
                    order.qty,
                    row,
                    rng=self.rng,
                    fee_schedule=fees,
                    qty_step=market_rules_for(symbol).qty_step,
                )
            if result is not None and result.fill is not None:
                position = self._open(
                    ledger, order, result.fill.qty, order.price, now_ms, Liquidity.MAKER, 0.0,
                    events,
                )  # fmt: skip
                # Worst case inside the fill candle: its stop was also reached → stopped here.
                stop_hit = (
                    lo <= order.stop_loss if order.side is Side.LONG else h >= order.stop_loss
                )
                if position is not None and stop_hit:
                    trade = self._close_at(
                        ledger, position, order.stop_loss, now_ms, ExitReason.STOP_LOSS
                    )
                    events.append(PositionClosed(trade, order.shadow, order.regime))
                continue
            order.candles_left -= 1
            if order.candles_left <= 0:
                events.append(
                    OrderCancelled(
                        symbol,
                        f"limit {order.side.value} at {order.price:g} not filled within "
                        f"{self.config.limit_order_ttl_candles} candles",
                        now_ms,
                        order.shadow,
                    )
                )
                continue
            keep.append(order)
        self.pending = keep

    def _open(
        self,
        ledger: Ledger,
        order: PendingOrder,
        qty: float,
        price: float,
        time_ms: int,
        liquidity: Liquidity,
        slippage_cost: float,
        events: list[KernelEvent],
    ) -> OpenPosition | None:
        try:
            position = ledger.open(
                symbol=order.symbol,
                side=order.side,
                qty=qty,
                price=price,
                time_ms=time_ms,
                leverage=order.leverage,
                stop_loss=order.stop_loss,
                take_profit=order.take_profit,
                liquidity=liquidity,
                slippage_cost=slippage_cost,
                margin_mode=self.config.margin_mode,
                marks=self._marks,
            )
        except ValueError as refusal:
            events.append(OrderCancelled(order.symbol, str(refusal), time_ms, order.shadow))
            return None
        self._regimes[position.position_id, order.shadow] = order.regime
        events.append(PositionOpened(order.symbol, position, order.shadow, order.regime, order.qty))
        return position

    def _close_at(
        self,
        ledger: Ledger,
        position: OpenPosition,
        reference: float,
        time_ms: int,
        reason: ExitReason,
    ) -> ClosedTrade:
        """Close as taker at ``reference`` with adverse slippage (stops, time stops, exits)."""
        slipped = self.config.slippage.fill_price(
            position.side.close_order, reference, position.qty
        )
        return ledger.close(
            position.position_id,
            slipped.price,
            time_ms,
            reason,
            Liquidity.TAKER,
            slipped.slippage_usdt,
        )

    def _apply_funding(
        self,
        st: _SymbolState,
        symbol: str,
        previous_now: int,
        now_ms: int,
        mark: float,
        events: list[KernelEvent],
    ) -> None:
        funding = st.funding
        assert funding is not None  # noqa: S101  (caller checks)
        i = st.funding_cursor
        n = len(funding)
        while i < n and funding[i, 0] <= previous_now:
            i += 1
        while i < n and funding[i, 0] <= now_ms:
            time_ms, rate = int(funding[i, 0]), float(funding[i, 1])
            for shadow, ledger in enumerate((self.ledger, self.shadow_ledger)):
                if ledger.positions_for(symbol):
                    amount = ledger.apply_funding(symbol, rate, mark, time_ms)
                    if amount != 0.0:
                        events.append(
                            FundingApplied(symbol, amount, rate, time_ms, mark, bool(shadow))
                        )
            i += 1
        st.funding_cursor = i

    def _decide(
        self,
        st: _SymbolState,
        symbol: str,
        market: MarketSnapshot,
        now_ms: int,
        events: list[KernelEvent],
    ) -> None:
        strategy = st.strategy
        missing = strategy.missing_inputs(market)
        if strategy.role is Role.CONFIRMATION:
            missing = (
                f"{strategy.kind} is a confirmation filter: it adjusts the scores of other "
                "strategies' signals and never opens a position by itself"
            )
        if missing is not None:
            if st.skipped_reason != missing:
                st.skipped_reason = missing
                events.append(StrategySkippedEvent(symbol, missing))
            return
        try:
            signal = strategy.decide(market)
        except StrategySkipped as skipped:
            if st.skipped_reason != skipped.reason:
                st.skipped_reason = skipped.reason
                events.append(StrategySkippedEvent(symbol, skipped.reason))
            return
        st.skipped_reason = None
        if signal is None:
            return
        raw_score = signal.score
        if self.confirmers:
            signal = apply_confirmation(
                signal, [c.confirm(signal, market) for c in self.confirmers]
            )
        regime, high_vol = self._market_regime(market, st.entry_tf)
        shadow = self.shadow
        accepted, reason, order = self._gate(symbol, signal, shadow, high_vol, regime, now_ms)
        events.append(
            SignalEvent(
                symbol=symbol,
                timeframe=st.entry_tf,
                candle_open_ms=now_ms - st.entry_step_ms,
                signal=signal,
                accepted=accepted,
                reason=reason,
                shadow=shadow,
                raw_score=raw_score,
                regime=regime,
                time_ms=now_ms,
            )
        )
        if order is not None:
            self.pending.append(order)

    def _gate(
        self,
        symbol: str,
        signal: Signal,
        shadow: bool,
        high_vol: bool,
        regime: str,
        now_ms: int,
    ) -> tuple[bool, str, PendingOrder | None]:
        cfg = self.config
        ledger = self._ledger(shadow)
        held = len(ledger.positions_for(symbol)) + sum(
            1 for o in self.pending if o.symbol == symbol and o.shadow == shadow
        )
        if held >= cfg.max_positions_per_symbol:
            return (
                False,
                (
                    f"{symbol} already has {held} position(s) or pending entries in this ledger; "
                    f"the limit is {cfg.max_positions_per_symbol} per symbol"
                ),
                None,
            )
        distance_pct = signal.stop_distance_pct
        if distance_pct < cfg.min_stop_distance_pct or distance_pct > cfg.max_stop_distance_pct:
            return (
                False,
                (
                    f"stop distance {distance_pct:.3f} % is outside the allowed "
                    f"{cfg.min_stop_distance_pct:g}–{cfg.max_stop_distance_pct:g} %"
                ),
                None,
            )
        reward_risk = abs(signal.take_profit - signal.entry_price) / abs(
            signal.entry_price - signal.stop_loss
        )
        if reward_risk < cfg.min_reward_risk:
            return (
                False,
                (f"reward/risk {reward_risk:.2f} is below the minimum {cfg.min_reward_risk:g}"),
                None,
            )
        exposures = [Exposure(p.symbol, p.side, p.margin_usdt) for p in ledger.positions.values()]
        exposures += [Exposure(o.symbol, o.side) for o in self.pending if o.shadow == shadow]
        marks = self._marks
        equity = ledger.equity(marks) if ledger.positions else ledger.cash_usdt
        book = BookState(
            equity_usdt=equity,
            used_margin_usdt=ledger.used_margin_usdt,
            open_positions=tuple(exposures),
            kill_switches=() if shadow else (self.kill_switch,),
            margin_mode=cfg.margin_mode,
        )
        proposal = TradeProposal(
            strategy=self.name,
            symbol=symbol,
            side=signal.side,
            entry_price=signal.entry_price,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
            allows_limit_entry=signal.entry_type is EntryType.LIMIT,
            high_volatility=high_vol,
        )
        decision = self.gate.check(proposal, book)
        if not decision.accepted or decision.order_type is None:
            return False, decision.reason, None
        order = PendingOrder(
            symbol=symbol,
            side=signal.side,
            order_type=decision.order_type,
            qty=decision.qty,
            price=signal.entry_price,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
            leverage=float(decision.leverage),
            decided_ms=now_ms,
            candles_left=cfg.limit_order_ttl_candles,
            shadow=shadow,
            high_volatility=high_vol,
            regime=regime,
        )
        return True, decision.reason, order

    def _market_regime(self, market: MarketSnapshot, timeframe: str) -> tuple[str, bool]:
        """Regime label and high-volatility flag on the entry timeframe's last closed candle."""
        candles = market.candles.get(timeframe)
        if candles is None or len(candles) < 30:
            return Regime.UNKNOWN.name.lower(), False

        def classify() -> tuple[str, bool]:
            rules = self.regime_rules
            directional = adx_of(market, candles, timeframe, rules.adx_period)
            regime, volatility = last_regime(candles, rules, directional)
            return regime.name.lower(), volatility is Volatility.HIGH

        return market.derived(
            ("regime", timeframe, self.regime_rules.atr_percentile_window), classify
        )

    def _regime_of(self, trade: ClosedTrade) -> str:
        for key in ((trade.position_id, False), (trade.position_id, True)):
            if key in self._regimes:
                return self._regimes[key]
        return Regime.UNKNOWN.name.lower()

    # -- reading -------------------------------------------------------------------------------

    def equity(self, marks: Mapping[str, float] | None = None, shadow: bool = False) -> float:
        """Equity of a ledger (USDT) at ``marks`` (default: the last closes seen)."""
        ledger = self._ledger(shadow)
        if not ledger.positions:
            return ledger.cash_usdt
        return ledger.equity(self._marks if marks is None else marks)

    def skipped_reason(self, symbol: str) -> str | None:
        return self._sym(symbol).skipped_reason

    # -- persistence ---------------------------------------------------------------------------

    def symbols(self) -> tuple[str, ...]:
        """The symbols this kernel trades."""
        return tuple(self._symbols)

    def state(self, include_closed: bool = True) -> dict[str, Any]:
        """JSON-safe state: restore with ``StrategyKernel(..., state=kernel.state())``.

        Candle history is not included: the caller preloads it again (from the database live,
        from the same arrays in a backtest) before feeding the next candle. Without
        ``include_closed`` the ledgers' closed trades are left out (their sums are kept): the
        live runtime's checkpoints, whose trades are stored as rows, stay the same size
        however many trades were made.
        """
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "mode": self.mode.value,
            "ledger": self.ledger.to_dict(include_closed),
            "shadow_ledger": self.shadow_ledger.to_dict(include_closed),
            "kill_switch": self.kill_switch.to_dict(),
            "pending": [o.to_dict() for o in self.pending],
            "rng": _json_safe(self.rng.bit_generator.state),
            "marks": dict(self._marks),
            "regimes": [[pid, shadow, label] for (pid, shadow), label in self._regimes.items()],
            "symbols": {
                symbol: {
                    "last_row": st.last_row,
                    "last_now_ms": st.last_now_ms,
                    "funding_cursor": st.funding_cursor,
                    "skipped_reason": st.skipped_reason,
                }
                for symbol, st in self._symbols.items()
            },
        }

    def _restore(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise KernelError(
                f"cannot restore kernel state version {state.get('version')!r}; "
                f"expected {STATE_VERSION}"
            )
        self.mode = Mode(state["mode"])
        self.ledger = Ledger.from_dict(state["ledger"])
        self.shadow_ledger = Ledger.from_dict(state["shadow_ledger"])
        self.kill_switch = KillSwitchState.from_dict(state["kill_switch"])
        self.pending = [PendingOrder.from_dict(o) for o in state["pending"]]
        self.rng.bit_generator.state = state["rng"]
        self._marks = {k: float(v) for k, v in state["marks"].items()}
        for pid, shadow, label in state.get("regimes", []):
            self._regimes[str(pid), bool(shadow)] = str(label)
        for symbol, raw in state["symbols"].items():
            st = self._sym(symbol)
            st.last_row = raw["last_row"]
            st.last_now_ms = raw["last_now_ms"]
            st.funding_cursor = int(raw["funding_cursor"])
            st.skipped_reason = raw["skipped_reason"]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def events_of_type[E: KernelEvent](events: Iterable[KernelEvent], kind: type[E]) -> list[E]:
    """The events of one class, in order."""
    return [e for e in events if isinstance(e, kind)]
