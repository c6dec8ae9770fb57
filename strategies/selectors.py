"""Reads for the dashboard pages: radar, arena, session, signals, chart.

Each function returns JSON-safe dicts shaped like the live payloads the consumer renders
(``common.presenters``), so a page and its websocket updates show the same partial.
Aggregations run in the database; per-trade series are loaded as bare value tuples.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from datetime import UTC
from typing import Any

import numpy as np
from django.db.models import Max, OuterRef, Q, Subquery, Sum

from common.presenters import arena_live, dom_id, fmt_time_ms, market_slug, signal_item
from strategies.core.base import MarketSnapshot
from strategies.core.indicators import ema, vwap_session
from strategies.core.liquidation_zones import liquidation_zones
from strategies.core.params import LiquidationZonesParams
from strategies.core.regime import Regime, classify_regime
from strategies.models import ControlAction, SelectorDecision, Signal, StrategyConfig
from trading.core.candles import aggregate_candles, timeframe_ms
from trading.core.types import Side
from trading.live_selectors import live_results, live_results_total
from trading.models import (
    Alert,
    Asset,
    Candle,
    FundingRate,
    OpenInterest,
    Position,
    TradingSession,
)
from trading.selectors import open_pnl_by_session

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
ZONES_SHOWN = 4
CHART_TIMEFRAMES = ("1m", "5m", "15m", "1h")
REGIME_LABELS = {
    Regime.UNKNOWN: "unknown",
    Regime.RANGING: "ranging",
    Regime.TRENDING_UP: "trending up",
    Regime.TRENDING_DOWN: "trending down",
}


def kill_switch_limits() -> tuple[float, float]:
    """``(per-strategy, account)`` session loss limits in percent, from risk.yaml."""
    try:
        from strategies.config import get_config

        ks = get_config().risk.kill_switch
    except Exception:  # a broken config must not take the dashboard down: show the defaults
        log.exception("risk.yaml could not be read; kill-switch gauges use 5 %")
        return 5.0, 5.0
    return ks.max_session_loss_pct, ks.account_max_session_loss_pct


def _candles(
    exchange: str | None, symbol: str, timeframe: str, since_ms: int | None, limit: int
) -> np.ndarray:
    """Last ``limit`` closed 1m candles (or stored ``timeframe`` candles) as an (N, 6) array.

    With ``exchange`` the query walks the candle natural-key index (exchange first); without
    it (a symbol no asset names) it scans.
    """
    qs = Candle.objects.filter(symbol=symbol, timeframe=timeframe)
    if exchange is not None:
        qs = qs.filter(exchange=exchange)
    if since_ms is not None:
        qs = qs.filter(open_time_ms__gte=since_ms)
    return np.ascontiguousarray(qs.order_by("-open_time_ms").as_array(limit)[::-1])


# --- radar ---------------------------------------------------------------------------------------


def _zone_params() -> dict[str, LiquidationZonesParams]:
    """Zone parameters per symbol: the configured ``liquidation_zones`` strategy's (symbol
    overrides applied), or the schema defaults (key ``""``) when none is configured."""
    config = (
        StrategyConfig.objects.filter(kind="liquidation_zones").order_by("-enabled", "name").first()
    )
    out = {"": LiquidationZonesParams.model_validate({})}
    if config is not None:
        symbols = Asset.objects.filter(enabled=True).values_list("symbol", flat=True)
        out.update(
            {s: LiquidationZonesParams.model_validate(config.params_for(s)) for s in symbols}
        )
    return out


def zone_map(
    asset: Asset, candles_1m: np.ndarray, params: LiquidationZonesParams
) -> dict[str, Any]:
    """The estimated liquidation zones of one asset, for the Radar's markets table.

    Computed like the ``liquidation_zones`` strategy does (``strategies.core.liquidation_zones``):
    stored open interest of the last ``oi_lookback_hours`` + the stored 1m candles aggregated to
    the strategy's timeframe, at the close of the newest stored 1m candle. Returns
    ``{"status": "no_oi" | "no_candles" | "none" | "ok", "zones": [...]}``; each zone carries
    its side (whose positions get liquidated), band, share of that side's map (%) and distance
    from the last close (%, positive = above).
    """
    has_oi = OpenInterest.objects.filter(exchange=asset.exchange, symbol=asset.symbol).exists()
    if not has_oi:
        return {"status": "no_oi", "zones": []}
    if not len(candles_1m):
        return {"status": "no_candles", "zones": []}
    now_ms = int(candles_1m[-1, 0]) + 60_000
    oi = np.asarray(
        OpenInterest.objects.filter(
            exchange=asset.exchange,
            symbol=asset.symbol,
            time_ms__gte=now_ms - params.oi_lookback_hours * HOUR_MS,
            time_ms__lte=now_ms,
        )
        .order_by("time_ms")
        .values_list("time_ms", "open_interest"),
        dtype=np.float64,
    ).reshape(-1, 2)
    bars = aggregate_candles(candles_1m, params.timeframe)
    market = MarketSnapshot(
        symbol=asset.symbol, now_ms=now_ms, candles={params.timeframe: bars}, open_interest=oi
    )
    zones = liquidation_zones(market, bars, params) if len(bars) else []
    if not zones:
        return {"status": "none", "zones": []}
    close = float(candles_1m[-1, 4])
    shown = []
    for zone in zones[:ZONES_SHOWN]:
        edge = zone.high if zone.liquidated_side is Side.LONG else zone.low
        shown.append(
            {
                "side": zone.liquidated_side.value,
                "low": zone.low,
                "high": zone.high,
                "share_pct": zone.share * 100.0,
                "distance_pct": (edge - close) / close * 100.0,
            }
        )
    return {"status": "ok", "zones": shown}


def market_rows() -> list[dict[str, Any]]:
    """Per asset: live price, 24h change, regime (5m), last funding rate, 24h OI change, and the
    estimated liquidation zones (:func:`zone_map`)."""
    rows = []
    zone_params = _zone_params()
    for asset in Asset.objects.filter(enabled=True):
        slug = market_slug(asset.symbol)
        params = zone_params.get(asset.symbol, zone_params[""])
        minutes = max(1441, int(params.oi_lookback_hours * 60) + 1)
        candles = _candles(asset.exchange, asset.symbol, "1m", None, minutes)
        price = change = None
        time_ms = None
        regime = "no data"
        if len(candles):
            price = float(candles[-1, 4])
            time_ms = int(candles[-1, 0])
            day_ago = candles[candles[:, 0] <= candles[-1, 0] - DAY_MS + 60_000]
            base = float(day_ago[-1, 4]) if len(day_ago) else float(candles[0, 1])
            change = (price - base) / base * 100.0
            bars = aggregate_candles(candles, "5m")
            if len(bars) > 40:
                regime = REGIME_LABELS[Regime(int(classify_regime(bars).regime[-1]))]
            else:
                regime = "warming up"
        funding = (
            FundingRate.objects.filter(exchange=asset.exchange, symbol=asset.symbol)
            .order_by("-funding_time_ms")
            .values_list("rate", flat=True)
            .first()
        )
        oi = list(
            OpenInterest.objects.filter(exchange=asset.exchange, symbol=asset.symbol)
            .order_by("-time_ms")
            .values_list("time_ms", "open_interest")[:1]
        )
        oi_change = None
        if oi:
            then = (
                OpenInterest.objects.filter(
                    exchange=asset.exchange, symbol=asset.symbol, time_ms__lte=oi[0][0] - DAY_MS
                )
                .order_by("-time_ms")
                .values_list("open_interest", flat=True)
                .first()
            )
            if then:
                oi_change = (oi[0][1] - then) / then * 100.0
        rows.append(
            {
                "row_id": dom_id("market", slug),
                "price_id": dom_id("price", slug),
                "candle_id": dom_id("candle", slug),
                "symbol": asset.symbol,
                "slug": slug,
                "price": price,
                "time": fmt_time_ms(time_ms),
                "change_24h_pct": change,
                "regime": regime,
                "funding_rate_pct": funding * 100.0 if funding is not None else None,
                "oi_change_24h_pct": oi_change,
                "liquidation": zone_map(asset, candles, params),
            }
        )
    return rows


def heatmap() -> dict[str, Any]:
    """Assets × strategies: score and verdict of each strategy's latest signal per asset, or why
    the strategy does not decide there (``skipped``: a missing input, never a silent blank)."""
    strategies = list(StrategyConfig.objects.order_by("name").values_list("name", flat=True))
    symbols = list(Asset.objects.filter(enabled=True).values_list("symbol", flat=True))
    latest = (
        Signal.objects.values("strategy_id", "symbol")
        .annotate(last=Max("candle_open_time_ms"))
        .values_list("strategy_id", "symbol", "last")
    )
    cond = Q(pk__in=[])
    for strategy_id, symbol, last in latest:
        cond |= Q(strategy_id=strategy_id, symbol=symbol, candle_open_time_ms=last)
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for sig in Signal.objects.filter(cond).select_related("strategy"):
        item = signal_item(_signal_dict(sig))
        cells[(item["strategy"], sig.symbol)] = item
    skipped = {
        (name, item["symbol"]): item["reason"]
        for name, items in skipped_by_strategy().items()
        for item in items
    }
    grid = []
    for name in strategies:
        row = []
        for symbol in symbols:
            cell = cells.get((name, symbol))
            if cell is None:
                cell = {
                    "dom_id": dom_id("heat", f"{name}-{market_slug(symbol)}"),
                    "score": None,
                    "skipped": skipped.get((name, symbol), ""),
                }
            else:
                cell = {**cell, "dom_id": cell["heat_id"]}
            row.append(cell)
        grid.append({"strategy": name, "cells": row})
    return {"symbols": [market_slug(s) for s in symbols], "rows": grid}


# --- signals -------------------------------------------------------------------------------------


def _signal_dict(sig: Signal) -> dict[str, Any]:
    return {
        "strategy": sig.strategy.name,
        "symbol": sig.symbol,
        "timeframe": sig.timeframe,
        "candle_open_time_ms": sig.candle_open_time_ms,
        "side": sig.side,
        "score": sig.score,
        "reasons": sig.reasons,
        "status": sig.status,
        "refusal_reason": sig.refusal_reason,
        "shadow": sig.shadow,
        "entry_price": sig.entry_price,
        "stop_loss": sig.stop_loss,
        "take_profit": sig.take_profit,
    }


def recent_signals(*, strategy: str = "", symbol: str = "", limit: int = 100) -> list[dict]:
    qs = Signal.objects.select_related("strategy").order_by("-candle_open_time_ms", "-id")
    if strategy:
        qs = qs.filter(strategy__name=strategy)
    if symbol:
        qs = qs.filter(symbol=symbol)
    return [signal_item(_signal_dict(sig)) for sig in qs[:limit]]


# --- arena ---------------------------------------------------------------------------------------


def _running_sessions() -> dict[str, TradingSession]:
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
    positions' entry fees included); fees share = fees / realised gross × 100 when gross > 0.
    Without a session (``name``, ``status``): the strategy's capital, nothing traded.
    """
    if session is None:
        return arena_live(
            {
                "strategy": name,
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
            "status": session.status,
            "equity_usdt": session.equity_usdt,
            "net_return_pct": (session.equity_usdt - capital) / capital * 100.0,
            "realised_gross_pnl": gross,
            "realised_net_pnl": session.realised_net_pnl,
            "fees_usdt": session.fees_usdt,
            "fees_share_of_gross_pct": session.fees_usdt / gross * 100.0 if gross > 0 else None,
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
    ``arena.update`` needs no extra read — every live control republishes the ranking."""
    sessions = _running_sessions()
    configs = {c.name: c for c in StrategyConfig.objects.all()}
    names = sorted(set(configs) | {n for n in sessions if n})
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


def skipped_by_strategy(limit: int = 200) -> dict[str, list[dict[str, str]]]:
    """Why each strategy did not decide, newest first, one line per symbol: the stored
    skip alerts (``StrategySkippedEvent``: a missing input, a strategy that cannot decide).
    A strategy that decided since on that symbol no longer shows it."""
    out: dict[str, list[dict[str, str]]] = {}
    seen: set[tuple[str, str]] = set()
    latest_signal = {
        (row["strategy__name"], row["symbol"]): row["last"]
        for row in Signal.objects.values("strategy__name", "symbol").annotate(
            last=Max("created_at")
        )
    }
    for alert in Alert.objects.filter(payload__skipped=True).order_by("-created_at")[:limit]:
        symbol = str(alert.payload.get("symbol", ""))
        key = (alert.source, symbol)
        if key in seen:
            continue
        seen.add(key)
        decided = latest_signal.get(key)
        if decided is not None and decided > alert.created_at:
            continue
        reason = alert.message.split(" skipped: ", 1)[-1]
        out.setdefault(alert.source, []).append({"symbol": symbol, "reason": reason})
    return out


# --- session -------------------------------------------------------------------------------------


def _gauge(start_equity: float, equity: float, limit_pct: float) -> dict[str, float]:
    """Session loss % = max(0, start equity − current equity) / start equity × 100, against the
    kill-switch limit. Start 10,000, equity 9,700 (realised −200, open −100) → 3.00 % of 5 %:
    the gauge is 60 % full."""
    loss_pct = max(0.0, start_equity - equity) / start_equity * 100.0 if start_equity else 0.0
    return {
        "equity": equity,
        "loss_pct": loss_pct,
        "limit_pct": limit_pct,
        "fill_pct": min(100.0, loss_pct / limit_pct * 100.0) if limit_pct else 0.0,
    }


def _paper_results(s: TradingSession) -> dict[str, Any]:
    """A paper session's realised results, in the keys of
    ``trading.live_selectors.live_results`` so one row template shows both books. The paper
    ledger books every close and its funding (USDT, > 0 = paid), so nothing is unbooked or
    missing."""
    return {
        "trades": s.trades_count,
        "booked": s.trades_count,
        "unbooked": 0,
        "wins": s.wins_count,
        "win_rate_pct": s.wins_count / s.trades_count * 100 if s.trades_count else None,
        "gross": s.realised_gross_pnl,
        "fees": s.fees_usdt,
        "fees_share_pct": s.fees_usdt / s.realised_gross_pnl * 100
        if s.realised_gross_pnl > 0
        else None,
        "funding": s.funding_usdt,
        "funding_missing": 0,
        "net": s.realised_net_pnl,
        "open": None,
    }


def session_summary() -> dict[str, Any]:
    """Session P&L, trades, win rate, and kill-switch gauges on equity including open positions;
    beside each strategy's paper results, its live ones when it has live positions.

    Current equity = initial capital + realised net P&L + unrealised net P&L of the session's
    open positions at the last stored 1m close (``trading.selectors.open_pnl_by_session``), so a
    losing open trade fills the gauge before it is closed. The account gauge sums the
    strategies' capital and equity. Paper: the arena's virtual ledgers. Live
    (``trading.live_selectors.live_results``): the real positions closed since the strategy's
    paper session started, and those open now. The two are totalled apart (``account`` and
    ``live_account``), never added together.
    """
    limit, account_limit = kill_switch_limits()
    running = _running_sessions()
    sessions = {name: s for name, s in sorted(running.items()) if name}
    open_pnl = open_pnl_by_session()
    live = live_results({n: int(s.started_at.timestamp() * 1000) for n, s in sessions.items()})
    gauges = []
    total_capital = total_equity = total_open = 0.0
    total_gross = total_net = total_fees = 0.0
    total_trades = total_wins = 0
    for name, s in sessions.items():
        unrealised = open_pnl.get(s.pk, 0.0)
        equity = s.initial_capital_usdt + s.realised_net_pnl + unrealised
        gauges.append(
            {
                "strategy": name,
                "status": s.status,
                **_gauge(s.initial_capital_usdt, equity, limit),
                "tripped": s.kill_switch_tripped,
                "reason": s.kill_switch_reason,
                "tripped_at": s.kill_switch_tripped_at.isoformat(timespec="seconds")
                if s.kill_switch_tripped_at
                else "",
                "unrealised": unrealised,
                "since": s.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                "paper": _paper_results(s),
                "live": live.get(name),
            }
        )
        total_capital += s.initial_capital_usdt
        total_equity += equity
        total_open += unrealised
        total_gross += s.realised_gross_pnl
        total_net += s.realised_net_pnl
        total_fees += s.fees_usdt
        total_trades += s.trades_count
        total_wins += s.wins_count
    account = running.get("")
    return {
        "has_sessions": bool(gauges),
        "gauges": gauges,
        "account": {
            "gross": total_gross,
            "net": total_net,
            "unrealised": total_open,
            "fees": total_fees,
            "fees_share_pct": total_fees / total_gross * 100 if total_gross > 0 else None,
            "trades": total_trades,
            "win_rate_pct": total_wins / total_trades * 100 if total_trades else None,
            **_gauge(total_capital, total_equity, account_limit),
            "tripped": bool(account and account.kill_switch_tripped),
            "status": account.status if account else "",
        },
        "live_account": live_results_total(live.values()) if live else None,
    }


def recent_control_actions(limit: int = 20) -> list[ControlAction]:
    return list(ControlAction.objects.select_related("user")[:limit])


# --- chart ---------------------------------------------------------------------------------------


def chart_data(symbol: str, timeframe: str, bars: int = 500) -> dict[str, Any]:
    """Candles (stored, or aggregated on the fly from 1m), EMA 20/50, session VWAP, and markers
    for signals and trades in the window. Times in SECONDS for lightweight-charts."""
    exchange = Asset.objects.filter(symbol=symbol).values_list("exchange", flat=True).first()
    stored = (
        _candles(exchange, symbol, timeframe, None, bars) if timeframe != "1m" else np.empty((0, 6))
    )
    if timeframe == "1m":
        candles = _candles(exchange, symbol, "1m", None, bars)
    elif len(stored):
        candles = stored
    else:
        per = timeframe_ms(timeframe) // 60_000
        candles = aggregate_candles(
            _candles(exchange, symbol, "1m", None, bars * per + per), timeframe
        )
        candles = candles[-bars:]
    if not len(candles):
        return {"candles": [], "ema20": [], "ema50": [], "vwap": [], "markers": []}
    t = (candles[:, 0] // 1000).astype(np.int64).tolist()

    def line(values: np.ndarray) -> list[dict[str, float]]:
        return [
            {"time": ts, "value": round(float(v), 8)}
            for ts, v in zip(t, values.tolist(), strict=True)
            if not math.isnan(v)
        ]

    close = candles[:, 4]
    start_ms, end_ms = int(candles[0, 0]), int(candles[-1, 0]) + timeframe_ms(timeframe)
    step = timeframe_ms(timeframe)
    markers = []
    for side, status, time_ms, strat, score in (
        Signal.objects.filter(
            symbol=symbol, candle_open_time_ms__gte=start_ms, candle_open_time_ms__lt=end_ms
        )
        .order_by("candle_open_time_ms")
        .values_list("side", "status", "candle_open_time_ms", "strategy__name", "score")[:300]
    ):
        markers.append(
            {
                "time": int(time_ms - time_ms % step) // 1000,
                "position": "belowBar" if side == "long" else "aboveBar",
                "color": "#4c9aff" if status == "accepted" else "#8b95a3",
                "shape": "circle",
                "text": f"{strat} {score:.2f}",
            }
        )
    for side, entry_ms, exit_ms, net in (
        Position.objects.filter(
            symbol=symbol, entry_time_ms__gte=start_ms, entry_time_ms__lt=end_ms
        )
        .order_by("entry_time_ms")
        .values_list("side", "entry_time_ms", "exit_time_ms", "net_pnl")[:300]
    ):
        markers.append(
            {
                "time": int(entry_ms - entry_ms % step) // 1000,
                "position": "belowBar" if side == "long" else "aboveBar",
                "color": "#2ebd85" if side == "long" else "#f0616d",
                "shape": "arrowUp" if side == "long" else "arrowDown",
                "text": side,
            }
        )
        if exit_ms is not None and exit_ms < end_ms:
            markers.append(
                {
                    "time": int(exit_ms - exit_ms % step) // 1000,
                    "position": "aboveBar" if side == "long" else "belowBar",
                    "color": "#d7dde5",
                    "shape": "square",
                    "text": f"exit {net:+.2f}" if net is not None else "exit",
                }
            )
    markers.sort(key=lambda m: m["time"])
    return {
        "candles": [
            {"time": ts, "open": o, "high": h, "low": lo, "close": c}
            for ts, o, h, lo, c in zip(
                t, *(candles[:, i].tolist() for i in (1, 2, 3, 4)), strict=True
            )
        ],
        "ema20": line(ema(close, 20)),
        "ema50": line(ema(close, 50)),
        "vwap": line(
            vwap_session(candles[:, 0], candles[:, 2], candles[:, 3], close, candles[:, 5])
        ),
        "markers": markers,
    }
