"""Position size from the stop: risk a fixed share of capital, counting what a stop really costs.

A stopped trade loses, per unit of base currency (USDT per BTC, say):

    cost_per_unit = |entry − stop|                           price distance
                  + stop × taker_rate                        exit fee (a stop is a market order)
                  + entry × rate(entry liquidity)            entry fee (maker for a limit entry)
                  + stop × slip (+ entry × slip if taker)    slippage estimate (fraction ``slip``)

    qty = capital × max_risk_pct / 100 / cost_per_unit,   rounded DOWN to the quantity step

so the loss at the stop, ``qty × cost_per_unit``, never exceeds ``capital × max_risk_pct / 100``.
Fees are taken at the entry and stop prices (the few-ppm effect of slippage on the fee itself is
ignored).

Worked example (ref/bitget.md fees): long BTC, entry 40,000, stop 39,800, capital 10,000 USDT,
risk 1 % → budget 100 USDT. Taker entry, slippage 0.05 %:
distance 200 + exit fee 39,800 × 0.0006 = 23.88 + entry fee 40,000 × 0.0006 = 24
+ slippage 39,800 × 0.0005 + 40,000 × 0.0005 = 19.9 + 20 = 39.9 → 287.78 USDT per BTC.
qty = 100 / 287.78 = 0.34749 → 0.347 BTC (step 0.001), notional 13,880 USDT,
risk 0.347 × 287.78 = 99.86 USDT.
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.core.fees import BITGET_VIP0, FeeSchedule, Liquidity
from trading.core.orders import BUNDLED_ASSET_RULES, InstrumentRules, rules_for
from trading.core.types import (
    Side,
    TradingCoreError,
    require_non_negative,
    require_positive,
)


class InvalidStop(TradingCoreError):
    """A stop on the wrong side of the entry (or at the entry)."""


class PositionTooSmall(TradingCoreError):
    """The risk budget buys less than the exchange's minimum order."""


# The rules used to be called market rules here; trading/views.py still imports the old names.
MarketRules = InstrumentRules


def market_rules_for(symbol: str) -> InstrumentRules:
    """The bundled rules of BTC/ETH/SOL (:data:`trading.core.orders.BUNDLED_ASSET_RULES`);
    raises :class:`trading.core.orders.MissingInstrumentRules` for any other symbol."""
    return rules_for(BUNDLED_ASSET_RULES, symbol)


@dataclass(frozen=True, slots=True)
class SizeResult:
    """A sized position. Prices and money in USDT, ``qty`` in base units."""

    qty: float
    entry_price: float
    notional_usdt: float  # qty × entry
    risk_usdt: float  # qty × cost_per_unit: the loss if the stop is hit
    max_risk_usdt: float  # capital × max_risk_pct / 100
    cost_per_unit: float
    stop_distance: float  # |entry − stop|
    entry_fee_per_unit: float
    exit_fee_per_unit: float
    slippage_per_unit: float
    raw_qty: float  # before step rounding and the notional cap
    capped_by_notional: bool

    @property
    def stop_distance_pct(self) -> float:
        """Stop distance as percent of entry: 200 / 40,000 × 100 = 0.5."""
        return self.stop_distance / self.entry_price * 100.0


def cost_per_unit(
    *,
    side: Side,
    entry_price: float,
    stop_price: float,
    fee_schedule: FeeSchedule = BITGET_VIP0,
    entry_liquidity: Liquidity = Liquidity.TAKER,
    slippage_fraction: float = 0.0005,
) -> tuple[float, float, float, float]:
    """``(cost_per_unit, entry_fee_per_unit, exit_fee_per_unit, slippage_per_unit)``, USDT/unit.

    See the module docstring for the formula. Raises :class:`InvalidStop` when the stop is not
    below a long's entry / above a short's entry.
    """
    require_positive("entry price", entry_price)
    require_positive("stop price", stop_price)
    require_non_negative("slippage estimate", slippage_fraction)
    distance = side.sign * (entry_price - stop_price)
    if distance <= 0:
        where = "below" if side is Side.LONG else "above"
        raise InvalidStop(
            f"a {side.value} stop must be {where} the entry: entry {entry_price:g}, "
            f"stop {stop_price:g}"
        )
    entry_fee = entry_price * fee_schedule.rate(entry_liquidity)
    exit_fee = stop_price * fee_schedule.taker_rate
    slippage = stop_price * slippage_fraction
    if entry_liquidity is Liquidity.TAKER:
        slippage += entry_price * slippage_fraction
    return distance + entry_fee + exit_fee + slippage, entry_fee, exit_fee, slippage


def size_position(
    *,
    side: Side,
    entry_price: float,
    stop_price: float,
    capital_usdt: float,
    max_risk_pct: float,
    fee_schedule: FeeSchedule = BITGET_VIP0,
    entry_liquidity: Liquidity = Liquidity.TAKER,
    slippage_fraction: float = 0.0005,
    rules: InstrumentRules | None = None,
    max_notional_usdt: float | None = None,
) -> SizeResult:
    """Size a position so that hitting the stop loses at most ``max_risk_pct`` % of capital.

    ``max_notional_usdt`` caps the position (e.g. margin budget × max leverage); a capped position
    risks less than the budget. The quantity is rounded down to ``rules``' step; raises
    :class:`PositionTooSmall` when it is below the exchange minimum quantity or notional
    (:meth:`InstrumentRules.check_minimums`, both numbers in the message).
    """
    require_positive("capital", capital_usdt)
    if not 0 < max_risk_pct <= 100:
        raise TradingCoreError(f"max risk per trade must be in (0, 100] %, got {max_risk_pct}")
    rules = rules if rules is not None else InstrumentRules()
    per_unit, entry_fee, exit_fee, slippage = cost_per_unit(
        side=side,
        entry_price=entry_price,
        stop_price=stop_price,
        fee_schedule=fee_schedule,
        entry_liquidity=entry_liquidity,
        slippage_fraction=slippage_fraction,
    )
    max_risk = capital_usdt * max_risk_pct / 100.0
    raw_qty = max_risk / per_unit
    qty = raw_qty
    capped = False
    if max_notional_usdt is not None and qty * entry_price > max_notional_usdt:
        qty = max_notional_usdt / entry_price
        capped = True
    qty = rules.round_qty(qty)
    refusal = rules.check_minimums(qty, entry_price)
    if refusal is not None:
        raise PositionTooSmall(
            f"risking {max_risk:.2f} USDT at {per_unit:.4g} USDT per unit: {refusal}"
        )
    notional = qty * entry_price
    return SizeResult(
        qty=qty,
        entry_price=entry_price,
        notional_usdt=notional,
        risk_usdt=qty * per_unit,
        max_risk_usdt=max_risk,
        cost_per_unit=per_unit,
        stop_distance=side.sign * (entry_price - stop_price),
        entry_fee_per_unit=entry_fee,
        exit_fee_per_unit=exit_fee,
        slippage_per_unit=slippage,
        raw_qty=raw_qty,
        capped_by_notional=capped,
    )
