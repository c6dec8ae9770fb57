"""Fill models: how much of an order fills, at what price, with which fee.

Limit orders (maker). A resting limit order at ``L`` fills at ``L`` (never better: resting orders
trade at their own price) and only if the candle's price reaches it:

* buy at L:  ``low < L``  trades THROUGH → fill probability ``base_fill_probability``;
             ``low == L`` only touches → probability ``base × touch_probability_factor``
             (the queue at a touched level rarely clears); ``low > L`` → no fill.
* sell at L: mirror image with the candle's high.

How much fills models the queue at ``L``: the deeper the price trades through, the more of the
queue ahead of us is consumed. With ``depth = |L − extreme| / L`` (fraction of price):

    filled fraction = f_min + (1 − f_min) × min(1, depth / queue_clear_depth_pct)

(``f_min`` = ``min_fill_fraction``)

so a touch fills ``min_fill_fraction`` of the order and a trade-through of
``queue_clear_depth_pct`` (default 0.0005 = 0.05 %) or more fills all of it. The filled quantity is
rounded DOWN to the quantity step (:func:`trading.core.orders.round_to_step`, the instrument's
``qty_step``); the remainder is reported as unfilled.

Randomness is explicit: pass a seeded ``numpy.random.Generator`` or a ``draw`` in [0, 1); the order
fills when ``draw < probability``. Same inputs + same draw → same fill, in every engine.

Worked example: buy 1 BTC at 40,000, candle low 39,990 (depth 10 / 40,000 = 0.00025), defaults
(base 0.8, min fraction 0.25, clear depth 0.0005), draw 0.5 < 0.8 → fills
0.25 + 0.75 × 0.5 = 0.625 BTC at 40,000 as maker, fee 0.625 × 40,000 × 0.0002 = 5 USDT,
unfilled 0.375 BTC.

Market orders and triggered stops take liquidity: taker fee plus adverse slippage
(:mod:`trading.core.slippage`). A stop whose price was gapped over triggers at the first price
traded beyond it — the candle's open — not at the stop price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trading.core.fees import BITGET_VIP0, FeeSchedule, Liquidity, fee_for_fill
from trading.core.orders import round_to_step
from trading.core.slippage import BookLevels, SlippageModel
from trading.core.types import (
    CandleInput,
    OrderSide,
    PriceBar,
    TradingCoreError,
    require_non_negative,
    require_positive,
)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution: ``qty`` base units at ``price`` USDT; ``fee``, ``slippage_usdt`` in USDT."""

    qty: float
    price: float
    liquidity: Liquidity
    fee: float
    slippage_usdt: float = 0.0

    @property
    def notional_usdt(self) -> float:
        return self.qty * self.price


@dataclass(frozen=True, slots=True)
class LimitFillResult:
    """Outcome of a limit order over one candle; ``fill`` is ``None`` when nothing filled."""

    requested_qty: float
    fill: Fill | None
    unfilled_qty: float
    probability: float  # chance of a fill this candle, after the touch reduction


@dataclass(frozen=True, slots=True)
class LimitFillModel:
    """Probabilistic, queue-aware fill model for resting limit orders (see module docstring)."""

    base_fill_probability: float = 0.8
    touch_probability_factor: float = 0.25
    queue_clear_depth_pct: float = 0.0005  # fraction of price, like the slippage estimate
    min_fill_fraction: float = 0.25

    def __post_init__(self) -> None:
        for name in ("base_fill_probability", "touch_probability_factor", "min_fill_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise TradingCoreError(f"{name} must lie in [0, 1], got {value}")
        require_positive("queue clear depth", self.queue_clear_depth_pct)

    def fill_probability(self, side: OrderSide, limit_price: float, bar: PriceBar) -> float:
        """Chance that a limit order at ``limit_price`` fills during ``bar``."""
        extreme = bar.low if side is OrderSide.BUY else bar.high
        through = extreme < limit_price if side is OrderSide.BUY else extreme > limit_price
        if through:
            return self.base_fill_probability
        if extreme == limit_price:
            return self.base_fill_probability * self.touch_probability_factor
        return 0.0

    def filled_fraction(self, side: OrderSide, limit_price: float, bar: PriceBar) -> float:
        """Fraction of the order filled once it fills (queue model, see module docstring)."""
        extreme = bar.low if side is OrderSide.BUY else bar.high
        depth = max(0.0, side.sign * (limit_price - extreme) / limit_price)
        return self.min_fill_fraction + (1.0 - self.min_fill_fraction) * min(
            1.0, depth / self.queue_clear_depth_pct
        )

    def fill(
        self,
        side: OrderSide,
        limit_price: float,
        qty: float,
        candle: CandleInput,
        *,
        rng: np.random.Generator | None = None,
        draw: float | None = None,
        fee_schedule: FeeSchedule = BITGET_VIP0,
        qty_step: float = 0.0,
    ) -> LimitFillResult:
        """Simulate a resting limit order over one CLOSED candle that started after it was placed.

        Exactly one of ``rng`` (seeded generator, one ``random()`` call) or ``draw`` is required.
        """
        require_positive("limit price", limit_price)
        require_positive("order quantity", qty)
        if rng is not None and draw is None:
            u = float(rng.random())
        elif draw is not None and rng is None:
            u = draw
        else:
            raise TradingCoreError("pass exactly one of a seeded rng or an explicit draw")
        if not 0.0 <= u < 1.0:
            raise TradingCoreError(f"a fill draw must lie in [0, 1), got {u}")
        bar = PriceBar.of(candle)
        probability = self.fill_probability(side, limit_price, bar)
        if u >= probability:
            return LimitFillResult(qty, None, qty, probability)
        filled = round_to_step(qty * self.filled_fraction(side, limit_price, bar), qty_step)
        filled = min(filled, qty)
        if filled <= 0:
            return LimitFillResult(qty, None, qty, probability)
        fee = fee_for_fill(filled, limit_price, Liquidity.MAKER, fee_schedule)
        return LimitFillResult(
            requested_qty=qty,
            fill=Fill(filled, limit_price, Liquidity.MAKER, fee),
            unfilled_qty=max(0.0, qty - filled),
            probability=probability,
        )


def market_fill(
    side: OrderSide,
    reference_price: float,
    qty: float,
    *,
    fee_schedule: FeeSchedule = BITGET_VIP0,
    slippage: SlippageModel | None = None,
    book: BookLevels | None = None,
    high_volatility: bool = False,
) -> Fill:
    """A market order: fills in full as taker at the slipped price; fee on the slipped notional.

    Example: buy 1 BTC, reference 40,000, estimate 0.05 % → 40,020 USDT, slippage 20 USDT,
    fee 40,020 × 0.0006 = 24.012 USDT.
    """
    model = slippage if slippage is not None else SlippageModel()
    slipped = model.fill_price(side, reference_price, qty, book, high_volatility)
    fee = fee_for_fill(qty, slipped.price, Liquidity.TAKER, fee_schedule)
    return Fill(qty, slipped.price, Liquidity.TAKER, fee, slipped.slippage_usdt)


def stop_trigger_price(side: OrderSide, stop_price: float, open_price: float) -> float:
    """Price at which a stop order becomes a market order, given the candle's open.

    A sell stop (closing a long) below the market triggers at the stop, unless the candle opened
    at or below it — a gap — in which case the first available price is the open:
    ``min(stop, open)`` for a sell, ``max(stop, open)`` for a buy.
    Example: long stopped at 99, candle opens at 97 → the stop fills from 97, not 99.
    """
    require_positive("stop price", stop_price)
    require_non_negative("open price", open_price)
    return min(stop_price, open_price) if side is OrderSide.SELL else max(stop_price, open_price)
