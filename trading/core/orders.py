"""Instrument rules and the ONE rounding of prices and quantities to what an exchange accepts.

Every price and quantity an order carries passes here: the sizing (:mod:`trading.core.sizing`),
the risk gate's minimum checks, the limit fill model's partial fills and the kernel's order
intents round with the same :class:`InstrumentRules`, so a backtest, the paper venue and the
live executor send the same numbers.

Rounding is exact in decimal terms: ``units = floor(value / step + 1e-9)`` (the tolerance
absorbs float noise: 0.3 / 0.1 = 2.9999999999999996 is 3 units, not 2), then
``round(units × step, decimals(step))``, so 0.1 + 0.2 rounded to a 0.1 step is 0.3, not
0.30000000000000004. A step of 0 means "no rounding".

Which way a price rounds is a risk decision, stated where it is taken (``round_price``'s
``toward``): an entry limit rounds to the passive side (a buy down, a sell up: never pay more
than the signal asked), a stop and a target round TOWARD the entry (a long's stop up, a short's
down), so the loss at the stop is never larger than the one the position was sized for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from trading.core.types import TradingCoreError, normalise_symbol, require_non_negative


class Rounding(StrEnum):
    """Direction a price is rounded to the tick: ``down`` (toward 0) or ``up``."""

    DOWN = "down"
    UP = "up"


def step_decimals(step: float) -> int:
    """Decimal places of ``step`` as written: 0.001 → 3, 0.5 → 1, 10 → 0, 0 → 0."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def round_to_step(value: float, step: float, rounding: Rounding = Rounding.DOWN) -> float:
    """``value`` rounded to a multiple of ``step`` (module docstring; 0 = no rounding).

    Examples: (0.12345, 0.001, down) → 0.123; (0.1 + 0.2, 0.1, down) → 0.3;
    (100.04, 0.1, up) → 100.1.
    """
    require_non_negative("rounding step", step)
    if step == 0:
        return value
    ratio = value / step
    units = math.floor(ratio + 1e-9) if rounding is Rounding.DOWN else math.ceil(ratio - 1e-9)
    return round(units * step, step_decimals(step))


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """What the exchange accepts for one contract (ccxt ``load_markets`` / ``config/assets.yaml``).

    ``price_tick``: smallest price increment (USDT); ``qty_step``: smallest quantity increment
    (base units, e.g. BTC); ``min_qty``: smallest order quantity (base units);
    ``min_notional_usdt``: smallest order value qty × price (USDT); ``max_leverage``: the
    exchange's highest leverage for the first margin tier (×). A tick or step of 0 rounds
    nothing (synthetic test instruments).
    """

    price_tick: float = 0.0
    qty_step: float = 0.0
    min_qty: float = 0.0
    min_notional_usdt: float = 0.0
    max_leverage: int = 125

    def __post_init__(self) -> None:
        for name in ("price_tick", "qty_step", "min_qty", "min_notional_usdt"):
            require_non_negative(name.replace("_", " "), getattr(self, name))
        if self.max_leverage < 1:
            raise TradingCoreError(f"max leverage must be at least 1×, got {self.max_leverage}")

    def round_price(self, price: float, toward: Rounding) -> float:
        """``price`` on the tick grid, rounded ``toward`` (see the module docstring for which
        way each price of an order goes). Example: tick 0.1, 64,123.47 down → 64,123.4."""
        return round_to_step(price, self.price_tick, toward)

    def round_qty(self, qty: float) -> float:
        """``qty`` rounded DOWN to the quantity step (an order never grows past its sizing).
        Example: step 0.001, 0.34749 → 0.347."""
        return round_to_step(qty, self.qty_step, Rounding.DOWN)

    def check_minimums(self, qty: float, price: float) -> str | None:
        """Why the exchange would refuse ``qty`` at ``price``, or ``None`` when it accepts it.

        Refused when qty ≤ 0, qty < ``min_qty`` or qty × price < ``min_notional_usdt``.
        Example (BTC, min 0.001 BTC and 5 USDT): 0.0001 BTC → below the minimum quantity;
        0.001 BTC at 4,000 = 4 USDT → below the minimum notional.
        """
        if qty <= 0 or qty < self.min_qty:
            return (
                f"order too small: {qty:g} is below the exchange minimum of {self.min_qty:g} "
                f"(quantity)"
            )
        notional = qty * price
        if notional < self.min_notional_usdt:
            return (
                f"order too small: {notional:.2f} USDT notional ({qty:g} at {price:g}) is below "
                f"the exchange minimum of {self.min_notional_usdt:g} USDT"
            )
        return None


class MissingInstrumentRules(TradingCoreError):
    """A symbol was to be traded without its exchange rules (tick, step, minimums)."""


def rules_for(rules: Mapping[str, InstrumentRules], symbol: str) -> InstrumentRules:
    """The rules of ``symbol`` in ``rules`` (keys compared normalised: ``BTC/USDT:USDT`` =
    ``BTCUSDT``); raises :class:`MissingInstrumentRules` when it has none."""
    wanted = normalise_symbol(symbol)
    for key, value in rules.items():
        if normalise_symbol(key) == wanted:
            return value
    raise MissingInstrumentRules(
        f"no market rules for {symbol}: load them from assets.yaml or the exchange "
        f"(price tick, quantity step, minimum quantity and notional, max leverage)"
    )


# The contract values of the bundled assets, as config/assets.yaml states them (a test checks
# that they agree). The default of ``KernelConfig.market_rules`` for callers that do not load
# markets (core tests, the benchmark); any other symbol must come with its own rules.
BUNDLED_ASSET_RULES: Mapping[str, InstrumentRules] = MappingProxyType(
    {
        "BTC/USDT:USDT": InstrumentRules(0.1, 0.001, 0.001, 5.0, 125),
        "ETH/USDT:USDT": InstrumentRules(0.01, 0.01, 0.01, 5.0, 100),
        "SOL/USDT:USDT": InstrumentRules(0.001, 0.1, 0.1, 5.0, 100),
    }
)
