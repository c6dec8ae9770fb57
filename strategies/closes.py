"""A trader's Close of one open paper position (the Positions page): recorded, then carried out.

:func:`position_close_request` records a ``ControlAction`` "close_position" — who, when, which
position, why — with a warning alert, in one transaction, as the other controls are
(``strategies.services``). The radar running the position's strategy carries it out at its next
batch (``radar.close``): the kernel closes it at market through its own exit path (a
``CloseIntent`` filled as taker with slippage at the last close), so the ledger, the session
totals, the fees and the trade notice are those of any exit; a LIVE strategy's close intent goes
on to the live executor (reduce-only market, ``radar.live``), as its own exits do. ``done_at``
is stamped then.

:func:`live_position_close_request` is the Live page's Close of one LIVE position (the
exchange's, ``trading.LivePosition``), paper twin or not: the same record with ``live_position``
set, carried out by the live executor (``radar.live``).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from strategies.models import ControlAction
from strategies.services import ControlError
from trading.alerts import alert_create
from trading.models import LivePosition, Position


def ledger_id_of(position_id: str, shadow: bool) -> str:
    """The stored ``Position.ledger_id`` of a kernel position id (``trading.services``)."""
    return str(position_id) + (":shadow" if shadow else "")


def position_close_request(
    *,
    strategy: str,
    position_id: str,
    shadow: bool,
    user: AbstractBaseUser | AnonymousUser | None,
    reason: str = "",
) -> ControlAction:
    """Ask the radar to close ``strategy``'s open position ``position_id`` (the kernel's id;
    ``shadow``: on its shadow ledger) at market. Refused (:class:`ControlError`) when no such
    position is open — its stop or target may have closed it first — or when a close of it is
    already waiting."""
    with transaction.atomic():
        position = (
            Position.objects.select_for_update()
            .filter(
                strategy_name=strategy,
                ledger_id=ledger_id_of(position_id, shadow),
                status=Position.Status.OPEN,
            )
            .order_by("-entry_time_ms")
            .first()
        )
        if position is None:
            raise ControlError(
                f"{strategy} has no open position {position_id!r}"
                f"{' (shadow)' if shadow else ''}: closed already (stop, target or exit)?"
            )
        waiting = ControlAction.objects.filter(
            action=ControlAction.Action.CLOSE_POSITION, position=position, done_at__isnull=True
        )
        if waiting.exists():
            raise ControlError(
                f"a close of this {strategy} position is already requested: the radar carries "
                "it out at its next candle"
            )
        return _recorded(strategy, user, reason, describe(position), position=position)


def live_position_close_request(
    *,
    live_position_id: int,
    user: AbstractBaseUser | AnonymousUser | None,
    reason: str = "",
) -> ControlAction:
    """Ask the live executor to close the open LIVE position ``live_position_id``
    (``trading.LivePosition``: one with a paper twin or not — adopted, or left after "back to
    paper") reduce-only at market. The executor reads the request with the flatten requests
    (``radar.live``), cancels the position's resting entry, closes it through its exit path
    (the stop stays on the exchange until the position is flat), and stamps ``done_at`` with
    an alert saying what was done. Refused (:class:`ControlError`) when the position is not
    open, or when a close of it is already waiting."""
    with transaction.atomic():
        position = (
            LivePosition.objects.select_for_update()
            .filter(pk=live_position_id, status=LivePosition.Status.OPEN)
            .first()
        )
        if position is None:
            raise ControlError(
                f"no open live position #{live_position_id}: closed already (stop, target, "
                "exit or flatten)?"
            )
        waiting = ControlAction.objects.filter(
            action=ControlAction.Action.CLOSE_POSITION,
            live_position=position,
            done_at__isnull=True,
        )
        if waiting.exists():
            raise ControlError(
                f"a close of {describe_live(position)} is already requested: the live "
                "executor carries it out at its next controls read"
            )
        return _recorded(
            position.strategy_name, user, reason, describe_live(position), live_position=position
        )


def _recorded(
    strategy: str,
    user: AbstractBaseUser | AnonymousUser | None,
    reason: str,
    what: str,
    **target: Position | LivePosition,
) -> ControlAction:
    """Record a Close request of ``target`` (``position=`` or ``live_position=``) with its
    warning alert, in the caller's transaction."""
    action = ControlAction.objects.create(
        strategy_name=strategy,
        action=ControlAction.Action.CLOSE_POSITION,
        user=user if user is not None and user.is_authenticated else None,
        reason=reason.strip(),
        **target,
    )
    [(field, position)] = target.items()
    alert_create(
        level="warning",
        message=f"close of {what} requested by {user}",
        source=strategy,
        payload={
            "action": action.action,
            "control_id": action.pk,
            f"{field}_id": position.pk,
            "reason": action.reason,
        },
    )
    return action


def close_request_done(
    action: ControlAction,
    level: str,
    message: str,
    market_time_ms: int | None,
    **payload: object,
) -> None:
    """Stamp a Close request carried out (``done_at``; ``market_time_ms`` of the close when
    known, else the one it had) and raise the alert that says what was done (``payload``: the
    alert's extra keys)."""
    ControlAction.objects.filter(pk=action.pk).update(
        done_at=timezone.now(),
        market_time_ms=market_time_ms if market_time_ms is not None else action.market_time_ms,
    )
    alert_create(
        level=level,
        message=message,
        source=action.strategy_name,
        payload={"action": action.action, "control_id": action.pk, **payload},
    )


def describe_live(position: LivePosition) -> str:
    """``live momentum_breakout short 0.01 BTC/USDT:USDT``: a live position as alerts name it."""
    return f"live {position.strategy_name} {position.side} {position.qty:g} {position.symbol}"


def describe(position: Position) -> str:
    """``vwap_rsi long 0.05 BTC/USDT:USDT (shadow)``: a position as alerts name it."""
    shadow = " (shadow)" if position.shadow else ""
    return f"{position.strategy_name} {position.side} {position.qty:g} {position.symbol}{shadow}"
