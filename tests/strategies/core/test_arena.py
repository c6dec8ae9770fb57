"""Arena ranking and the selector's rules, with hand-worked numbers."""

from __future__ import annotations

import math

import pytest

from strategies.core.arena import (
    SelectorRules,
    StrategyResults,
    per_trade_sharpe,
    profit_factor,
    rank,
    select,
)


def results(name, pnls, *, dd=1.0, status="active", weight=1.0, shadow=()):
    return StrategyResults(
        name=name,
        initial_capital_usdt=10_000.0,
        equity_usdt=10_000.0 + sum(pnls),
        net_pnls=tuple(pnls),
        max_drawdown_pct=dd,
        status=status,
        capital_weight=weight,
        shadow_net_pnls=tuple(shadow),
    )


def test_profit_factor_is_gains_over_losses():
    """Gains 30 + 10 = 40, losses 20: PF = 2.0; no loss with gains = inf; nothing = None."""
    assert profit_factor([30.0, -20.0, 10.0]) == pytest.approx(2.0)
    assert profit_factor([5.0]) == math.inf
    assert profit_factor([]) is None


def test_per_trade_sharpe_scales_with_the_square_root_of_trades():
    """Returns 0.001, 0.003 on 10k: mean 0.002, sample std 0.0014142; × sqrt(2) = 2.0."""
    assert per_trade_sharpe([10.0, 30.0], 10_000.0) == pytest.approx(2.0)


def test_strategies_under_the_minimum_trade_count_are_unranked_and_listed_last():
    table = rank(
        [results("lucky", [500.0] * 3), results("steady", [20.0, -10.0] * 6)], min_trades=10
    )
    assert [(r.name, r.rank) for r in table] == [("steady", 1), ("lucky", None)]
    assert table[0].net_return_pct == pytest.approx(0.6)  # 6 × 10 net = 60 on 10 000
    assert table[1].trades == 3


def test_the_selector_boosts_the_best_and_pauses_the_worst_with_reasons():
    rules = SelectorRules(min_trades=4)
    decisions = select(
        [
            results("best", [40.0, -10.0, 30.0, 20.0]),
            results("worst", [-50.0, 10.0, -60.0, -40.0], dd=4.0),
            results("new", [5.0]),
        ],
        rules,
    )
    by = {(d.name, d.action): d for d in decisions}
    assert by[("best", "boost")].new_weight == pytest.approx(1.25)
    assert "capital weight 1.00 -> 1.25" in by[("best", "boost")].reason
    assert "shadow mode" in by[("worst", "pause")].reason
    assert not any(d.name == "new" for d in decisions)


def test_a_paused_strategy_resumes_when_its_shadow_trades_recover():
    rules = SelectorRules(min_trades=4)
    paused = results("p", [-10.0] * 5, status="paused", shadow=[30.0, -10.0, 20.0, 5.0])
    decisions = select([paused], rules)
    assert [(d.name, d.action) for d in decisions] == [("p", "resume")]
    assert "5.50" in decisions[0].reason  # shadow PF = 55 / 10
