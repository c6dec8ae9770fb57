"""Page presenters shared by HTTP views and the websocket: DOM ids, formatting, live fragments.

A live event's payload becomes the context of the SAME template partial the page renders over
HTTP (:data:`EVENT_FRAGMENTS`), marked ``hx-swap-oob`` (:func:`render_event`). Pure functions of
their payloads: they never query the database. Imported by every app's views and selectors and
by the wiring's websocket consumer (``scalpradar.consumers``); imports no app.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.template.loader import render_to_string


def dom_id(kind: str, key: object | None = None) -> str:
    """The DOM id of a live region, shared by templates (via selectors/views) and the consumer.

    ``dom_id("arena")`` -> ``"live-arena"``; ``dom_id("price", "BTC-USDT")`` ->
    ``"live-price-BTC-USDT"``; characters outside ``[A-Za-z0-9_-]`` in the key become ``-``.
    """
    if key is None:
        return f"live-{kind}"
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", str(key))
    return f"live-{kind}-{safe}"


# Region ids a page needs, by name: templates read ``{{ ids.arena }}``.
IDS = {
    "arena": dom_id("arena"),
    "session": dom_id("session"),
    "positions": dom_id("positions"),
    "signal_feed": dom_id("signal-feed"),
    "alert_feed": dom_id("alert-feed"),
    "positions_body": dom_id("positions-body"),
    "live_board": dom_id("trading"),
    "live_positions_body": dom_id("livepos-body"),
    "live_orders_body": dom_id("orders-body"),
}

# The terminal statuses of ``trading.core.execution.OrderStatus`` (common imports no app; a test
# holds the two equal): an order in one of them leaves the Live page's open orders.
ORDER_TERMINAL_STATUSES = frozenset({"filled", "cancelled", "rejected", "failed"})


def fmt_time_ms(time_ms: float | None) -> str:
    """UTC epoch ms -> ``2025-06-17 12:34:56`` (UTC), "" when unknown."""
    if time_ms is None:
        return ""
    return datetime.fromtimestamp(float(time_ms) / 1000.0, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def market_slug(symbol: str) -> str:
    """``BTC/USDT:USDT`` -> ``BTC-USDT`` (same rule as ``common.events.market_group``)."""
    return symbol.split(":")[0].replace("/", "-")


def signal_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """One signal as the feed and the heatmap render it, from a Signal row or a payload.

    Accepts the flat shape (selectors) and the runtime's ``{"strategy", "signal": {...}}``.
    """
    nested = data.get("signal")
    sig: Mapping[str, Any] = nested if isinstance(nested, Mapping) else data
    strategy = str(data.get("strategy") or sig.get("strategy") or "")
    symbol = str(data.get("symbol") or sig.get("symbol") or "")
    status = data.get("status")
    if status is None:
        accepted = data.get("accepted")
        status = "accepted" if accepted or accepted is None else "refused"
    score = float(sig.get("score") or 0.0)
    time_ms = data.get("candle_open_ms", data.get("candle_open_time_ms", data.get("time_ms")))
    reasons = sig.get("reasons") or []
    return {
        "dom_id": dom_id("signal", f"{strategy}-{symbol}-{time_ms}"),
        "heat_id": dom_id("heat", f"{strategy}-{market_slug(symbol)}"),
        "strategy": strategy,
        "symbol": symbol,
        "timeframe": data.get("timeframe") or sig.get("timeframe") or "",
        "side": str(sig.get("side") or ""),
        "score": score,
        "score_pct": round(score * 100),
        "reasons": [str(r) for r in reasons]
        if isinstance(reasons, list | tuple)
        else [str(reasons)],
        "status": str(status),
        "refusal_reason": str(data.get("refusal_reason") or data.get("reason") or ""),
        "shadow": bool(data.get("shadow") or False),
        "time_ms": time_ms,
        "time": fmt_time_ms(time_ms),
        "entry_price": sig.get("entry_price"),
        "stop_loss": sig.get("stop_loss"),
        "take_profit": sig.get("take_profit"),
    }


def position_key(strategy: str, ledger_id: str, shadow: bool) -> str:
    """DOM id of an open position row, from what both the DB row and the event know."""
    base = ledger_id.removesuffix(":shadow")
    return dom_id("pos", f"{strategy}-{base}{'-shadow' if shadow else ''}")


def alert_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """One alert as the feed renders it, from ``Alert.as_event()`` or a bare runtime payload.

    ``details`` is the alert's JSON payload as ``key=value`` pairs ("" when there is none).
    """
    time_ms = data.get("time_ms")
    if time_ms is None:
        time_ms = datetime.now(tz=UTC).timestamp() * 1000.0
    extra = data.get("payload")
    details = " · ".join(f"{k}={v}" for k, v in extra.items()) if isinstance(extra, Mapping) else ""
    # The market time the alert is about, when its payload says (a kill-switch trip's candle,
    # a control's stamp): in a replay it differs from the wall clock by months.
    market_ms = None
    if isinstance(extra, Mapping):
        market_ms = next(
            (extra[k] for k in ("market_time_ms", "time_ms", "candle_open_ms") if extra.get(k)),
            None,
        )
    return {
        "level": str(data.get("level") or "info"),
        "message": str(data.get("message") or ""),
        "source": str(data.get("source") or data.get("strategy") or ""),
        "time": fmt_time_ms(time_ms),
        "market_time": fmt_time_ms(market_ms) if isinstance(market_ms, int | float) else "",
        "details": details,
    }


def arena_live(data: Mapping[str, Any]) -> dict[str, Any]:
    """The live cells of one arena row (what the runtime's ``arena.update`` carries)."""
    strategy = str(data.get("strategy") or "")
    trades = int(data.get("trades") or 0)
    wins = int(data.get("wins") or 0)
    return {
        **data,
        "strategy": strategy,
        "live_id": dom_id("arena-live", strategy),
        "trades": trades,
        "wins": wins,
        "win_rate_pct": wins / trades * 100.0 if trades else None,
    }


def open_position_row(data: Mapping[str, Any]) -> dict[str, Any]:
    """An open position as the Positions page renders it, from a DB row dict or an event.

    Mark-dependent fields (mark, unrealised P&L, liquidation distance) are ``None`` until a
    mark is known: the page shows "—" rather than a made-up number.
    """
    nested = data.get("position")
    pos: Mapping[str, Any] = nested if isinstance(nested, Mapping) else data
    strategy = str(data.get("strategy") or pos.get("strategy_name") or "")
    shadow = bool(data.get("shadow") or pos.get("shadow") or False)
    ledger_id = str(pos.get("ledger_id") or pos.get("position_id") or "")
    return {
        **pos,
        "strategy": strategy,
        "shadow": shadow,
        "dom_id": position_key(strategy, ledger_id, shadow),
        "entry_time": fmt_time_ms(pos.get("entry_time_ms")),
    }


def live_position_row(data: Mapping[str, Any]) -> dict[str, Any]:
    """A live position as the Live page renders it, from ``position_event`` (the ``live.position``
    payload of ``trading.execution.store``), plus ``opened_ms`` when the page reads the row.

    ``closed``: the row leaves the open table. ``opened`` is "" when the payload has no
    ``opened_ms`` (the event does not carry it): the page shows "—", never a made-up time.
    """
    return {
        **data,
        "dom_id": dom_id("livepos", data.get("id")),
        "closed": data.get("status") == "closed",
        "opened": fmt_time_ms(data.get("opened_ms")),
    }


def live_order_row(data: Mapping[str, Any]) -> dict[str, Any]:
    """A live order as the Live page renders it, from ``order_event`` (the ``live.order``
    payload); ``terminal``: filled, cancelled, rejected or failed — it leaves the open table."""
    return {
        **data,
        "dom_id": dom_id("order", data.get("client_id")),
        "terminal": data.get("status") in ORDER_TERMINAL_STATUSES,
    }


def _progress(data: Mapping[str, Any]) -> dict[str, Any]:
    """A backtest's progress bar from ``backtest.progress`` / ``backtest.done`` payloads
    (``progress_pct`` 0..100 or ``progress`` 0..1; ``error`` means it failed)."""
    run_id = data.get("run_id") or data.get("id")
    if data.get("progress_pct") is not None:
        pct = float(data["progress_pct"])
    else:
        pct = float(data.get("progress") or 0.0) * 100.0
    error = str(data.get("error") or "")
    status = str(data.get("status") or ("failed" if error else "running"))
    if status == "done":
        pct = 100.0
    return {
        "progress_id": dom_id("backtest-progress", run_id),
        "run_id": run_id,
        "progress_pct": round(min(max(pct, 0.0), 100.0), 1),
        "status": status,
        "message": error,
    }


@dataclass(frozen=True, slots=True)
class Fragment:
    """One partial to render for an event.

    ``swap`` is the hx-swap-oob value: "true" (replace by id), "delete", or
    "afterbegin:#<id>" (prepend into a feed). ``build`` turns the payload into the partial's
    context (pure: no database).
    """

    template: str
    swap: str
    build: Callable[[Mapping[str, Any]], dict[str, Any]]


def _feed(region: str) -> str:
    return f"afterbegin:#{dom_id(region)}"


def _signal_cell(p: Mapping[str, Any]) -> dict[str, Any]:
    item = signal_item(p)
    return {"cell": {**item, "dom_id": item["heat_id"]}}


def _price(p: Mapping[str, Any]) -> dict[str, Any]:
    slug = market_slug(str(p.get("symbol", "")))
    return {"m": {**p, "price_id": dom_id("price", slug), "time": fmt_time_ms(p.get("time_ms"))}}


def _candle(p: Mapping[str, Any]) -> dict[str, Any]:
    """The newest closed candle, and every candle of its commit (a catch-up commits several
    at once and sends one event per symbol: the chart applies them all, in order)."""
    slug = market_slug(str(p.get("symbol", "")))
    candle = list(p.get("candle") or [])
    candles = [list(c) for c in p.get("candles") or [candle]]
    return {"candle_id": dom_id("candle", slug), "candle": candle, "candles": candles}


# event type -> partials it refreshes.
EVENT_FRAGMENTS: dict[str, tuple[Fragment, ...]] = {
    "arena.update": (
        Fragment("strategies/arena.html#arena_live", "true", lambda p: {"row": arena_live(p)}),
    ),
    "arena.ranking": (Fragment("strategies/arena.html#ranking", "true", dict),),
    "session.update": (Fragment("strategies/session.html#summary", "true", dict),),
    "signal.new": (
        Fragment(
            "strategies/signals.html#signal_item",
            _feed("signal-feed"),
            lambda p: {"s": signal_item(p)},
        ),
        Fragment("strategies/radar.html#heat_cell", "true", _signal_cell),
    ),
    "position.opened": (
        Fragment(
            "trading/positions.html#position_row",
            _feed("positions-body"),
            lambda p: {"p": open_position_row(p)},
        ),
    ),
    "position.closed": (
        Fragment(
            "trading/positions.html#position_gone",
            "delete",
            lambda p: {"p": open_position_row(p)},
        ),
    ),
    # A live row is upserted: the old one (if any) deleted, the new one prepended unless the
    # order is terminal or the position closed (its partial then renders nothing).
    "live.order": (
        Fragment("trading/live.html#order_gone", "delete", lambda p: {"o": live_order_row(p)}),
        Fragment(
            "trading/live.html#order_row", _feed("orders-body"), lambda p: {"o": live_order_row(p)}
        ),
    ),
    "live.position": (
        Fragment(
            "trading/live.html#live_position_gone",
            "delete",
            lambda p: {"p": live_position_row(p)},
        ),
        Fragment(
            "trading/live.html#live_position_row",
            _feed("livepos-body"),
            lambda p: {"p": live_position_row(p)},
        ),
    ),
    "alert.new": (
        Fragment(
            "trading/alerts.html#alert_item", _feed("alert-feed"), lambda p: {"a": alert_item(p)}
        ),
    ),
    "market.price": (Fragment("strategies/radar.html#price_cell", "true", _price),),
    "market.candle": (Fragment("strategies/chart.html#live_candle", "true", _candle),),
    "backtest.progress": (
        Fragment("backtests/run.html#progress", "true", lambda p: {"run": _progress(p)}),
    ),
    "backtest.done": (
        Fragment("backtests/run.html#progress", "true", lambda p: {"run": _progress(p)}),
    ),
}


def render_event(event: str, payload: Mapping[str, Any]) -> str:
    """HTML for one event: every fragment it maps to, each marked for an out-of-band swap."""
    parts = []
    for fragment in EVENT_FRAGMENTS.get(event, ()):
        context = {**fragment.build(payload), "ids": IDS, "oob": True, "oob_swap": fragment.swap}
        parts.append(render_to_string(fragment.template, context))
    return "".join(parts)
