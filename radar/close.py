"""A trader's Close, carried out: the open position closed at market by its kernel.

The Positions page records the request (``strategies.closes``: a ``ControlAction``
"close_position" naming the ``Position``). At each batch that reads the controls (at most
every ``controls_every_s``: no query added to the other batches), after its candles,
:func:`carry_out_closes` takes the requests still waiting for the positions of this radar's
exchange and has the strategy's kernel close each one
(:meth:`strategies.core.kernel.StrategyKernel.close_position`): a ``CloseIntent`` filled as
taker with slippage at the symbol's last close, at that close's market time — the path of the
kernel's own close-time exits (time stop, strategy exit). The events go through the recorder
like any candle's (the ``Position`` closed with its fees, the session totals, the trade notice,
the ``position.closed`` push that removes the row, a checkpoint at the commit; a live strategy's
close intent is forwarded to the live executor, reduce-only at market). The request is stamped
``done_at`` (and ``market_time_ms``: the close's time) and an alert says what was done, all in
the batch's transaction: a batch rolled back leaves the request waiting, and it is carried out
by the retry.

A request waits while the strategy is errored (its kernel is frozen) or while no candle of the
symbol has closed since the entry; it is finished with an error alert when the position is not
held by the kernel of a strategy this radar runs, and with an info alert when the position has
already closed (its stop or target came first).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import transaction

from strategies.closes import close_request_done, describe
from strategies.core.kernel import PositionClosed
from strategies.models import ControlAction
from trading.core.numbers import fmt_money, fmt_price
from trading.core.types import ExitReason
from trading.instruments import steps_for
from trading.models import Position

if TYPE_CHECKING:
    from radar.runtime import RadarRuntime

log = logging.getLogger(__name__)


def waiting_closes(exchange: str) -> list[ControlAction]:
    """Close requests not carried out yet for positions of ``exchange``, oldest first."""
    return list(
        ControlAction.objects.filter(
            action=ControlAction.Action.CLOSE_POSITION,
            done_at__isnull=True,
            position__exchange=exchange,
        )
        .select_related("position", "user")
        .order_by("created_at", "pk")
    )


def _finish(action: ControlAction, level: str, message: str, market_time_ms: int | None) -> None:
    time_ms = {"time_ms": market_time_ms} if market_time_ms is not None else {}
    close_request_done(
        action, level, message, market_time_ms, position_id=action.position_id, **time_ms
    )


def carry_out_closes(runtime: RadarRuntime) -> int:
    """Carry out the waiting close requests (module doc) in the caller's transaction; returns
    how many positions were closed."""
    requests = waiting_closes(runtime.exchange)
    if not requests:
        return 0
    by_session = {entry.session.pk: entry for entry in runtime.arena}
    closed = 0
    for action in requests:
        position = action.position
        assert position is not None  # noqa: S101  (filtered on its exchange)
        what = describe(position)
        if position.status == Position.Status.CLOSED:
            _finish(
                action,
                "info",
                f"close of {what}: already closed ({position.exit_reason or 'exit'}) "
                "before the request was carried out",
                position.exit_time_ms,
            )
            continue
        entry = by_session.get(position.session_id)
        kernel_id = position.ledger_id.removesuffix(":shadow")
        if entry is not None and entry.errored:
            continue  # frozen until resumed (radar.runtime): the request waits
        ledger = None
        if entry is not None:
            ledger = entry.kernel.shadow_ledger if position.shadow else entry.kernel.ledger
        if ledger is None or kernel_id not in ledger.positions:
            _finish(
                action,
                "error",
                f"close of {what} NOT carried out: no running strategy of this radar holds "
                "it — close it by hand",
                None,
            )
            continue
        assert entry is not None  # noqa: S101  (ledger found above)
        events = entry.kernel.close_position(
            kernel_id, shadow=position.shadow, reason=ExitReason.MANUAL
        )
        if not events:
            continue  # no candle since the entry yet: at a later batch
        with transaction.atomic():  # a savepoint, as for a candle's events (radar.runtime)
            runtime.recorder.store(entry, position.symbol, events, checkpoint=True)
        trade = next(e.trade for e in events if isinstance(e, PositionClosed))
        by = action.user or "—"
        _finish(
            action,
            "warning",
            f"{what} closed at market by {by}: exit "
            f"{fmt_price(trade.exit_price, steps_for(position.symbol).tick)}, net "
            f"{fmt_money(trade.net_pnl, 'USDT', signed=True)}",
            trade.exit_time_ms,
        )
        log.info(
            "position closed by request",
            extra={"strategy": entry.config.name, "control_id": action.pk},
        )
        closed += 1
    return closed
