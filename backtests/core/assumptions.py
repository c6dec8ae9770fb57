"""What a backtest result stands on, stated with it: the ``assumptions`` section.

Every result (``BacktestRun.results``, ``manage.py backtest`` and its ``--json``, the run page)
carries one entry per assumption, each ``{"label", "text", ...values}``: ``text`` is the sentence
shown to the trader, the other keys the values actually used, for a program. Where a rule can
be read off the run itself it is measured there rather than recited, so the sentence stays
true if the engine changes:

* slippage: each taker fill's slippage fraction is recovered from its price and cost
  (a buy fills at ``ref × (1 + f)``, a sell at ``ref × (1 − f)``, cost ``= ref × f × qty``, so
  ``ref = price − side × cost / qty`` and ``f = cost / (qty × ref)``) and counted as the base
  estimate, the high-volatility one, or another rate: a book walk (the venue's rule,
  :mod:`strategies.core.kernel.venue`), the only other source of a taker price;
* tick: the run's stop, target and limit prices and its taker fill prices are tested against
  the instrument's price tick (``|price / tick − round(price / tick)| < 1e-6``);
* fills: limit entries filled, and how many of them partially (filled qty < ordered qty);
* funding: the settlements the data holds inside the period, and how many were booked.

Money in USDT, rates as fractions (0.0005 = 0.05 %), times ISO 8601 UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from backtests.core.metrics import MIN_RATIO_DAYS
from strategies.core.kernel import FundingApplied, KernelConfig, KernelEvent, PositionOpened
from strategies.core.kernel.venue import BOOK_MAX_AGE_MS
from trading.core.fees import Liquidity
from trading.core.ledger import ClosedTrade
from trading.core.orders import MissingInstrumentRules, rules_for
from trading.core.types import ExitReason, Side

NOT_MODELLED = "not modelled: no data"
_HOUR_MS = 3_600_000


def iso_utc(time_ms: int | None) -> str | None:
    """``1750118400000`` → ``"2025-06-17T00:00:00Z"``."""
    if time_ms is None:
        return None
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class RunInputs:
    """What the run was given, beside its kernel settings (see :func:`describe`)."""

    symbol: str
    data_source: str  # "db" or "files: ..."
    exchange: str  # the data's venue ("binance-usdm" for the bundled files)
    start_ms: int | None  # first candle's open
    end_ms: int | None  # last candle's close (exclusive end)
    candles: int
    funding: np.ndarray | None  # [time_ms, rate] rows given
    funding_source: str | None  # file names or "database", None without rows
    book_snapshots: int
    params_source: str


def describe(
    config: KernelConfig,
    inputs: RunInputs,
    trades: Sequence[ClosedTrade],
    events: Sequence[KernelEvent],
    *,
    ratio_days: int,
    liquidation_loss: float,
) -> dict[str, dict[str, Any]]:
    """The ``assumptions`` section of one run (module docstring); ``trades`` and ``events``
    are the run's real-ledger trades and its events (shadow ones are left out)."""
    opened = {
        e.position.position_id: e for e in events if isinstance(e, PositionOpened) and not e.shadow
    }
    return {
        "data": _data(inputs),
        "parameters": {
            "label": "Parameters",
            "source": inputs.params_source,
            "text": inputs.params_source,
        },
        "fees": _fees(config, trades, liquidation_loss),
        "funding": _funding(inputs, events),
        "fill_model": _fill_model(config, trades, opened),
        "slippage_model": _slippage(config, inputs, trades, opened),
        "price_rounding": _rounding(config, inputs.symbol, trades),
        "ratios": {
            "label": "Sharpe and Sortino",
            "days": ratio_days,
            "min_days": MIN_RATIO_DAYS,
            "text": (
                f"from {ratio_days} daily returns (UTC days, √365 annualised); not shown "
                f"under {MIN_RATIO_DAYS} days"
            ),
        },
        "kill_switch": {
            "label": "Kill switch",
            "max_session_loss_pct": config.max_session_loss_pct,
            "text": (
                f"trips at a session loss of {config.max_session_loss_pct:g} % of the capital "
                "(realised + open P&L); later decisions trade a shadow ledger, outside the "
                "results"
            ),
        },
    }


def _data(inputs: RunInputs) -> dict[str, Any]:
    start, end = iso_utc(inputs.start_ms), iso_utc(inputs.end_ms)
    return {
        "label": "Data",
        "source": inputs.data_source,
        "exchange": inputs.exchange,
        "start": start,
        "end": end,
        "candles": inputs.candles,
        "text": (
            f"{inputs.data_source} ({inputs.exchange}); {start} to {end}, "
            f"{inputs.candles:,} 1m candles"
        ),
    }


def _fees(
    config: KernelConfig, trades: Sequence[ClosedTrade], liquidation_loss: float
) -> dict[str, Any]:
    schedule = config.fee_schedule
    booked = (
        "booked on every fill"
        if config.fees_enabled
        else "NOT booked: this run was re-simulated with zero fees (its orders differ from a "
        "fees-on run's)"
    )
    liquidations = sum(1 for t in trades if t.exit_reason is ExitReason.LIQUIDATION)
    comparison = (
        " 'Fees removed' = the same trades with their fees taken out."
        if config.fees_enabled
        else ""
    )
    return {
        "label": "Fees",
        "maker_rate": schedule.maker_rate,
        "taker_rate": schedule.taker_rate,
        "booked": config.fees_enabled,
        "text": (
            f"maker {schedule.maker_rate:.3%}, taker {schedule.taker_rate:.3%} of notional, "
            f"{booked}.{comparison} A liquidation's forfeited margin beyond a normal taker "
            f"fee is not a fee: 'liquidation losses' ({liquidations} liquidations, "
            f"{liquidation_loss:,.2f} USDT)"
        ),
    }


def _funding(inputs: RunInputs, events: Sequence[KernelEvent]) -> dict[str, Any]:
    rows = inputs.funding if inputs.funding is not None else np.empty((0, 2))
    lo, hi = inputs.start_ms, inputs.end_ms
    inside = np.empty((0, 2))
    if len(rows) and lo is not None and hi is not None:
        inside = rows[(rows[:, 0] > lo) & (rows[:, 0] <= hi)]
    booked = {e.time_ms for e in events if isinstance(e, FundingApplied) and not e.shadow}
    out: dict[str, Any] = {
        "label": "Funding",
        "source": inputs.funding_source if len(inside) else None,
        "settlements_in_period": len(inside),
        "settlements_booked": len(booked),
        "partial": None,
    }
    if not len(inside) or lo is None or hi is None:
        why = (
            "the funding data given does not reach the period"
            if len(rows)
            else "no funding file among --data / no stored funding rate for the period"
        )
        out["text"] = f"{NOT_MODELLED} ({why}); funding 0.00 is an assumption, not a measurement"
        return out
    first, last = int(inside[0, 0]), int(inside[-1, 0])
    step = int(np.median(np.diff(rows[:, 0]))) if len(rows) > 1 else 8 * _HOUR_MS
    out["partial"] = first - lo > step or hi - last > step
    coverage = "PARTIAL coverage of the period" if out["partial"] else "covers the period"
    out["text"] = (
        f"{inputs.funding_source}: {len(inside)} settlements from {iso_utc(first)} to "
        f"{iso_utc(last)} ({coverage}); booked for open positions at {len(booked)} of them, "
        "mark = the candle close"
    )
    return out


def _fill_model(
    config: KernelConfig, trades: Sequence[ClosedTrade], opened: dict[str, PositionOpened]
) -> dict[str, Any]:
    model = config.fill_model
    touch = model.base_fill_probability * model.touch_probability_factor
    limit = [opened[t.position_id] for t in trades if t.entry_liquidity is Liquidity.MAKER
             and t.position_id in opened]  # fmt: skip
    partial = sum(1 for e in limit if e.requested_qty and e.position.qty < e.requested_qty)
    market = sum(1 for t in trades if t.entry_liquidity is Liquidity.TAKER)
    return {
        "label": "Fill model",
        "limit_fill_probability_through": model.base_fill_probability,
        "limit_fill_probability_touch": touch,
        "partial_fills": model.min_fill_fraction < 1.0,
        "min_fill_fraction": model.min_fill_fraction,
        "full_fill_depth_pct": model.queue_clear_depth_pct * 100.0,
        "limit_ttl_candles": config.limit_order_ttl_candles,
        "seed": config.seed,
        "limit_entries_filled": len(limit),
        "limit_entries_partial": partial,
        "market_entries": market,
        "text": (
            f"limit (post-only) entries fill with probability {model.base_fill_probability:g} "
            f"per 1m candle that trades through the limit, {touch:g} on a touch, none "
            f"otherwise (seeded draws, seed {config.seed}); a fill takes "
            f"{model.min_fill_fraction:.0%} of the order on a touch up to all of it "
            f"{model.queue_clear_depth_pct:.3%} through, rounded down to the quantity step, "
            f"the rest cancelled; an unfilled limit rests {config.limit_order_ttl_candles} "
            f"candles. Market entries fill in full at the next open. This run: {len(limit)} "
            f"limit entries filled ({partial} partially), {market} market entries"
        ),
    }


def _fraction(side_sign: int, price: float, qty: float, cost: float) -> float:
    """Slippage fraction of a taker fill (module docstring): 0.0005 = 0.05 %."""
    reference = price - side_sign * cost / qty
    return cost / (qty * reference) if reference > 0 else float("nan")


def _classify(fraction: float, base: float, high: float) -> str:
    def near(a: float, b: float) -> bool:
        return abs(a - b) <= 1e-6 * max(abs(b), 1e-9)

    if near(fraction, base):
        return "base"
    return "high_volatility" if near(fraction, high) else "other"


def _slippage(
    config: KernelConfig,
    inputs: RunInputs,
    trades: Sequence[ClosedTrade],
    opened: dict[str, PositionOpened],
) -> dict[str, Any]:
    model = config.slippage
    base, high = model.fraction(False), model.fraction(True)
    counts = {
        "entries": {"base": 0, "high_volatility": 0, "other": 0},
        "exits": {"base": 0, "high_volatility": 0, "other": 0},
    }
    for t in trades:
        entry_slip = opened[t.position_id].position.slippage_cost if t.position_id in opened else 0
        if t.entry_liquidity is Liquidity.TAKER:
            kind = _classify(_fraction(t.side.sign, t.entry_price, t.qty, entry_slip), base, high)
            counts["entries"][kind] += 1
        if t.exit_liquidity is Liquidity.TAKER and t.exit_reason is not ExitReason.LIQUIDATION:
            exit_slip = max(0.0, t.slippage_cost - entry_slip)
            close_sign = -1 if t.side is Side.LONG else 1  # a long closes with a sell
            kind = _classify(_fraction(close_sign, t.exit_price, t.qty, exit_slip), base, high)
            counts["exits"][kind] += 1
    e, x = counts["entries"], counts["exits"]
    walked = e["other"] + x["other"]
    rates = (
        "taker fills (market entries; stops, time stops, strategy exits and end-of-data "
        f"closes; not liquidations, which fill at the liquidation price) slip {base:.3%} "
        f"against the reference price, {high:.3%} (×{model.high_vol_multiplier:g}) when the "
        "entry timeframe is in high volatility at the fill (an entry: at its decision; an "
        "exit: when it is taken)"
    )
    if inputs.book_snapshots:
        book = (
            f"with the {inputs.book_snapshots:,} order-book snapshots given, a market entry or "
            f"a close walks the latest one at most {BOOK_MAX_AGE_MS / 1000:g} s older than the "
            "fill (past its last level, the rest at the estimate); without so fresh a "
            "snapshot, and for a stop triggered inside a candle (its instant is unknown), the "
            "estimate"
        )
    else:
        book = "no order-book data: every taker fill is priced by the estimate"
    by_book = " ({} walked the book)" if inputs.book_snapshots else " ({} at other rates)"
    text = (
        f"{rates}; {book}. This run: market entries {e['base']} at {base:.3%}, "
        f"{e['high_volatility']} at {high:.3%}"
        + (by_book.format(e["other"]) if e["other"] else "")
        + f"; taker exits {x['base']} at {base:.3%}, {x['high_volatility']} at {high:.3%}"
        + (by_book.format(x["other"]) if x["other"] else "")
    )
    return {
        "label": "Slippage model",
        "estimate_pct": base * 100.0,
        "high_volatility_pct": high * 100.0,
        "book_walk": bool(inputs.book_snapshots and walked),
        "book_snapshots": inputs.book_snapshots,
        "book_max_age_ms": BOOK_MAX_AGE_MS,
        "fills": counts,
        "text": text,
    }


def _on_tick(price: float, tick: float) -> bool:
    if tick <= 0:
        return True
    steps = price / tick
    return abs(steps - round(steps)) < 1e-6


def _rounding(
    config: KernelConfig,
    symbol: str,
    trades: Sequence[ClosedTrade],
) -> dict[str, Any]:
    try:
        tick = rules_for(config.market_rules, symbol).price_tick
    except MissingInstrumentRules:
        tick = 0.0
    orders = [t.stop_loss for t in trades]
    orders += [t.take_profit for t in trades if t.take_profit is not None]
    orders += [t.entry_price for t in trades if t.entry_liquidity is Liquidity.MAKER]
    fills = [t.entry_price for t in trades if t.entry_liquidity is Liquidity.TAKER]
    fills += [t.exit_price for t in trades if t.exit_liquidity is Liquidity.TAKER
              and t.exit_reason is not ExitReason.LIQUIDATION]  # fmt: skip
    orders_on = sum(1 for p in orders if _on_tick(p, tick))
    fills_off = sum(1 for p in fills if not _on_tick(p, tick))
    if tick <= 0:
        text = f"no price tick known for {symbol}: prices not rounded to tick"
    else:
        text = (
            f"order prices (stops, targets, limit entries) are put on the tick {tick:g} USDT: "
            f"{orders_on} of {len(orders)} in this run; taker fill prices (market entries, "
            "stops, closes) carry their slippage (estimate or book walk) and are not rounded "
            f"to tick: {fills_off} of {len(fills)} off the tick; liquidations fill at the "
            "estimated liquidation price"
        )
    return {
        "label": "Price rounding",
        "price_tick": tick,
        "order_prices": len(orders),
        "order_prices_on_tick": orders_on,
        "fill_prices": len(fills),
        "fill_prices_off_tick": fills_off,
        "text": text,
    }
