"""Maintenance margin, liquidation price and the leverage that keeps liquidation beyond the stop.

Isolated liquidation price, Bitget's USDT-M estimator (ref/bitget.md §3):

    Liq = (M − S·E·d) / (S · (MMR + taker − d))
    long:  Liq = (E − M/S) / (1 − MMR − taker)      short: Liq = (E + M/S) / (1 + MMR + taker)

M = isolated margin (USDT) = notional / leverage, S = size (base units), E = entry price (USDT),
d = +1 long / −1 short, MMR = maintenance-margin rate of the position's tier (fraction),
taker = taker fee rate (fraction). Liquidation is triggered on the MARK price.

Worked example (ref): long 0.1 BTC at 100,000, 20×, MMR 0.4 %, taker 0.06 %: notional 10,000,
M = 500, M/S = 5,000 → Liq = 95,000 / 0.9954 = 95,439.02 USDT (−4.56 %); short: 105,000 / 1.0046
= 104,519.21 USDT. At Liq the whole isolated margin is lost (the rest goes to the insurance fund).

Cross margin: Bitget's closed forms could not be read; we APPROXIMATE a single cross position by
substituting X = available equity (wallet balance + other positions' uPnL − their maintenance
margin) for M in the isolated formula (ref §3, marked [D, U]). Treat it as an estimate.

Maintenance-margin tiers by position value (USDT), "standard" tier, from ref/bitget.md §3:

    BTCUSDT  0–150k 125× 0.40 % | 150k–900k 100× 0.50 % | 900k–3M 50× 1.00 %  Bitget 2025-05
    ETHUSDT  0–200k 150× 0.40 % | 200k–1M   100× 0.50 % | 1M–3M   75× 1.00 %  Bitget 2025-09-26
    SOLUSDT  0–50k  100× 0.50 % | 50k–100k   75× 0.80 % | 100k–1M 50× 1.00 %  mirror 2025-09-12

(article ids in ref/bitget.md §3: 12560603819706, 12560603838666, 12560603837608)

Any other symbol gets :data:`CONSERVATIVE_TIERS` (our own, NOT Bitget's: deliberately harsher).
Tiers change by announcement; the Django side should load live ones (``fetchMarketLeverageTiers``)
and pass them in via ``tiers=``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from trading.core.types import (
    MarginMode,
    Side,
    TradingCoreError,
    normalise_symbol,
    require_non_negative,
    require_positive,
)


class LiquidationBeforeStop(TradingCoreError):
    """No allowed leverage keeps the liquidation price safely beyond the stop."""


class LeverageNotAllowed(TradingCoreError):
    """The position needs more leverage than allowed (by the risk limits or the exchange tier)."""


class PositionBeyondTiers(TradingCoreError):
    """The position value exceeds the largest maintenance-margin tier we know for the symbol."""


@dataclass(frozen=True, slots=True)
class MarginTier:
    """One maintenance-margin tier: position value in (min, max] USDT."""

    min_notional_usdt: float
    max_notional_usdt: float
    max_leverage: int
    maintenance_margin_rate: float  # fraction: 0.004 = 0.40 %


BITGET_TIERS: dict[str, tuple[MarginTier, ...]] = {
    "BTCUSDT": (
        MarginTier(0, 150_000, 125, 0.004),
        MarginTier(150_000, 900_000, 100, 0.005),
        MarginTier(900_000, 3_000_000, 50, 0.01),
    ),
    "ETHUSDT": (
        MarginTier(0, 200_000, 150, 0.004),
        MarginTier(200_000, 1_000_000, 100, 0.005),
        MarginTier(1_000_000, 3_000_000, 75, 0.01),
    ),
    "SOLUSDT": (
        MarginTier(0, 50_000, 100, 0.005),
        MarginTier(50_000, 100_000, 75, 0.008),
        MarginTier(100_000, 1_000_000, 50, 0.01),
    ),
}

CONSERVATIVE_TIERS: tuple[MarginTier, ...] = (
    # For symbols the ref does not cover: at least twice the MMR and at most half the leverage
    # of the SOL table (the least liquid of the three), so estimates err towards liquidating early.
    MarginTier(0, 25_000, 50, 0.01),
    MarginTier(25_000, 100_000, 20, 0.025),
    MarginTier(100_000, 500_000, 10, 0.05),
)


def tiers_for(symbol: str) -> tuple[MarginTier, ...]:
    """Tier table of ``symbol`` (any spelling), or :data:`CONSERVATIVE_TIERS` if unknown."""
    return BITGET_TIERS.get(normalise_symbol(symbol), CONSERVATIVE_TIERS)


def tier_for(
    symbol: str, notional_usdt: float, tiers: Sequence[MarginTier] | None = None
) -> MarginTier:
    """The tier whose band holds ``notional_usdt`` (upper bound inclusive)."""
    require_non_negative("position value", notional_usdt)
    table = tuple(tiers) if tiers is not None else tiers_for(symbol)
    for tier in table:
        if notional_usdt <= tier.max_notional_usdt:
            return tier
    raise PositionBeyondTiers(
        f"{normalise_symbol(symbol)} position of {notional_usdt:,.0f} USDT exceeds the largest "
        f"maintenance-margin tier known ({table[-1].max_notional_usdt:,.0f} USDT)"
    )


def maintenance_margin_rate(
    symbol: str, notional_usdt: float, tiers: Sequence[MarginTier] | None = None
) -> float:
    """MMR (fraction) for a position value in USDT. Example: BTCUSDT 10,000 → 0.004."""
    return tier_for(symbol, notional_usdt, tiers).maintenance_margin_rate


def isolated_liquidation_price(
    side: Side,
    entry_price: float,
    qty: float,
    margin_usdt: float,
    maintenance_margin_rate: float,
    taker_rate: float = 0.0006,
) -> float:
    """Bitget's isolated liquidation price estimate, USDT (formula in the module docstring).

    A long whose margin covers the whole move to zero (e.g. 1×) returns 0.0: price alone cannot
    liquidate it. Margin at or below ``S × E × (MMR + taker)`` would be liquidated the moment it
    opens; that raises :class:`LeverageNotAllowed` (e.g. 95× leaves 1.05 % margin against
    1 % + 0.06 %).
    """
    require_positive("entry price", entry_price)
    require_positive("position size", qty)
    require_non_negative("margin", margin_usdt)
    require_non_negative("maintenance margin rate", maintenance_margin_rate)
    require_non_negative("taker fee rate", taker_rate)
    notional = qty * entry_price
    needed = notional * (maintenance_margin_rate + taker_rate)
    if margin_usdt <= needed:
        raise LeverageNotAllowed(
            f"{margin_usdt:,.2f} USDT margin on a {notional:,.2f} USDT position is "
            f"{margin_usdt / notional * 100:.2f} %, not above the "
            f"{(maintenance_margin_rate + taker_rate) * 100:.2f} % maintenance margin + closing "
            f"fee: it would be liquidated at once"
        )
    d = side.sign
    liq = (margin_usdt - qty * entry_price * d) / (qty * (maintenance_margin_rate + taker_rate - d))
    return max(0.0, liq)


def cross_liquidation_price(
    side: Side,
    entry_price: float,
    qty: float,
    available_equity_usdt: float,
    maintenance_margin_rate: float,
    taker_rate: float = 0.0006,
) -> float:
    """APPROXIMATE cross liquidation price: the isolated formula with M = available equity X.

    X = wallet balance + uPnL of other cross positions − their maintenance margin (USDT).
    Example: long 0.1 BTC at 100,000, X = 2,000, MMR 0.4 %, taker 0.06 %:
    (100,000 − 20,000) / 0.9954 = 80,369.70 USDT.
    """
    return isolated_liquidation_price(
        side, entry_price, qty, available_equity_usdt, maintenance_margin_rate, taker_rate
    )


def liquidation_price(
    *,
    symbol: str,
    side: Side,
    entry_price: float,
    qty: float,
    leverage: float,
    taker_rate: float = 0.0006,
    margin_mode: MarginMode = MarginMode.ISOLATED,
    available_equity_usdt: float | None = None,
    tiers: Sequence[MarginTier] | None = None,
) -> float:
    """Liquidation price for a position, picking the MMR from the tier of its entry notional.

    Isolated: M = qty × entry / leverage. Cross: M = ``available_equity_usdt`` (required).
    """
    require_positive("entry price", entry_price)
    require_positive("position size", qty)
    notional = qty * entry_price
    mmr = maintenance_margin_rate(symbol, notional, tiers)
    if margin_mode is MarginMode.CROSS:
        if available_equity_usdt is None:
            raise TradingCoreError("a cross-margin liquidation estimate needs the available equity")
        return cross_liquidation_price(
            side, entry_price, qty, available_equity_usdt, mmr, taker_rate
        )
    require_positive("leverage", leverage)
    return isolated_liquidation_price(side, entry_price, qty, notional / leverage, mmr, taker_rate)


def liquidation_distance_pct(side: Side, entry_price: float, liquidation_price: float) -> float:
    """Adverse move from entry to liquidation, percent of entry.

    long: (E − Liq) / E × 100; short: (Liq − E) / E × 100. Example: 100,000 → 95,439.02 long:
    4.561 %. A long that cannot be liquidated (Liq = 0) gives 100 %.
    """
    require_positive("entry price", entry_price)
    return side.sign * (entry_price - liquidation_price) / entry_price * 100.0


@dataclass(frozen=True, slots=True)
class LeverageChoice:
    """The chosen leverage and what follows from it. Money in USDT, distances in percent."""

    leverage: int
    margin_usdt: float  # notional / leverage
    notional_usdt: float
    liquidation_price: float
    liquidation_distance_pct: float
    stop_distance_pct: float
    maintenance_margin_rate: float
    margin_mode: MarginMode


def liquidation_is_beyond_stop(
    side: Side, liq: float, stop_price: float, entry_price: float, buffer_pct: float
) -> bool:
    """True when the liquidation ``liq`` lies beyond the stop by ``buffer_pct`` % of the entry
    (a long: ``liq ≤ stop − E × buffer_pct / 100``; a short: ``liq ≥ stop + …``)."""
    buffer = entry_price * buffer_pct / 100.0
    if side is Side.LONG:
        return liq <= stop_price - buffer
    return liq >= stop_price + buffer


def choose_leverage(
    *,
    symbol: str,
    side: Side,
    entry_price: float,
    stop_price: float,
    qty: float,
    capital_usdt: float,
    max_leverage: int,
    taker_rate: float = 0.0006,
    buffer_pct: float = 0.5,
    margin_mode: MarginMode = MarginMode.ISOLATED,
    tiers: Sequence[MarginTier] | None = None,
) -> LeverageChoice:
    """The LOWEST whole leverage whose liquidation lies beyond the stop by ``buffer_pct`` of entry.

    ``capital_usdt`` is the margin this position may use (its isolated margin budget, or in cross
    mode the available equity X). Leverage must be at least ``ceil(notional / capital)`` for the
    margin to fit, and at most ``min(max_leverage, tier max leverage)``. The liquidation must
    satisfy, for a long, ``Liq ≤ stop − E × buffer_pct / 100`` (short:
    ``Liq ≥ stop + E × buffer_pct / 100``): the buffer covers mark/last divergence and stop
    slippage.

    Example: long 0.1 BTC at 100,000 (notional 10,000), stop 96,000, capital 500, max 50×:
    needs ≥ 20×; at 20× Liq = 95,439.02 ≤ 96,000 − 500 = 95,500 → 20×, margin 500 USDT.
    With the stop at 95,800 the limit is 95,300, 95,439.02 is above it, and higher leverage only
    moves Liq closer: :class:`LiquidationBeforeStop`.
    """
    require_positive("entry price", entry_price)
    require_positive("stop price", stop_price)
    require_positive("position size", qty)
    require_positive("margin capital", capital_usdt)
    require_non_negative("liquidation buffer", buffer_pct)
    if side.sign * (entry_price - stop_price) <= 0:
        where = "below" if side is Side.LONG else "above"
        raise TradingCoreError(
            f"a {side.value} stop must be {where} the entry: entry {entry_price:g}, "
            f"stop {stop_price:g}"
        )
    name = normalise_symbol(symbol)
    notional = qty * entry_price
    tier = tier_for(symbol, notional, tiers)
    cap = min(max_leverage, tier.max_leverage)
    lowest = max(1, math.ceil(notional / capital_usdt - 1e-9))
    if lowest > cap:
        raise LeverageNotAllowed(
            f"{name} position of {notional:,.2f} USDT on {capital_usdt:,.2f} USDT of margin needs "
            f"{lowest}× leverage, above the {cap}× allowed"
        )
    stop_pct = side.sign * (entry_price - stop_price) / entry_price * 100.0
    first_liq = math.nan
    for leverage in range(lowest, cap + 1):
        if margin_mode is MarginMode.CROSS:
            liq = cross_liquidation_price(
                side, entry_price, qty, capital_usdt, tier.maintenance_margin_rate, taker_rate
            )
        else:
            liq = isolated_liquidation_price(
                side,
                entry_price,
                qty,
                notional / leverage,
                tier.maintenance_margin_rate,
                taker_rate,
            )
        if math.isnan(first_liq):
            first_liq = liq
        if liquidation_is_beyond_stop(side, liq, stop_price, entry_price, buffer_pct):
            return LeverageChoice(
                leverage=leverage,
                margin_usdt=notional / leverage,
                notional_usdt=notional,
                liquidation_price=liq,
                liquidation_distance_pct=liquidation_distance_pct(side, entry_price, liq),
                stop_distance_pct=stop_pct,
                maintenance_margin_rate=tier.maintenance_margin_rate,
                margin_mode=margin_mode,
            )
    limit = stop_price - side.sign * entry_price * buffer_pct / 100.0
    raise LiquidationBeforeStop(
        f"liquidation before stop: {side.value} {name} at {lowest}× (the lowest leverage the "
        f"{capital_usdt:,.2f} USDT margin allows) liquidates at {first_liq:,.2f} "
        f"({liquidation_distance_pct(side, entry_price, first_liq):.2f} % away), but the stop "
        f"at {stop_price:,.2f} ({stop_pct:.2f} % away) needs liquidation beyond {limit:,.2f} "
        f"({buffer_pct:g} % buffer)"
    )
