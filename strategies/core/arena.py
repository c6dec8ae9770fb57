"""The arena: rank strategies on equal virtual capital, and the adaptive selector's rules.

Ranking (per strategy, from its closed trades and equity curve):

* ``net_return_pct`` = (equity − initial capital) / initial capital × 100;
* ``profit_factor_net`` = Σ winning net P&L / |Σ losing net P&L| (``None`` without a loss);
* ``max_drawdown_pct`` = max over time of (peak equity − equity) / peak equity × 100;
* ``sharpe`` = mean / std of per-trade net returns (on capital) × sqrt(trades) — a sample-size
  aware per-trade Sharpe, ``None`` under two trades;
* ``expectancy_usdt`` = mean net P&L per trade.

A strategy with fewer than ``min_trades`` closed trades is UNRANKED (shown with its sample size,
sorted after the ranked ones): a handful of lucky trades must not top the table.

Selector (run once per round of ``selector_every`` minutes of market time by the radar,
``radar.selector``, which records each decision with its reason as a control and leaves alone a
strategy a trader controlled within the hold): among ranked strategies, the best ``top_n`` by
net return with a net profit factor ≥ ``boost_min_profit_factor`` get ``capital_weight`` ×
``boost_factor`` (capped at ``max_weight``); a ranked strategy whose net profit factor is
< ``pause_max_profit_factor`` AND whose drawdown ≥ ``pause_min_drawdown_pct`` is paused (it
keeps trading in shadow mode, so its recovery stays visible); a paused strategy whose SHADOW
results recover (net profit factor ≥ ``resume_min_profit_factor`` over its shadow trades) is
resumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from trading.core.risk import MAX_CAPITAL_WEIGHT


@dataclass(frozen=True, slots=True)
class StrategyResults:
    name: str
    initial_capital_usdt: float
    equity_usdt: float
    net_pnls: tuple[float, ...]  # closed trades, oldest first
    max_drawdown_pct: float
    status: str = "active"
    capital_weight: float = 1.0
    shadow_net_pnls: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Ranking:
    name: str
    rank: int | None  # None = unranked (too few trades)
    trades: int
    net_return_pct: float
    profit_factor_net: float | None
    max_drawdown_pct: float
    sharpe: float | None
    expectancy_usdt: float | None
    win_rate: float | None


def profit_factor(pnls: Sequence[float]) -> float | None:
    gains = sum(p for p in pnls if p > 0)
    losses = -sum(p for p in pnls if p < 0)
    if losses == 0:
        return None if gains == 0 else math.inf
    return gains / losses


def per_trade_sharpe(pnls: Sequence[float], capital_usdt: float) -> float | None:
    if len(pnls) < 2:
        return None
    returns = [p / capital_usdt for p in pnls]
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if var == 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(len(returns))


def rank(results: Sequence[StrategyResults], min_trades: int = 10) -> list[Ranking]:
    rows = []
    for r in results:
        n = len(r.net_pnls)
        rows.append(
            Ranking(
                name=r.name,
                rank=None,
                trades=n,
                net_return_pct=(r.equity_usdt - r.initial_capital_usdt)
                / r.initial_capital_usdt
                * 100.0,
                profit_factor_net=profit_factor(r.net_pnls),
                max_drawdown_pct=r.max_drawdown_pct,
                sharpe=per_trade_sharpe(r.net_pnls, r.initial_capital_usdt),
                expectancy_usdt=sum(r.net_pnls) / n if n else None,
                win_rate=sum(1 for p in r.net_pnls if p > 0) / n if n else None,
            )
        )
    ranked = sorted(
        (row for row in rows if row.trades >= min_trades), key=lambda x: -x.net_return_pct
    )
    unranked = sorted((row for row in rows if row.trades < min_trades), key=lambda x: x.name)
    out = [replace(row, rank=i + 1) for i, row in enumerate(ranked)]
    return out + unranked


@dataclass(frozen=True, slots=True)
class SelectorRules:
    min_trades: int = 10
    top_n: int = 1
    boost_factor: float = 1.25
    max_weight: float = MAX_CAPITAL_WEIGHT  # a session's weight never exceeds it
    boost_min_profit_factor: float = 1.2
    pause_max_profit_factor: float = 0.8
    pause_min_drawdown_pct: float = 3.0
    resume_min_profit_factor: float = 1.2


@dataclass(frozen=True, slots=True)
class SelectorDecision:
    name: str
    action: str  # "boost" | "pause" | "resume"
    reason: str
    new_weight: float | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)


def select(results: Sequence[StrategyResults], rules: SelectorRules) -> list[SelectorDecision]:
    """The selector's decisions for this round (see the module docstring for the rules). Each
    reason names the figures that decided and the thresholds they were held against."""
    by_name = {r.name: r for r in results}
    decisions: list[SelectorDecision] = []
    ranking = [row for row in rank(results, rules.min_trades) if row.rank is not None]
    for row in ranking[: rules.top_n]:
        res = by_name[row.name]
        pf = row.profit_factor_net
        if res.status == "active" and pf is not None and pf >= rules.boost_min_profit_factor:
            new_weight = min(rules.max_weight, res.capital_weight * rules.boost_factor)
            if new_weight > res.capital_weight:
                capped = " (the cap)" if new_weight == rules.max_weight else ""
                decisions.append(
                    SelectorDecision(
                        row.name,
                        "boost",
                        f"rank {row.rank} of {len(ranking)} by net return, "
                        f"{row.net_return_pct:+.2f} % over {row.trades} trades, with a net "
                        f"profit factor of {_pf(pf)}, at least the "
                        f"{rules.boost_min_profit_factor:g} needed: risk per trade "
                        f"×{new_weight / res.capital_weight:.2f}, capital weight "
                        f"{res.capital_weight:.2f} -> {new_weight:.2f}{capped}",
                        new_weight,
                        {
                            "net_return_pct": row.net_return_pct,
                            "profit_factor_net": pf,
                            "trades": row.trades,
                            "boost_min_profit_factor": rules.boost_min_profit_factor,
                        },
                    )
                )
    for row in ranking:
        res = by_name[row.name]
        pf = row.profit_factor_net
        if (
            res.status == "active"
            and pf is not None
            and pf < rules.pause_max_profit_factor
            and row.max_drawdown_pct >= rules.pause_min_drawdown_pct
        ):
            decisions.append(
                SelectorDecision(
                    row.name,
                    "pause",
                    f"net profit factor {pf:.2f} over {row.trades} trades (net "
                    f"{row.net_return_pct:+.2f} %), under the {rules.pause_max_profit_factor:g} "
                    f"floor, and equity {row.max_drawdown_pct:.2f} % below its peak, past the "
                    f"{rules.pause_min_drawdown_pct:g} % limit: paused, it trades on in shadow "
                    "mode",
                    metrics={
                        "profit_factor_net": pf,
                        "max_drawdown_pct": row.max_drawdown_pct,
                        "net_return_pct": row.net_return_pct,
                        "trades": row.trades,
                        "pause_max_profit_factor": rules.pause_max_profit_factor,
                        "pause_min_drawdown_pct": rules.pause_min_drawdown_pct,
                    },
                )
            )
    for res in results:
        if res.status != "paused" or len(res.shadow_net_pnls) < rules.min_trades:
            continue
        pf = profit_factor(res.shadow_net_pnls)
        if pf is not None and pf >= rules.resume_min_profit_factor:
            decisions.append(
                SelectorDecision(
                    res.name,
                    "resume",
                    f"shadow net profit factor {_pf(pf)} over {len(res.shadow_net_pnls)} shadow "
                    f"trades, at least the {rules.resume_min_profit_factor:g} needed: resumed",
                    metrics={
                        "shadow_profit_factor_net": pf,
                        "shadow_trades": len(res.shadow_net_pnls),
                        "resume_min_profit_factor": rules.resume_min_profit_factor,
                    },
                )
            )
    return decisions


def _pf(value: float) -> str:
    return "∞ (no losing trade)" if math.isinf(value) else f"{value:.2f}"
