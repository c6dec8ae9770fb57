"""The arena's selector, run by the runtime once per round of MARKET time.

A round is keyed by market time (``now_ms // (every × 1 min)``), so a restart neither skips
nor repeats one. Each decision is stored once per round through
``strategies.services.selector_decision_create`` — a control of actor "selector" with its
reason, a warning alert, the session changed — and applied to the kernel; the session is
checkpointed with its state at the batch's commit (the controls stored are those in force for
every candle after that checkpoint, which a restart's catch-up relies on).

A trader's pause, resume or kill-switch reset is never undone within the hold: for
``risk.yaml`` ``selector.manual_hold_hours`` of market time after the radar applied it (the
stamp of ``radar.controls.sync_controls``), the selector leaves that strategy alone and says so
in a debug line — only in a round where it would have acted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Sequence

from django.db.models import Count, Max, Q

from common.presenters import fmt_time_ms
from radar.arena import ArenaEntry
from radar.controls import apply_controls
from strategies.config import get_config
from strategies.core.arena import SelectorRules, StrategyResults, rank, select
from strategies.models import ControlAction
from strategies.services import selector_decision_create
from trading.models import Position

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


def round_of(now_ms: int, every_minutes: int) -> int:
    return now_ms // (max(every_minutes, 1) * MINUTE_MS)


def results(arena: Sequence[ArenaEntry]) -> list[StrategyResults]:
    """What the selector and the ranking judge, per strategy."""
    out = []
    for entry in arena:
        # From the stored trades, not the kernel: a compact checkpoint does not carry the
        # closed trades, and the same order (exit time, then opening order) either way.
        closed: list[float] = []
        shadow: list[float] = []
        for net, is_shadow in (
            Position.objects.filter(session=entry.session, status=Position.Status.CLOSED)
            .order_by("exit_time_ms", "id")
            .values_list("net_pnl", "shadow")
        ):
            (shadow if is_shadow else closed).append(net)
        session = entry.session
        peak = max(session.peak_equity_usdt, session.initial_capital_usdt)
        equity = entry.kernel.equity()
        out.append(
            StrategyResults(
                name=entry.config.name,
                initial_capital_usdt=session.initial_capital_usdt,
                equity_usdt=equity,
                net_pnls=tuple(closed),
                max_drawdown_pct=max(0.0, (peak - equity) / peak * 100.0),
                status=session.status,
                capital_weight=session.capital_weight,
                shadow_net_pnls=tuple(shadow),
            )
        )
    return out


def ranking(arena: Sequence[ArenaEntry], min_trades: int = 10) -> list[object]:
    return list(rank(results(arena), min_trades))


def run_selector(
    arena: Sequence[ArenaEntry],
    rules: SelectorRules,
    *,
    now_ms: int,
    save_later: Callable[[ArenaEntry, Sequence[str]], None],
    manual_hold_ms: int | None = None,
) -> None:
    """One selector round at market time ``now_ms`` (UTC epoch ms): store and apply its
    decisions, but none on a strategy a trader controlled less than ``manual_hold_ms`` of
    market time ago (default: ``risk.yaml`` ``selector.manual_hold_hours``)."""
    decisions = select(results(arena), rules)
    if not decisions:
        return
    hold_ms = configured_hold_ms() if manual_hold_ms is None else manual_hold_ms
    held = held_by_trader({d.name for d in decisions}, now_ms=now_ms, hold_ms=hold_ms)
    by_name = {e.config.name: e for e in arena}
    for decision in decisions:
        if decision.name in held:
            until = held[decision.name]
            log.debug(
                "selector: %s not applied, a trader's control holds %s until %s (market time)",
                decision.action,
                decision.name,
                fmt_time_ms(until) if until is not None else "it is applied, then the hold",
                extra={"strategy": decision.name},
            )
            continue
        entry = by_name[decision.name]
        stored = selector_decision_create(
            session=entry.session,
            decision=decision,
            candle_time_ms=now_ms,
            metrics={k: _json_num(v) for k, v in decision.metrics.items()},
        )
        if stored is None:
            continue
        apply_controls(entry, now_ms=now_ms)
        save_later(entry, ["status", "capital_weight"])
        entry.published = True
        log.info("selector: %s", decision.reason, extra={"strategy": decision.name})


def configured_hold_ms() -> int:
    """``risk.yaml`` ``selector.manual_hold_hours`` in ms of market time."""
    return round(get_config().risk.selector.manual_hold_hours * HOUR_MS)


def held_by_trader(names: Collection[str], *, now_ms: int, hold_ms: int) -> dict[str, int | None]:
    """The strategies of ``names`` a trader's pause, resume or kill-switch reset still holds at
    market time ``now_ms``, each with the market time its hold ends (``None``: a control the
    radar has not applied yet, whose hold starts when it is). One query."""
    if hold_ms <= 0 or not names:
        return {}
    rows = (
        ControlAction.objects.filter(
            actor=ControlAction.Actor.TRADER,
            action__in=ControlAction.HELD_ACTIONS,
            strategy_name__in=list(names),
        )
        .values("strategy_name")
        .annotate(
            applied=Max("market_time_ms"),
            pending=Count("pk", filter=Q(market_time_ms__isnull=True)),
        )
    )
    held: dict[str, int | None] = {}
    for row in rows:
        if row["pending"]:
            held[row["strategy_name"]] = None
        elif row["applied"] is not None and now_ms < row["applied"] + hold_ms:
            held[row["strategy_name"]] = row["applied"] + hold_ms
    return held


def _json_num(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value
