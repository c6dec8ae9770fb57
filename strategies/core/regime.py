"""Market regime (ranging / trending up / trending down) and volatility level per closed candle.

Trend rule, from Wilder's ADX and directional indicators (``indicators.adx``):

* ADX ≥ ``adx_trend`` → TRENDING_UP when +DI > -DI, TRENDING_DOWN when -DI > +DI
  (equal DIs keep the previous regime);
* ADX < ``adx_range`` → RANGING;
* ``adx_range`` ≤ ADX < ``adx_trend`` (the hysteresis band) → the previous regime is kept, so a
  trend is not dropped and re-entered on every wobble of ADX around one threshold; but a trend
  whose DIs have flipped (-DI > +DI in an up trend, +DI > -DI in a down trend) becomes RANGING,
  and the first classified candle, when it falls in the band, is RANGING;
* before ADX exists (2 × adx_period - 1 candles) → UNKNOWN: a strategy that needs a ranging
  market must not trade during warm-up.

Volatility rule: NATR = 100 × ATR(atr_period) / close (ATR in % of price, so months of price
drift do not read as a change of volatility) is ranked among its last
``atr_percentile_window`` values (itself included): rank = 100 × count(≤ current) / window.
rank ≥ ``high_vol_percentile`` → HIGH, rank ≤ ``low_vol_percentile`` → LOW, else NORMAL;
UNKNOWN until atr_period + atr_percentile_window - 1 candles exist.

``classify_regime`` (whole arrays, for backtests) and ``RegimeTracker`` (one closed candle at a
time, for live trading) give identical results.
"""

from __future__ import annotations

import math
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from strategies.core import recursions
from strategies.core.incremental import ADX, ATR, PercentileRank
from strategies.core.indicators import (
    adx,
    atr,
    percentile_rank,
    percentile_rank_last,
)
from trading.core.candles import CANDLE_COLUMNS, C, H, L

FloatArray = NDArray[np.float64]
CodeArray = NDArray[np.int8]


class Regime(IntEnum):
    """Trend state of the market on a closed candle."""

    UNKNOWN = 0
    RANGING = 1
    TRENDING_UP = 2
    TRENDING_DOWN = 3


class Volatility(IntEnum):
    """Volatility level of the market on a closed candle, from the ATR percentile."""

    UNKNOWN = 0
    LOW = 1
    NORMAL = 2
    HIGH = 3


@dataclass(frozen=True, slots=True)
class RegimeThresholds:
    """Parameters of the regime rule (ADX in points 0..100, percentiles 0..100, periods in
    candles of the timeframe classified)."""

    adx_trend: float = 25.0
    adx_range: float = 20.0
    atr_period: int = 14
    adx_period: int = 14
    atr_percentile_window: int = 500
    high_vol_percentile: float = 80.0
    low_vol_percentile: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.adx_range <= self.adx_trend <= 100.0:
            raise ValueError(
                f"need 0 ≤ adx_range ≤ adx_trend ≤ 100, got adx_range={self.adx_range}, "
                f"adx_trend={self.adx_trend}"
            )
        if not 0.0 <= self.low_vol_percentile < self.high_vol_percentile <= 100.0:
            raise ValueError(
                f"need 0 ≤ low_vol_percentile < high_vol_percentile ≤ 100, got "
                f"{self.low_vol_percentile} and {self.high_vol_percentile}"
            )
        for name in ("atr_period", "atr_percentile_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.adx_period < 2:
            raise ValueError(f"adx_period must be ≥ 2, got {self.adx_period}")


@dataclass(frozen=True, slots=True)
class RegimeSnapshot:
    """Regime of one closed candle with the numbers behind it."""

    regime: Regime
    volatility: Volatility
    adx: float
    plus_di: float
    minus_di: float
    atr: float
    atr_percentile: float


@dataclass(frozen=True, slots=True)
class RegimeState:
    """Per-candle regime arrays, aligned with the candles classified.

    ``regime`` and ``volatility`` hold ``Regime`` / ``Volatility`` codes (int8);
    ``atr`` is in price units, ``atr_percentile`` 0..100 (NaN during warm-up).
    """

    regime: CodeArray
    volatility: CodeArray
    adx: FloatArray
    plus_di: FloatArray
    minus_di: FloatArray
    atr: FloatArray
    atr_percentile: FloatArray

    def __len__(self) -> int:
        return len(self.regime)

    def at(self, index: int) -> RegimeSnapshot:
        """The snapshot of candle ``index`` (negative indexes count from the end)."""
        return RegimeSnapshot(
            regime=Regime(int(self.regime[index])),
            volatility=Volatility(int(self.volatility[index])),
            adx=float(self.adx[index]),
            plus_di=float(self.plus_di[index]),
            minus_di=float(self.minus_di[index]),
            atr=float(self.atr[index]),
            atr_percentile=float(self.atr_percentile[index]),
        )


def _volatility_codes(percentile: FloatArray, thresholds: RegimeThresholds) -> CodeArray:
    codes = np.full(len(percentile), Volatility.NORMAL, dtype=np.int8)
    codes[percentile >= thresholds.high_vol_percentile] = Volatility.HIGH
    codes[percentile <= thresholds.low_vol_percentile] = Volatility.LOW
    codes[np.isnan(percentile)] = Volatility.UNKNOWN
    return codes


def classify_regime(candles: ArrayLike, thresholds: RegimeThresholds | None = None) -> RegimeState:
    """Classify every closed candle of a ``(N, 6)`` candle array (see the module docstring).

    Vectorised (numpy over all candles; see ``regimes_from_directional`` for the hysteresis).
    """
    rules = thresholds or RegimeThresholds()
    array = np.asarray(candles, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != CANDLE_COLUMNS:
        raise ValueError(
            f"candles must have shape (N, 6) [open_time_ms, open, high, low, close, volume], "
            f"got {array.shape}"
        )
    high, low, close = array[:, H], array[:, L], array[:, C]
    adx_values, plus_di, minus_di = adx(high, low, close, rules.adx_period)
    atr_values = atr(high, low, close, rules.atr_period)
    percentile = percentile_rank(100.0 * atr_values / close, rules.atr_percentile_window)
    return RegimeState(
        regime=regimes_from_directional(adx_values, plus_di, minus_di, rules),
        volatility=_volatility_codes(percentile, rules),
        adx=adx_values,
        plus_di=plus_di,
        minus_di=minus_di,
        atr=atr_values,
        atr_percentile=percentile,
    )


def last_regime(
    candles: np.ndarray,
    thresholds: RegimeThresholds | None = None,
    directional: tuple[FloatArray, FloatArray, FloatArray] | None = None,
) -> tuple[Regime, Volatility]:
    """``classify_regime(candles, thresholds).at(-1)``'s regime and volatility, computing only
    what they need: the trend rule over the whole array (its hysteresis reaches back), and
    the volatility of the last candle (:func:`last_volatility`).
    ``directional`` = ``adx(high, low, close, adx_period)`` of these candles when the caller
    already has it (the same arrays ``classify_regime`` computes)."""
    rules = thresholds or RegimeThresholds()
    high, low, close = candles[:, H], candles[:, L], candles[:, C]
    adx_values, plus_di, minus_di = directional or adx(high, low, close, rules.adx_period)
    regime = Regime(int(regimes_from_directional(adx_values, plus_di, minus_di, rules)[-1]))
    return regime, last_volatility(candles, rules)[0]


def last_volatility(
    candles: np.ndarray, thresholds: RegimeThresholds | None = None
) -> tuple[Volatility, float]:
    """``classify_regime(candles, thresholds).at(-1)``'s volatility and ATR percentile (0..100,
    NaN while the window is shorter than ``atr_period + atr_percentile_window``), ranking the
    last candle's ATR % only (:func:`indicators.percentile_rank_last`, bit for bit)."""
    rules = thresholds or RegimeThresholds()
    if len(candles) < rules.atr_period + rules.atr_percentile_window:
        return Volatility.UNKNOWN, math.nan
    high, low, close = candles[:, H], candles[:, L], candles[:, C]
    atr_values = atr(high, low, close, rules.atr_period)
    last = percentile_rank_last(100.0 * atr_values / close, rules.atr_percentile_window)
    return Volatility(int(_volatility_codes(np.array([last]), rules)[0])), last


def regimes_from_directional(
    adx_values: FloatArray,
    plus_di: FloatArray,
    minus_di: FloatArray,
    thresholds: RegimeThresholds | None = None,
) -> CodeArray:
    """The trend rule over whole arrays: ``Regime`` codes equal to folding ``next_regime``
    from UNKNOWN (the fold is one compiled loop, :mod:`strategies.core.recursions`)."""
    rules = thresholds or RegimeThresholds()
    if len(adx_values) == 0:
        return np.empty(0, dtype=np.int8)
    (codes,) = _trend_rule(
        adx_values, plus_di, minus_di, float(rules.adx_trend), float(rules.adx_range)
    )
    return codes.astype(np.int8)


# Regime codes as plain ints for the compiled fold (numba reads module ints as constants).
_UNKNOWN: Final = int(Regime.UNKNOWN)
_RANGING: Final = int(Regime.RANGING)
_UP: Final = int(Regime.TRENDING_UP)
_DOWN: Final = int(Regime.TRENDING_DOWN)


def _trend_rule_loop(
    adx_values: Sequence[float],
    plus_di: Sequence[float],
    minus_di: Sequence[float],
    adx_trend: float,
    adx_range: float,
    out: MutableSequence[float],
) -> None:
    """``next_regime`` folded over the candles, the previous regime carried along."""
    previous = _UNKNOWN
    for i in range(len(adx_values)):
        value = adx_values[i]
        if value != value:  # NaN: ADX still warming up
            regime = _UNKNOWN
        elif value >= adx_trend:
            if plus_di[i] > minus_di[i]:
                regime = _UP
            elif minus_di[i] > plus_di[i]:
                regime = _DOWN
            else:
                regime = previous if previous != _UNKNOWN else _RANGING
        elif value < adx_range:
            regime = _RANGING
        elif previous == _UP and minus_di[i] <= plus_di[i]:
            regime = _UP
        elif previous == _DOWN and plus_di[i] <= minus_di[i]:
            regime = _DOWN
        else:
            regime = _RANGING
        out[i] = regime
        previous = regime


_trend_rule: Final = recursions.CompiledLoop(
    _trend_rule_loop, outputs=1, sample=(np.full(4, 30.0), np.ones(4), np.zeros(4), 25.0, 20.0)
)


def next_regime(
    previous: Regime,
    adx_value: float,
    plus_di: float,
    minus_di: float,
    thresholds: RegimeThresholds | None = None,
) -> Regime:
    """The trend rule for one closed candle, given the previous candle's regime."""
    rules = thresholds or RegimeThresholds()
    if math.isnan(adx_value):
        return Regime.UNKNOWN
    if adx_value >= rules.adx_trend:
        if plus_di > minus_di:
            return Regime.TRENDING_UP
        if minus_di > plus_di:
            return Regime.TRENDING_DOWN
        return previous if previous is not Regime.UNKNOWN else Regime.RANGING
    if adx_value < rules.adx_range:
        return Regime.RANGING
    if previous is Regime.TRENDING_UP and minus_di <= plus_di:
        return Regime.TRENDING_UP
    if previous is Regime.TRENDING_DOWN and plus_di <= minus_di:
        return Regime.TRENDING_DOWN
    return Regime.RANGING


class RegimeTracker:
    """Incremental ``classify_regime``: ``update(high, low, close)`` per closed candle.

    O(1) per candle for ADX/ATR, plus an O(log w) rank in a sorted window of w ATR values.
    """

    def __init__(self, thresholds: RegimeThresholds | None = None) -> None:
        self.thresholds = thresholds or RegimeThresholds()
        self._adx = ADX(self.thresholds.adx_period)
        self._atr = ATR(self.thresholds.atr_period)
        self._rank = PercentileRank(self.thresholds.atr_percentile_window)
        self.regime = Regime.UNKNOWN

    def update(self, high: float, low: float, close: float) -> RegimeSnapshot:
        rules = self.thresholds
        adx_value, plus_di, minus_di = self._adx.update(high, low, close)
        atr_value = self._atr.update(high, low, close)
        percentile = self._rank.update(100.0 * atr_value / float(close))
        regime = next_regime(self.regime, adx_value, plus_di, minus_di, rules)
        self.regime = regime
        volatility = Volatility(int(_volatility_codes(np.array([percentile]), rules)[0]))
        return RegimeSnapshot(
            regime=regime,
            volatility=volatility,
            adx=adx_value,
            plus_di=plus_di,
            minus_di=minus_di,
            atr=atr_value,
            atr_percentile=percentile,
        )
