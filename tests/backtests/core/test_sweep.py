from __future__ import annotations

import pytest

from backtests.core.sweep import DAY_MS, expand_grid, rank, walk_forward_windows


def test_the_grid_expands_to_every_combination_in_order() -> None:
    assert expand_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"},
    ]  # fmt: skip


def test_walk_forward_windows_roll_by_the_out_of_sample_length() -> None:
    """7 days, 3:2 → (d0–d3 | d3–d5), (d2–d5 | d5–d7)."""
    windows = walk_forward_windows(0, 7 * DAY_MS, 3, 2)
    assert [(w.in_start_ms, w.in_end_ms, w.out_end_ms) for w in windows] == [
        (0, 3 * DAY_MS, 5 * DAY_MS), (2 * DAY_MS, 5 * DAY_MS, 7 * DAY_MS),
    ]  # fmt: skip


def test_walk_forward_refuses_windows_longer_than_the_data() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        walk_forward_windows(0, 2 * DAY_MS, 3, 1)


def test_ranking_puts_runs_with_too_few_trades_last_whatever_their_pnl() -> None:
    rows = [{"trades": 2, "net_pnl": 900.0}, {"trades": 30, "net_pnl": 10.0},
            {"trades": 40, "net_pnl": 50.0}]  # fmt: skip
    ranked = rank(rows, min_trades=10)
    assert [r["net_pnl"] for r in ranked] == [50.0, 10.0, 900.0]
    assert not ranked[-1]["enough_trades"]
