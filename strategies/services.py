"""Writes a trader makes from the dashboard: pause, resume, reset a kill switch.

Each is recorded in ``ControlAction`` (who, what, why) in the same transaction as the session
change, and the arena / session pages are refreshed by events published after the commit. The
live runtime reads the session status on its next candle (``radar.runtime``).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from common.events import publish_now, publish_on_commit
from strategies import selectors
from strategies.models import ControlAction
from trading.models import TradingSession


class ControlError(ValueError):
    """A control that does not apply to the strategy's current state."""


def _running_session(name: str) -> TradingSession:
    session = (
        TradingSession.objects.select_for_update()
        .exclude(status=TradingSession.Status.ENDED)
        .filter(strategy_name=name)
        .order_by("mode", "-started_at")
        .first()
    )
    if session is None:
        who = f"strategy {name!r}" if name else "the account"
        raise ControlError(f"{who} has no running session (start the radar first)")
    return session


def _publish_refresh() -> None:
    """After commit, push the complete arena ranking and session summary (read post-commit)."""

    def send() -> None:
        publish_now("arena", "arena.ranking", {"rows": selectors.arena_rows()})
        publish_now("session", "session.update", selectors.session_summary())

    transaction.on_commit(send)


def _record(
    name: str,
    action: str,
    user: AbstractBaseUser | AnonymousUser | None,
    reason: str,
    *,
    alert: tuple[str, str],
) -> ControlAction:
    """Store the control action, and after commit announce it (``alert`` = level, message) and
    refresh the arena and session views."""
    recorded = ControlAction.objects.create(
        strategy_name=name,
        action=action,
        user=user if user is not None and user.is_authenticated else None,
        reason=reason.strip(),
    )
    level, message = alert
    publish_on_commit("alerts", "alert.new", {"level": level, "message": message})
    _publish_refresh()
    return recorded


def strategy_pause(*, name: str, user: AbstractBaseUser | None, reason: str = "") -> ControlAction:
    """Stop a strategy from opening positions (its open positions keep their stops)."""
    with transaction.atomic():
        session = _running_session(name)
        if session.status != TradingSession.Status.ACTIVE:
            raise ControlError(f"{name} is {session.status}, only an active strategy can pause")
        session.status = TradingSession.Status.PAUSED
        session.save(update_fields=["status"])
        action = _record(
            name,
            ControlAction.Action.PAUSE,
            user,
            reason,
            alert=("info", f"{name} paused by {user}"),
        )
    return action


def strategy_resume(*, name: str, user: AbstractBaseUser | None, reason: str = "") -> ControlAction:
    """Let a paused strategy trade again. A killed one needs a kill-switch reset instead."""
    with transaction.atomic():
        session = _running_session(name)
        if session.status not in (TradingSession.Status.PAUSED, TradingSession.Status.SHADOW):
            raise ControlError(
                f"{name} is {session.status}: only a paused strategy resumes "
                "(reset the kill switch of a killed one)"
            )
        session.status = TradingSession.Status.ACTIVE
        session.save(update_fields=["status"])
        action = _record(
            name,
            ControlAction.Action.RESUME,
            user,
            reason,
            alert=("info", f"{name} resumed by {user}"),
        )
    return action


def kill_switch_reset(*, name: str, user: AbstractBaseUser | None, reason: str) -> ControlAction:
    """Clear a tripped kill switch (``name`` "" = the account's) and let the strategy trade.

    A reason is required: it is the audit trail of why losses past the limit were accepted.
    """
    if not reason.strip():
        raise ControlError("say why the kill switch is reset (the reason is recorded)")
    with transaction.atomic():
        session = _running_session(name)
        if not session.kill_switch_tripped and session.status != TradingSession.Status.KILLED:
            raise ControlError(f"the kill switch of {name or 'the account'} is not tripped")
        session.kill_switch_tripped = False
        session.kill_switch_reason = ""
        session.kill_switch_tripped_at = None
        session.status = TradingSession.Status.ACTIVE
        session.save(
            update_fields=[
                "kill_switch_tripped",
                "kill_switch_reason",
                "kill_switch_tripped_at",
                "status",
            ]
        )
        action = _record(
            name,
            ControlAction.Action.RESET_KILL_SWITCH,
            user,
            reason,
            alert=("warning", f"kill switch of {name or 'account'} reset by {user}"),
        )
    return action
