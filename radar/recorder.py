"""The recorder: stores what the kernels did, only through the apps' services.

Signals (``strategies.services.signal_create``), paper positions opened, closed and their
funding (``trading.services.position_*``), kill-switch trips
(``trading.services.session_kill_switch_trip`` with a stored alert), skipped strategies (a
stored alert), and the CHECKPOINT of a kernel's state and ledger totals into its session
(``trading.services.session_checkpoint``: only the columns the runtime owns). Events for the
dashboard go to the runtime's outbox (``publish``), sent once the transaction commits; the
arena row of a strategy that moved is built at the commit from its saved session by the one
function the Arena page uses (``strategies.selectors.arena_row``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from radar.arena import ArenaEntry
from strategies.core.kernel import (
    FundingApplied,
    KillSwitchTripped,
    PositionClosed,
    PositionOpened,
    SignalEvent,
    StrategySkippedEvent,
)
from strategies.selectors import arena_row, session_summary
from strategies.services import signal_create
from trading.alerts import alert_create
from trading.services import (
    position_close,
    position_create,
    position_funding_update,
    session_checkpoint,
    session_kill_switch_trip,
)

log = logging.getLogger(__name__)
trade_log = logging.getLogger("scalpradar.trades")

Publish = Callable[..., None]

# Session columns a checkpoint writes; status, kill switch and capital weight belong to the
# controls and are written only when the runtime itself changes them.
LEDGER_FIELDS = [
    "realised_gross_pnl",
    "realised_net_pnl",
    "fees_usdt",
    "funding_usdt",
    "slippage_usdt",
    "trades_count",
    "wins_count",
    "peak_equity_usdt",
    "equity_usdt",
    "ledger_state",
]


class Recorder:
    def __init__(self, exchange: str, publish: Publish) -> None:
        self.exchange = exchange
        self.publish = publish
        self.live: Any = None  # radar.live.LiveRouter when live trading runs
        self.closed_since_save = False  # a (non-shadow) trade closed in this transaction

    def store(
        self, entry: ArenaEntry, symbol: str, events: Sequence[Any], *, checkpoint: bool
    ) -> None:
        """Store ``events`` of ``entry``'s kernel on a candle of ``symbol``; mark the entry for
        a checkpoint at the commit when it emitted, changed controls or ``checkpoint``."""
        name = entry.config.name
        for event in events:
            if isinstance(event, SignalEvent):
                entry.signal_count += 1
                signal_create(strategy=entry.config, exchange=self.exchange, event=event)
                self.publish("signals", "signal.new", {"strategy": name, **event.to_dict()})
            elif isinstance(event, PositionOpened):
                position_create(
                    session=entry.session,
                    strategy_name=name,
                    exchange=self.exchange,
                    position=event.position,
                    shadow=event.shadow,
                    client_order_id=event.client_order_id,
                )
                self.publish("positions", "position.opened", {"strategy": name, **event.to_dict()})
            elif isinstance(event, PositionClosed):
                self._store_close(entry, event)
            elif isinstance(event, FundingApplied):
                ledger = entry.kernel.shadow_ledger if event.shadow else entry.kernel.ledger
                position_funding_update(
                    session=entry.session,
                    positions=ledger.positions_for(event.symbol),
                    shadow=event.shadow,
                )
                self.publish("positions", "position.funding", {"strategy": name, **event.to_dict()})
            elif isinstance(event, KillSwitchTripped):
                session_kill_switch_trip(session=entry.session, reason=event.reason)
                alert_create(
                    level="error",
                    message=f"{name}: {event.reason}",
                    source=name,
                    payload={"scope": event.scope, "time_ms": event.time_ms},
                )
            elif isinstance(event, StrategySkippedEvent):
                alert_create(
                    level="warning",
                    message=f"{name} on {symbol} skipped: {event.reason}",
                    source=name,
                    payload={"symbol": symbol, "skipped": True},
                )
        if self.live is not None and events:
            self.live.collect(name, events)
        # The peak is tracked on every candle (the selector's drawdown reads it in memory);
        # a catch-up replay after a restart recomputes the candles since the checkpoint.
        session = entry.session
        session.peak_equity_usdt = max(session.peak_equity_usdt, entry.kernel.equity())
        if events or checkpoint or entry.checkpoint_due:
            self.save_later(entry)
        if events:
            entry.published = True

    def _store_close(self, entry: ArenaEntry, event: PositionClosed) -> None:
        t = event.trade
        position_close(session=entry.session, trade=t, shadow=event.shadow)
        if not event.shadow:
            self.closed_since_save = True
            entry.session.trades_count += 1
            entry.session.wins_count += int(t.net_pnl > 0)
        name = entry.config.name
        trade_log.info(
            "trade closed", extra={"strategy": name, "shadow": event.shadow, "trade": t.to_dict()}
        )
        self.publish("positions", "position.closed", {"strategy": name, **event.to_dict()})

    def save_later(self, entry: ArenaEntry, extra_fields: Sequence[str] = ()) -> None:
        """Checkpoint ``entry`` at the end of this transaction (:meth:`save_due`): its state then
        is the state after every candle of the transaction, all stored."""
        entry.save_fields = (entry.save_fields or set()) | set(extra_fields)

    def save_due(self, arena: Sequence[ArenaEntry]) -> None:
        """Checkpoint every entry due and queue its arena row, built from the session just
        saved: the row a page loads afterwards is the row the websocket pushed."""
        for entry in arena:
            if entry.save_fields is not None or entry.published:
                entry.published = False
                if not entry.errored:  # an errored kernel's state is never saved (runtime doc)
                    self.save_session(entry)
                self.publish(
                    "arena",
                    "arena.update",
                    arena_row(entry.session),
                    coalesce=("arena.update", entry.config.name),
                )
        if self.closed_since_save:
            # The Session page's totals (trades, wins, P&L) move with every closed trade:
            # one summary per transaction, read after the checkpoints above.
            self.closed_since_save = False
            self.publish("session", "session.update", session_summary(), coalesce=("session",))

    def save_session(self, entry: ArenaEntry) -> None:
        """Checkpoint: the kernel's ledger totals and state into its session row, with the
        control fields the runtime changed since the last one (selector, kill switch)."""
        refresh_totals(entry)
        entry.session.ledger_state = entry.kernel.state(include_closed=False)
        # Stored as Position rows and summed in the state: the kernel need not keep them, so a
        # long-running radar's memory does not grow with its trades either.
        entry.kernel.ledger.closed.clear()
        entry.kernel.shadow_ledger.closed.clear()
        changed = sorted(entry.save_fields or ())
        session_checkpoint(session=entry.session, fields=[*LEDGER_FIELDS, *changed])
        entry.checkpoint_due = False
        entry.save_fields = None


def refresh_totals(entry: ArenaEntry) -> None:
    """The kernel's ledger totals and equity into the session object (not saved)."""
    session, ledger = entry.session, entry.kernel.ledger
    session.realised_gross_pnl = ledger.realised_gross_pnl
    session.realised_net_pnl = ledger.realised_net_pnl
    session.fees_usdt = ledger.fees_paid
    session.funding_usdt = ledger.funding_paid
    session.slippage_usdt = ledger.slippage_cost
    session.equity_usdt = entry.kernel.equity()
    session.peak_equity_usdt = max(session.peak_equity_usdt, session.equity_usdt)
