"""Shared vocabulary of the trading core: sides, exit reasons, margin modes, price bars, errors.

Money type: every price, quantity, fee, P&L and funding amount in ``trading.core`` is a Python
``float`` (IEEE-754 float64). Prices and P&L are in the quote currency (USDT), quantities in base
units (BTC, ETH, SOL; Bitget USDT-M contracts have contract size 1). float64 carries ~15-16
significant digits, so a 10,000 USDT account is exact to ~1e-12 USDT: far below the exchange's
own rounding (0.0001 USDT). Quantities are rounded to the exchange's step where an order is sized
(:mod:`trading.core.sizing`); nothing else rounds, so sums stay comparable across engines.

Percent convention: a name ending in ``_pct`` holds percent (``5.0`` = 5 %), except the slippage
estimate ``SlippageModel.estimate_pct`` which the product brief fixes as a fraction
(``0.0005`` = 0.05 %); rates (``maker_rate``, ``maintenance_margin_rate``, funding ``rate``) are
fractions (``0.0006`` = 0.06 %).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np


class TradingCoreError(ValueError):
    """Base class of every error the trading core raises; the message is meant for a trader."""


class InvalidCandle(TradingCoreError):
    """A candle whose prices are inconsistent (high below low, open outside the range...)."""


class Side(StrEnum):
    """Direction of a position. ``sign`` is +1 for a long, -1 for a short."""

    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Side.LONG else -1

    @property
    def opposite(self) -> Side:
        return Side.SHORT if self is Side.LONG else Side.LONG

    @property
    def open_order(self) -> OrderSide:
        """The order that opens this position: a long is opened by a buy."""
        return OrderSide.BUY if self is Side.LONG else OrderSide.SELL

    @property
    def close_order(self) -> OrderSide:
        """The order that closes this position: a long is closed by a sell."""
        return OrderSide.SELL if self is Side.LONG else OrderSide.BUY


class OrderSide(StrEnum):
    """Direction of one order. A buy pays more when slippage hits it, a sell receives less."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    """``limit`` rests in the book (maker), ``market`` takes liquidity (taker)."""

    LIMIT = "limit"
    MARKET = "market"


class MarginMode(StrEnum):
    ISOLATED = "isolated"
    CROSS = "cross"


class ExitReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    LIQUIDATION = "liquidation"
    SIGNAL_EXIT = "signal_exit"
    REGIME_CHANGE = "regime_change"
    KILL_SWITCH = "kill_switch"
    MANUAL = "manual"
    END_OF_DATA = "end_of_data"
    TIME_STOP = "time_stop"


@functools.lru_cache(maxsize=1024)
def normalise_symbol(symbol: str) -> str:
    """Exchange id of a USDT-M perpetual from any common spelling.

    ``"BTC/USDT:USDT"`` (ccxt unified), ``"BTC-USDT"`` (our group names) and ``"btcusdt"`` all give
    ``"BTCUSDT"`` (Bitget's id), so limits and tier tables are looked up one way only.
    """
    return symbol.split(":", 1)[0].replace("/", "").replace("-", "").upper()


@runtime_checkable
class CandleLike(Protocol):
    """Any candle object with these attributes (e.g. the type in ``trading.core.candles``)."""

    @property
    def open_time_ms(self) -> int: ...
    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...


@dataclass(frozen=True, slots=True)
class PriceBar:
    """One CLOSED candle's prices (USDT), keyed by its open time (ms since epoch, UTC)."""

    open_time_ms: int
    open: float
    high: float
    low: float
    close: float

    def __post_init__(self) -> None:
        prices = (self.open, self.high, self.low, self.close)
        if not all(math.isfinite(p) and p > 0 for p in prices):
            raise InvalidCandle(f"candle at {self.open_time_ms} has a non-positive price {prices}")
        if self.low > min(self.open, self.close) or self.high < max(self.open, self.close):
            raise InvalidCandle(
                f"candle at {self.open_time_ms} is inconsistent: open {self.open}, "
                f"high {self.high}, low {self.low}, close {self.close}"
            )

    @property
    def is_green(self) -> bool:
        """Close at or above open. A flat (doji) candle counts as green."""
        return self.close >= self.open

    @classmethod
    def of(cls, candle: CandleInput) -> PriceBar:
        """From a ``PriceBar``, a candle object, or a row ``[open_time_ms, o, h, l, c, volume]``."""
        if isinstance(candle, PriceBar):
            return candle
        # An array row has none of CandleLike's attributes; skip the (slow) protocol check.
        if not isinstance(candle, np.ndarray) and isinstance(candle, CandleLike):
            return cls(
                int(candle.open_time_ms),
                float(candle.open),
                float(candle.high),
                float(candle.low),
                float(candle.close),
            )
        if len(candle) < 5:
            raise InvalidCandle(
                f"a candle row needs [open_time_ms, open, high, low, close, ...], got {candle!r}"
            )
        return cls(
            int(candle[0]), float(candle[1]), float(candle[2]), float(candle[3]), float(candle[4])
        )


CandleInput = PriceBar | CandleLike | Sequence[float] | np.ndarray
"""A candle as a ``PriceBar``, a candle object, or a row ``[open_time_ms, o, h, l, c, volume]``."""


def require_positive(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number > 0, else raise with the quantity's name."""
    if not (math.isfinite(value) and value > 0):
        raise TradingCoreError(f"{name} must be a positive number, got {value}")
    return value


def require_non_negative(name: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise TradingCoreError(f"{name} must be zero or positive, got {value}")
    return value
