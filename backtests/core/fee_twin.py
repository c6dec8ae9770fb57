"""The like-for-like fee comparison: a run's OWN trades with their fees taken out.

Re-running a strategy with a zero fee schedule is not the same orders: sizing follows the
current equity, so every order after the first differs, and the kill switch trips at other
times (or never). The "without fees" figure is therefore computed from the run itself, with
everything else held: the same sizes, fills, exits, funding and kill-switch decisions.

Per trade (USDT), with ``fees_i`` and ``liq_i`` from :func:`backtests.core.metrics.cost_split`
(a liquidation's forfeited margin is not a fee and stays):

    net_without_fees_i = net_i + fees_i            (= gross_i − funding_i − liq_i)

Equity curve: ``E'_t = E_t + Σ fees booked at or before t``. The ledger books an entry fee into
cash when the position opens and an exit fee when it closes, and equity ``E_t`` at a candle's
close time ``t`` includes every booking stamped at or before ``t`` (market entries at the
candle's open, limit fills, exits and closes at its close), so the fee booked at time ``b`` is
added from the first point with ``t ≥ b`` on. At the end (every position closed)
``E'_end = capital + Σ net_without_fees_i``.

Worked example: capital 10,000; one trade opens at t=1 (entry fee 6), closes at t=3 (exit fee
5.94, gross 100, funding 1, net 87.06); equity 9,994 (t=1), 10,020 (t=2), 10,087.06 (t=3) →
without fees 10,000 (t=1), 10,026 (t=2), 10,099 (t=3) = 10,000 + 100 − 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from backtests.core.metrics import cost_split
from trading.core.ledger import ClosedTrade

BASIS = "the same trades with their fees removed (same sizes, fills, exits and kill switch)"
RESIMULATED = (
    "re-simulated with zero fees: different orders than a fees-on run (sizing follows the "
    "equity, the kill switch trips at other times); not a like-for-like comparison"
)


@dataclass(frozen=True, slots=True)
class FeesRemoved:
    """A run's trades and equity curve with the fees taken out (see module docstring)."""

    trades: list[ClosedTrade]  # entry fee 0, exit fee = the liquidation loss (0 but for one)
    equity: np.ndarray  # USDT, at the run's times
    fees_removed: float  # Σ fees_i, USDT


def fees_removed(
    trades: Sequence[ClosedTrade],
    times_ms: np.ndarray,
    equity: np.ndarray,
    taker_rate: float | None,
) -> FeesRemoved:
    """``trades`` (one run's real ledger) and its ``equity`` at ``times_ms`` without fees.

    ``taker_rate``: the rate the ledger booked (fraction of notional), to split a liquidation's
    exit cost into its taker fee and its forfeited margin (:func:`cost_split`).
    """
    times = np.asarray(times_ms, dtype=np.int64)
    added = np.zeros(len(times), dtype=np.float64)
    out: list[ClosedTrade] = []
    total = 0.0
    for trade in trades:
        fees, liquidation = cost_split(trade, taker_rate)
        exit_fee_part = fees - trade.entry_fee
        out.append(
            replace(trade, entry_fee=0.0, exit_fee=liquidation, net_pnl=trade.net_pnl + fees)
        )
        total += fees
        for booked_ms, fee in ((trade.entry_time_ms, trade.entry_fee),
                               (trade.exit_time_ms, exit_fee_part)):  # fmt: skip
            first = int(np.searchsorted(times, booked_ms, side="left"))
            if first < len(added):
                added[first] += fee
    curve = np.asarray(equity, dtype=np.float64) + np.cumsum(added)
    return FeesRemoved(out, curve, total)
