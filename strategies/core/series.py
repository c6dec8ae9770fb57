"""Indicator series a strategy declares: O(1) per closed candle, the same bits vectorised.

A strategy names the recursive indicators it reads (:class:`Series`: kind, timeframe,
period; :meth:`strategies.core.base.Strategy.series`). The kernel's snapshot builder keeps each
one as a track (:class:`SeriesTrack`) over EVERY candle of its timeframe the kernel has held
since its first one — not over the snapshot's window — and a decision reads the value after
the last closed candle (:meth:`strategies.core.base.MarketSnapshot.value`): a lookup, not a
recomputation of a 500-candle window.

Two ways to the same values, bit for bit (tested on real and random series):

* vectorised, once per candle set (a backtest, a sweep's shared candles, the history a live
  kernel is preloaded with): :func:`strategies.core.indicators` over the whole array;
* incremental, one ``update`` per closed candle (:mod:`strategies.core.incremental`): the live
  feed's appended candles, advanced once per closed candle of the series' timeframe.

What a value stands on: every candle of the timeframe from the kernel's first one (a backtest:
the first candle of the data; live: the first preloaded candle, then the checkpointed state —
:meth:`SeriesTrack.export` / :meth:`SeriesTrack.restore` — so a restart resumes the states
exactly instead of re-seeding them on the reloaded window). A series seeded on a later candle (a
window reloaded without the checkpoint) converges to this one geometrically — the gap
shrinks by a factor (1 − 1/n) per candle for Wilder's averages (RSI, ATR, ADX's sums) and
(1 − 2/(n+1)) for an EMA(n) — but need not ever reach the same bits, and a threshold decision
can flip on the last bit: hence the checkpointed states.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from strategies.core import incremental, indicators
from trading.core.candles import C, H, L, timeframe_ms

# kind -> (vectorised over (N, 6) candles, incremental factory, one update with a candle row)
_Vectorised = Callable[[np.ndarray, int], np.ndarray]
_Factory = Callable[[int], Any]
_Step = Callable[[Any, np.ndarray], float]


def _ema(candles: np.ndarray, n: int) -> np.ndarray:
    return indicators.ema(candles[:, C], n)


def _rsi(candles: np.ndarray, n: int) -> np.ndarray:
    return indicators.rsi(candles[:, C], n)


def _atr(candles: np.ndarray, n: int) -> np.ndarray:
    return indicators.atr(candles[:, H], candles[:, L], candles[:, C], n)


def _adx(candles: np.ndarray, n: int) -> np.ndarray:
    return indicators.adx(candles[:, H], candles[:, L], candles[:, C], n)[0]


def _step_close(state: Any, row: np.ndarray) -> float:
    return float(state.update(row[C]))


def _step_hlc(state: Any, row: np.ndarray) -> float:
    return float(state.update(row[H], row[L], row[C]))


def _step_adx(state: Any, row: np.ndarray) -> float:
    return float(state.update(row[H], row[L], row[C])[0])


KINDS: Final[Mapping[str, tuple[_Vectorised, _Factory, _Step, int]]] = {
    # kind: (vectorised, incremental state, step, smallest period)
    "ema": (_ema, incremental.EMA, _step_close, 1),
    "rsi": (_rsi, incremental.RSI, _step_close, 2),
    "atr": (_atr, incremental.ATR, _step_hlc, 1),
    "adx": (_adx, incremental.ADX, _step_adx, 2),
}


class SeriesError(ValueError):
    """A series that cannot exist (unknown kind, bad timeframe or period), or one read from a
    snapshot that does not carry it (undeclared)."""


@dataclass(frozen=True, slots=True, order=True)
class Series:
    """One indicator series: ``kind`` (ema / rsi / atr / adx), ``timeframe`` ("5m"),
    ``period`` (candles). ``Series("rsi", "5m", 14)`` is Wilder's RSI(14) of the 5m closes;
    ``adx`` is the ADX line (not the DIs); ``atr`` is in USDT."""

    kind: str
    timeframe: str
    period: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SeriesError(f"unknown series kind {self.kind!r} (known: {', '.join(KINDS)})")
        try:
            timeframe_ms(self.timeframe)
        except ValueError as exc:
            raise SeriesError(f"series {self.kind}: {exc}") from None
        if isinstance(self.period, bool) or not isinstance(self.period, int):
            raise SeriesError(f"series {self.kind} period must be an int, got {self.period!r}")
        if self.period < KINDS[self.kind][3]:
            raise SeriesError(
                f"series {self.kind} period must be ≥ {KINDS[self.kind][3]}, got {self.period}"
            )

    @property
    def key(self) -> str:
        """JSON-safe name, e.g. ``"rsi/5m/14"`` (checkpoints)."""
        return f"{self.kind}/{self.timeframe}/{self.period}"

    def vectorised(self, candles: np.ndarray) -> np.ndarray:
        """The series over every row of ``candles`` (N, 6) in one pass (read-only)."""
        values = np.asarray(KINDS[self.kind][0](candles, self.period), dtype=np.float64)
        values.flags.writeable = False
        return values

    def new_state(self) -> Any:
        return KINDS[self.kind][1](self.period)

    def step(self, state: Any, row: np.ndarray) -> float:
        """Advance ``state`` by one closed candle ``row``; the series' value after it."""
        return KINDS[self.kind][2](state, row)


def encode_state(state: Any) -> dict[str, Any]:
    """An incremental state's fields, JSON-safe and exact: floats as ``float.hex`` strings
    (NaN and infinities included), ints as ints, tuples as lists."""

    def encode(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value.hex()
        if isinstance(value, tuple):
            return [encode(v) for v in value]
        raise SeriesError(f"cannot save a {type(value).__name__} in a series state")

    return {name: encode(value) for name, value in vars(state).items()}


def decode_state(series: Series, raw: Mapping[str, Any]) -> Any:
    """The state :func:`encode_state` saved, as an incremental object of ``series``' kind."""

    def decode(value: Any) -> Any:
        if isinstance(value, str):
            return float.fromhex(value)
        if isinstance(value, list):
            return tuple(decode(v) for v in value)
        return value

    state = series.new_state()
    expected = set(vars(state))
    if set(raw) != expected:
        raise SeriesError(
            f"saved state of {series.key} has fields {sorted(raw)}, expected {sorted(expected)}"
        )
    for name, value in raw.items():
        setattr(state, name, decode(value))
    return state


class SeriesTrack:
    """One series over the rows of one timeframe as a builder holds them.

    Rows ``[0, len(base))`` read the vectorised ``base`` (the preloaded history); rows appended
    after it are advanced one by one through the incremental state, which is brought to the
    end of ``base`` on the first append by stepping it through the base rows (the same bits:
    the vectorised and incremental computations are twins). A restored track (:meth:`restore`)
    continues the checkpointed state from the checkpoint's row on.
    """

    __slots__ = ("_base", "_first", "_state", "_values", "series")

    def __init__(self, series: Series, base: np.ndarray) -> None:
        self.series = series
        self._base = base
        self._state: Any = None
        self._first = len(base)  # row index of _values[0]
        self._values: list[float] = []

    def value_at(self, row: int) -> float:
        """The value after candle ``row`` (index into the timeframe's rows); NaN before the
        first candle, or before the checkpoint of a restored track."""
        if row < 0:
            return math.nan
        if row < len(self._base):
            return float(self._base[row])
        k = row - self._first
        return self._values[k] if 0 <= k < len(self._values) else math.nan

    def values(self, rows: int) -> np.ndarray:
        """The value after each of the first ``rows`` candles (NaN where unknown)."""
        if rows <= len(self._base) and not self._values:
            return self._base[:rows]
        out = np.full(rows, np.nan)
        n = min(len(self._base), rows)
        out[:n] = self._base[:n]
        for k, value in enumerate(self._values):
            if 0 <= self._first + k < rows:
                out[self._first + k] = value
        return out

    def append(self, row: np.ndarray, held_rows: np.ndarray) -> None:
        """Advance by the closed candle ``row``, appended after ``held_rows`` (the rows held
        before it, from which a never-advanced state is brought up to date first)."""
        self._catch_up(held_rows)
        self._values.append(self.series.step(self._state, row))

    def _catch_up(self, held_rows: np.ndarray) -> None:
        """Bring a never-advanced state to the end of ``base`` by stepping it through the
        base rows (once: later calls find it up to date)."""
        if self._state is None:
            self._state = self.series.new_state()
            for earlier in held_rows[: len(self._base)]:
                self.series.step(self._state, earlier)

    def export(self, held_rows: np.ndarray) -> dict[str, Any] | None:
        """The state after the last held row, to restore after a restart: ``{"open_ms": open
        time of that row, "state": encoded}``; ``None`` before the first row."""
        if len(held_rows) == 0:
            return None
        self._catch_up(held_rows)  # never appended to: the base rows' state
        return {"open_ms": int(held_rows[-1, 0]), "state": encode_state(self._state)}

    def restore(self, saved: Mapping[str, Any], held_rows: np.ndarray) -> bool:
        """Continue the checkpointed state when the last held row is the one it was saved
        after (``True``): that row's value and every later one come from the saved state; the
        rows before it keep the values computed from the held rows (only a vectorised
        pre-filter reads them: a restored kernel decides on the candles after its last
        one). Otherwise keep the held rows' values (``False``: the history reloaded does not
        end where the checkpoint did)."""
        if len(held_rows) == 0 or int(held_rows[-1, 0]) != int(saved["open_ms"]):
            return False
        self._state = decode_state(self.series, saved["state"])
        self._base = self._base[: len(held_rows) - 1]
        self._first = len(held_rows) - 1
        value = getattr(self._state, "value", math.nan)
        self._values = [float(value[0] if isinstance(value, tuple) else value)]
        return True
