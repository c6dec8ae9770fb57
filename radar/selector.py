"""The arena's selector, run by the runtime once per round of MARKET time.

A round is keyed by market time (``now_ms // (every × 1 min)``), so a restart neither skips
nor repeats one. Each decision is stored once per round with an alert
(``strategies.services.selector_decision_create``) and applied to the session in memory; the
session is checkpointed with its state at the batch's commit (the controls stored are those in
force for every candle after that checkpoint, which a restart's catch-up relies on).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

from radar.arena import ArenaEntry
from radar.controls import apply_controls
from strategies.core.arena import SelectorRules, StrategyResults, rank, select
from strategies.services import selector_decision_create
from trading.models import Position, TradingSession

log = logging.getLogger(__name__)

MINUTE_MS = 60_000


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
) -> None:
    """One selector round at market time ``now_ms``: store and apply its decisions."""
    by_name = {e.config.name: e for e in arena}
    for decision in select(results(arena), rules):
        entry = by_name[decision.name]
        stored = selector_decision_create(
            decision=decision,
            candle_time_ms=now_ms,
            metrics={k: _json_num(v) for k, v in decision.metrics.items()},
        )
        if stored is None:
            continue
        session = entry.session
        if decision.action == "boost" and decision.new_weight is not None:
            session.capital_weight = decision.new_weight
        elif decision.action == "pause":
            session.status = TradingSession.Status.PAUSED
        elif decision.action == "resume":
            session.status = TradingSession.Status.ACTIVE
        apply_controls(entry, now_ms=now_ms)
        save_later(entry, ["status", "capital_weight"])
        entry.published = True
        log.info("selector: %s", decision.reason, extra={"strategy": decision.name})


def _json_num(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value
