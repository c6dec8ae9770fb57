"""Writes of the strategies app: the trader's controls and what the kernels decided.

Controls (pause, resume, reset a kill switch) are recorded in ``ControlAction`` (who, what,
why) in the same transaction as the session change, with a stored alert; the arena / session
pages are refreshed by events published after the commit. The live runtime reads the session
status on its next batch (``radar.controls``), and stamps the market time it applied a control
from (:func:`control_actions_stamp`). The radar's recorder (``radar.recorder``) stores signals
through :func:`signal_create`; the arena's selector (``radar.selector``) records its decisions
through :func:`selector_decision_create` — a ``ControlAction`` of actor "selector", like a
trader's, with its reason and a warning alert.
"""

from __future__ import annotations

from collections.abc import Collection

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from common.events import publish_now
from strategies import selectors
from strategies.core.arena import SelectorDecision as Decision
from strategies.core.kernel import SignalEvent
from strategies.models import ControlAction, SelectorDecision, Signal, StrategyConfig
from trading.alerts import alert_create
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
    actor: str = ControlAction.Actor.TRADER,
    market_time_ms: int | None = None,
) -> ControlAction:
    """Store the control action, and after commit announce it (``alert`` = level, message) and
    refresh the arena and session views. ``market_time_ms``: when it is in force from (a
    trader's is stamped later, by the radar that applies it)."""
    recorded = ControlAction.objects.create(
        strategy_name=name,
        action=action,
        actor=actor,
        user=user if user is not None and user.is_authenticated else None,
        reason=reason.strip(),
        market_time_ms=market_time_ms,
    )
    level, message = alert
    alert_create(
        level=level,
        message=message,
        source=name or "account",
        payload={
            "action": action,
            "actor": actor,
            "reason": recorded.reason,
            "control_id": recorded.pk,
            "market_time_ms": market_time_ms,
        },
    )
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
    """Let a paused strategy trade again; an errored one is rebuilt from its last good
    checkpoint by the radar (``radar.runtime``). A killed one needs a kill-switch reset."""
    resumable = (
        TradingSession.Status.PAUSED,
        TradingSession.Status.SHADOW,
        TradingSession.Status.ERRORED,
    )
    with transaction.atomic():
        session = _running_session(name)
        if session.status not in resumable:
            raise ControlError(
                f"{name} is {session.status}: only a paused or errored strategy resumes "
                "(reset the kill switch of a killed one)"
            )
        session.status = TradingSession.Status.ACTIVE
        session.error_reason = ""
        session.save(update_fields=["status", "error_reason"])
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


def strategy_go_live(*, name: str, user: AbstractBaseUser | None, reason: str) -> ControlAction:
    """Let a strategy send real orders (Bitget demo unless mainnet is enabled), beside its
    paper twin. Needs a reason; refused for a strategy that is not active. The radar's live
    executor (``radar.live``) picks the flag up at its next controls read; without a running
    executor (``LIVE_TRADING_ENABLED`` off) nothing is sent and the Live page says so."""
    if not reason.strip():
        raise ControlError("say why the strategy goes live (the reason is recorded)")
    with transaction.atomic():
        config = StrategyConfig.objects.select_for_update().filter(name=name).first()
        if config is None:
            raise ControlError(f"no strategy {name!r}")
        if config.live:
            raise ControlError(f"{name} is live already")
        session = _running_session(name)
        if session.status != TradingSession.Status.ACTIVE:
            raise ControlError(f"{name} is {session.status}: only an active strategy goes live")
        # update(), not save(): the flag is a control, not a parameter edit (no kernel reload).
        StrategyConfig.objects.filter(pk=config.pk).update(live=True)
        return _record(
            name,
            ControlAction.Action.GO_LIVE,
            user,
            reason,
            alert=("warning", f"{name} goes LIVE (real orders) by {user}"),
        )


def strategy_go_paper(
    *, name: str, user: AbstractBaseUser | None, reason: str = ""
) -> ControlAction:
    """Stop sending a strategy's new entries live. Its open live position keeps its stop and
    target on the exchange and its closes are still carried out (flatten it from the Live
    page to close it now)."""
    with transaction.atomic():
        config = StrategyConfig.objects.select_for_update().filter(name=name).first()
        if config is None:
            raise ControlError(f"no strategy {name!r}")
        if not config.live:
            raise ControlError(f"{name} is not live")
        StrategyConfig.objects.filter(pk=config.pk).update(live=False)
        return _record(
            name,
            ControlAction.Action.GO_PAPER,
            user,
            reason,
            alert=("info", f"{name} back to paper by {user}"),
        )


def live_flatten_request(*, name: str, user: AbstractBaseUser | None, reason: str) -> ControlAction:
    """Ask the live executor to cancel the strategy's (``name`` "" = every) live orders and
    close its live positions at market. Recorded first; the executor carries it out at its next
    controls read (``radar.live``) — also after a restart, until done — and stamps
    ``done_at``. The strategy also goes back to paper, so nothing new is sent."""
    if not reason.strip():
        raise ControlError("say why the live positions are flattened (the reason is recorded)")
    with transaction.atomic():
        if name:
            if not StrategyConfig.objects.filter(name=name).exists():
                raise ControlError(f"no strategy {name!r}")
            StrategyConfig.objects.filter(name=name).update(live=False)
        else:
            StrategyConfig.objects.update(live=False)
        return _record(
            name,
            ControlAction.Action.FLATTEN,
            user,
            reason,
            alert=("warning", f"flatten live {name or 'account'} requested by {user}"),
        )


def signal_create(*, strategy: StrategyConfig, exchange: str, event: SignalEvent) -> Signal:
    """Store a kernel's decision with the risk gate's verdict (once per strategy, symbol,
    timeframe and deciding candle: a redelivered candle stores nothing twice). The sized order
    (type, quantity, leverage, client order id) is kept in ``order`` when the kernel sent it."""
    sig = event.signal
    order = {
        key: getattr(event, key)
        for key in ("client_order_id", "order_type", "qty", "leverage")
        if getattr(event, key, None) not in (None, "", 0, 0.0)
    }
    with transaction.atomic():
        signal, _ = Signal.objects.get_or_create(
            strategy=strategy,
            symbol=event.symbol,
            timeframe=event.timeframe,
            candle_open_time_ms=event.candle_open_ms,
            defaults={
                "exchange": exchange,
                "side": sig.side.value,
                "entry_type": sig.entry_type.value,
                "entry_price": sig.entry_price,
                "stop_loss": sig.stop_loss,
                "take_profit": sig.take_profit,
                "score": sig.score,
                "reasons": list(sig.reasons),
                "status": Signal.Status.ACCEPTED if event.accepted else Signal.Status.REFUSED,
                "refusal_reason": "" if event.accepted else event.reason,
                "shadow": event.shadow,
                "order": {k: str(v) if hasattr(v, "value") else v for k, v in order.items()},
            },
        )
        return signal


def selector_decision_create(
    *,
    session: TradingSession,
    decision: Decision,
    candle_time_ms: int,
    metrics: dict[str, float | None],
) -> SelectorDecision | None:
    """Store and apply a decision of the arena's selector at market time ``candle_time_ms``.

    In one transaction: the ``SelectorDecision`` (its metrics), the change on ``session``
    (status, or ``capital_weight`` for a boost: saved, and left on the object the radar
    holds), and a ``ControlAction`` of actor "selector" (no user; reason "selector: …", the
    figures and thresholds that decided) with a WARNING alert published after the commit, as
    a trader's control is. ``None`` when this round already stored it (a replayed round
    changes nothing).
    """
    action, verb = _SELECTOR_CONTROLS[decision.action]
    with transaction.atomic():
        stored, created = SelectorDecision.objects.get_or_create(
            strategy_name=decision.name,
            action=decision.action,
            candle_time_ms=candle_time_ms,
            defaults={
                "reason": decision.reason,
                "new_weight": decision.new_weight,
                "metrics": metrics,
            },
        )
        if not created:
            return None
        if decision.action == SelectorDecision.Action.PAUSE:
            session.status = TradingSession.Status.PAUSED
        elif decision.action == SelectorDecision.Action.RESUME:
            session.status = TradingSession.Status.ACTIVE
        elif decision.new_weight is None:
            raise ValueError(f"selector: a boost of {decision.name} without a capital weight")
        else:
            session.capital_weight = decision.new_weight
        session.save(update_fields=["status", "capital_weight"])
        _record(
            decision.name,
            action,
            None,
            f"selector: {decision.reason}",
            alert=("warning", f"selector {verb} {decision.name}: {decision.reason}"),
            actor=ControlAction.Actor.SELECTOR,
            market_time_ms=candle_time_ms,
        )
        return stored


# The selector's action -> the control it is recorded as, and the verb of its alert.
_SELECTOR_CONTROLS: dict[str, tuple[str, str]] = {
    SelectorDecision.Action.PAUSE: (ControlAction.Action.PAUSE, "paused"),
    SelectorDecision.Action.RESUME: (ControlAction.Action.RESUME, "resumed"),
    SelectorDecision.Action.BOOST: (ControlAction.Action.SCALE_RISK, "scaled the risk of"),
}


def control_actions_stamp(*, names: Collection[str], market_time_ms: int) -> int:
    """Stamp the trader's controls on ``names`` the radar has just applied with the market time
    it applies them from (UTC epoch ms); returns how many. The selector's hold counts from it."""
    return ControlAction.objects.filter(
        strategy_name__in=list(names), market_time_ms__isnull=True
    ).update(market_time_ms=market_time_ms)
