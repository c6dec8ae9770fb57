"""Profit and loss of a position, in USDT.

    gross P&L  = sign × qty × (exit − entry)          sign +1 long, −1 short; qty in base units
    net P&L    = gross − entry fee − exit fee − funding
    fee share  = (entry fee + exit fee) / gross       only when gross > 0

``funding`` here is the funding COST of the trade (positive = paid, negative = received), i.e.
minus the sum of :func:`trading.core.funding.funding_payment` cash flows.

Worked example: long 0.5 BTC from 40,000 to 40,400 (+1 %): gross = 0.5 × 400 = 200 USDT;
maker entry 0.5 × 40,000 × 0.0002 = 4, taker exit 0.5 × 40,400 × 0.0006 = 12.12, funding paid 2
→ net = 200 − 4 − 12.12 − 2 = 181.88 USDT; fees are 16.12 / 200 = 8.06 % of gross.
"""

from __future__ import annotations

from trading.core.types import Side, require_non_negative, require_positive


def gross_pnl(side: Side, qty: float, entry_price: float, exit_price: float) -> float:
    """Price P&L before costs: ``sign × qty × (exit − entry)`` USDT.

    Example: short 2 ETH from 3,000 to 2,970 → −1 × 2 × (−30) = +60 USDT.
    """
    require_non_negative("quantity", qty)
    require_positive("entry price", entry_price)
    require_positive("exit price", exit_price)
    return side.sign * qty * (exit_price - entry_price)


def net_pnl(gross: float, entry_fee: float, exit_fee: float, funding: float) -> float:
    """``gross − entry_fee − exit_fee − funding`` USDT (funding as a cost: > 0 paid).

    Example: gross 200, fees 4 and 12.12, funding received 3 (funding = −3) → 186.88 USDT.
    """
    return gross - entry_fee - exit_fee - funding


def fees_share_of_gross(fees: float, gross: float) -> float | None:
    """Fees as a FRACTION of the gross P&L's size, ``fees / |gross|`` (0.4 = 40 %); ``None``
    only when gross is exactly 0 (no move to compare the fees with).

    Shown for losing trades too, where fees are the story: gross −50 USDT with fees 20 USDT →
    0.4 (the fees turned a loss of 50 into one of 70). Example of a winner: 20× leverage,
    +0.3 % move on 1,000 USDT margin: notional 20,000, gross 60, taker round trip
    20,000 × 0.0006 + 20,060 × 0.0006 = 24.036 → 24.036 / 60 = 0.4006 (the "fees are ~40 % of
    gross" of DESIGN §5).
    """
    if gross == 0:
        return None
    return fees / abs(gross)


def unrealised_pnl(side: Side, qty: float, entry_price: float, mark_price: float) -> float:
    """Open P&L at the mark price, before the exit fee: ``sign × qty × (mark − entry)`` USDT.

    This is the exchange's uPnL (Bitget values positions at mark, ref/bitget.md §3). Example:
    long 0.1 BTC from 100,000, mark 99,000 → −100 USDT.
    """
    return gross_pnl(side, qty, entry_price, mark_price)
