"""``manage.py arena_report [--json]``: the paper arena as this database holds it.

Per strategy (its running paper session): trades, wins, gross, fees, funding and net (USDT,
summed from its closed non-shadow positions — realised only, so the line adds up: net =
gross − fees − funding), shadow trades taken while paused, its status, the kill switch and
every decision of the arena's selector with its reason; with ``--json`` also every trade.
``manage.py backtest --arena`` reads a scratch radar replay through it.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from strategies.models import ControlAction, StrategyConfig
from trading.models import Position, TradingMode, TradingSession

TRADE_FIELDS = (
    "symbol", "side", "qty", "leverage", "entry_price", "entry_time_ms", "exit_price",
    "exit_time_ms", "exit_reason", "gross_pnl", "entry_fee", "exit_fee", "funding_usdt",
    "net_pnl",
)  # fmt: skip


def arena_report() -> dict[str, Any]:
    """The report as a JSON-safe dict (module docstring)."""
    strategies = []
    for config in StrategyConfig.objects.order_by("name"):
        session = (
            TradingSession.objects.filter(strategy_name=config.name, mode=TradingMode.PAPER)
            .order_by("-started_at", "-pk")
            .first()
        )
        if session is None:
            continue
        closed = Position.objects.filter(session=session, status=Position.Status.CLOSED)
        trades = [
            dict(zip(TRADE_FIELDS, row, strict=True))
            for row in closed.filter(shadow=False)
            .order_by("exit_time_ms", "entry_time_ms", "symbol")
            .values_list(*TRADE_FIELDS)
        ]
        fees = sum(t["entry_fee"] + (t["exit_fee"] or 0.0) for t in trades)
        decisions = [
            {"action": a, "reason": r, "market_time_ms": m}
            for a, r, m in ControlAction.objects.filter(
                strategy_name=config.name, actor=ControlAction.Actor.SELECTOR
            )
            .order_by("market_time_ms", "pk")
            .values_list("action", "reason", "market_time_ms")
        ]
        strategies.append(
            {
                "strategy": config.name,
                "kind": config.kind,
                "enabled": config.enabled,
                "status": session.status,
                "trades": len(trades),
                "wins": sum(1 for t in trades if (t["net_pnl"] or 0.0) > 0),
                "gross_pnl": sum(t["gross_pnl"] or 0.0 for t in trades),
                "fees": fees,
                "funding": sum(t["funding_usdt"] for t in trades),
                "net_pnl": sum(t["net_pnl"] or 0.0 for t in trades),
                "shadow_trades": closed.filter(shadow=True).count(),
                "open_positions": Position.objects.filter(
                    session=session, status=Position.Status.OPEN, shadow=False
                ).count(),
                "kill_switch_tripped": session.kill_switch_tripped,
                "kill_switch_reason": session.kill_switch_reason,
                "selector_decisions": decisions,
                "trade_list": trades,
            }
        )
    return {"strategies": strategies}


class Command(BaseCommand):
    help = "Print the paper arena of this database: per strategy trades, gross, fees, net."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")

    def handle(self, *args: Any, **opts: Any) -> None:
        report = arena_report()
        if opts["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
            return
        self.stdout.write(
            f"{'strategy':<20}{'status':>8}{'trades':>8}{'gross':>12}{'fees':>10}"
            f"{'funding':>10}{'net':>12}  kill switch / selector"
        )
        for s in report["strategies"]:
            notes = []
            if s["kill_switch_tripped"]:
                notes.append(f"kill switch: {s['kill_switch_reason']}")
            notes.extend(f"selector {d['action']}: {d['reason']}" for d in s["selector_decisions"])
            self.stdout.write(
                f"{s['strategy']:<20}{s['status']:>8}{s['trades']:>8}{s['gross_pnl']:>12.2f}"
                f"{s['fees']:>10.2f}{s['funding']:>10.2f}{s['net_pnl']:>12.2f}  "
                + ("; ".join(notes) or "-")
            )
