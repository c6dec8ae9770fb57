"""The strategy API: what a strategy declares, what it receives, what it returns.

A strategy is a small class with

* ``kind`` — its registry key (``"vwap_rsi"``); one line in ``strategies.core.catalog``
  registers it;
* ``Params`` — a pydantic model, the typed schema of its parameters. Defaults live in
  ``config/strategies.yaml``; the admin edits them; per-symbol overrides are merged over the
  defaults and the RESULT is validated again, so an override is applied in full or refused;
* ``inputs`` — what data it needs (timeframes, funding, open interest, order book, trades);
* ``decide(market)`` — one decision per closed candle: a :class:`Signal` or ``None``;
* ``should_exit(position, market)`` — optional early exit for an open position.

``decide`` receives a :class:`MarketSnapshot` whose candle arrays hold ONLY closed candles up to
``now_ms``. The snapshot is built by the runtime and the backtester from the same function
(:func:`snapshot_at`), so a strategy cannot see a forming candle, nor a higher-timeframe candle
that has not closed yet, in any engine.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from strategies.core.regime import RegimeThresholds
from strategies.core.series import Series, SeriesError
from trading.core.types import ExitReason, Side

MINUTE_MS = 60_000


class StrategyError(Exception):
    """Base class of strategy API errors."""


class UnknownStrategy(StrategyError):
    def __init__(self, kind: str, known: list[str]) -> None:
        super().__init__(f"unknown strategy kind {kind!r} (known: {', '.join(known)})")
        self.kind = kind


class StrategySkipped(StrategyError):
    """A strategy cannot decide because a declared input is missing; ``reason`` says which.

    The engine asks :meth:`Strategy.missing_inputs` before calling ``decide`` and records the
    reason (the strategy shows as *skipped*, never as silently idle); a strategy whose ``decide``
    is called anyway raises this.
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind} skipped: {reason}")
        self.kind = kind
        self.reason = reason


class InvalidParams(StrategyError):
    """Parameters that do not fit the strategy's schema; ``errors`` lists each problem."""

    def __init__(self, kind: str, errors: list[str]) -> None:
        super().__init__(f"invalid parameters for {kind}: " + "; ".join(errors))
        self.kind = kind
        self.errors = errors


class StrategyParams(BaseModel):
    """Base of every params schema: unknown keys are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class EntryType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class Role(StrEnum):
    SIGNAL = "signal"  # opens positions in its own ledger
    CONFIRMATION = "confirmation"  # only adjusts the scores of other strategies' signals


@dataclass(frozen=True, slots=True)
class Inputs:
    """Data a strategy declares it needs. Timeframes are those of the candles it reads."""

    timeframes: tuple[str, ...] = ("1m",)
    funding: bool = False
    open_interest: bool = False
    order_book: bool = False
    trades: bool = False


@dataclass(frozen=True, slots=True)
class OrderBook:
    """An L2 book snapshot: ``bids``/``asks`` are (N, 2) arrays of [price, qty], best first."""

    time_ms: int
    bids: np.ndarray
    asks: np.ndarray


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Everything known at ``now_ms`` (the close time of the last closed 1m candle).

    ``candles[tf]`` is an (N, 6) float array ``[open_time_ms, open, high, low, close, volume]``
    of CLOSED candles only; ``funding`` an (M, 2) array ``[time_ms, rate]`` of settled rates;
    ``open_interest`` an (K, 2) array ``[time_ms, open_interest_base]``; ``trades`` an (T, 3)
    array ``[time_ms, price, signed_qty]`` (positive = buyer was the taker).
    ``regime_rules`` are the thresholds the kernel classifies regimes with
    (``KernelConfig.regime``, from risk.yaml's ``regime:``): a strategy that reads a regime or
    a volatility level takes its thresholds from here, so it agrees with the kernel's label.
    """

    symbol: str
    now_ms: int
    candles: Mapping[str, np.ndarray]
    funding: np.ndarray | None = None
    open_interest: np.ndarray | None = None
    order_book: OrderBook | None = None
    trades: np.ndarray | None = None
    regime_rules: RegimeThresholds = field(default_factory=RegimeThresholds)
    memo: dict[Hashable, Any] | None = field(default=None, compare=False, repr=False)
    # Series -> its value after the last closed candle of its timeframe (the kernel's tracks)
    series_source: Callable[[Series], float] | None = field(default=None, compare=False, repr=False)

    def value(self, series: Series) -> float:
        """``series`` after the last closed candle of its timeframe at ``now_ms`` (NaN while
        it warms up): a lookup in the kernel's series tracks
        (:mod:`strategies.core.series`), computed over every candle the kernel holds since
        its first one, not over this snapshot's window. Only the series the strategy
        declares (:meth:`Strategy.series`) are kept: another raises ``SeriesError``.

        A snapshot built by hand (no kernel, no ``series_source``) computes the series over
        its own ``candles[series.timeframe]``, the candles it was given."""
        if self.series_source is not None:
            return self.series_source(series)
        rows = self.candles.get(series.timeframe)
        if rows is None:
            raise SeriesError(
                f"series {series.key} needs {series.timeframe} candles, which this snapshot "
                f"does not hold (timeframes {', '.join(self.candles)})"
            )
        return float(series.vectorised(rows)[-1]) if len(rows) else math.nan

    def derived[V](self, key: Hashable, compute: Callable[[], V]) -> V:
        """``compute()``, a value derived from ``candles`` ALONE and from the parameters in
        ``key`` (e.g. ``("adx", "5m", 14)`` for the last ADX(14) of the 5m candles).

        Cached for the snapshot's lifetime, and across every snapshot of the same candles at
        the same time and window when the builder reads a shared candle set (the runs of a
        parameter sweep compute each indicator value once). Never key a value on funding,
        open interest, trades or the book.
        """
        if self.memo is None:
            return compute()
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


@dataclass(frozen=True, slots=True)
class Signal:
    """A trade proposal. Prices in quote currency (USDT); ``score`` in [0, 1]."""

    side: Side
    entry_type: EntryType
    entry_price: float
    stop_loss: float
    take_profit: float
    score: float
    reasons: tuple[str, ...] = ()
    timeframe: str = "1m"

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise StrategyError(f"signal score {self.score} is outside [0, 1]")
        if self.entry_price <= 0 or self.stop_loss <= 0 or self.take_profit <= 0:
            raise StrategyError("signal prices must be positive")
        risk_side = (self.entry_price - self.stop_loss) * self.side.sign
        reward_side = (self.take_profit - self.entry_price) * self.side.sign
        if risk_side <= 0:
            raise StrategyError(
                f"{self.side.value} stop {self.stop_loss} is on the wrong side of entry "
                f"{self.entry_price}"
            )
        if reward_side <= 0:
            raise StrategyError(
                f"{self.side.value} target {self.take_profit} is on the wrong side of entry "
                f"{self.entry_price}"
            )

    @property
    def stop_distance_pct(self) -> float:
        return abs(self.entry_price - self.stop_loss) / self.entry_price * 100.0


@dataclass(frozen=True, slots=True)
class PositionView:
    """What ``should_exit`` knows of an open position."""

    symbol: str
    side: Side
    entry_price: float
    entry_time_ms: int
    stop_loss: float
    take_profit: float
    qty: float


@dataclass(frozen=True, slots=True)
class ExitDecision:
    reason: ExitReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ScoreAdjustment:
    """A confirmation filter's verdict on a signal: ``delta`` added to its score."""

    delta: float
    reasons: tuple[str, ...] = field(default=())


class Strategy(ABC):
    """Base class. Subclasses set ``kind``, ``Params``, ``inputs`` and implement ``decide``."""

    kind: ClassVar[str]
    Params: ClassVar[type[StrategyParams]]
    inputs: ClassVar[Inputs] = Inputs()
    role: ClassVar[Role] = Role.SIGNAL
    description: ClassVar[str] = ""

    def __init__(self, params: StrategyParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        if not isinstance(self.params, self.Params):
            raise StrategyError(
                f"{self.kind} expects {self.Params.__name__}, got {type(self.params).__name__}"
            )

    @abstractmethod
    def decide(self, market: MarketSnapshot) -> Signal | None:
        """Return a signal for the candle that just closed, or ``None``."""

    def series(self) -> tuple[Series, ...]:
        """The indicator series ``decide`` and ``should_exit`` read with
        :meth:`MarketSnapshot.value` (kind, timeframe, period, from the parameters): the
        kernel keeps each one up to date, O(1) per closed candle. Default: none."""
        return ()

    def missing_inputs(self, market: MarketSnapshot) -> str | None:
        """Why ``market`` lacks an input this strategy declared, or ``None`` when it has them all.

        An absent or empty funding / open-interest / trades array, an absent order book or a
        missing timeframe is reported in words, so the engine can show the strategy as skipped.
        """
        needs = self.inputs
        missing = [tf for tf in self.warmup_candles() if tf not in market.candles]
        if missing:
            return f"no {', '.join(missing)} candles in the snapshot"
        if needs.funding and (market.funding is None or len(market.funding) == 0):
            return "no funding-rate history"
        if needs.open_interest and (market.open_interest is None or len(market.open_interest) == 0):
            return "no open-interest history"
        if needs.order_book and market.order_book is None:
            return "no order book"
        if needs.trades and (market.trades is None or len(market.trades) == 0):
            return "no trades"
        return None

    def require_inputs(self, market: MarketSnapshot) -> None:
        """Raise :class:`StrategySkipped` when :meth:`missing_inputs` names a missing input."""
        missing = self.missing_inputs(market)
        if missing is not None:
            raise StrategySkipped(self.kind, missing)

    def should_exit(self, position: PositionView, market: MarketSnapshot) -> ExitDecision | None:
        """Return an exit decision for an open position, or ``None`` to keep it."""
        return None

    def confirm(self, signal: Signal, market: MarketSnapshot) -> ScoreAdjustment:
        """Confirmation filters override this; signal strategies never adjust others."""
        return ScoreAdjustment(0.0)

    def warmup_candles(self) -> dict[str, int]:
        """Closed candles per timeframe needed before ``decide`` can fire (default 200)."""
        return dict.fromkeys(self.inputs.timeframes, 200)


def format_validation_errors(exc: ValidationError) -> list[str]:
    """One readable line per pydantic error: ``key.path: message (got value)``."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(root)"
        got = err.get("input")
        suffix = "" if err["type"] == "missing" else f" (got {got!r})"
        lines.append(f"{path}: {err['msg']}{suffix}")
    return lines
