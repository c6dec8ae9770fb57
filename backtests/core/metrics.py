"""Backtest metrics. Money in USDT, percentages in percent (5.0 = 5 %), times in ms or hours.

Per trade ``i`` (from :class:`trading.core.ledger.ClosedTrade`): ``gross_i``, ``funding_i`` (a
cost, > 0 paid), ``slip_i``, and its exit costs split by :func:`cost_split` into ``fees_i``
(entry + exit fee) and ``liq_i`` (an isolated liquidation's forfeited margin beyond the taker
fee a normal close would have paid; 0 for every other trade), so that
``net_i = gross_i − fees_i − funding_i − liq_i`` (the ledger's net, unchanged).

* trades ``n``; win rate ``= #{net_i > 0} / n × 100`` (%);
* gross P&L ``Σ gross_i``, net P&L ``Σ net_i``, fees ``Σ fees_i``, funding ``Σ funding_i``,
  liquidation losses ``Σ liq_i`` (their own line: a forfeited margin is not a fee), slippage
  ``Σ slip_i`` (informational: already inside the fill prices, never subtracted again); the
  summary adds up: gross − fees − funding − liquidation losses = net;
* fees as % of |gross| ``= fees / |gross P&L| × 100`` whenever gross ≠ 0 — shown on losing runs
  too, where the fees are the story (150 = the fees were one and a half times the gross move,
  whichever its sign); ``None`` only when gross is exactly 0, with a note saying so;
* profit factor ``= Σ max(x_i, 0) / |Σ min(x_i, 0)|`` with ``x`` = gross (gross PF) or net
  (net PF); ``None`` without a losing trade (undefined, not infinite);
* expectancy ``= net P&L / n`` (USDT per trade); average win / loss = mean net of the winning /
  losing trades (USDT; a loss is negative);
* max drawdown from the per-candle equity curve INCLUDING open P&L:
  ``dd_t = (max_{s≤t} E_s − E_t) / max_{s≤t} E_s × 100`` (%), max over t; its duration is the
  longest time (hours) spent below a previous peak, from the peak to the recovery or the end;
* daily returns: ``E_d`` = equity at the last candle of each UTC day, ``E_0`` = starting capital,
  ``r_d = E_d / E_{d−1} − 1``. Sharpe ``= mean(r) / std(r, ddof=1) × √365``; Sortino
  ``= mean(r) / sqrt(mean(min(r, 0)²)) × √365`` (downside deviation over ALL days, target 0).
  √365 because crypto trades every day of the year. Both are reported with ``ratio_days`` (the
  number of daily returns they stand on) and are ``None`` with a ``ratio_note`` below
  :data:`MIN_RATIO_DAYS` = 30 days, or with a zero deviation. Why 30: the standard error of a
  Sharpe ratio estimated from N independent daily returns is about
  ``sqrt((1 + SR_d² / 2) / N)`` per day (Lo 2002, "The Statistics of Sharpe Ratios"), i.e.
  ``≥ √365 / √N`` once annualised: 7.2 for a week, 3.5 for 30 days. Below 30 days that error is
  wider than the whole range strategies are told apart in (0 to 3), so a "Sharpe of −40" over
  5 days is noise printed as a fact; at 30 days it is still wide, and the day count says so;
* exposure ``= candles ending with a position open / candles × 100`` (%);
* breakdowns per regime at entry and per exit reason: trades, win rate, net P&L.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from trading.core.ledger import ClosedTrade
from trading.core.types import ExitReason, MarginMode

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
ANNUALISATION_DAYS = 365
MIN_RATIO_DAYS = 30  # daily returns below which Sharpe and Sortino are not shown (docstring)
GROSS_ZERO_NOTE = "gross P&L is exactly 0: fees as a share of it are undefined"


@dataclass(frozen=True, slots=True)
class Metrics:
    trades: int
    wins: int
    win_rate: float  # %
    gross_pnl: float
    net_pnl: float
    fees: float
    fees_pct_of_gross: float | None  # fees / |gross| × 100; None only when gross == 0
    fees_pct_note: str | None  # why fees_pct_of_gross is None
    funding: float
    liquidation_loss: float  # forfeited isolated margin beyond a normal taker fee (not fees)
    liquidations: int
    slippage: float
    profit_factor_gross: float | None
    profit_factor_net: float | None
    expectancy: float
    avg_win: float | None
    avg_loss: float | None
    max_drawdown_pct: float
    max_drawdown_hours: float
    sharpe: float | None
    sortino: float | None
    ratio_days: int  # daily returns Sharpe and Sortino stand on
    ratio_note: str | None  # why they are None
    exposure_pct: float
    final_equity: float
    return_pct: float
    by_regime: dict[str, dict[str, float]] = field(default_factory=dict)
    by_exit_reason: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def profit_factor(values: Sequence[float]) -> float | None:
    """``Σ positive / |Σ negative|``; ``None`` without a negative value.

    Example: 30, −10, 20, −5 → 50 / 15 = 3.333.
    """
    gains = sum(v for v in values if v > 0)
    losses = -sum(v for v in values if v < 0)
    return gains / losses if losses > 0 else None


def max_drawdown(times_ms: np.ndarray, equity: np.ndarray) -> tuple[float, float]:
    """``(max drawdown %, longest time under water in hours)`` of an equity curve.

    Example: 100, 120, 90, 130 at hours 0..3 → (120 − 90) / 120 = 25 %; under water from the
    peak at hour 1 to the recovery at hour 3 = 2 h.
    """
    if len(equity) == 0:
        return 0.0, 0.0
    peaks = np.maximum.accumulate(equity)
    drawdown = (peaks - equity) / peaks * 100.0
    longest = 0
    peak_time = int(times_ms[0])
    under = False
    for t, e, p in zip(times_ms.tolist(), equity.tolist(), peaks.tolist(), strict=True):
        if e >= p:
            if under:  # recovered: the drawdown lasted from its peak until now
                longest = max(longest, t - peak_time)
            under = False
            peak_time = t
        else:
            under = True
    if under:
        longest = max(longest, int(times_ms[-1]) - peak_time)
    return float(drawdown.max()), longest / HOUR_MS


def daily_returns(times_ms: np.ndarray, equity: np.ndarray, start_equity: float) -> np.ndarray:
    """Returns of the equity at the last candle of each UTC day, the first against the capital.

    Example: capital 100, day 1 ends at 110, day 2 at 99 → [0.10, −0.10].
    """
    if len(equity) == 0:
        return np.empty(0)
    # A candle closing exactly at midnight belongs to the day it ends.
    days = (np.asarray(times_ms, dtype=np.int64) - 1) // DAY_MS
    last_of_day = np.flatnonzero(np.r_[days[1:] != days[:-1], True])
    closes = np.r_[start_equity, equity[last_of_day]]
    return closes[1:] / closes[:-1] - 1.0


def sharpe_ratio(returns: np.ndarray) -> float | None:
    """``mean / std(ddof=1) × √365``. Example: [0.01, −0.005, 0.02] → mean 0.008333,
    std 0.012583 → 0.6623 × 19.105 = 12.65."""
    if len(returns) < 2:
        return None
    std = float(np.std(returns, ddof=1))
    if std == 0 or not math.isfinite(std):
        return None
    return float(np.mean(returns)) / std * math.sqrt(ANNUALISATION_DAYS)


def sortino_ratio(returns: np.ndarray) -> float | None:
    """``mean / sqrt(mean(min(r,0)²)) × √365``. Example: [0.01, −0.005, 0.02] → downside
    sqrt(0.000025 / 3) = 0.0028868 → 0.008333 / 0.0028868 × 19.105 = 55.15."""
    if len(returns) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside == 0:
        return None
    return float(np.mean(returns)) / downside * math.sqrt(ANNUALISATION_DAYS)


def cost_split(trade: ClosedTrade, taker_rate: float | None = None) -> tuple[float, float]:
    """``(fees, liquidation loss)`` of one trade, USDT; their sum is ``trade.fees``.

    The ledger books an ISOLATED liquidation's lost margin as the exit fee (``exit_fee =
    margin + gross``, see ``Ledger.close``). Of that, the taker fee a normal close at the same
    price would have paid (``qty × exit price × taker_rate``, capped at the exit fee) is a fee;
    the rest is the liquidation loss. Without ``taker_rate`` (not known) the whole exit cost of
    the liquidation is the liquidation loss. Every other trade: ``(entry + exit fee, 0)``.
    Example: long 0.1 at 100,000, 20× (margin 500), liquidated at 95,439.02: gross −456.10,
    exit fee 43.90; taker fee 0.1 × 95,439.02 × 0.0006 = 5.73 → fees entry + 5.73, liquidation
    loss 38.17.
    """
    if trade.exit_reason is not ExitReason.LIQUIDATION or (
        trade.margin_mode is not MarginMode.ISOLATED
    ):
        return trade.fees, 0.0
    fee = 0.0 if taker_rate is None else trade.qty * trade.exit_price * taker_rate
    fee = min(max(fee, 0.0), trade.exit_fee)
    return trade.entry_fee + fee, trade.exit_fee - fee


def fees_pct_of_abs_gross(fees: float, gross: float) -> tuple[float | None, str | None]:
    """``fees / |gross| × 100`` and ``None``, or ``(None, note)`` when gross is exactly 0.

    Example: fees 312.14, gross −227.72 → 137.07 (the fees were 1.37 times the gross move).
    """
    if gross == 0:
        return None, GROSS_ZERO_NOTE
    return fees / abs(gross) * 100.0, None


def ratio_note_for(days: int) -> str | None:
    """Why Sharpe and Sortino are not shown over ``days`` daily returns (``None``: shown)."""
    if days < MIN_RATIO_DAYS:
        return (
            f"not shown: {days} daily returns, fewer than the {MIN_RATIO_DAYS} a Sharpe or "
            f"Sortino needs to mean anything (its standard error over {max(days, 1)} days is "
            f"at least {math.sqrt(ANNUALISATION_DAYS / max(days, 1)):.1f})"
        )
    return None


def _group(trades: Sequence[ClosedTrade], keys: Sequence[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for trade, key in zip(trades, keys, strict=True):
        row = out.setdefault(key, {"trades": 0, "wins": 0, "net_pnl": 0.0})
        row["trades"] += 1
        row["wins"] += 1 if trade.net_pnl > 0 else 0
        row["net_pnl"] += trade.net_pnl
    for row in out.values():
        row["win_rate"] = row["wins"] / row["trades"] * 100.0
    return out


def compute_metrics(
    trades: Sequence[ClosedTrade],
    times_ms: np.ndarray,
    equity: np.ndarray,
    *,
    start_equity: float,
    in_position: np.ndarray | None = None,
    regimes: Sequence[str] | None = None,
    taker_rate: float | None = None,
) -> Metrics:
    """Every metric of the module docstring for one run; ``taker_rate`` (fraction of notional,
    the rate the ledger BOOKED) splits a liquidation's exit cost (:func:`cost_split`)."""
    n = len(trades)
    nets = [t.net_pnl for t in trades]
    grosses = [t.gross_pnl for t in trades]
    wins = [x for x in nets if x > 0]
    losses = [x for x in nets if x <= 0]
    gross = sum(grosses)
    splits = [cost_split(t, taker_rate) for t in trades]
    fees = sum(f for f, _ in splits)
    fees_pct, fees_note = fees_pct_of_abs_gross(fees, gross)
    dd_pct, dd_hours = max_drawdown(times_ms, equity)
    returns = daily_returns(times_ms, equity, start_equity)
    days = len(returns)
    note = ratio_note_for(days)
    final = float(equity[-1]) if len(equity) else start_equity
    sharpe = None if note else sharpe_ratio(returns)
    sortino = None if note else sortino_ratio(returns)
    if note is None and (sharpe is None or sortino is None):
        note = "not shown: the daily returns do not vary (or never fall, for Sortino)"
    return Metrics(
        trades=n,
        wins=len(wins),
        win_rate=len(wins) / n * 100.0 if n else 0.0,
        gross_pnl=gross,
        net_pnl=sum(nets),
        fees=fees,
        fees_pct_of_gross=fees_pct,
        fees_pct_note=fees_note,
        funding=sum(t.funding for t in trades),
        liquidation_loss=sum(liq for _, liq in splits),
        liquidations=sum(1 for t in trades if t.exit_reason is ExitReason.LIQUIDATION),
        slippage=sum(t.slippage_cost for t in trades),
        profit_factor_gross=profit_factor(grosses),
        profit_factor_net=profit_factor(nets),
        expectancy=sum(nets) / n if n else 0.0,
        avg_win=sum(wins) / len(wins) if wins else None,
        avg_loss=sum(losses) / len(losses) if losses else None,
        max_drawdown_pct=dd_pct,
        max_drawdown_hours=dd_hours,
        sharpe=sharpe,
        sortino=sortino,
        ratio_days=days,
        ratio_note=note,
        exposure_pct=(
            float(np.mean(in_position)) * 100.0
            if in_position is not None and len(in_position)
            else 0.0
        ),
        final_equity=final,
        return_pct=(final / start_equity - 1.0) * 100.0,
        by_regime=_group(trades, regimes if regimes is not None else ["unknown"] * n),
        by_exit_reason=_group(trades, [t.exit_reason.value for t in trades]),
    )
