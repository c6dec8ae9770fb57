"""Reads for the Arena page: the ranking, its live rows, the confirmation filters, and why a
strategy cannot decide on a symbol (also shown by the Radar page's heatmap).

Split from ``strategies.selectors`` (which re-exports :func:`arena_row` and :func:`arena_rows`
for the radar's recorder and the controls' republish).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from django.db.models import Count, OuterRef, Q, Subquery, Sum, TextField
from django.db.models.functions import Cast

from common.presenters import arena_live, dom_id, fmt_time_ms
from strategies.core.base import Role
from strategies.core.catalog import REGISTRY
from strategies.models import SelectorDecision, Signal, StrategyConfig, StrategyInputStatus
from trading.core.pnl import fees_share_of_gross
from trading.models import Asset, Position, TradingSession

DAY_MS = 86_400_000
# The order-flow filter's last reason on a signal it moved (``OrderFlow.confirm``): "order flow
# adjusts the long score by +0.050". A delta shown as ±0.000 moved nothing visible.
ADJUSTS = ("order flow adjusts the long score by ", "order flow adjusts the short score by ")
SEEN_BY_FILTER = "order flow"  # every reason the filter adds starts so


def is_filter_kind(kind: str) -> bool:
    """Whether strategies of ``kind`` only adjust other strategies' scores (``order_flow``)."""
    cls = REGISTRY.get(kind)
    return cls is not None and cls.role is Role.CONFIRMATION


def fees_share_of_gross_pct(fees: float, gross: float) -> float | None:
    """Fees as a share of the gross P&L's size: ``fees / |gross| × 100`` (%).

    Shown for losing books too: gross −50 with fees 20 → 40.0 (the fees turned a loss of 50
    into one of 70). ``None`` only when gross is exactly 0: no share to speak of.
    """
    share = fees_share_of_gross(fees, gross)  # the one rule: trading.core.pnl
    return None if share is None else share * 100.0


def running_sessions() -> dict[str, TradingSession]:
    """The session in force per strategy name (``""``: the account), paper before live."""
    sessions: dict[str, TradingSession] = {}
    for s in TradingSession.objects.exclude(status=TradingSession.Status.ENDED).order_by(
        "mode", "-started_at"
    ):
        sessions.setdefault(s.strategy_name, s)  # paper before live, newest first
    return sessions


def _sparkline(equity: list[float], width: int = 160, height: int = 32) -> str:
    """SVG polyline points of an equity curve, downsampled to at most ``width`` points."""
    if len(equity) < 2:
        return ""
    step = max(1, len(equity) // width)
    ys = equity[::step] + ([equity[-1]] if (len(equity) - 1) % step else [])
    lo, hi = min(ys), max(ys)
    span = hi - lo or 1.0
    dx = width / (len(ys) - 1)
    return " ".join(
        f"{i * dx:.1f},{height - (y - lo) / span * height:.1f}" for i, y in enumerate(ys)
    )


def _series_metrics(
    exits_ms: list[int], nets: list[float], capital: float
) -> tuple[float | None, float | None, list[float]]:
    """``(max drawdown %, annualised Sharpe of daily net returns, equity curve)``.

    Equity = capital + cumulative net P&L, trade by trade; drawdown = (peak − equity) / peak.
    Sharpe = mean(daily return) / std(daily return) × √365 (population std, ≥ 2 days).
    """
    if not nets:
        return None, None, []
    equity = capital + np.cumsum(np.asarray(nets, dtype=np.float64))
    peaks = np.maximum.accumulate(np.r_[capital, equity])[1:]
    max_dd = float(np.max((peaks - equity) / peaks) * 100.0)
    days = np.asarray(exits_ms, dtype=np.int64) // DAY_MS
    by_day: dict[int, float] = defaultdict(float)
    for day, net in zip(days.tolist(), nets, strict=True):
        by_day[day] += net
    sharpe = None
    if len(by_day) >= 2:
        returns = np.asarray(list(by_day.values())) / capital
        std = float(returns.std())
        if std > 0:
            sharpe = float(returns.mean() / std * math.sqrt(365))
    return max_dd, sharpe, [capital, *equity.tolist()]


def arena_row(
    session: TradingSession | None, *, name: str = "", status: str = ""
) -> dict[str, Any]:
    """The live cells of one arena row, from the strategy's session as the radar saved it.

    The ONE computation of the row: the Arena page builds it at load and the radar publishes
    it (``arena.update``) from the session it just checkpointed, so both show the same numbers
    while a position is open. Equity = the session's mark-to-market equity (capital + realised
    net + unrealised net at the last processed close); fees = every fee the ledger paid (open
    positions' entry fees included); fees share = fees / |realised gross| × 100
    (:func:`fees_share_of_gross_pct`; None when gross is 0). ``book``: the session's mode
    ("paper" for the arena's ledgers).
    Without a session (``name``, ``status``): the strategy's capital, nothing traded.
    """
    if session is None:
        return arena_live(
            {
                "strategy": name,
                "book": "paper",
                "status": status,
                "equity_usdt": None,
                "net_return_pct": 0.0,
                "realised_gross_pnl": 0.0,
                "realised_net_pnl": 0.0,
                "fees_usdt": 0.0,
                "fees_share_of_gross_pct": None,
                "trades": 0,
                "wins": 0,
                "capital_weight": 1.0,
                "kill_switch_tripped": False,
            }
        )
    capital = session.initial_capital_usdt
    gross = session.realised_gross_pnl
    return arena_live(
        {
            "strategy": session.strategy_name,
            "book": session.mode,
            "status": session.status,
            "equity_usdt": session.equity_usdt,
            "net_return_pct": (session.equity_usdt - capital) / capital * 100.0,
            "realised_gross_pnl": gross,
            "realised_net_pnl": session.realised_net_pnl,
            "fees_usdt": session.fees_usdt,
            "fees_share_of_gross_pct": fees_share_of_gross_pct(session.fees_usdt, gross),
            "trades": session.trades_count,
            "wins": session.wins_count,
            "capital_weight": session.capital_weight,
            "kill_switch_tripped": session.kill_switch_tripped,
        }
    )


def arena_rows() -> list[dict[str, Any]]:
    """One row per strategy (:func:`arena_row`) with the ranking figures of its closed trades,
    ranked by net return (strategies without a session last). ``live``: the strategy also
    trades real orders (``StrategyConfig.live``); outside :func:`arena_row`, so the radar's
    ``arena.update`` needs no extra read — every live control republishes the ranking.
    ``skipped``: why it cannot decide, per symbol (:func:`skipped_by_strategy`). A confirmation
    filter is no contestant: it has its own card (:func:`filter_cards`)."""
    sessions = running_sessions()
    configs = {c.name: c for c in StrategyConfig.objects.all()}
    filters = {c.name for c in configs.values() if is_filter_kind(c.kind)}
    names = sorted((set(configs) | {n for n in sessions if n}) - filters)
    stats = {
        row["strategy_name"]: row
        for row in Position.objects.filter(status=Position.Status.CLOSED, shadow=False)
        .values("strategy_name")
        .annotate(
            profit=Sum("net_pnl", filter=Q(net_pnl__gt=0)),
            loss=Sum("net_pnl", filter=Q(net_pnl__lte=0)),
        )
    }
    series: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for name, exit_ms, net in (
        Position.objects.filter(status=Position.Status.CLOSED, shadow=False)
        .order_by("strategy_name", "exit_time_ms", "id")
        .values_list("strategy_name", "exit_time_ms", "net_pnl")
    ):
        series[name][0].append(exit_ms)
        series[name][1].append(net)
    skipped = skipped_by_strategy()
    selector_notes = last_selector_decisions()
    rows = []
    for name in names:
        session = sessions.get(name)
        config = configs.get(name)
        capital = (
            session.initial_capital_usdt
            if session
            else (config.virtual_capital_usdt if config else 10_000.0)
        )
        st = stats.get(name, {})
        loss = st.get("loss") or 0.0
        profit = st.get("profit") or 0.0
        max_dd, sharpe, equity = _series_metrics(*series.get(name, ([], [])), capital)
        status = "disabled" if config and not config.enabled else "idle"
        live = arena_row(session, name=name, status=status)
        if session is None:
            live["equity_usdt"] = capital
        rows.append(
            {
                **live,
                "row_id": dom_id("arena-row", name),
                "config_id": config.pk if config else None,
                "live": bool(config and config.live),
                "has_session": session is not None,
                "profit_factor": profit / -loss if loss < 0 else None,
                "max_drawdown_pct": max_dd,
                "sharpe": sharpe,
                "sparkline": _sparkline(equity),
                "spark_up": bool(equity) and equity[-1] >= equity[0],
                "skipped": skipped.get(name, []),
                "selector_note": selector_notes.get(name, ""),
            }
        )
    rows.sort(key=lambda r: (not r["has_session"], -r["net_return_pct"]))
    return rows


def last_selector_decisions() -> dict[str, str]:
    """The arena selector's latest decision per strategy, as the Arena shows it: "paused by
    selector 2025-06-18 14:00 UTC: <reason>" (its round's market time). One query."""
    verbs = {"pause": "paused", "resume": "resumed", "boost": "risk scaled"}
    latest = SelectorDecision.objects.filter(strategy_name=OuterRef("strategy_name"))
    return {
        d.strategy_name: f"{verbs.get(d.action, d.action)} by selector "
        f"{fmt_time_ms(d.candle_time_ms)[:16]} UTC: {d.reason}"
        for d in SelectorDecision.objects.filter(
            pk=Subquery(latest.order_by("-candle_time_ms", "-id").values("pk")[:1])
        )
    }


def skipped_by_strategy() -> dict[str, list[dict[str, Any]]]:
    """Why each strategy (or filter) cannot decide, one line per enabled symbol, from the rows
    the radar stores when the reason changes (``StrategyInputStatus``, ``radar.input_status``):
    ``{"liquidation_zones": [{"symbol": "SOL/USDT:USDT", "base": "SOL", "reason": "no
    open-interest history", "since": "2025-06-17 01:00:00"}]}``. A strategy with its inputs
    has no line; a disabled one neither (the radar no longer runs it). Two queries."""
    bases = dict(Asset.objects.filter(enabled=True).values_list("symbol", "base"))
    enabled = StrategyConfig.objects.filter(enabled=True).values("name")
    out: dict[str, list[dict[str, Any]]] = {}
    for name, symbol, reason, time_ms in StrategyInputStatus.objects.filter(
        symbol__in=list(bases), strategy_name__in=enabled
    ).values_list("strategy_name", "symbol", "reason", "market_time_ms"):
        out.setdefault(name, []).append(
            {
                "symbol": symbol,
                "base": bases[symbol] or symbol,
                "reason": reason,
                "since": fmt_time_ms(time_ms),
            }
        )
    return out


def filter_adjustments() -> dict[str, int]:
    """How the order-flow filter moved the stored signals' scores, from their reasons (the raw
    score is not stored; the filter's reason says by how much it moved it, :data:`ADJUSTS`):
    ``raised`` / ``lowered`` = signals it moved up / down, ``unchanged`` = those it saw but
    left as they were (no recent book or trades, or votes cancelling out). One query."""

    def moved(sign: str) -> Q:
        cond = Q(pk__in=[])
        for prefix in ADJUSTS:
            cond |= Q(reasons_text__contains=prefix + sign) & ~Q(
                reasons_text__contains=f'{prefix}{sign}0.000"'
            )
        return cond

    counts = Signal.objects.annotate(reasons_text=Cast("reasons", TextField())).aggregate(
        raised=Count("pk", filter=moved("+")),
        lowered=Count("pk", filter=moved("-")),
        seen=Count("pk", filter=Q(reasons_text__contains=f'"{SEEN_BY_FILTER}')),
    )
    raised, lowered = counts["raised"], counts["lowered"]
    return {"raised": raised, "lowered": lowered, "unchanged": counts["seen"] - raised - lowered}


def filter_cards() -> list[dict[str, Any]]:
    """One card per confirmation filter (``order_flow``): enabled or not, how many signals it
    raised and lowered (:func:`filter_adjustments`, shared by every filter of that kind), and
    per symbol why it adjusts nothing there (``inactive``: no book and no trades)."""
    filters = [c for c in StrategyConfig.objects.all() if is_filter_kind(c.kind)]
    if not filters:
        return []
    counts = filter_adjustments()
    skipped = skipped_by_strategy()
    return [
        {
            "name": c.name,
            "kind": c.kind,
            "enabled": c.enabled,
            "dom_id": dom_id("filter", c.name),
            **counts,
            "inactive": skipped.get(c.name, []),
        }
        for c in filters
    ]
