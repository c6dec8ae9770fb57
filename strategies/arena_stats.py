"""The arena's results broken down: daily net P&L and cumulative equity per strategy (and all
strategies overlaid), and tables per pair and per exit reason.

What every figure here stands on: the CLOSED, non-shadow ``Position`` rows of each strategy's
running PAPER session (the arena's virtual ledgers). Live positions (``LivePosition``, booked
from the exchange's fills) never enter; the pages show them apart. Net = gross − entry and exit
fees − funding (``Position.net_pnl``, funding > 0 = paid). A trade belongs to the UTC market day
of its exit (``exit_time_ms``: market time, so a replay's trades fall on the replayed days).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from strategies.arena_selectors import DAY_MS, fees_share_of_gross_pct, running_sessions
from trading.live_selectors import live_results
from trading.models import Position, TradingMode, TradingSession

__all__ = ["arena_breakdowns", "fees_share_of_gross_pct", "live_books", "paper_trades"]

PALETTE = 8  # line colours k0..k7 (static/css/arena.css), cycled
CAPTION = (
    "Closed paper trades of each strategy's running arena session (shadow trades and live "
    "fills excluded), net of fees and funding, by UTC market day of the exit."
)


@dataclass(frozen=True, slots=True)
class PaperTrade:
    """One closed paper trade, as the breakdowns read it (USDT amounts)."""

    strategy: str
    symbol: str
    exit_reason: str
    exit_time_ms: int
    gross: float
    fees: float
    funding: float
    net: float


def paper_sessions() -> dict[str, TradingSession]:
    """The running PAPER session of each strategy (the account's line excluded)."""
    return {
        name: s for name, s in running_sessions().items() if name and s.mode == TradingMode.PAPER
    }


def paper_trades(sessions: dict[str, TradingSession], strategy: str = "") -> list[PaperTrade]:
    """The closed, non-shadow trades of ``sessions`` (of ``strategy`` only when given), in
    order of exit. One query."""
    ids = [s.pk for name, s in sessions.items() if not strategy or name == strategy]
    rows = (
        Position.objects.filter(session_id__in=ids, status=Position.Status.CLOSED, shadow=False)
        .order_by("exit_time_ms", "id")
        .values_list(
            "strategy_name",
            "symbol",
            "exit_reason",
            "exit_time_ms",
            "gross_pnl",
            "entry_fee",
            "exit_fee",
            "funding_usdt",
            "net_pnl",
        )
    )
    return [
        PaperTrade(
            strategy=name,
            symbol=symbol,
            exit_reason=reason or "unknown",
            exit_time_ms=int(exit_ms or 0),
            gross=gross or 0.0,
            fees=entry_fee + (exit_fee or 0.0),
            funding=funding or 0.0,
            net=net or 0.0,
        )
        for name, symbol, reason, exit_ms, gross, entry_fee, exit_fee, funding, net in rows
    ]


def _day(time_ms: int) -> str:
    """UTC market day of an epoch-ms time: ``2025-06-17``."""
    return datetime.fromtimestamp(time_ms // DAY_MS * 86_400, tz=UTC).strftime("%Y-%m-%d")


def _day_before(day: str) -> str:
    return (datetime.strptime(day, "%Y-%m-%d") - timedelta(days=1)).strftime("%Y-%m-%d")


def _totals(trades: Sequence[PaperTrade]) -> dict[str, Any]:
    """Trades, wins (net > 0), win rate %, gross, fees, funding, net (USDT), fees % |gross|."""
    gross = sum(t.gross for t in trades)
    fees = sum(t.fees for t in trades)
    wins = sum(1 for t in trades if t.net > 0)
    return {
        "trades": len(trades),
        "wins": wins,
        "win_rate_pct": wins / len(trades) * 100.0 if trades else None,
        "gross": gross,
        "fees": fees,
        "funding": sum(t.funding for t in trades),
        "net": sum(t.net for t in trades),
        "fees_share_pct": fees_share_of_gross_pct(fees, gross),
    }


def breakdown(trades: Iterable[PaperTrade], key: Callable[[PaperTrade], str]) -> list[dict]:
    """One line of :func:`_totals` per value of ``key`` (pair, exit reason), most trades first
    (then by name)."""
    groups: dict[str, list[PaperTrade]] = defaultdict(list)
    for t in trades:
        groups[key(t)].append(t)
    lines = [{"key": k, **_totals(v)} for k, v in groups.items()]
    lines.sort(key=lambda line: (-line["trades"], line["key"]))
    return lines


def daily(trades: Sequence[PaperTrade], capital: float) -> list[dict[str, Any]]:
    """One line per UTC market day with a closed trade: the day's :func:`_totals` and the
    equity at its end = ``capital`` + running net. Nets 78.5 (day 1) and −121 (day 2) on
    10,000 → equity 10,078.50, then 9,957.50."""
    by_day: dict[str, list[PaperTrade]] = defaultdict(list)
    for t in trades:
        by_day[_day(t.exit_time_ms)].append(t)
    equity = capital
    lines = []
    for day in sorted(by_day):
        line = {"day": day, **_totals(by_day[day])}
        equity += line["net"]
        lines.append({**line, "equity": equity})
    return lines


def _equity_points(days: Sequence[dict[str, Any]], capital: float) -> list[dict[str, Any]]:
    """The equity line for the chart: the capital the day before the first exit, then each
    day's closing equity (``{"time": "2025-06-17", "value": 10078.5}``)."""
    if not days:
        return []
    start = {"time": _day_before(days[0]["day"]), "value": round(capital, 2)}
    return [start, *({"time": d["day"], "value": round(d["equity"], 2)} for d in days)]


def arena_breakdowns(strategy: str = "") -> dict[str, Any]:
    """Everything the charts and breakdown tables need, for ``strategy`` or all strategies
    ("" or a name without a paper session): the daily lines (``days``, equity on the summed
    capital for all), the chart's JSON (``chart``: each strategy's equity line and the daily
    net bars), and the per-pair and per-exit-reason tables. Two queries."""
    sessions = paper_sessions()
    if strategy not in sessions:
        strategy = ""
    trades = paper_trades(sessions, strategy)
    shown = [strategy] if strategy else sorted(sessions)
    by_strategy: dict[str, list[PaperTrade]] = defaultdict(list)
    for t in trades:
        by_strategy[t.strategy].append(t)
    lines = []
    for name in shown:
        capital = sessions[name].initial_capital_usdt
        points = _equity_points(daily(by_strategy[name], capital), capital)
        if points:
            lines.append({"name": name, "key": len(lines) % PALETTE, "points": points})
    capital = sum(sessions[name].initial_capital_usdt for name in shown)
    days = daily(trades, capital)
    return {
        "strategy": strategy,
        "strategies": sorted(sessions),
        "capital": capital,
        "days": days,
        "chart": {
            "equity": lines,
            "daily": [{"time": d["day"], "value": round(d["net"], 2)} for d in days],
        },
        "by_symbol": breakdown(trades, lambda t: t.symbol.split(":")[0]),
        "by_exit_reason": breakdown(trades, lambda t: t.exit_reason.replace("_", " ")),
        "totals": _totals(trades),
        "caption": CAPTION,
    }


def live_books(sessions: dict[str, TradingSession] | None = None) -> list[dict[str, Any]]:
    """The live results of the strategies that trade real orders, apart from paper: their
    ``LivePosition`` rows closed since their paper session started, and those open now
    (``trading.live_selectors.live_results``), fees share on |gross|."""
    sessions = paper_sessions() if sessions is None else sessions
    since = {name: int(s.started_at.timestamp() * 1000) for name, s in sessions.items()}
    return [
        {
            "strategy": name,
            **result,
            "fees_share_pct": fees_share_of_gross_pct(result["fees"], result["gross"]),
        }
        for name, result in sorted(live_results(since).items())
    ]
