"""Reads for the dashboard pages: radar, session, signals, chart (the Arena's are in
``strategies.arena_selectors``; :func:`arena_row` and :func:`arena_rows` are re-exported here).

Each function returns JSON-safe dicts shaped like the live payloads the consumer renders
(``common.presenters``), so a page and its websocket updates show the same partial.
Aggregations run in the database; per-trade series are loaded as bare value tuples.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC
from typing import Any

import numpy as np
from django.db.models import Max, Q

from common.presenters import dom_id, fmt_time_ms, market_slug, signal_item
from strategies.arena_selectors import (
    DAY_MS,
    fees_share_of_gross_pct,
    is_filter_kind,
    running_sessions,
    skipped_by_strategy,
)

# Re-exported: the radar's recorder, the controls' republish and tests read them from here.
from strategies.arena_selectors import arena_row as arena_row
from strategies.arena_selectors import arena_rows as arena_rows
from strategies.core.base import MarketSnapshot
from strategies.core.indicators import ema, vwap_session
from strategies.core.liquidation_zones import liquidation_zones
from strategies.core.params import LiquidationZonesParams
from strategies.core.regime import Regime, classify_regime
from strategies.models import ControlAction, Signal, StrategyConfig
from trading.core.candles import aggregate_candles, timeframe_ms
from trading.core.types import Side
from trading.live_selectors import live_results, live_results_total
from trading.models import (
    Asset,
    Candle,
    FundingRate,
    OpenInterest,
    Position,
    TradingSession,
)
from trading.selectors import open_pnl_by_session

log = logging.getLogger(__name__)
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
    the strategy cannot decide there now (``skipped``: a missing input, never a silent blank;
    it wins over an older signal). Confirmation filters score nothing: they are left out (the
    page shows them apart, ``strategies.arena_selectors.filter_cards``)."""
    strategies = [
        name
        for name, kind in StrategyConfig.objects.order_by("name").values_list("name", "kind")
        if not is_filter_kind(kind)
    ]
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
            reason = skipped.get((name, symbol), "")
            if cell is None or reason:
                cell = {
                    "dom_id": dom_id("heat", f"{name}-{market_slug(symbol)}"),
                    "score": None,
                    "skipped": reason,
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
        "fees_share_pct": fees_share_of_gross_pct(s.fees_usdt, s.realised_gross_pnl),
        "funding": s.funding_usdt,
        "funding_missing": 0,
        "net": s.realised_net_pnl,
        "open": None,
    }


def _with_fees_share(book: dict[str, Any]) -> dict[str, Any]:
    """A live book with its fees share on |gross|, as the paper books have it."""
    return {**book, "fees_share_pct": fees_share_of_gross_pct(book["fees"], book["gross"])}


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
    running = running_sessions()
    sessions = {name: s for name, s in sorted(running.items()) if name}
    open_pnl = open_pnl_by_session()
    since = {n: int(s.started_at.timestamp() * 1000) for n, s in sessions.items()}
    live = {n: _with_fees_share(book) for n, book in live_results(since).items()}
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
            "fees_share_pct": fees_share_of_gross_pct(total_fees, total_gross),
            "trades": total_trades,
            "win_rate_pct": total_wins / total_trades * 100 if total_trades else None,
            **_gauge(total_capital, total_equity, account_limit),
            "tripped": bool(account and account.kill_switch_tripped),
            "status": account.status if account else "",
        },
        "live_account": _with_fees_share(live_results_total(live.values())) if live else None,
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
