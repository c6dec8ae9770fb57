"""Helpers the built-in strategies share: entry reference, ATR stop/target, volume ratio.

Entry-price convention (every engine: backtest, paper, live). A strategy decides when a
candle has CLOSED, at ``now_ms``; it cannot trade inside that candle any more. Its
``Signal.entry_price`` is the signal candle's close, a REFERENCE:

* ``EntryType.LIMIT`` — the engine rests a limit order at ``entry_price`` from the NEXT candle
  on; it fills only if a later candle trades through it (long: ``low <= entry_price``);
* ``EntryType.MARKET`` — the engine fills at the NEXT candle's open (plus slippage).

``stop_loss`` and ``take_profit`` are absolute prices computed from the reference; the engine
keeps them as they are (a market fill that opens beyond the stop is refused by the risk gate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from strategies.core import indicators
from strategies.core.base import EntryType, Signal, StrategyError
from strategies.core.params import ExitParams
from strategies.core.scoring import ScoreParts
from trading.core.candles import C, H, L, T, V, timeframe_ms
from trading.core.types import Side


def atr_bracket(
    side: Side, entry: float, atr_value: float, stop_atr_mult: float, target_atr_mult: float
) -> tuple[float, float]:
    """``(stop_loss, take_profit)``: ``entry ∓ stop_mult·ATR`` and ``entry ± target_mult·ATR``.

    Long at 100 with ATR 2, 1.5 / 2.0 ATRs → stop 97, target 104. Short: stop 103, target 96.
    """
    sign = side.sign
    return entry - sign * stop_atr_mult * atr_value, entry + sign * target_atr_mult * atr_value


def bracket_signal(
    side: Side,
    close: float,
    atr_value: float,
    params: ExitParams,
    timeframe: str,
    parts: ScoreParts,
    reasons: Sequence[str],
) -> Signal:
    """The signal of an ATR-bracket strategy: entry reference ``close``, stop and target from
    :func:`atr_bracket` with the params' multiples, score from ``parts``; the strategy's own
    ``reasons`` come first, then the bracket and the score breakdown."""
    stop, target = atr_bracket(side, close, atr_value, params.stop_atr_mult, params.target_atr_mult)
    return Signal(
        side=side,
        entry_type=entry_type(params.entry_type),
        entry_price=close,
        stop_loss=stop,
        take_profit=target,
        score=parts.score(),
        reasons=(
            *reasons,
            f"stop {price(stop)} / target {price(target)} = {params.stop_atr_mult:g} / "
            f"{params.target_atr_mult:g} ATR({params.atr_period}) {price(atr_value)}",
            parts.describe(),
        ),
        timeframe=timeframe,
    )


def last_atr(candles: np.ndarray, period: int) -> float:
    """Wilder ATR of the last candle (USDT), NaN while warming up."""
    if len(candles) <= period:
        return math.nan
    return float(indicators.atr(candles[:, H], candles[:, L], candles[:, C], period)[-1])


def volume_ratio(candles: np.ndarray, window: int) -> float:
    """Last candle's volume over the mean volume of the ``window`` candles BEFORE it.

    Volumes 10, 10, 10, 10 then 25 with window 4 → 25 / 10 = 2.5. NaN if the average is 0 or
    there are fewer than ``window + 1`` candles.
    """
    if len(candles) < window + 1:
        return math.nan
    average = float(np.mean(candles[-window - 1 : -1, V]))
    return float(candles[-1, V]) / average if average > 0 else math.nan


def just_closed(candles: np.ndarray, timeframe: str, now_ms: int) -> bool:
    """True when the last candle of ``timeframe`` closed exactly at ``now_ms``.

    A strategy decides once per closed candle of ITS timeframe: a 1h strategy asked at 12:05
    (the 5m close) sees the 11:00 candle again and must not repeat its 12:00 decision.
    """
    return len(candles) > 0 and int(candles[-1, T]) + timeframe_ms(timeframe) == now_ms


def decision_candles(
    market_candles: Mapping[str, np.ndarray], timeframe: str, kind: str, warmup: int, now_ms: int
) -> np.ndarray | None:
    """The ``timeframe`` candles when a decision is due now — at least ``warmup`` of them and
    the last one closed exactly at ``now_ms`` (:func:`just_closed`) — else ``None``."""
    candles = candles_of(market_candles, timeframe, kind)
    if len(candles) < warmup or not just_closed(candles, timeframe, now_ms):
        return None
    return candles


def entry_type(value: str) -> EntryType:
    return EntryType(value)


def candles_of(market_candles: Mapping[str, np.ndarray], timeframe: str, kind: str) -> np.ndarray:
    """The snapshot's candles for ``timeframe``; a missing timeframe is a wiring error."""
    try:
        return market_candles[timeframe]
    except KeyError:
        raise StrategyError(
            f"{kind} needs {timeframe} candles but the snapshot has none: build it with the "
            f"timeframes of warmup_candles()"
        ) from None


def price(value: float) -> str:
    """A price for a reason string: 104,230.5 → '104,230.50'."""
    return f"{value:,.2f}" if value >= 100 else f"{value:,.6g}"
