"""A stored run as its result page reads it: what it covered, what it stood on, its trades.

Plain values for the templates (figures are formatted there, through the ``desk`` filters):
the period asked and the period the candles actually covered, the data and parameter sources,
the kill switch, the assumptions as (label, text) rows, the trade rows and their breakdowns by
exit reason and by regime. Reads the database only for the stored candles' ``source`` column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from backtests.models import BacktestRun
from backtests.selectors import candle_coverage, candle_sources, fmt_minute, fmt_span
from trading.core import numbers
from trading.core.candles import MINUTE_MS

# (summary key, label, format): the format names the desk filter of the value (templates/
# backtests/_figure.html); money labels carry their unit.
RESULT_FIELDS = (
    ("return_pct", "Net return", "pct"),
    ("trades", "Trades", "count"),
    ("win_rate", "Win rate", "share"),
    ("gross_pnl", "Gross P&L (USDT)", "money"),
    ("fees", "Fees (USDT)", "money"),
    ("fees_pct_of_gross", "Fees % of |gross|", "share"),
    ("funding", "Funding (USDT)", "money"),
    ("liquidation_loss", "Liquidation losses (USDT)", "money"),
    ("slippage", "Slippage (USDT, in prices)", "money"),
    ("net_pnl", "Net P&L (USDT)", "money"),
    ("profit_factor_net", "Profit factor (net)", "ratio"),
    ("expectancy", "Expectancy (USDT per trade)", "money"),
    ("max_drawdown_pct", "Max drawdown", "share"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("ratio_days", "Days under Sharpe / Sortino", "count"),
    ("exposure_pct", "Exposure", "share"),
    ("final_equity", "Final equity (USDT)", "money"),
)
FEES_REMOVED = "Same trades, fees removed"
OLD_TWIN = "Re-simulated with zero fees (different orders)"
EXIT_REASONS = {
    "stop_loss": "stop loss",
    "take_profit": "take profit",
    "liquidation": "liquidation",
    "signal_exit": "signal exit",
    "regime_change": "regime change",
    "kill_switch": "kill switch",
    "manual": "manual",
    "end_of_data": "end of data",
    "time_stop": "time stop",
}


def period(run: BacktestRun) -> dict[str, Any]:
    """The period asked and the one the candles covered (``differs``: flagged on the page).

    A single-strategy run records its first candle's open and last candle's close
    (``results.start_ms`` / ``end_ms``, ``candles``); an arena run replays the stored candles of
    its range, counted here."""
    results = run.results or {}
    asked = None
    if run.start_ms is not None and run.end_ms is not None:
        asked = fmt_span(int(run.start_ms), int(run.end_ms) - MINUTE_MS)
    elif run.start_ms is not None:
        asked = f"from {fmt_minute(run.start_ms)} to the end of the data"
    first, last_close, candles = results.get("start_ms"), results.get("end_ms"), None
    if isinstance(first, int | float) and isinstance(last_close, int | float):
        candles = results.get("candles")
        first, last = int(first), int(last_close) - MINUTE_MS
    elif run.strategy_kind == "arena" and run.start_ms is not None and run.end_ms is not None:
        covered = [
            candle_coverage(s, run.start_ms, run.end_ms) for s in run.params.get("symbols", [])
        ]
        covered = [c for c in covered if not c.empty]
        if not covered:
            return {"asked": asked, "covered": None, "differs": False}
        first = min(int(c.first_open_ms) for c in covered)  # type: ignore[arg-type]
        last = max(int(c.last_open_ms) for c in covered)  # type: ignore[arg-type]
        candles = sum(c.candles or 0 for c in covered)
    else:
        return {"asked": asked, "covered": None, "differs": False}
    minutes = None
    if run.start_ms is not None and run.end_ms is not None:
        minutes = (int(run.end_ms) - int(run.start_ms)) // MINUTE_MS
    differs = asked is not None and (
        first != run.start_ms or (run.end_ms is not None and last + MINUTE_MS != run.end_ms)
    )
    return {
        "asked": asked,
        "covered": fmt_span(first, last),
        "first": fmt_minute(first),
        "last": fmt_minute(last),
        "candles": candles,
        "minutes": minutes,
        "coverage_pct": (candles / minutes * 100) if candles and minutes else None,
        "differs": differs,
        "first_ms": first,
        "end_ms": last + MINUTE_MS,
    }


def period_text(run: BacktestRun) -> str:
    """The period of a run in one line for the list: asked, else covered ("" when neither)."""
    if run.start_ms is not None and run.end_ms is not None:
        return fmt_span(int(run.start_ms), int(run.end_ms) - MINUTE_MS)
    first, end = (run.results or {}).get("start_ms"), (run.results or {}).get("end_ms")
    if isinstance(first, int | float) and isinstance(end, int | float):
        return fmt_span(int(first), int(end) - MINUTE_MS)
    return ""


def data_source(run: BacktestRun, covered: Mapping[str, Any]) -> dict[str, Any]:
    """Where the candles came from: the files given to ``manage.py backtest --data``, or the
    stored candles with their ``source`` column (per exchange and source, counted)."""
    recorded = str((run.results or {}).get("data_source") or run.data_source or "")
    if recorded.startswith("files: "):
        return {"kind": "files", "files": recorded.removeprefix("files: ").split(", ")}
    if not covered.get("covered"):
        return {"kind": "database", "rows": []}
    symbols = run.params.get("symbols", []) if run.strategy_kind == "arena" else [run.symbol]
    rows = []
    for symbol in symbols:
        found = candle_sources(symbol, covered["first_ms"], covered["end_ms"])
        rows.extend({"symbol": symbol, "missing": False, **row} for row in found)
        if not found:  # an arena symbol without candles in the period: not replayed
            rows.append({"symbol": symbol, "missing": True, "candles": 0})
    return {"kind": "database", "rows": rows}


def params_source(run: BacktestRun) -> dict[str, str]:
    """The parameter source in one word (database / YAML / defaults, "+ explicit" when values
    were set for this run) and the sentence the run recorded."""
    text = str((run.results or {}).get("params_source") or run.params_source or "")
    if text.startswith("database"):
        kind = "database config"
    elif text.startswith("config/strategies.yaml") or text.startswith("yaml"):
        kind = "YAML"
    elif text.startswith("defaults"):
        kind = "strategy defaults"
    else:
        kind = "explicit" if text else "not recorded"
    if "set here:" in text and kind != "explicit":
        kind += " + explicit values"
    return {"kind": kind, "text": text or "not recorded (a run stored before the source was)"}


def kill_switch(run: BacktestRun) -> dict[str, Any]:
    """Whether the kill switch tripped (``None``: not recorded) and what ran after it."""
    results = run.results or {}
    if run.strategy_kind == "arena":
        tripped = [
            s["strategy"] for s in results.get("strategies", []) if s.get("kill_switch_tripped")
        ]
        return {
            "tripped": bool(tripped),
            "strategies": tripped,
            "recorded": "strategies" in results,
        }
    item = (results.get("assumptions") or {}).get("kill_switch") or {}
    return {
        "tripped": bool(results.get("kill_switch_tripped")),
        "recorded": "kill_switch_tripped" in results,
        "shadow_trades": results.get("shadow_trades"),
        "limit_pct": item.get("max_session_loss_pct"),
    }


def assumptions(results: Mapping[str, Any]) -> list[dict[str, str]]:
    """The assumptions as (label, text) rows, in their order: a single run's ``{key: {label,
    text}}`` (its recorded parameter source last) or an arena run's ``{key: text or list}``."""
    rows = []
    for key, item in (results.get("assumptions") or {}).items():
        if isinstance(item, Mapping):
            text = str(item.get("text", ""))
            if key == "parameters" and results.get("params_source"):
                text = str(results["params_source"])  # the source the run recorded last
            rows.append({"label": str(item.get("label", key)), "text": text})
        elif isinstance(item, str):
            rows.append({"label": key.capitalize(), "text": item})
        else:
            rows.append({"label": key.capitalize(), "text": ", ".join(map(str, item))})
    return rows


def summary_notes(results: Mapping[str, Any]) -> dict[str, Any]:
    """The run's basis, the sum that adds up (USDT, desk format) and the notes on undefined
    figures."""
    keys = ("gross_pnl", "fees", "funding", "liquidation_loss", "net_pnl")
    adds_up = None
    if all(isinstance(results.get(k), int | float) for k in keys):
        g, f, fu, liq, net = (numbers.fmt_money(results[k]) for k in keys)
        adds_up = (
            f"gross − fees − funding − liquidation losses = net: {g} − {f} − {fu} − {liq} = "
            f"{net} USDT"
        )
    notes = [n for n in (results.get("fees_pct_note"), results.get("ratio_note")) if n]
    return {
        "basis": results.get("run_basis"),
        "without_basis": (results.get("without_fees") or {}).get("basis"),
        "adds_up": adds_up,
        "notes": notes,
    }


def metric_rows(results: Mapping[str, Any], fees_enabled: bool) -> list[dict[str, Any]]:
    without = (results.get("without_fees") or {}) if fees_enabled else {}
    return [
        {"label": label, "fmt": fmt, "value": results.get(key), "without": without.get(key)}
        for key, label, fmt in RESULT_FIELDS
        if key in results
    ]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def trade_row(trade: Mapping[str, Any], symbol: str) -> dict[str, Any]:
    """One stored trade (a ledger ``ClosedTrade`` dict, or an arena report row) for the table."""
    fees = _number(trade.get("entry_fee")) + _number(trade.get("exit_fee"))
    funding = trade.get("funding", trade.get("funding_usdt"))
    reason = str(trade.get("exit_reason") or "")
    return {
        "strategy": trade.get("strategy", ""),
        "symbol": trade.get("symbol") or symbol,
        "side": trade.get("side", ""),
        "qty": trade.get("qty"),
        "entry_time": fmt_minute(trade.get("entry_time_ms")),
        "exit_time": fmt_minute(trade.get("exit_time_ms")),
        "entry_price": trade.get("entry_price"),
        "exit_price": trade.get("exit_price"),
        "gross": trade.get("gross_pnl"),
        "fees": fees,
        "funding": funding,
        "net": trade.get("net_pnl"),
        "exit_reason": EXIT_REASONS.get(reason, reason.replace("_", " ") or "—"),
        "regime": trade.get("regime") or "",
    }


def breakdown(rows: Iterable[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """Trades, win rate (% of trades with net > 0), gross, fees and net (USDT) per ``key``
    value of the trade rows, the most trades first."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row[key] or "not recorded"
        group = groups.setdefault(
            name, {"name": name, "trades": 0, "wins": 0, "gross": 0.0, "fees": 0.0, "net": 0.0}
        )
        group["trades"] += 1
        group["wins"] += 1 if _number(row["net"]) > 0 else 0
        group["gross"] += _number(row["gross"])
        group["fees"] += _number(row["fees"])
        group["net"] += _number(row["net"])
    out = sorted(groups.values(), key=lambda g: (-g["trades"], g["name"]))
    for group in out:
        group["win_rate"] = group["wins"] / group["trades"] * 100
    return out


def regime_breakdown(rows: list[dict[str, Any]], results: Mapping[str, Any]) -> list[dict]:
    """By regime at entry: from the trades when they carry it; a run stored before trades did
    falls back to its summary's ``by_regime`` (trades, win rate, net: no gross or fees)."""
    if any(row["regime"] for row in rows) or not results.get("by_regime"):
        return breakdown(rows, "regime") if rows else []
    return [
        {"name": name, "trades": g.get("trades"), "win_rate": g.get("win_rate"), "gross": None,
         "fees": None, "net": g.get("net_pnl")}
        for name, g in sorted(results["by_regime"].items(), key=lambda kv: -kv[1]["trades"])
    ]  # fmt: skip
