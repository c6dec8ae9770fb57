"""The paper venue: executes the kernel's order intents against candles, on the ledgers.

It decides nothing: it receives :class:`OrderIntent` entries and :class:`CloseIntent` closes,
exactly what the live executor receives, and fills them with the cost models.

* A MARKET entry fills at the open of the first candle after its decision with adverse
  slippage (doubled in high volatility) and the taker fee; it is cancelled if that open is
  already beyond its stop or target, or if the slipped fill is beyond the stop.
* A LIMIT (post-only) entry is tested with the fill model
  (:class:`trading.core.fills.LimitFillModel`: fills only when price trades through it, with a
  seeded probability and a partial-fill fraction rounded down to the instrument's step; the
  unfilled rest is cancelled); unfilled, it rests ``expires_after_candles`` 1m candles. A limit
  entry filled inside a candle does not know where in the path it filled, so the worst case is
  taken: if that candle also reached its stop, the exchange-side stop fills there (taker +
  slippage); a take-profit inside the fill candle is never credited.
* A close fills as taker at its reference price (the candle close) with adverse slippage.
* Funding: at every settlement instant of the funding series in ``(previous close, now]`` a
  position open at that instant pays or receives ``qty × mark × rate`` (mark = the close).

Stops, targets and liquidations reached inside a candle are the exchange-side orders attached
to the entry: ``Ledger.check_exits`` books them (intrabar rule in :mod:`trading.core.ledger`).
"""

from __future__ import annotations

import numpy as np

from strategies.core.kernel.events import (
    CloseIntent,
    FundingApplied,
    KernelEvent,
    OrderCancelled,
    OrderIntent,
    PositionClosed,
    PositionOpened,
)
from strategies.core.kernel.state import KernelState, PendingEntry, _SymbolState
from trading.core.fees import Liquidity
from trading.core.fills import market_fill
from trading.core.ledger import ClosedTrade, Ledger, OpenPosition
from trading.core.types import ExitReason, OrderType, Side


class PaperVenue(KernelState):
    """Pending entries, fills, closes and funding of both ledgers (module docstring)."""

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
                        ledger, position, order.stop_loss, now_ms, ExitReason.STOP_LOSS
                    )
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
        """Execute ``intent`` (emitted just before into ``events``) on its ledger."""
        ledger = self._ledger(intent.shadow)
        position = ledger.positions[intent.position_id]
        trade = self._close_at(ledger, position, intent.reference_price, intent.time_ms,
                               intent.reason)  # fmt: skip
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
