"""The paper venue: executes the kernel's order intents against candles, on the ledgers.

It decides nothing: it receives :class:`OrderIntent` entries and :class:`CloseIntent` closes,
exactly what the live executor receives, and fills them with the cost models.

* A MARKET entry fills at the open of the first candle after its decision as taker, with
  adverse slippage (below) and the taker fee; it is cancelled if that open is already beyond
  its stop or target, or if the slipped fill is beyond the stop.
* A LIMIT (post-only) entry is tested with the fill model
  (:class:`trading.core.fills.LimitFillModel`: fills only when price trades through it, with a
  seeded probability and a partial-fill fraction rounded down to the instrument's step; the
  unfilled rest is cancelled); unfilled, it rests ``expires_after_candles`` 1m candles. A limit
  entry filled inside a candle does not know where in the path it filled, so the worst case is
  taken: if that candle also reached its stop, the exchange-side stop fills there (taker +
  slippage); a take-profit inside the fill candle is never credited.
* A close (time stop, strategy exit, end of data, manual stop) fills as taker at its reference
  price, the candle close, with adverse slippage.
* Funding: at every settlement instant of the funding series in ``(previous close, now]`` a
  position open at that instant pays or receives ``qty × mark × rate`` (mark = the close).

Stops, targets and liquidations reached inside a candle are the exchange-side orders attached
to the entry: ``Ledger.check_exits`` books them (intrabar rule in :mod:`trading.core.ledger`).

Slippage of every taker fill (:class:`trading.core.slippage.SlippageModel`; a take-profit is a
maker limit and a liquidation fills at the liquidation price: neither slips):

* **Book walk.** A market entry, or a close, whose symbol has an L2 snapshot stamped at or
  before the fill instant and at most :data:`BOOK_MAX_AGE_MS` (5,000 ms of market time) older
  than it walks that snapshot's levels for its quantity (asks for a buy, bids for a sell):
  ``fill = Σ level price × qty taken there / qty``. Past the snapshot's last level the rest
  fills at that level moved by the estimate (``worst × (1 ± fraction)``), and the average is
  never better than the reference (a buy at or above it, a sell at or below). The fill instant
  is the candle's open for a market entry, the candle's close (``now_ms``) for a close.
* **Estimate** otherwise: ``fill = reference × (1 ± fraction)``, ``+`` for a buy. A stop
  triggered INSIDE a candle is always priced so, book or not: its instant within the candle is
  unknown, so no snapshot can be said to be the book it met.
* ``fraction`` is ``estimate_pct`` (0.0005 = 0.05 %), × ``high_vol_multiplier`` (2) when the
  symbol is in high volatility at the fill: the volatility flag of the entry timeframe's last
  candle closed at or before the fill (the ATR-percentile rule of
  :mod:`strategies.core.regime` with ``KernelConfig.regime``; the flag the risk gate sizes
  with). An entry carries the flag of its decision (``OrderIntent.high_volatility``, judged at
  the entry-timeframe close that is the fill's open); a close takes the flag at its
  ``now_ms``; a stop inside the candle ``[open, close)`` the flag at the candle's open (the
  last close known when it triggered). Entries AND exits pay the same rate in the same regime.

Worked example (estimate, high volatility at the exit): long 0.1 BTC closed by its time stop
at a close of 100,000 USDT while the entry timeframe's last closed candle is HIGH volatility:
fraction 0.0005 × 2 = 0.001, fill 100,000 × (1 − 0.001) = 99,900 USDT, slippage
0.1 × 100 = 10 USDT (a calm regime: 99,950 and 5 USDT).
Worked example (book): buy 0.5 BTC at an open of 60,000 with a snapshot 0.4 s old, asks
[(60,000, 0.2), (60,001, 0.2), (60,003, 0.5)]: fill = (60,000 × 0.2 + 60,001 × 0.2
+ 60,003 × 0.1) / 0.5 = 60,001 USDT, slippage 1 × 0.5 = 0.5 USDT. Buying 1 BTC there: 0.9
visible (54,001.7 USDT), 0.1 more at 60,003 × 1.0005 = 60,033.0015 → 60,005.00015 USDT.

Where the snapshots come from (:class:`FillBooks`, one per symbol): a backtest's recorded books
(``StrategyKernel.preload(order_books=...)``, every one kept) and the live feed's books
(``set_inputs(order_book=...)``: the last one stamped at or before each of the last
:data:`LIVE_BOOKS_KEPT` minute boundaries, the only instants a fill can happen at, is kept).
Paper, backtest and replay fill through this same code; only the snapshots given differ.
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence

import numpy as np

from strategies.core.base import OrderBook
from strategies.core.kernel.events import (
    CloseIntent,
    FundingApplied,
    KernelEvent,
    OrderCancelled,
    OrderIntent,
    PositionClosed,
    PositionOpened,
)
from strategies.core.kernel.state import MINUTE_MS, KernelState, PendingEntry, _SymbolState
from trading.core.fees import Liquidity
from trading.core.fills import market_fill
from trading.core.ledger import ClosedTrade, Ledger, OpenPosition
from trading.core.slippage import BookLevels
from trading.core.types import ExitReason, OrderSide, OrderType, Side

BOOK_MAX_AGE_MS = 5_000  # a snapshot older than this at the fill instant is not walked (ms)
LIVE_BOOKS_KEPT = 4  # minute boundaries whose last live snapshot is kept (module docstring)


def _boundary_ms(time_ms: int) -> int:
    """The first minute boundary at or after ``time_ms``: the fill instant a book can serve."""
    return -(-time_ms // MINUTE_MS) * MINUTE_MS


class FillBooks:
    """The L2 snapshots one symbol's taker fills may walk (module docstring).

    ``recorded`` books (a backtest's files) are all kept, time-sorted; ``live`` books (the
    feed's, one at a time) are thinned to the last one stamped at or before each minute
    boundary, for the last :data:`LIVE_BOOKS_KEPT` boundaries. :meth:`at` reads both.
    """

    __slots__ = ("_live", "_recorded", "_recorded_ms")

    def __init__(self) -> None:
        self._recorded: list[OrderBook] = []
        self._recorded_ms: list[int] = []
        self._live: deque[OrderBook] = deque(maxlen=LIVE_BOOKS_KEPT)

    def add_recorded(self, books: Sequence[OrderBook]) -> None:
        """Add recorded snapshots; one per time stamp (a later one given replaces it)."""
        if not len(books):
            return
        by_time = {b.time_ms: b for b in self._recorded}
        by_time.update({int(b.time_ms): b for b in books})
        self._recorded_ms = sorted(by_time)
        self._recorded = [by_time[t] for t in self._recorded_ms]

    def add_live(self, book: OrderBook) -> None:
        """Keep ``book``, the feed's latest; an older one than the last kept is ignored."""
        live = self._live
        if live and book.time_ms < live[-1].time_ms:
            return
        if live and _boundary_ms(book.time_ms) == _boundary_ms(live[-1].time_ms):
            live[-1] = book
        else:
            live.append(book)

    def at(self, time_ms: int) -> OrderBook | None:
        """The latest snapshot stamped at or before ``time_ms`` (ms), or ``None`` when there
        is none or it is more than :data:`BOOK_MAX_AGE_MS` older."""
        best: OrderBook | None = None
        i = bisect.bisect_right(self._recorded_ms, time_ms) - 1
        if i >= 0:
            best = self._recorded[i]
        for book in reversed(self._live):
            if book.time_ms <= time_ms:
                if best is None or book.time_ms > best.time_ms:
                    best = book
                break
        if best is None or time_ms - best.time_ms > BOOK_MAX_AGE_MS:
            return None
        return best


class PaperVenue(KernelState, ABC):
    """Pending entries, fills, closes and funding of both ledgers (module docstring)."""

    _fill_books: dict[str, FillBooks]  # per traded symbol

    @abstractmethod
    def _high_volatility_at(self, symbol: str, time_ms: int) -> bool:
        """The volatility flag of ``symbol`` at a fill instant (module docstring)."""

    def _taker_levels(self, symbol: str, side: OrderSide, time_ms: int) -> BookLevels | None:
        """The levels a taker ``side`` order at ``time_ms`` walks, ``[(price, qty), ...]`` best
        first: the asks (a buy) or bids (a sell) of the snapshot :meth:`FillBooks.at` gives,
        ``None`` without one (or with an empty side). Plain floats, as every booked price."""
        book = self._fill_books[symbol].at(time_ms)
        if book is None:
            return None
        levels = book.asks if side is OrderSide.BUY else book.bids
        return [(float(p), float(q)) for p, q in levels] if len(levels) else None

    def _queue_entry(self, intent: OrderIntent) -> None:
        self.pending.append(PendingEntry(intent, intent.expires_after_candles))

    def _cancel_pending(self, now_ms: int, reason: str, events: list[KernelEvent]) -> None:
        """Cancel the real ledger's pending entries (the kill switch tripped)."""
        for entry in self.pending:
            if not entry.intent.shadow:
                events.append(
                    OrderCancelled(
                        entry.intent.symbol, reason, now_ms, False, entry.intent.client_order_id
                    )
                )

    def _fill_pending(
        self,
        symbol: str,
        row: np.ndarray,
        open_ms: int,
        o: float,
        h: float,
        lo: float,
        now_ms: int,
        events: list[KernelEvent],
    ) -> None:
        keep: list[PendingEntry] = []
        fees = self.config.booked_fees
        for entry in self.pending:
            order = entry.intent
            if order.symbol != symbol:
                keep.append(entry)
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
                            order.client_order_id,
                        )
                    )
                    continue
                fill = market_fill(
                    order.side.open_order,
                    o,
                    order.qty,
                    fee_schedule=fees,
                    slippage=self.config.slippage,
                    book=self._taker_levels(symbol, order.side.open_order, open_ms),
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
                            order.client_order_id,
                        )
                    )
                    continue
                self._open(
                    ledger, order, fill.qty, fill.price, open_ms, Liquidity.TAKER,
                    fill.slippage_usdt, events,
                )  # fmt: skip
                continue
            # limit entry: cheap necessary condition first, then the seeded fill model
            price = order.limit_price
            assert price is not None  # noqa: S101  (a limit intent carries its price)
            reached = lo <= price if order.side is Side.LONG else h >= price
            result = None
            if reached:
                result = self.config.fill_model.fill(
                    order.side.open_order,
                    price,
                    order.qty,
                    row,
                    rng=self.rng,
                    fee_schedule=fees,
                    qty_step=self._rules[symbol].qty_step,
                )
            if result is not None and result.fill is not None:
                position = self._open(
                    ledger, order, result.fill.qty, price, now_ms, Liquidity.MAKER, 0.0, events
                )
                # Worst case inside the fill candle: its stop was also reached → stopped here.
                stop_hit = (
                    lo <= order.stop_loss if order.side is Side.LONG else h >= order.stop_loss
                )
                if position is not None and stop_hit:
                    trade = self._close_at(
                        ledger, position, order.stop_loss, now_ms, ExitReason.STOP_LOSS,
                        high_volatility=self._high_volatility_at(symbol, open_ms),
                        walk_book=False,
                    )  # fmt: skip
                    events.append(PositionClosed(trade, order.shadow, order.regime))
                continue
            entry.candles_left -= 1
            if entry.candles_left <= 0:
                events.append(
                    OrderCancelled(
                        symbol,
                        f"limit {order.side.value} at {price:g} not filled within "
                        f"{order.expires_after_candles} candles",
                        now_ms,
                        order.shadow,
                        order.client_order_id,
                    )
                )
                continue
            keep.append(entry)
        self.pending = keep

    def _open(
        self,
        ledger: Ledger,
        order: OrderIntent,
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
                leverage=float(order.leverage),
                stop_loss=order.stop_loss,
                take_profit=order.take_profit,
                liquidity=liquidity,
                slippage_cost=slippage_cost,
                margin_mode=order.margin_mode,
                marks=self._marks,
            )
        except ValueError as refusal:
            events.append(
                OrderCancelled(
                    order.symbol, str(refusal), time_ms, order.shadow, order.client_order_id
                )
            )
            return None
        self._regimes[position.position_id, order.shadow] = order.regime
        events.append(
            PositionOpened(
                order.symbol, position, order.shadow, order.regime, order.qty,
                order.client_order_id,
            )
        )  # fmt: skip
        return position

    def _close(self, intent: CloseIntent, events: list[KernelEvent]) -> None:
        """Execute ``intent`` (emitted just before into ``events``) on its ledger: a taker
        close at its reference, at the time ``intent.time_ms`` (a book walk when a snapshot
        is fresh, the regime's rate otherwise: module docstring)."""
        ledger = self._ledger(intent.shadow)
        position = ledger.positions[intent.position_id]
        trade = self._close_at(
            ledger, position, intent.reference_price, intent.time_ms, intent.reason,
            high_volatility=self._high_volatility_at(intent.symbol, intent.time_ms),
            walk_book=True,
        )  # fmt: skip
        events.append(
            PositionClosed(trade, intent.shadow, self._regime_of(trade), intent.client_order_id)
        )

    def _close_at(
        self,
        ledger: Ledger,
        position: OpenPosition,
        reference: float,
        time_ms: int,
        reason: ExitReason,
        *,
        high_volatility: bool,
        walk_book: bool,
    ) -> ClosedTrade:
        """Close as taker at ``reference`` (USDT) with adverse slippage: the book at
        ``time_ms`` walked when ``walk_book`` and one is fresh, else the estimate, doubled
        when ``high_volatility`` (module docstring)."""
        side = position.side.close_order
        book = self._taker_levels(position.symbol, side, time_ms) if walk_book else None
        slipped = self.config.slippage.fill_price(
            side, reference, position.qty, book, high_volatility
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
        now_ms: int,
        mark: float,
        events: list[KernelEvent],
    ) -> None:
        """Book every funding row from the cursor stamped at or before ``now_ms`` (late rows
        included: they sort after the last booked one, see ``funding_seen_ms``)."""
        funding = st.funding
        assert funding is not None  # noqa: S101  (caller checks)
        i = st.funding_cursor
        n = len(funding)
        while i < n and funding[i, 0] <= now_ms:
            time_ms, rate = int(funding[i, 0]), float(funding[i, 1])
            for shadow, ledger in enumerate((self.ledger, self.shadow_ledger)):
                if ledger.positions_for(symbol):
                    amount = ledger.apply_funding(symbol, rate, mark, time_ms)
                    if amount != 0.0:
                        events.append(
                            FundingApplied(symbol, amount, rate, time_ms, mark, bool(shadow))
                        )
            st.funding_seen_ms = time_ms
            i += 1
        st.funding_cursor = i
