"""The decision loop: ONE strategy's trading loop over closed 1m candles.

The backtester (``backtests.core.engine``) and the live runtime (``radar.runtime``) both
drive :class:`StrategyKernel`, candle by candle, so a backtest, the paper arena and live trading
take the same decisions with the same fills, fees, funding and risk rules BY CONSTRUCTION: there
is no second copy of the loop to drift apart.

Order of work for each CLOSED 1m candle ``[open_ms, o, h, l, c, v]`` handed to
:meth:`StrategyKernel.on_candle` with ``now_ms = open_ms + 60_000`` (its close time):

1. **Pending entries** decided on an EARLIER candle meet this candle at the paper venue
   (:mod:`strategies.core.kernel.venue`: market at this open, limit through the fill model).
   An entry therefore always happens AFTER its decision candle: no same-bar look-ahead.
2. **Intrabar exits** of open positions: ``Ledger.check_exits`` (the exchange-side stops,
   take-profits, liquidation, gapped stops; intrabar rule in :mod:`trading.core.ledger`).
   A market entry filled at this open meets this whole candle (its path starts at the fill).
   A stop fills with the slippage estimate of the volatility at this candle's open (the
   venue's slippage rule: :mod:`strategies.core.kernel.venue`).
3. **Funding** at every settlement instant of the funding series in ``(previous close, now]``
   (``set_inputs(funding=...)``; rows ``[time_ms, rate]``); a row that becomes known only
   after its instant (live polling fetches a settled rate minutes after it settled) is booked
   at the first candle that sees it, for the positions open at its instant and still open.
   The mark price is the candle close
   (no separate mark series is carried: on the majors mark and last differ by a few bp).
4. **Close-time exits**: the time stop (``max_hold_minutes`` of the strategy's params) on every
   1m close, and ``strategy.should_exit`` (regime change...) when an entry-timeframe candle
   closes: a :class:`CloseIntent` the venue fills at the close as taker with slippage (a
   fresh book walked, else the estimate of the volatility at the close). They come AFTER
   funding because the close order can only be sent once the candle has closed, i.e. at or
   after the settlement.
5. **Kill switch** on the active ledger's equity, realised + unrealised at the closes
   (``evaluate_kill_switch``). When it trips, mode becomes ``killed``: pending entries of the
   active ledger are cancelled and new decisions go to the shadow ledger; open positions are
   NOT closed (each has its stop and target on the book; a forced market close would add a
   taker fee and slippage to a loss the stop already bounds).
6. **Decision** when this 1m close also closes an entry-timeframe candle of the strategy
   (``now_ms % timeframe_ms == 0``): the snapshot is cut from CLOSED candles only
   (:class:`strategies.core.snapshot.SnapshotBuilder`), ``missing_inputs`` is checked (a
   :class:`StrategySkippedEvent` once per symbol), ``decide`` runs, the confirmation
   strategies (order flow) adjust the score (``apply_confirmation``), the prices are rounded to
   the instrument's tick (:mod:`trading.core.orders`: entry to the passive side, stop and
   target toward the entry) and the ONE risk gate (:class:`trading.core.risk.RiskGate`) rules
   on it: every pre-trade rule, and with :meth:`StrategyKernel.set_account` the account-wide
   ones. A :class:`SignalEvent` records the verdict; an accepted order is an
   :class:`OrderIntent` queued at the venue for the NEXT candle.

Modes: ``active`` trades the real ledger; ``paused`` and ``killed`` keep deciding and trade a
separate SHADOW ledger (events flagged ``shadow=True``) so a stopped strategy's recovery stays
visible. Both ledgers always run steps 1-4 for what they hold. Shadow decisions never see the
account (they place no real order).

Fees: ``fees_enabled=False`` books a zero fee schedule in the ledgers (the risk gate still sizes
with the real one). That is a re-simulation with zero fees, NOT the same orders: sizing follows
the equity, which fees no longer lower, and the kill switch trips at other times or never. The
like-for-like "without fees" figure is the fees-on run's own trades with their fees taken out
(:mod:`backtests.core.fee_twin`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from strategies.core.base import (
    EntryType,
    MarketSnapshot,
    OrderBook,
    PositionView,
    Role,
    Signal,
    Strategy,
    StrategySkipped,
)
from strategies.core.kernel.events import (
    ENTRY,
    CloseIntent,
    KernelEvent,
    KillSwitchTripped,
    OrderIntent,
    PositionClosed,
    SignalEvent,
    StrategySkippedEvent,
    client_order_id,
)
from strategies.core.kernel.replay import ReplayFastPath
from strategies.core.kernel.state import (
    MINUTE_MS,
    KernelConfig,
    KernelError,
    Mode,
    _SymbolState,
)
from strategies.core.kernel.venue import FillBooks
from strategies.core.levels import adx_of
from strategies.core.regime import Regime, Volatility, last_regime
from strategies.core.scoring import apply_confirmation
from strategies.core.series import Series
from strategies.core.snapshot import CandleSet, SnapshotBuilder
from trading.core.candles import CandleNotClosed, OutOfOrderCandle, timeframe_ms
from trading.core.ledger import Ledger, OpenPosition
from trading.core.orders import MissingInstrumentRules, Rounding, rules_for
from trading.core.risk import (
    AccountState,
    BookState,
    Decision,
    Exposure,
    RiskGate,
    TradeProposal,
    evaluate_kill_switch,
    start_session,
)
from trading.core.types import ExitReason, OrderType, Side


def _entry_timeframe(strategy: Strategy) -> str:
    value = getattr(strategy.params, "timeframe", None)
    if value:
        return str(value)
    return strategy.inputs.timeframes[0] if strategy.inputs.timeframes else "1m"


class StrategyKernel(ReplayFastPath):
    """One strategy (one ledger, one kill switch) over one or more symbols.

    ``strategies`` maps each symbol to its Strategy instance with the per-symbol params already
    applied; ``confirmers`` are confirmation strategies (``Role.CONFIRMATION``) whose
    ``confirm`` adjusts every signal's score. ``state`` restores a :meth:`state` dict. Every
    symbol needs its instrument rules in ``config.market_rules`` (else :class:`KernelError`).
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
        # The regime rule of the gate and of the labels; the snapshot always holds its ATR
        # percentile window (:meth:`_max_candles`).
        self.regime_rules = config.regime
        try:
            self._rules = {s: rules_for(config.market_rules, s) for s in strategies}
        except MissingInstrumentRules as missing:
            raise KernelError(f"kernel {name!r} cannot trade: {missing}") from None
        fees = config.booked_fees
        self.ledger = Ledger(config.capital_usdt, fees, config.slippage)
        self.shadow_ledger = Ledger(config.capital_usdt, fees, config.slippage)
        self.gate = RiskGate(
            config.risk_limits, config.fee_schedule, config.slippage, market_rules=self._rules
        )
        self.kill_switch = start_session(name, config.capital_usdt, 0)
        self.mode = Mode.ACTIVE
        self.pending = []
        self.rng = np.random.default_rng(config.seed)
        self.account = None
        self._symbols = {}
        for symbol, strategy in strategies.items():
            tf = _entry_timeframe(strategy)
            hold = getattr(strategy.params, "max_hold_minutes", None)
            self._symbols[symbol] = _SymbolState(
                strategy=strategy,
                entry_tf=tf,
                entry_step_ms=timeframe_ms(tf),
                max_hold_ms=int(hold) * MINUTE_MS if hold else None,
            )
        self._marks = {}
        self._regimes = {}
        self._fill_books = {symbol: FillBooks() for symbol in strategies}
        # symbol → (entry-timeframe close ms, its high-volatility flag): the last one computed
        self._volatility_seen: dict[str, tuple[int, bool]] = {}
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
            tfs.extend(s.timeframe for s in strategy.series())
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
        values with every other kernel preloaded with it (a sweep). ``order_books`` (recorded
        snapshots, time-sorted) are shown to the strategies and walked by the taker fills
        (:class:`strategies.core.kernel.venue.FillBooks`: they add to the books already held).
        """
        st = self._sym(symbol)
        self._fill_books[symbol].add_recorded(order_books)
        self._volatility_seen.pop(symbol, None)
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
            regime_rules=self.regime_rules,
            series_on_demand=False,
        )
        st.builder.declare_series(self.declared_series(symbol))
        if st.saved_series:  # a restored checkpoint: continue its series states exactly
            st.series_not_resumed = st.builder.restore_series(st.saved_series)
            st.saved_series = None
        st.preloaded_until_ms = int(history.minutes[-1, 0]) if len(history) else -1

    def declared_series(self, symbol: str) -> tuple[Series, ...]:
        """The indicator series the kernel keeps for ``symbol``: its strategy's and its
        confirmers' declarations (:meth:`Strategy.series`)."""
        st = self._sym(symbol)
        declared = [s for strategy in (st.strategy, *self.confirmers) for s in strategy.series()]
        return tuple(dict.fromkeys(declared))

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

        Rows stamped after a decision's ``now_ms`` are never shown to the strategy. The book
        is also kept for the taker fills to walk (:class:`FillBooks`; ``None`` adds none).
        """
        st = self._sym(symbol)
        if order_book is not None:
            self._fill_books[symbol].add_live(order_book)
        st.funding = None if funding is None else np.asarray(funding, np.float64).reshape(-1, 2)
        st.open_interest = (
            None if open_interest is None else np.asarray(open_interest, np.float64).reshape(-1, 2)
        )
        st.trades = None if trades is None else np.asarray(trades, np.float64).reshape(-1, 3)
        st.order_book = order_book
        if st.funding is not None:
            # Rows after the last booked one are due, late ones included (``funding_seen_ms``).
            seen = st.funding_seen_ms if st.funding_seen_ms is not None else -1
            st.funding_cursor = int(np.searchsorted(st.funding[:, 0], seen, side="right"))
        if st.builder is not None:
            st.builder.set_inputs(
                funding=st.funding, open_interest=st.open_interest, trades=st.trades
            )

    def set_account(self, account: AccountState | None) -> None:
        """The whole account of this kernel's mode (every strategy, paper or live), as the
        live runtime sees it before the next candle; the gate then also applies the account
        kill switch, the correlation groups across strategies and the account's free margin.
        ``None`` (a backtest, a lone strategy): the account is this kernel's own book."""
        self.account = account

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
            self._fill_pending(symbol, row_1m, open_ms, o, h, lo, now_ms, events)

        # 2. intrabar exits (a stop slips at the volatility of this candle's open)
        for shadow, ledger in enumerate(ledgers):
            if ledger.positions:
                high_vol = _stop_reached(ledger, symbol, h, lo) and self._high_volatility_at(
                    symbol, open_ms
                )
                for trade in ledger.check_exits(
                    symbol, row_1m, time_ms=now_ms, high_volatility=high_vol
                ):
                    events.append(PositionClosed(trade, bool(shadow), self._regime_of(trade)))

        # 3. funding
        if previous_now is None:
            # The first candle: no position can have been open at an earlier settlement.
            st.funding_seen_ms = now_ms
            if st.funding is not None:
                passed = int(np.searchsorted(st.funding[:, 0], now_ms, side="right"))
                st.funding_cursor = max(st.funding_cursor, passed)
        elif st.funding is not None:
            self._apply_funding(st, symbol, now_ms, c, events)

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
                    self._request_close(position, bool(shadow), c, now_ms, reason, events)

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

    def _request_close(
        self,
        position: OpenPosition,
        shadow: bool,
        reference: float,
        now_ms: int,
        reason: ExitReason,
        events: list[KernelEvent],
    ) -> None:
        """Emit the :class:`CloseIntent` of ``position`` and have the venue execute it."""
        purpose = f"exit-{reason.value}"
        intent = CloseIntent(
            strategy=self.name,
            symbol=position.symbol,
            side=position.side,
            qty=position.qty,
            reason=reason,
            reference_price=reference,
            time_ms=now_ms,
            position_id=position.position_id,
            client_order_id=client_order_id(
                self.name,
                position.symbol,
                now_ms,
                purpose,
                position_id=position.position_id,
                shadow=shadow,
            ),
            shadow=shadow,
        )
        events.append(intent)
        self._close(intent, events)

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
            self._cancel_pending(now_ms, "kill switch tripped", events)
            self.set_mode(Mode.KILLED)

    def flatten(self, symbol: str, now_ms: int, reason: ExitReason) -> list[KernelEvent]:
        """Close every position of ``symbol`` at the last close (taker + slippage) and cancel its
        pending entries: the end of a backtest (``END_OF_DATA``) or a manual stop."""
        st = self._sym(symbol)
        events: list[KernelEvent] = []
        self.pending = [o for o in self.pending if o.intent.symbol != symbol]
        if st.last_row is None:
            return events
        for shadow, ledger in enumerate((self.ledger, self.shadow_ledger)):
            for position in ledger.positions_for(symbol):
                self._request_close(position, bool(shadow), st.last_row[4], now_ms, reason, events)
        return events

    def close_position(
        self, position_id: str, *, shadow: bool, reason: ExitReason = ExitReason.MANUAL
    ) -> list[KernelEvent]:
        """Close one open position at its symbol's last close, as the close-time exits do
        (:class:`CloseIntent`, taker + slippage, at that close's time): a trader's Close
        (``radar.close``). Empty when that ledger does not hold it, or no candle of its symbol
        has closed since its entry yet (a close before the entry cannot be booked)."""
        position = self._ledger(shadow).positions.get(position_id)
        if position is None:
            return []
        st = self._sym(position.symbol)
        if st.last_row is None or st.last_now_ms is None:
            return []
        if position.entry_time_ms >= st.last_now_ms:
            return []
        events: list[KernelEvent] = []
        self._request_close(position, shadow, st.last_row[4], st.last_now_ms, reason, events)
        return events

    # -- the decision --------------------------------------------------------------------------

    def _snapshot(self, st: _SymbolState, now_ms: int) -> MarketSnapshot:
        assert st.builder is not None  # noqa: S101  (on_candle creates it)
        # A live book is the market NOW: while candles of the past are processed (a catch-up,
        # healing a gap after a reconnect) it is newer than the decision and is not shown.
        book = st.order_book
        if book is not None and book.time_ms > now_ms:
            book = None
        return st.builder.at(now_ms, order_book=book)

    def _decide(
        self,
        st: _SymbolState,
        symbol: str,
        market: MarketSnapshot,
        now_ms: int,
        events: list[KernelEvent],
    ) -> None:
        if self.mode is Mode.KILLED and not self.config.shadow_when_killed:
            return  # risk.yaml kill_switch.shadow_when_killed: false (KernelConfig doc)
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
        decision, intent = self._gate(st, symbol, signal, shadow, high_vol, regime, now_ms)
        events.append(
            SignalEvent(
                symbol=symbol,
                timeframe=st.entry_tf,
                candle_open_ms=now_ms - st.entry_step_ms,
                signal=signal,
                accepted=intent is not None,
                reason=decision.reason,
                shadow=shadow,
                raw_score=raw_score,
                regime=regime,
                time_ms=now_ms,
                client_order_id=intent.client_order_id if intent is not None else None,
                order_type=intent.order_type if intent is not None else None,
                qty=decision.qty,
                leverage=decision.leverage,
            )
        )
        if intent is not None:
            events.append(intent)
            self._queue_entry(intent)

    def _gate(
        self,
        st: _SymbolState,
        symbol: str,
        signal: Signal,
        shadow: bool,
        high_vol: bool,
        regime: str,
        now_ms: int,
    ) -> tuple[Decision, OrderIntent | None]:
        """The gate's verdict on ``signal`` and, when accepted, the order intent.

        Prices go on the tick first (:mod:`trading.core.orders`): a limit entry to the passive
        side (a buy down, a sell up), the stop and the target TOWARD the entry (a long's stop
        up, a short's down), so the gate sizes the order the exchange will hold and the loss at
        the stop never exceeds the sized risk. A market entry's reference stays the signal's
        price (the fill is the next open)."""
        cfg = self.config
        rules = self._rules[symbol]
        below_up = Rounding.UP if signal.side is Side.LONG else Rounding.DOWN  # stop → entry
        above_down = Rounding.DOWN if signal.side is Side.LONG else Rounding.UP  # passive
        entry = signal.entry_price
        if signal.entry_type is EntryType.LIMIT:
            entry = rules.round_price(entry, above_down)
        stop = rules.round_price(signal.stop_loss, below_up)
        target = signal.take_profit
        if target is not None:
            target = rules.round_price(target, above_down)  # toward the entry
        ledger = self._ledger(shadow)
        exposures = [
            Exposure(p.symbol, p.side, p.margin_usdt, self.name) for p in ledger.positions.values()
        ]
        exposures += [
            Exposure(o.intent.symbol, o.intent.side, 0.0, self.name)
            for o in self.pending
            if o.intent.shadow == shadow
        ]
        equity = ledger.equity(self._marks) if ledger.positions else ledger.cash_usdt
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
            entry_price=entry,
            stop_loss=stop,
            take_profit=target,
            allows_limit_entry=signal.entry_type is EntryType.LIMIT,
            high_volatility=high_vol,
        )
        decision = self.gate.check(proposal, book, None if shadow else self.account)
        if not decision.accepted or decision.order_type is None:
            return decision, None
        is_limit = decision.order_type is OrderType.LIMIT
        ttl = cfg.limit_order_ttl_candles if is_limit else 0
        intent = OrderIntent(
            strategy=self.name,
            symbol=symbol,
            side=signal.side,
            order_type=decision.order_type,
            limit_price=entry if is_limit else None,
            reference_price=entry,
            qty=decision.qty,
            leverage=decision.leverage,
            margin_mode=cfg.margin_mode,
            stop_loss=stop,
            take_profit=target,
            max_hold_ms=st.max_hold_ms,
            expires_after_candles=ttl,
            expires_at_ms=now_ms + ttl * MINUTE_MS,
            time_ms=now_ms,
            client_order_id=client_order_id(self.name, symbol, now_ms, ENTRY, shadow=shadow),
            shadow=shadow,
            high_volatility=high_vol,
            regime=regime,
        )
        return decision, intent

    def _high_volatility_at(self, symbol: str, time_ms: int) -> bool:
        """The high-volatility flag of ``symbol`` at ``time_ms``: the one of the entry
        timeframe's last candle closed at or before it (:meth:`_market_regime` on the snapshot
        at that close, the flag a decision there sizes with). Only closed candles count, so
        every instant up to the next entry-timeframe close has the same flag; the last one
        computed is kept per symbol. No candle history at all (a restored kernel flattened
        before its preload): not high volatility, as with too few candles."""
        st = self._sym(symbol)
        if st.builder is None:
            return False
        close_ms = time_ms - time_ms % st.entry_step_ms
        seen = self._volatility_seen.get(symbol)
        if seen is not None and seen[0] == close_ms:
            return seen[1]
        high_vol = self._market_regime(self._snapshot(st, close_ms), st.entry_tf)[1]
        self._volatility_seen[symbol] = (close_ms, high_vol)
        return high_vol

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

        return market.derived(("regime", timeframe, self.regime_rules), classify)

    # -- reading -------------------------------------------------------------------------------

    def equity(self, marks: Mapping[str, float] | None = None, shadow: bool = False) -> float:
        """Equity of a ledger (USDT) at ``marks`` (default: the last closes seen)."""
        ledger = self._ledger(shadow)
        if not ledger.positions:
            return ledger.cash_usdt
        return ledger.equity(self._marks if marks is None else marks)

    def skipped_reason(self, symbol: str) -> str | None:
        return self._sym(symbol).skipped_reason


def _stop_reached(ledger: Ledger, symbol: str, high: float, low: float) -> bool:
    """Whether the candle reaches a stop of ``symbol``'s positions (a long's low at or below
    its stop, a short's high at or above): necessary for a stop fill, gapped ones included
    (the open is inside the range), so the volatility flag is computed only then."""
    return any(
        low <= p.stop_loss if p.side is Side.LONG else high >= p.stop_loss
        for p in ledger.positions_for(symbol)
    )
