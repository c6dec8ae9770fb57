"""Slippage of orders that take liquidity (market entries, stops, closes).

Two sources, in order of preference (DESIGN §5):

1. An L2 order book: walk the levels the order consumes, best first,
   ``avg price = Σ(level price × qty taken at that level) / qty``; the part beyond the visible
   depth at the last level moved by the estimate (:meth:`SlippageModel.fill_price`).
2. Otherwise an estimate: ``fill = reference × (1 ± estimate_pct × m)`` with ``m = 1``, or
   ``high_vol_multiplier`` (default 2) in high volatility; ``+`` for a buy, ``−`` for a sell.

The rate is the same whichever way the order goes: an entry and an exit (stop, close) taken in
high volatility both pay ``estimate_pct × m``. Which book is fresh enough to walk, and when a
fill is "in high volatility", is the paper venue's rule (:mod:`strategies.core.kernel.venue`).

Slippage is always adverse: a buy fills at or above the reference, a sell at or below.
The slippage cost is ``|fill − reference| × qty`` in USDT. It is ALREADY inside the fill price, so
P&L computed from fill prices includes it once; the cost is reported for analysis only and must
never be subtracted again.

Worked example (estimate): buy 2 ETH, reference 2,000 USDT, estimate 0.0005 (0.05 %):
fill = 2,000 × 1.0005 = 2,001 USDT, cost = 1 × 2 = 2 USDT. In high volatility (× 2):
fill = 2,002, cost = 4 USDT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from trading.core.types import OrderSide, TradingCoreError, require_non_negative, require_positive

BookLevels = Sequence[tuple[float, float]]


class InsufficientDepth(TradingCoreError):
    """The visible order book holds less than the order's quantity."""


@dataclass(frozen=True, slots=True)
class BookWalk:
    """What a market order would get from the visible book: ``filled_qty`` may be < the order."""

    filled_qty: float
    cost_usdt: float  # Σ price × qty over the levels consumed
    levels_used: int
    worst_price: float

    @property
    def avg_price(self) -> float:
        return self.cost_usdt / self.filled_qty


def _walk(levels: BookLevels, qty: float) -> BookWalk:
    remaining = qty
    cost = 0.0
    used = 0
    worst = math.nan
    for price, size in levels:
        if remaining <= 0:
            break
        require_positive("order book price", price)
        require_non_negative("order book quantity", size)
        take = min(size, remaining)
        if take <= 0:
            continue
        cost += take * price
        remaining -= take
        used += 1
        worst = price
    # Float sums of level sizes can miss the order by ~1 ulp; treat that as fully filled.
    filled = qty if remaining <= qty * 1e-12 else qty - remaining
    return BookWalk(filled_qty=filled, cost_usdt=cost, levels_used=used, worst_price=worst)


def walk_book(levels: BookLevels, qty: float) -> tuple[float, int]:
    """Average fill price (USDT) and number of levels used by a market order of ``qty``.

    ``levels`` are the side the order consumes (asks for a buy, bids for a sell), best first,
    as ``[(price USDT, qty base), ...]``. Raises :class:`InsufficientDepth` if the visible book
    is thinner than ``qty``.

    Example: asks [(100, 1), (101, 2)], buy 2 → (100 × 1 + 101 × 1) / 2 = 100.5 USDT, 2 levels.
    """
    require_positive("order quantity", qty)
    walk = _walk(levels, qty)
    if walk.filled_qty < qty:
        raise InsufficientDepth(
            f"order book too thin: {qty:g} wanted, only {walk.filled_qty:g} visible "
            f"over {walk.levels_used} levels"
        )
    return walk.avg_price, walk.levels_used


@dataclass(frozen=True, slots=True)
class SlippedFill:
    """Price after adverse slippage (USDT) and the slippage cost (USDT, ≥ 0)."""

    price: float
    slippage_usdt: float
    levels_used: int = 0  # 0 when the estimate was used


@dataclass(frozen=True, slots=True)
class SlippageModel:
    """Adverse slippage for taker fills.

    ``estimate_pct`` is a FRACTION of the reference price (0.0005 = 0.05 %), applied when no book
    is given, multiplied by ``high_vol_multiplier`` in high volatility.
    """

    estimate_pct: float = 0.0005
    high_vol_multiplier: float = 2.0

    def __post_init__(self) -> None:
        require_non_negative("slippage estimate", self.estimate_pct)
        if not (math.isfinite(self.high_vol_multiplier) and self.high_vol_multiplier >= 1):
            raise TradingCoreError(
                f"high-volatility slippage multiplier must be ≥ 1, got {self.high_vol_multiplier}"
            )

    def fraction(self, high_volatility: bool = False) -> float:
        """Slippage as a fraction of price: 0.0005, or 0.001 in high volatility (defaults)."""
        return self.estimate_pct * (self.high_vol_multiplier if high_volatility else 1.0)

    def fill_price(
        self,
        side: OrderSide,
        reference_price: float,
        qty: float,
        book: BookLevels | None = None,
        high_volatility: bool = False,
    ) -> SlippedFill:
        """Fill price of a taker order of ``qty`` and its slippage cost vs ``reference_price``.

        With a ``book`` (the levels the order consumes, best first) the fill is the book walk's
        average. Documented fallback when the visible book is thinner than the order (Bitget's
        ``books15`` shows only 15 levels): the rest is assumed to fill at the worst visible level
        moved by the estimate (``worst × (1 ± fraction)``) — never better than what was seen.
        The result is never better than the reference (slippage ≥ 0).

        Example (book): sell 3 BTC, reference 50,000, bids [(49,990, 1), (49,980, 1)]:
        2 visible → 49,990 + 49,980; 1 more at 49,980 × (1 − 0.0005) = 49,955.01;
        avg = 149,925.01 / 3 = 49,975.00333; cost = (50,000 − 49,975.00333) × 3 = 74.99 USDT.
        """
        require_positive("reference price", reference_price)
        require_positive("order quantity", qty)
        frac = self.fraction(high_volatility)
        levels_used = 0
        if book is None:
            price = reference_price * (1 + side.sign * frac)
        else:
            walk = _walk(book, qty)
            levels_used = walk.levels_used
            missing = qty - walk.filled_qty
            cost = walk.cost_usdt
            if missing > 0:
                worst = walk.worst_price if walk.levels_used else reference_price
                cost += missing * worst * (1 + side.sign * frac)
            price = cost / qty
            # A stale book can show prices better than the reference; slippage is never a gain.
            price = (
                max(price, reference_price)
                if side is OrderSide.BUY
                else min(price, reference_price)
            )
        return SlippedFill(
            price=price,
            slippage_usdt=abs(price - reference_price) * qty,
            levels_used=levels_used,
        )
