"""Trading fees: the one rule every engine (backtest, paper, live) charges with.

    fee (USDT) = qty (base units) × fill price (USDT per unit) × rate (fraction)

Bitget charges the fee on the filled notional, not on margin, so leverage does not change it
(ref/bitget.md §1). Worked example (Bitget's own): 1 BTC filled at 40,000 USDT is a 40,000 USDT
notional; taker 40,000 × 0.0006 = 24 USDT, maker 40,000 × 0.0002 = 8 USDT.

Each fill is charged exactly once, when it happens: the entry fee at the entry fill and the exit
fee at the exit fill. :class:`trading.core.ledger.Ledger` is the only caller that books fees, so no
engine can add a second entry fee on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from trading.core.types import TradingCoreError, require_non_negative, require_positive


class Liquidity(StrEnum):
    """``maker``: our resting limit order was hit. ``taker``: we crossed the spread."""

    MAKER = "maker"
    TAKER = "taker"


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rates as fractions of notional. Default: Bitget USDT-M VIP0, maker 0.02 %, taker 0.06 %.

    Round trips at these rates (fractions of notional): taker+taker 0.0012 (0.12 %), maker+taker
    0.0008 (0.08 %), maker+maker 0.0004 (0.04 %). A negative maker rate (a rebate) is allowed as
    long as it does not exceed the taker rate in size.
    """

    maker_rate: float = 0.0002
    taker_rate: float = 0.0006

    def __post_init__(self) -> None:
        if not (math.isfinite(self.maker_rate) and math.isfinite(self.taker_rate)):
            raise TradingCoreError("fee rates must be finite numbers")
        if self.taker_rate < 0:
            raise TradingCoreError(f"taker fee rate cannot be negative, got {self.taker_rate}")
        if self.maker_rate < -self.taker_rate:
            raise TradingCoreError(
                f"maker rebate {self.maker_rate} is larger than the taker fee {self.taker_rate}"
            )

    def rate(self, liquidity: Liquidity) -> float:
        """The rate (fraction of notional) charged on a fill of this liquidity."""
        return self.maker_rate if liquidity is Liquidity.MAKER else self.taker_rate


BITGET_VIP0 = FeeSchedule()


def fee_for_fill(
    qty: float, price: float, liquidity: Liquidity, schedule: FeeSchedule = BITGET_VIP0
) -> float:
    """Fee in USDT for one fill: ``qty × price × rate(liquidity)``.

    qty in base units (>= 0), price in USDT (> 0). Example: 0.5 ETH at 3,000 USDT as taker:
    0.5 × 3,000 × 0.0006 = 0.9 USDT; as maker 0.5 × 3,000 × 0.0002 = 0.3 USDT.
    """
    require_non_negative("fill quantity", qty)
    require_positive("fill price", price)
    return qty * price * schedule.rate(liquidity)
