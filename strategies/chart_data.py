"""What the Chart page draws: candles, volume, the studies of the strategy in view, markers with
their tooltips, price lines of open positions and the next funding settlement.

Built here, read by ``strategies.views.chart`` (the page's JSON island) and
``strategies.views.chart_json`` (the tail the page refetches on every ``market.candle`` push, so
the studies never lag the candles). Times go out in SECONDS (lightweight-charts), prices as
plain floats (the page formats them on the instrument's tick).

Candles of 5m/15m/1h are aggregated from the stored 1m candles (``trading.core.candles``: the
same buckets the strategies see), plus the still-forming bucket built from the 1m candles
closed so far, as the live chart shows it; stored candles of the timeframe are the fallback
when no 1m candle is stored. The studies use the strategy's own indicator code
(``strategies.core.indicators``) with its parameters on the symbol (``params_for``), on the
same window the page shows: the tail endpoint recomputes from the page's first candle, so a
refetched value is the page's value.

A backtest run's chart (``?run=<id>``) needs the run, which lives in ``backtests`` (above this
app in the stack): ``backtests`` registers a loader with :func:`register_run_source` at start-up
and this module asks it for a :class:`RunWindow`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import numpy as np

from common.presenters import fmt_time_ms
from strategies.core.base import StrategyError
from strategies.core.indicators import adx, ema, rsi, vwap_rolling, vwap_session
from strategies.core.regime import RegimeThresholds
from strategies.models import Signal, StrategyConfig
from trading.core.candles import aggregate_candles, timeframe_ms
from trading.core.numbers import fmt_money, fmt_price
from trading.instruments import steps_for
from trading.models import Asset, Candle, FundingRate, Position

CHART_TIMEFRAMES = ("1m", "5m", "15m", "1h")
DEFAULT_TIMEFRAME = "5m"
BARS = 500  # candles on a live chart
RUN_MAX_BARS = 3000  # candles on a backtest run's chart (its whole period, coarser if longer)
TAIL_MIN_BARS = 3  # a tail answer always carries the last few candles (a bucket may reopen)
MAX_MARKERS = 400  # per kind (signals, trades) on one chart
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
FUNDING_INTERVAL_H = 8  # Bitget USDT-M: settlements at 00:00, 08:00 and 16:00 UTC
UP, DOWN, MUTED = "#2ebd85", "#f0616d", "#8b95a3"


# --- what is shown -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Studies:
    """Periods of the overlays and oscillators, and where each comes from (``source``: the
    strategy's name, or "default" when the strategy has no such parameter)."""

    ema_fast: int = 20
    ema_slow: int = 50
    vwap_window: int = 0  # 0 = VWAP of the UTC day, else rolling over that many candles
    rsi_period: int = 14
    adx_period: int = RegimeThresholds().adx_period
    rsi_levels: tuple[float, float] = (30.0, 70.0)  # guide lines: oversold, overbought
    adx_level: float = RegimeThresholds().adx_trend  # guide line: trending above
    sources: Mapping[str, str] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        def of(key: str, text: str) -> str:
            source = self.sources.get(key, "default")
            return f"{text} ({source})"

        vwap = "VWAP (UTC day)" if not self.vwap_window else f"VWAP {self.vwap_window}"
        return {
            "ema_fast": of("ema_fast", f"EMA {self.ema_fast}"),
            "ema_slow": of("ema_slow", f"EMA {self.ema_slow}"),
            "vwap": of("vwap", vwap),
            "rsi": of("rsi", f"RSI {self.rsi_period}"),
            "adx": of("adx", f"ADX {self.adx_period}"),
        }


def studies_for(config: StrategyConfig | None, symbol: str) -> Studies:
    """The periods the strategy in view runs with on ``symbol`` (its symbol override applied);
    a study the strategy has no parameter for keeps the chart's default and says so."""
    if config is None:
        return Studies()
    try:
        params = config.params_for(symbol)
    except StrategyError:  # an unknown kind (an arena run) or params a schema no longer takes
        return Studies()
    picked: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, name in (
        ("rsi_period", "rsi"),
        ("adx_period", "adx"),
        ("vwap_window", "vwap"),
        ("fast_ema", "ema_fast"),
        ("slow_ema", "ema_slow"),
    ):
        if key in params:
            picked[{"fast_ema": "ema_fast", "slow_ema": "ema_slow"}.get(key, key)] = int(
                params[key]
            )
            sources[name] = config.name
    if "rsi_long_below" in params and "rsi_short_above" in params:
        picked["rsi_levels"] = (float(params["rsi_long_below"]), float(params["rsi_short_above"]))
    if "adx_range_max" in params:
        picked["adx_level"] = float(params["adx_range_max"])
    return Studies(**picked, sources=sources)


@dataclass(frozen=True, slots=True)
class RunWindow:
    """A backtest run as its chart needs it (plain values: ``backtests`` builds it)."""

    run_id: int
    strategy_name: str
    strategy_kind: str
    symbol: str
    start_ms: int | None
    end_ms: int | None
    params: Mapping[str, Any]
    trades: Sequence[Mapping[str, Any]]
    timeframe: str | None = None  # the strategy's entry timeframe when known


RunSource = Callable[[int], RunWindow | None]
_run_sources: list[RunSource] = []


def register_run_source(source: RunSource) -> None:
    """Let the Chart page find backtest runs (``backtests.apps`` calls this once)."""
    if source not in _run_sources:
        _run_sources.append(source)


def run_window(run_id: int) -> RunWindow | None:
    for source in _run_sources:
        found = source(run_id)
        if found is not None:
            return found
    return None


@dataclass(frozen=True, slots=True)
class Selection:
    """One chart: symbol, timeframe, strategy in view (``None``: the chart's defaults) and, for
    a backtest run's chart, the run."""

    symbol: str
    timeframe: str
    strategy: StrategyConfig | None
    symbols: tuple[str, ...]
    strategies: tuple[str, ...]
    exchange: str | None = None
    run: RunWindow | None = None

    def query_string(self) -> str:
        return urlencode(self.query())

    def query(self) -> dict[str, str]:
        """The query string that reproduces this chart (links, the tail endpoint)."""
        if self.run is not None:
            return {"run": str(self.run.run_id), "tf": self.timeframe}
        out = {"symbol": self.symbol, "tf": self.timeframe}
        if self.strategy is not None:
            out["strategy"] = self.strategy.name
        return out


class RunNotFound(LookupError):
    """``?run=`` names no backtest run."""


def _run_id(text: str) -> int | None:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text) or None


def _bars_timeframe(start_ms: int | None, end_ms: int | None) -> str:
    """The finest timeframe that shows a run's whole period in at most ``RUN_MAX_BARS``."""
    if start_ms is None or end_ms is None:
        return DEFAULT_TIMEFRAME
    for tf in CHART_TIMEFRAMES:
        if (end_ms - start_ms) / timeframe_ms(tf) <= RUN_MAX_BARS:
            return tf
    return CHART_TIMEFRAMES[-1]


def selection_from(query: Mapping[str, str]) -> Selection:
    """The chart a query string asks for, every value checked: an unknown symbol, timeframe or
    strategy falls back to the default; an unknown run raises :class:`RunNotFound`."""
    symbols = tuple(Asset.objects.values_list("symbol", flat=True))
    configs = {c.name: c for c in StrategyConfig.objects.exclude(kind="order_flow")}
    tf = query.get("tf", "")
    run = None
    if query.get("run"):
        run_id = _run_id(query["run"])
        run = run_window(run_id) if run_id is not None else None
        if run is None:
            raise RunNotFound(f"no backtest run {query['run']!r}")
    if run is not None:
        # Studies from the run's own parameters, not today's live ones.
        strategy: StrategyConfig | None = StrategyConfig(
            name=run.strategy_name, kind=run.strategy_kind, params=dict(run.params)
        )
        symbol = run.symbol
        if tf not in CHART_TIMEFRAMES:
            # The strategy's entry timeframe, unless the period needs coarser candles.
            coarsest = _bars_timeframe(run.start_ms, run.end_ms)
            tf = run.timeframe if run.timeframe in CHART_TIMEFRAMES else coarsest
            tf = max(tf, coarsest, key=CHART_TIMEFRAMES.index)
    else:
        strategy = configs.get(query.get("strategy", ""))
        symbol = query.get("symbol", "")
        if symbol not in symbols:
            symbol = symbols[0] if symbols else "BTC/USDT:USDT"
        if tf not in CHART_TIMEFRAMES:
            timeframe = (strategy.params or {}).get("timeframe") if strategy else None
            tf = timeframe if timeframe in CHART_TIMEFRAMES else DEFAULT_TIMEFRAME
    exchange = Asset.objects.filter(symbol=symbol).values_list("exchange", flat=True).first()
    return Selection(symbol, tf, strategy, symbols, tuple(configs), exchange, run)


# --- candles -------------------------------------------------------------------------------------


def _stored(
    exchange: str | None,
    symbol: str,
    timeframe: str,
    *,
    limit: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> np.ndarray:
    qs = Candle.objects.filter(symbol=symbol, timeframe=timeframe)
    if exchange is not None:
        qs = qs.filter(exchange=exchange)
    if start_ms is not None:
        qs = qs.filter(open_time_ms__gte=start_ms)
    if end_ms is not None:
        qs = qs.filter(open_time_ms__lt=end_ms)
    return np.ascontiguousarray(qs.order_by("-open_time_ms").as_array(limit)[::-1])


def _forming(base: np.ndarray, timeframe: str, after_ms: float) -> np.ndarray | None:
    """The still-open bucket of ``timeframe`` from the closed 1m candles at or after
    ``after_ms`` (the end of the last complete bucket): ``None`` when there is none."""
    step = timeframe_ms(timeframe)
    tail = base[base[:, 0] >= after_ms]
    if not len(tail):
        return None
    bucket = tail[-1, 0] - tail[-1, 0] % step
    rows = tail[tail[:, 0] >= bucket]
    volume = float(np.cumsum(rows[:, 5])[-1])
    return np.array([bucket, rows[0, 1], rows[:, 2].max(), rows[:, 3].min(), rows[-1, 4], volume])


def load_candles(
    exchange: str | None,
    symbol: str,
    timeframe: str,
    *,
    bars: int = BARS,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> np.ndarray:
    """``(N, 6)`` candles of ``timeframe`` (open time ms, O, H, L, C, V), oldest first: the last
    ``bars`` of ``[start_ms, end_ms)``, the forming bucket included on higher timeframes."""
    if timeframe == "1m":
        return _stored(exchange, symbol, "1m", limit=bars, start_ms=start_ms, end_ms=end_ms)
    per = timeframe_ms(timeframe) // MINUTE_MS
    base = _stored(exchange, symbol, "1m", limit=(bars + 1) * per, start_ms=start_ms, end_ms=end_ms)
    if not len(base):
        return _stored(exchange, symbol, timeframe, limit=bars, start_ms=start_ms, end_ms=end_ms)
    step = timeframe_ms(timeframe)
    complete = aggregate_candles(base, timeframe)
    after = complete[-1, 0] + step if len(complete) else base[0, 0] - base[0, 0] % step
    forming = _forming(base, timeframe, after)
    if forming is not None and (start_ms is None or forming[0] >= start_ms):
        complete = np.vstack([complete, forming[None, :]])
    return complete[-bars:]


# --- series --------------------------------------------------------------------------------------


def _points(times: list[int], values: np.ndarray, digits: int = 8) -> list[dict[str, Any]]:
    """A line series; NaN (warm-up) becomes a whitespace point, so every pane keeps one point
    per candle and the panes' logical ranges stay aligned."""
    return [
        {"time": t} if math.isnan(v) else {"time": t, "value": round(v, digits)}
        for t, v in zip(times, values.tolist(), strict=True)
    ]


def series(candles: np.ndarray, studies: Studies, *, since_s: int | None = None) -> dict[str, Any]:
    """Candles, volume bars and every study, computed over all of ``candles``; only the points
    at or after ``since_s`` are returned (all when ``None``)."""
    t_ms, o, h, lo, c, v = (candles[:, i] for i in range(6))
    times = (t_ms // 1000).astype(np.int64).tolist()
    vwap = (
        vwap_rolling(h, lo, c, v, studies.vwap_window)
        if studies.vwap_window
        else vwap_session(t_ms, h, lo, c, v)
    )
    rows = {
        "ema_fast": _points(times, ema(c, studies.ema_fast)),
        "ema_slow": _points(times, ema(c, studies.ema_slow)),
        "vwap": _points(times, vwap),
        "rsi": _points(times, rsi(c, studies.rsi_period), 4),
        "adx": _points(times, adx(h, lo, c, studies.adx_period)[0], 4),
        "candles": [
            {"time": t, "open": a, "high": b, "low": d, "close": e}
            for t, a, b, d, e in zip(
                times, o.tolist(), h.tolist(), lo.tolist(), c.tolist(), strict=True
            )
        ],
        "volume": [
            {"time": t, "value": vol, "color": UP if e >= a else DOWN}
            for t, a, e, vol in zip(times, o.tolist(), c.tolist(), v.tolist(), strict=True)
        ],
    }
    if since_s is not None:
        first = next((i for i, t in enumerate(times) if t >= since_s), len(times))
        first = min(first, max(0, len(times) - TAIL_MIN_BARS))
        rows = {key: points[first:] for key, points in rows.items()}
    return rows


# --- markers, price lines, funding ---------------------------------------------------------------


def _bar_s(time_ms: float, step_ms: int) -> int:
    return int(time_ms - time_ms % step_ms) // 1000


def _marker(mid: str, time_s: int, side: str, kind: str, color: str) -> dict[str, Any]:
    entry_shape = "arrowUp" if side == "long" else "arrowDown"
    return {
        "id": mid,
        "time": time_s,
        "position": ("belowBar" if side == "long" else "aboveBar")
        if kind != "exit"
        else ("aboveBar" if side == "long" else "belowBar"),
        "color": color,
        "shape": {"signal": "circle", "entry": entry_shape, "exit": "square"}[kind],
    }


def markers(
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int,
    *,
    strategy: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """Signals and paper/live trades of ``symbol`` in ``[start_ms, end_ms)`` (of one strategy
    when given) as text-free markers, and their tooltips by marker id."""
    step = timeframe_ms(timeframe)
    tick = steps_for(symbol).tick
    out: list[dict[str, Any]] = []
    tips: dict[str, dict[str, str]] = {}
    signals = Signal.objects.filter(
        symbol=symbol, candle_open_time_ms__gte=start_ms, candle_open_time_ms__lt=end_ms
    )
    positions = Position.objects.filter(
        symbol=symbol, entry_time_ms__lt=end_ms, entry_time_ms__gte=start_ms - 7 * 86_400_000
    )
    if strategy:
        signals = signals.filter(strategy__name=strategy)
        positions = positions.filter(strategy_name=strategy)
    for s in signals.select_related("strategy").order_by("-candle_open_time_ms")[:MAX_MARKERS]:
        mid = f"sig-{s.pk}"
        accepted = s.status == Signal.Status.ACCEPTED
        out.append(
            _marker(
                mid,
                _bar_s(s.candle_open_time_ms, step),
                s.side,
                "signal",
                "#4c9aff" if accepted else MUTED,
            )
        )
        reasons = "; ".join(str(r) for r in s.reasons or [])
        tips[mid] = {
            "title": f"signal {s.status}" + (" (shadow)" if s.shadow else ""),
            "strategy": s.strategy.name,
            "side": s.side,
            "price": fmt_price(s.entry_price, tick),
            "reason": reasons if accepted else f"{s.refusal_reason} — {reasons}".strip(" —"),
            "time": fmt_time_ms(s.candle_open_time_ms),
            "score": f"{s.score:.2f}",
        }
    for p in positions.order_by("-entry_time_ms")[:MAX_MARKERS]:
        trade = {
            "side": p.side,
            **{k: getattr(p, k) for k in TRADE_FIELDS},
        }
        label = p.strategy_name + (" (shadow)" if p.shadow else "")
        _trade_markers(f"pos-{p.pk}", label, trade, step, tick, (start_ms, end_ms), out, tips)
    out.sort(key=lambda m: (m["time"], m["id"]))
    return out, tips


TRADE_FIELDS = (
    "entry_time_ms", "entry_price", "stop_loss", "take_profit",
    "exit_time_ms", "exit_price", "exit_reason", "net_pnl",
)  # fmt: skip


def _trade_markers(
    mid: str,
    strategy: str,
    trade: Mapping[str, Any],
    step: int,
    tick: float | None,
    window: tuple[int, int],
    out: list[dict[str, Any]],
    tips: dict[str, dict[str, str]],
) -> None:
    """The entry and exit markers (inside ``window``) of one trade, appended to ``out`` with
    their tooltips in ``tips``; ``trade`` holds :data:`TRADE_FIELDS` and ``side``."""
    side = str(trade.get("side") or "")
    for end, time_ms in (("in", trade.get("entry_time_ms")), ("out", trade.get("exit_time_ms"))):
        if not isinstance(time_ms, int | float) or not window[0] <= time_ms < window[1]:
            continue
        entry = end == "in"
        color = (UP if side == "long" else DOWN) if entry else "#d7dde5"
        out.append(
            _marker(
                f"{mid}-{end}", _bar_s(time_ms, step), side, "entry" if entry else "exit", color
            )
        )
        if entry:
            stop, target = trade.get("stop_loss"), trade.get("take_profit")
            reason = f"stop {fmt_price(stop, tick)} · target {fmt_price(target, tick)}"
        else:
            net = fmt_money(trade.get("net_pnl"), "USDT", signed=True)
            reason = f"{trade.get('exit_reason') or 'closed'} · net {net}"
        tips[f"{mid}-{end}"] = {
            "title": "entry" if entry else "exit",
            "strategy": strategy,
            "side": side,
            "price": fmt_price(trade.get("entry_price" if entry else "exit_price"), tick),
            "reason": reason,
            "time": fmt_time_ms(time_ms),
        }


def run_markers(
    run: RunWindow, timeframe: str, start_ms: int, end_ms: int
) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """A backtest run's trades (``ClosedTrade.to_dict()`` rows) as entry/exit markers."""
    step = timeframe_ms(timeframe)
    tick = steps_for(run.symbol).tick
    out: list[dict[str, Any]] = []
    tips: dict[str, dict[str, str]] = {}
    for i, trade in enumerate(run.trades):
        if trade.get("symbol", run.symbol) != run.symbol:
            continue  # an arena run's trade on another pair
        who = str(trade.get("strategy") or run.strategy_name)
        _trade_markers(f"run-{i}", who, trade, step, tick, (start_ms, end_ms), out, tips)
    out.sort(key=lambda m: (m["time"], m["id"]))
    return out, tips


PRICE_LINES = (  # (field, label, colour, line style: 0 solid, 2 dashed, 3 large dashed)
    ("entry_price", "entry", "#d7dde5", 0),
    ("stop_loss", "SL", DOWN, 2),
    ("take_profit", "TP", UP, 2),
    ("liquidation_price", "liq", "#ff9f43", 3),
)


def price_lines(symbol: str, *, strategy: str | None = None) -> list[dict[str, Any]]:
    """Entry, stop, target and liquidation of every open position of ``symbol``."""
    tick = steps_for(symbol).tick
    qs = Position.objects.filter(symbol=symbol, status=Position.Status.OPEN)
    if strategy:
        qs = qs.filter(strategy_name=strategy)
    lines = []
    for p in qs.order_by("entry_time_ms")[:20]:
        who = p.strategy_name + (" shadow" if p.shadow else "")
        for name, label, color, style in PRICE_LINES:
            value = getattr(p, name)
            if value is None or not math.isfinite(value) or value <= 0:
                continue
            lines.append(
                {
                    "id": f"pos-{p.pk}-{label}",
                    "kind": label.lower(),
                    "price": value,
                    "text": fmt_price(value, tick),
                    "title": f"{label} {p.side} {who}",
                    "color": color,
                    "style": style,
                }
            )
    return lines


def next_funding(exchange: str | None, symbol: str, now_ms: int) -> dict[str, Any]:
    """The next funding settlement after ``now_ms`` (market time).

    From the stored settlements when there are two or more (their spacing is the interval,
    the next one is the last + k intervals), else from Bitget's schedule (every 8 h from
    00:00 UTC); ``source`` and ``note`` say which.
    """
    qs = FundingRate.objects.filter(symbol=symbol, funding_time_ms__lte=now_ms)
    if exchange is not None:
        qs = qs.filter(exchange=exchange)
    stored = list(qs.order_by("-funding_time_ms").values_list("funding_time_ms", "rate")[:2])
    interval_ms = FUNDING_INTERVAL_H * HOUR_MS
    if len(stored) == 2 and 0 < stored[0][0] - stored[1][0] <= 24 * HOUR_MS:
        interval_ms = stored[0][0] - stored[1][0]
    if stored:
        last_ms, rate = stored[0]
        steps = (now_ms - last_ms) // interval_ms + 1
        next_ms = last_ms + steps * interval_ms
        note = (
            f"from the stored settlements: last {fmt_time_ms(last_ms)} UTC at "
            f"{rate * 100:+.4f} %, every {interval_ms / HOUR_MS:g} h"
        )
        source = "stored"
    else:
        next_ms = now_ms - now_ms % interval_ms + interval_ms
        rate = None
        note = "no stored settlement: Bitget's schedule, every 8 h at 00:00, 08:00, 16:00 UTC"
        source = "schedule"
    return {
        "next_ms": int(next_ms),
        "now_ms": int(now_ms),
        "source": source,
        "note": note,
        "rate_pct": None if rate is None else rate * 100,
    }


# --- the page and its tail -----------------------------------------------------------------------


def _window(selection: Selection) -> tuple[int | None, int | None, int]:
    run = selection.run
    if run is None:
        return None, None, BARS
    return run.start_ms, run.end_ms, RUN_MAX_BARS


def _extras(
    selection: Selection, candles: np.ndarray, start_ms: int, end_ms: int
) -> dict[str, Any]:
    """Markers, tooltips, price lines and funding for the candles shown."""
    if selection.run is not None:
        marks, tips = run_markers(selection.run, selection.timeframe, start_ms, end_ms)
        return {"markers": marks, "tips": tips, "lines": [], "funding": None}
    strategy = selection.strategy.name if selection.strategy else None
    marks, tips = markers(
        selection.symbol, selection.timeframe, start_ms, end_ms, strategy=strategy
    )
    # Market time: the close of the newest stored 1m candle (a replay runs months behind).
    last_1m = (
        Candle.objects.filter(symbol=selection.symbol, timeframe="1m")
        .order_by("-open_time_ms")
        .values_list("open_time_ms", flat=True)
        .first()
    )
    now_ms = int(last_1m + MINUTE_MS) if last_1m is not None else int(candles[-1, 0])
    return {
        "markers": marks,
        "tips": tips,
        "lines": price_lines(selection.symbol, strategy=strategy),
        "funding": next_funding(selection.exchange, selection.symbol, now_ms),
    }


def chart_page(selection: Selection) -> dict[str, Any]:
    """Everything the page draws on load (the JSON island)."""
    start_ms, end_ms, bars = _window(selection)
    studies = studies_for(selection.strategy, selection.symbol)
    candles = load_candles(
        selection.exchange, selection.symbol, selection.timeframe,
        bars=bars, start_ms=start_ms, end_ms=end_ms,
    )  # fmt: skip
    data: dict[str, Any] = {
        "labels": studies.labels(),
        "levels": {"rsi": list(studies.rsi_levels), "adx": [studies.adx_level]},
        "lot": steps_for(selection.symbol).lot,
        "live": selection.run is None,
        "run": selection.run.run_id if selection.run else None,
    }
    if not len(candles):
        return {**data, "candles": []}
    step = timeframe_ms(selection.timeframe)
    first_ms, last_ms = int(candles[0, 0]), int(candles[-1, 0]) + step
    if selection.run is not None:  # the period the candles cover (stored data may be shorter)
        data["period"] = f"{fmt_time_ms(first_ms)[:16]} → {fmt_time_ms(last_ms)[:16]} UTC"
    return {**data, **series(candles, studies), **_extras(selection, candles, first_ms, last_ms)}


def chart_tail(selection: Selection, *, start_s: int, since_s: int) -> dict[str, Any]:
    """What changed since ``since_s`` on a live chart whose first candle opened at ``start_s``:
    the candles from ``since_s`` on (at least the last ``TAIL_MIN_BARS``) with their volume and
    studies computed over the page's own window, and the markers, price lines and funding."""
    studies = studies_for(selection.strategy, selection.symbol)
    step = timeframe_ms(selection.timeframe)
    # The page's window grows by one candle per candle: computed from the page's first candle,
    # a value is the page's own. Past twice its size the window slides (the seeds of EMA, RSI
    # and ADX 500 candles back then weigh < 1e-8).
    start_ms = start_s * 1000
    if since_s * 1000 - start_ms > (2 * BARS - TAIL_MIN_BARS) * step:
        start_ms = since_s * 1000 - BARS * step
    candles = load_candles(
        selection.exchange, selection.symbol, selection.timeframe,
        bars=2 * BARS, start_ms=start_ms,
    )  # fmt: skip
    if not len(candles):
        return {"candles": []}
    rows = series(candles, studies, since_s=since_s)
    first_ms = int(rows["candles"][0]["time"]) * 1000
    last_ms = int(candles[-1, 0]) + step
    return {**rows, **_extras(selection, candles, first_ms, last_ms)}
