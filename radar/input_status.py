"""Why a strategy cannot decide on a symbol, stored when it changes (Arena and Radar pages).

The kernel knows, per symbol, why its strategy did not decide at its last decision candle
(``StrategyKernel.skipped_reason``: "no open-interest history", "no funding-rate history"...).
A confirmation filter (``order_flow``) has no decision of its own: it moves other strategies'
scores from the L2 book and the trades, so without either it adjusts nothing. The web process
may run apart from the radar, so both reasons go to the database: one
``strategies.StrategyInputStatus`` row per strategy (or filter) and symbol while it cannot
decide, deleted when it can again.

Written only when a reason CHANGES, never per candle: each entry's ``input_status`` mirrors
the rows stored for it (loaded once, on its first candle). A kernel rebuilt from the stored
record after a rolled-back batch comes with a new entry, so its mirror is read again from what
the database really holds. The filters' rows are kept by the arena's first entry alone (every
kernel shares the same filters and inputs), from the first kernel still running.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import transaction

from radar.arena import ArenaEntry
from strategies.core.kernel import StrategyKernel
from strategies.models import StrategyInputStatus

Mirror = dict[tuple[str, str], str]  # (strategy name, symbol) -> stored reason


def input_status_set(
    *, strategy_name: str, symbol: str, reason: str | None, market_time_ms: int
) -> None:
    """Store why ``strategy_name`` cannot decide on ``symbol`` (``None``: it can; the row goes)."""
    with transaction.atomic():
        if reason is None:
            StrategyInputStatus.objects.filter(strategy_name=strategy_name, symbol=symbol).delete()
        else:
            StrategyInputStatus.objects.update_or_create(
                strategy_name=strategy_name,
                symbol=symbol,
                defaults={"reason": reason, "market_time_ms": market_time_ms},
            )


def filter_missing_inputs(kernel: StrategyKernel, confirmer_index: int, symbol: str) -> str | None:
    """Why the kernel's ``confirmer_index``-th filter adjusts no score on ``symbol``: none of
    the streams it reads (L2 book, trades) was ever handed to the kernel; ``None`` when one was.
    """
    needs = kernel.confirmers[confirmer_index].inputs
    st = kernel._symbols.get(symbol)
    has_book = st is not None and st.order_book is not None
    has_trades = st is not None and st.trades is not None and len(st.trades) > 0
    wanted = [
        (label, has)
        for label, has, declared in (
            ("order book", has_book, needs.order_book),
            ("trades", has_trades, needs.trades),
        )
        if declared
    ]
    if not wanted or any(has for _, has in wanted):
        return None
    missing = " and no ".join(label for label, _ in wanted)
    return f"no {missing} received, so it adjusts no score"


def _mirror(entry: ArenaEntry, names: Iterable[str]) -> Mirror:
    """The rows stored for ``names``, read once per entry (then kept in step by :func:`_sync`)."""
    if entry.input_status is None:
        entry.input_status = {
            (name, symbol): reason
            for name, symbol, reason in StrategyInputStatus.objects.filter(
                strategy_name__in=list(names)
            ).values_list("strategy_name", "symbol", "reason")
        }
    return entry.input_status


def _sync(mirror: Mirror, name: str, symbol: str, reason: str | None, now_ms: int) -> None:
    if mirror.get((name, symbol)) == reason:
        return
    input_status_set(strategy_name=name, symbol=symbol, reason=reason, market_time_ms=now_ms)
    if reason is None:
        mirror.pop((name, symbol), None)
    else:
        mirror[(name, symbol)] = reason


def _stored_names(entry: ArenaEntry, arena: Sequence[ArenaEntry]) -> list[str]:
    """Whose rows ``entry`` mirrors: its strategy's, and the filters' for the first entry."""
    filters = [c.name for c in entry.confirmers] if entry is arena[0] else []
    return [entry.config.name, *filters]


def record_input_status(arena: Sequence[ArenaEntry], symbol: str, now_ms: int) -> None:
    """After a candle of ``symbol`` (close time ``now_ms``, UTC epoch ms): store every reason
    that changed — each running strategy's, and the filters' (module doc)."""
    running = [e for e in arena if not e.errored and symbol in e.kernel._symbols]
    for entry in running:
        mirror = _mirror(entry, _stored_names(entry, arena))
        _sync(mirror, entry.config.name, symbol, entry.kernel.skipped_reason(symbol), now_ms)
    if not running or not running[0].confirmers:
        return
    mirror = _mirror(arena[0], _stored_names(arena[0], arena))
    for index, config in enumerate(running[0].confirmers):
        reason = filter_missing_inputs(running[0].kernel, index, symbol)
        _sync(mirror, config.name, symbol, reason, now_ms)
