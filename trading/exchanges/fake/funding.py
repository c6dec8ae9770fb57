"""The fake's funding settlements: every open position pays or receives funding at each
settlement time of the bundled funding file, booked as a Bitget account bill.

At a settlement time ``t`` with rate ``r`` (a fraction per interval, e.g. 0.0001 = 0.01 %) a
position of ``q`` base units at mark ``m`` (USDT) is charged ``amount = −sign × q × m × r``
USDT (sign +1 long, −1 short): a long pays a positive rate, a short receives it. Worked
example: long 0.5 BTC, mark 100,000, rate 0.0001 → amount = −5.00 USDT.

The amount moves the wallet balance (Bitget takes isolated funding from the position's margin
when the wallet cannot pay [U]; the fake's wallet always can) and is kept as a bill with
``businessType`` ``contract_settle_fee``, as ``GET /api/v2/mix/account/bill`` lists it (ccxt's
``fetch_funding_history``). Markets without a funding file settle nothing (no invented rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from trading.exchanges.fake.account import FakeAccount

BUSINESS_TYPE = "contract_settle_fee"


@dataclass(frozen=True, slots=True)
class Bill:
    """One funding settlement of one position: ``amount`` USDT (> 0 received, < 0 paid)."""

    bill_id: str
    symbol: str  # Bitget market id, BTCUSDT
    amount: float
    c_time: int  # the settlement time, ms


def settle_funding(account: FakeAccount, start_ms: int, end_ms: int) -> list[Bill]:
    """Book every settlement in ``(start_ms, end_ms]`` for the positions open now (the fake
    steps its market in small increments: a position opened within a step is charged at the
    step's settlement, as one opened a moment before it would be)."""
    bills: list[Bill] = []
    for symbol, position in sorted(account.positions.items()):
        rows = account.market.funding.get(symbol)
        if rows is None or position.total <= 0:
            continue
        lo = int(np.searchsorted(rows[:, 0], start_ms, side="right"))
        hi = int(np.searchsorted(rows[:, 0], end_ms, side="right"))
        for t, rate in rows[lo:hi]:
            mark = account.market.forming(symbol, int(t))
            if mark is None:
                continue
            amount = -position.sign * position.total * float(mark[4]) * float(rate)
            account.balance += amount
            bills.append(Bill(account.next_id(), symbol, amount, int(t)))
    account.bills.extend(bills)
    return bills


def bills_answer(account: FakeAccount, params: dict[str, Any]) -> dict[str, Any]:
    """``GET /api/v2/mix/account/bill``'s ``data``: the funding bills of ``symbol`` (or all)
    within ``[startTime, endTime]``, newest first, at most ``limit`` (100); another
    ``businessType`` than funding lists nothing (the fake books no other bill)."""
    from trading.exchanges.fake.market import fmt

    if params.get("businessType") not in (None, "", BUSINESS_TYPE):
        return {"bills": [], "endId": None}
    symbol = params.get("symbol") or None
    start = float(params.get("startTime") or 0)
    end = float(params.get("endTime") or float("inf"))
    limit = min(int(params.get("limit") or 100), 100)
    chosen = [
        b
        for b in reversed(account.bills)
        if symbol in (None, b.symbol) and start <= b.c_time <= end
    ][:limit]
    rows = [
        {
            "billId": b.bill_id,
            "symbol": b.symbol,
            "amount": fmt(round(b.amount, 8) + 0.0),
            "fee": "0",
            "feeByCoupon": "",
            "businessType": BUSINESS_TYPE,
            "coin": "USDT",
            "cTime": str(b.c_time),
        }
        for b in chosen
    ]
    return {"bills": rows, "endId": rows[-1]["billId"] if rows else None}
