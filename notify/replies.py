"""The read side of the Telegram commands: the text of ``/status``, ``/positions`` and ``/pnl``.

Each reads what the dashboard reads, so the phone and the pages show the same numbers:
``/status`` the ``/health/`` report (:func:`radar.health.health_report`: feed, newest closed
candle per symbol, sessions, open position counts) plus the radar's own heartbeat row
(:class:`notify.models.RadarBeat`); ``/positions`` the Positions page's rows
(:func:`trading.selectors.open_positions`, unrealised P&L at the last 1m close) and the Live
page's (:func:`trading.live_selectors.open_live_positions`); ``/pnl`` the Session page's
summary (:func:`strategies.selectors.session_summary`: paper and live apart, never added).

Replies are plain text (no parse mode: a strategy name with ``_`` or ``*`` cannot break the
markup) and fit Telegram's limit of 4,096 characters (:func:`fit`). Money is USDT with two
decimals and a sign where it is a profit or loss; prices and quantities keep the exchange's
precision (up to eight significant digits).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from notify.config import get_notify_config
from notify.models import RadarBeat
from radar.health import health_report
from strategies.models import ControlAction, StrategyConfig
from strategies.selectors import session_summary
from trading import live_selectors
from trading.core.pnl import unrealised_pnl
from trading.core.types import Side
from trading.selectors import open_positions

TELEGRAM_MAX_CHARS = 4096  # Telegram's limit on a message's text (UTF-16 code units)
TRUNCATED_NOTE = "\n… (cut: the full list is on the dashboard)"
ACCOUNT = "account"  # how the account's session ("" in the database) is named on the phone


# --- formatting ----------------------------------------------------------------------------------


def usdt(value: float | None) -> str:
    """A profit or loss in USDT: ``+80.00``, ``-520.50``; "—" when unknown."""
    return "—" if value is None else f"{value:+,.2f}"


def amount(value: float | None) -> str:
    """An unsigned USDT amount (fees): ``40.00``."""
    return "—" if value is None else f"{value:,.2f}"


def num(value: float | None) -> str:
    """A price or quantity with up to eight significant digits: ``104,000.5``, ``0.001``."""
    return "—" if value is None else f"{value:,.8g}"


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f} %"


def count(n: int, thing: str) -> str:
    """``1 trade``, ``3 trades``."""
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def age(seconds: float | None) -> str:
    """A duration for a trader: ``42 s``, ``5 min``, ``3 h 02 min``, ``2 d 04 h``."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    minutes = s // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, mins = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {mins:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _utf16_len(text: str) -> int:
    """Telegram counts a text's length in UTF-16 code units (an emoji can count two)."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int = TELEGRAM_MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters (UTF-16 units, as Telegram counts) at a line end,
    with a note saying it was cut; unchanged when it fits."""
    if _utf16_len(text) <= limit:
        return text
    room = limit - _utf16_len(TRUNCATED_NOTE)
    cut = text
    while _utf16_len(cut) > room:
        cut = cut[: max(0, len(cut) - (_utf16_len(cut) - room))]
    line_end = cut.rfind("\n")
    if line_end > room // 2:  # cut at a line end unless that throws most of the text away
        cut = cut[:line_end]
    return cut + TRUNCATED_NOTE


def display_name(name: str) -> str:
    return name or ACCOUNT


# --- /status -------------------------------------------------------------------------------------


def _radar_line(now: datetime) -> str:
    """Whether the radar process beats: its newest heartbeat row, against the dead-man's
    ``silent_after_s`` (notify.yaml)."""
    beat = RadarBeat.objects.order_by("-beat_at").first()
    if beat is None:
        return "Radar: no heartbeat recorded yet"
    where = f"{beat.mode}, pid {beat.pid} on {beat.host}" if beat.mode else f"pid {beat.pid}"
    if beat.stopped_at is not None:
        return f"Radar: STOPPED at {utc(beat.stopped_at)} ({where})"
    silence_s = (now - beat.beat_at).total_seconds()
    up = age((now - beat.started_at).total_seconds())
    if silence_s > get_notify_config().deadman.silent_after_s:
        return (
            f"Radar: SILENT for {age(silence_s)} — down? (last beat {utc(beat.beat_at)}, {where})"
        )
    return f"Radar: alive, last beat {age(silence_s)} ago ({where}, up {up})"


def _feed_line(feed: dict[str, Any]) -> str:
    state = feed.get("state")
    if state == "elsewhere":
        return "Feed: running in another process (its lock is held)"
    if state == "absent":
        return "Feed: not in this process, and no feed lock held elsewhere"
    return f"Feed: {state} ({feed.get('source')}, writer {feed.get('writer', 'ok')})"


def _pending_flattens() -> list[str]:
    rows = ControlAction.objects.filter(
        action=ControlAction.Action.FLATTEN, done_at__isnull=True
    ).select_related("user")
    return [
        f"{display_name(a.strategy_name)} (asked {utc(a.created_at)} by {a.user or a.actor})"
        for a in rows.order_by("created_at")
    ]


def status_text(now_ms: int | None = None) -> str:
    """``/status``: is the radar alive, is the feed flowing, how old is each symbol's newest
    closed 1m candle, each strategy's status and kill switch, open positions and orders."""
    now = timezone.now() if now_ms is None else datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    report, degraded = health_report(staff=True)
    detail = report.get("detail", {})
    lines = [
        f"Scalp Radar — {utc(now)}",
        ("DEGRADED: " + "; ".join(report["problems"])) if degraded else "Health: ok",
        _radar_line(now),
        _feed_line(report["feed"]),
    ]
    if report["warnings"]:
        lines.append("Warnings: " + "; ".join(report["warnings"]))
    lines.append("Newest closed 1m candle:")
    for symbol, candle in report["candles"].items():
        seen = "none stored" if candle["age_s"] is None else f"{age(candle['age_s'])} ago"
        lines.append(f"  {symbol}: {seen}")
    configs = {c.name: c for c in StrategyConfig.objects.order_by("name")}
    sessions = {s["name"]: s for s in report["strategies"]}
    reasons = detail.get("kill_switch_reasons", {})
    lines.append("Strategies:")
    for name in sorted(set(configs) | {n for n in sessions if n}):
        config, session = configs.get(name), sessions.get(name)
        state = session["status"] if session else "no running session"
        flags = []
        if config is not None and not config.enabled:
            flags.append("disabled")
        if config is not None and config.live:
            flags.append("LIVE")
        if session and session["kill_switch_tripped"]:
            flags.append(f"KILL SWITCH tripped ({reasons.get(name, '')})")
        lines.append(f"  {name}: {', '.join([state, *flags])}")
    account = sessions.get("")
    if account is not None:
        tripped = (
            f"KILL SWITCH tripped ({reasons.get('', '')})"
            if account["kill_switch_tripped"]
            else "kill switch ok"
        )
        lines.append(f"Account: {account['status']}, {tripped}")
    tripped_names = [
        display_name(s["name"]) for s in report["strategies"] if s["kill_switch_tripped"]
    ]
    lines.append("Kill switches tripped: " + (", ".join(tripped_names) or "none"))
    counts = report["open_positions"] or {"paper": 0, "shadow": 0}
    live = live_selectors.open_live_positions()
    orders = live_selectors.open_orders()
    lines.append(
        f"Open positions: {counts['paper']} paper (+{counts['shadow']} shadow), "
        f"{len(live)} live; {len(orders)} live orders open"
    )
    flattens = _pending_flattens()
    if flattens:
        lines.append("Flatten requested, not yet done: " + "; ".join(flattens))
    return "\n".join(lines)


# --- /positions ----------------------------------------------------------------------------------


def _paper_line(p: dict[str, Any]) -> str:
    upnl = (
        f"uPnL net {usdt(p['upnl_net'])} (mark {num(p['mark_price'])})"
        if p.get("mark_price") is not None
        else "uPnL — (no mark yet)"
    )
    shadow = " [shadow]" if p["shadow"] else ""
    return (
        f"  {p['strategy']}{shadow} {p['side']} {num(p['qty'])} {p['symbol']} "
        f"@ {num(p['entry_price'])} · stop {num(p['stop_loss'])} · {upnl} · {p['time_in_trade']}"
    )


def _live_line(p: dict[str, Any]) -> str:
    mark = p.get("mark_price")
    upnl = (
        f"uPnL gross {usdt(unrealised_pnl(Side(p['side']), p['qty'], p['entry_price'], mark))} "
        f"(mark {num(mark)})"
        if mark is not None
        else "uPnL — (no mark yet)"
    )
    protection = "protected" if p["protected"] else "NOT PROTECTED"
    return (
        f"  {p['strategy']} {p['side']} {num(p['qty'])} {p['symbol']} @ {num(p['entry_price'])}"
        f" · stop {num(p['stop_loss'])} ({protection}) · {upnl}"
    )


def positions_text(now_ms: int | None = None) -> str:
    """``/positions``: open paper positions (the arena's, shadow ones marked) and open live
    positions: strategy, side, quantity, symbol, entry, stop, unrealised P&L (USDT) at the
    newest mark — paper: net of fees and funding at the last 1m close (the Positions page's
    figure); live: gross at the exchange's mark price."""
    paper = open_positions(now_ms)
    live = live_selectors.open_live_positions()
    orders = live_selectors.open_orders()
    if not paper and not live and not orders:
        return "No open position, paper or live."
    lines = [f"Paper positions ({len(paper)}):" if paper else "Paper positions: none"]
    lines += [_paper_line(p) for p in paper]
    lines.append(f"Live positions ({len(live)}):" if live else "Live positions: none")
    lines += [_live_line(p) for p in live]
    if orders:
        lines.append(f"Live orders open: {len(orders)}")
    flattens = _pending_flattens()
    if flattens:
        lines.append("Flatten requested, not yet done: " + "; ".join(flattens))
    return "\n".join(lines)


# --- /pnl ----------------------------------------------------------------------------------------


def _results_line(label: str, r: dict[str, Any]) -> str:
    """One book's realised results (``_paper_results`` / ``live_results`` keys, USDT)."""
    parts = [
        f"gross {usdt(r['gross'])}",
        f"fees {amount(r['fees'])}"
        + (f" ({pct(r['fees_share_pct'])} of |gross|)" if r["fees_share_pct"] is not None else ""),
    ]
    if r["funding"]:
        parts.append(f"funding {amount(r['funding'])}")
    parts.append(f"net {usdt(r['net'])}")
    trades = f"{count(r['trades'], 'trade')}, {count(r['wins'], 'win')}"
    if r["win_rate_pct"] is not None:
        trades += f" ({pct(r['win_rate_pct'], 0)})"
    parts.append(trades)
    if r.get("unbooked"):
        parts.append(f"{r['unbooked']} closed without P&L yet")
    if r.get("funding_missing"):
        parts.append(f"{r['funding_missing']} before funding")
    if r.get("open") is not None:
        parts.append(f"{r['open']} open")
    return f"  {label}: " + " · ".join(parts)


def pnl_text() -> str:
    """``/pnl``: per strategy, the paper and the live results of its running session (gross,
    fees and their share of gross, net, trades, wins), its open P&L and kill-switch gauge;
    then the paper total and the live total, apart."""
    summary = session_summary()
    if not summary["has_sessions"]:
        return "No running session: start the radar."
    lines = ["P&L of the running sessions (USDT; paper = the arena's virtual ledgers)"]
    for g in summary["gauges"]:
        lines.append(f"{g['strategy']} [{g['status']}] since {g['since']} UTC")
        lines.append(_results_line("paper", g["paper"]))
        if g["live"]:
            lines.append(_results_line("live", g["live"]))
        lines.append(
            f"  open {usdt(g['unrealised'])} · session loss {pct(g['loss_pct'], 2)} of "
            f"{pct(g['limit_pct'], 0)}" + (" · KILL SWITCH tripped" if g["tripped"] else "")
        )
    a = summary["account"]
    trades = count(a["trades"], "trade") + (
        f", win rate {pct(a['win_rate_pct'], 0)}" if a["win_rate_pct"] is not None else ""
    )
    fees_share = (
        f" ({pct(a['fees_share_pct'])} of |gross|)" if a["fees_share_pct"] is not None else ""
    )
    lines.append(
        f"Paper total: gross {usdt(a['gross'])} · fees {amount(a['fees'])}{fees_share} · "
        f"net {usdt(a['net'])} · open {usdt(a['unrealised'])} · {trades}"
    )
    live = summary["live_account"]
    lines.append(_results_line("Live total", live).strip() if live else "Live total: no live trade")
    return "\n".join(lines)
