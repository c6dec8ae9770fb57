"""Controls: what the dashboard, the admin and the selector changed, applied to the kernels.

* :func:`apply_controls` makes one kernel follow its session (status, kill switch, weight);
* :func:`sync_controls` re-reads every session's controls and every strategy's ``updated_at``
  (two queries, ``select_for_update``: on PostgreSQL a concurrent pause waits for this batch's
  commit instead of racing it), applies them, and stamps the trader's new controls with the
  market time they are in force from (the selector's hold counts from it, ``radar.selector``);
* :func:`reload_config` rebuilds a kernel whose parameters were edited in the admin, the way a
  restart rebuilds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from radar.arena import (
    ArenaEntry,
    apply_capital_weight,
    last_close_ms,
    new_kernel,
    preload_stored_history,
)
from strategies.core.kernel import Mode, StrategyKernel
from strategies.models import StrategyConfig
from strategies.services import control_actions_stamp
from trading.config import checked_capital_weight
from trading.core.risk import start_session
from trading.models import TradingSession

log = logging.getLogger(__name__)

KILL_FIELDS = ["status", "kill_switch_tripped", "kill_switch_reason", "kill_switch_tripped_at"]
CONTROL_FIELDS = [*KILL_FIELDS, "capital_weight"]


def apply_controls(entry: ArenaEntry, *, now_ms: int) -> bool:
    """Make the kernel follow its session's controls (status, kill switch, capital weight).

    * a kill switch reset in the dashboard (session no longer tripped while the kernel's switch
      is) starts a fresh kill-switch session at the kernel's current equity — the same reset
      ``trading.core.risk.start_session`` documents — so the loss limit counts from now;
    * the kernel's mode follows the status: active trades the real ledger, paused / shadow /
      killed trade the shadow ledger;
    * the selector's capital weight scales the risk per trade (re-applied after a restart).

    Returns whether anything changed; the entry is then due for a checkpoint.
    """
    session, kernel = entry.session, entry.kernel
    changed = False
    if kernel.kill_switch.tripped and not session.kill_switch_tripped:
        kernel.kill_switch = start_session(kernel.name, kernel.equity(), now_ms)
        log.info("kill switch reset", extra={"strategy": kernel.name})
        changed = True
    wanted = Mode.KILLED if session.kill_switch_tripped else kernel_mode(session.status)
    if kernel.mode is not wanted:
        kernel.set_mode(wanted)
        changed = True
    if session.capital_weight != entry.applied_weight:
        apply_capital_weight(kernel, checked_capital_weight(session))  # InvalidStoredValue
        entry.applied_weight = session.capital_weight
        changed = True
    entry.checkpoint_due |= changed
    return changed


def kernel_mode(status: str) -> Mode:
    return {
        TradingSession.Status.PAUSED: Mode.PAUSED,
        TradingSession.Status.SHADOW: Mode.PAUSED,
        TradingSession.Status.KILLED: Mode.KILLED,
        TradingSession.Status.ERRORED: Mode.PAUSED,  # not fed anyway (radar.runtime)
    }.get(TradingSession.Status(status), Mode.ACTIVE)


def sync_controls(
    arena: Sequence[ArenaEntry],
    accounts: Sequence[TradingSession],
    *,
    now_ms: int,
    reload: Callable[[StrategyConfig], None],
    failed: Callable[[ArenaEntry, Exception], None] | None = None,
) -> None:
    """Apply what the dashboard and the admin changed since the last read.

    Sessions (the strategies' and the accounts'): status, kill switch and capital weight are
    re-read and applied with :func:`apply_controls` (an account's by the runtime's account
    guard, which compares them with its switch). Strategies: a newer ``updated_at`` rebuilds
    that strategy's kernel with the new parameters (``reload``). Enabling, disabling or adding
    a strategy and its virtual capital take effect at the next start. The caller saves what the
    runtime itself changed (a kill-switch trip) first: the read must not take the stored row's
    older status for a dashboard control. ``failed(entry, exc)``: told when a strategy's
    stored controls are refused (``InvalidStoredValue``): that strategy's failure alone.
    The controls recorded since the last read are stamped with ``now_ms`` (market time, UTC
    epoch ms): one update on an index of the unstamped rows, which is empty between controls.
    """
    by_session: dict[int, ArenaEntry | TradingSession] = {e.session.pk: e for e in arena}
    by_session.update({a.pk: a for a in accounts})
    rows = (
        TradingSession.objects.select_for_update()
        .filter(pk__in=by_session)
        .values_list("pk", *CONTROL_FIELDS)
    )
    for pk, *values in rows:
        target = by_session[pk]
        session = target.session if isinstance(target, ArenaEntry) else target
        for name, value in zip(CONTROL_FIELDS, values, strict=True):
            setattr(session, name, value)
        if isinstance(target, ArenaEntry) and not target.errored:
            try:
                apply_controls(target, now_ms=now_ms)  # compares with the kernel: idempotent
            except Exception as exc:
                if failed is None:
                    raise
                failed(target, exc)
    control_actions_stamp(names=[e.config.name for e in arena], market_time_ms=now_ms)
    known = {e.config.pk: e.config.updated_at for e in arena}
    known.update({c.pk: c.updated_at for e in arena for c in e.confirmers})
    stamps = StrategyConfig.objects.filter(pk__in=known).values_list("pk", "updated_at")
    changed = [pk for pk, updated_at in stamps if updated_at != known[pk]]
    if changed:
        for config in StrategyConfig.objects.filter(pk__in=changed):
            reload(config)


def reload_config(
    arena: Sequence[ArenaEntry],
    config: StrategyConfig,
    *,
    exchange: str,
    give_inputs: Callable[[StrategyKernel, str], None],
) -> None:
    """Apply parameters edited in the admin to the running kernels, without a restart.

    The kernel of that strategy (of every strategy, for a confirmation filter) is rebuilt
    the way a restart rebuilds it — from its current state, with the stored candle history
    and the current inputs — so a changed timeframe or warm-up gets the right windows.
    Ledger, open positions, pending orders, kill switch and mode carry over unchanged.
    """
    config.check_stored()  # a row stored around the validation: InvalidStoredValue
    for entry in arena:
        if entry.config.pk == config.pk:
            entry.config = config
        elif any(c.pk == config.pk for c in entry.confirmers):
            entry.confirmers = tuple(config if c.pk == config.pk else c for c in entry.confirmers)
        else:
            continue
        entry.kernel = new_kernel(
            entry.config,
            entry.confirmers,
            entry.symbols,
            entry.kernel_config,
            state=entry.kernel.state(),
        )
        preload_stored_history([entry.kernel], exchange)
        for symbol in entry.symbols:
            give_inputs(entry.kernel, symbol)
        entry.applied_weight = 1.0
        apply_controls(entry, now_ms=last_close_ms(entry.kernel) or 0)
        entry.checkpoint_due = True
        log.info("parameters reloaded", extra={"strategy": entry.config.name})
