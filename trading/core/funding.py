"""Funding of perpetual futures: who pays whom, how much, and when.

    funding payment (USDT) = −sign(side) × qty (base units) × mark price (USDT) × rate (fraction)

The result is the signed cash flow TO the position holder: positive = received, negative = paid.
With a positive rate longs pay shorts; with a negative rate shorts pay longs; the exchange keeps
nothing. Position value is taken at the MARK price and leverage plays no part (ref/bitget.md §2).

Worked example: long 0.1 BTC, mark 100,000 USDT, rate +0.01 % (0.0001):
0.1 × 100,000 × 0.0001 = 1 USDT, so the long's payment is −1 USDT and a short of the same size
receives +1 USDT.

Note on signs elsewhere: the ledger and :func:`trading.core.pnl.net_pnl` store a trade's
``funding`` as a COST (positive = paid), i.e. minus the sum of these payments, so that
``net = gross − fees − funding`` reads like every other cost.
"""

from __future__ import annotations

from trading.core.types import Side, TradingCoreError, require_non_negative, require_positive

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def funding_payment(side: Side, qty: float, mark_price: float, rate: float) -> float:
    """Signed funding cash flow to the holder, USDT (see the module docstring for the formula)."""
    require_non_negative("position quantity", qty)
    require_positive("mark price", mark_price)
    return -side.sign * qty * mark_price * rate


def settlement_times_ms(start_ms: int, end_ms: int, interval_h: int = 8) -> list[int]:
    """Funding settlement instants (ms, UTC) in ``(start_ms, end_ms]``.

    Settlements fall on multiples of ``interval_h`` hours counted from 00:00 UTC; the default 8 h
    gives 00:00, 08:00 and 16:00 UTC. A position held over the interval ``(start, end]`` pays at
    every returned instant: one opened exactly at 08:00:00.000 does not pay the 08:00 settlement,
    one still open at 08:00:00.000 does. ``interval_h`` must divide 24 (Bitget uses 1, 2, 4, 8).

    Example: start 2024-01-01 07:00 UTC (1704092400000), end 2024-01-01 16:00 UTC
    (1704124800000), 8 h → [1704096000000 (08:00), 1704124800000 (16:00)].
    """
    if interval_h <= 0 or 24 % interval_h:
        raise TradingCoreError(
            f"funding interval must be a whole number of hours dividing 24, got {interval_h} h"
        )
    if end_ms < start_ms:
        raise TradingCoreError(f"funding window ends ({end_ms}) before it starts ({start_ms})")
    step = interval_h * HOUR_MS
    first = (start_ms // step + 1) * step
    return list(range(first, end_ms + 1, step))
