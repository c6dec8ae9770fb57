"""Closed-candle detection for a websocket OHLCV stream.

A 1m candle is processed ONCE, when it is closed. A close shows up in one of these ways, each
handled here and tested:

1. an update carries candle ``t`` together with a newer candle ``t + 1m``: ``t`` is closed with
   the values of that update;
2. an update carries only the newer candle (ccxt.pro's ``newUpdates`` mode): ``t`` is closed
   with the last values seen for it, flagged ``unconfirmed`` so the caller replaces them by the
   exchange's final values over REST;
3. no update arrives but the clock passes ``t``'s close time plus a grace delay
   (:meth:`CandleCloseDetector.overdue`): the caller fetches ``t`` over REST; likewise a newest
   candle that an update shows after its close time (a lagging consumer) is flagged
   ``unconfirmed`` and its values are replaced over REST;
4. an update jumps ahead (``t`` then ``t + 3m``) or a reconnect happened: each missing range is
   reported as a :class:`Gap`, which the caller fills over REST and processes IN ORDER before
   the newer candle.

Duplicates and candles older than the last closed one are ignored (counted); malformed rows
(wrong length, non-numeric) and rows that break a rule of :mod:`trading.core.validation`
(absurd values, misaligned time, an open time in the future) are rejected with a reason BEFORE
they can move the detector's clock: one candle stamped in year 3000 would otherwise make every
later real candle look old. The forming candle never leaves this class except as a price tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trading.core.candles import MINUTE_MS
from trading.core.validation import candle_problem, candle_values_problem


@dataclass(frozen=True, slots=True)
class Gap:
    """Closed candles missing between two known ones: open times ``from_ms..to_ms`` inclusive."""

    from_ms: int
    to_ms: int

    @property
    def minutes(self) -> int:
        return (self.to_ms - self.from_ms) // MINUTE_MS + 1


@dataclass(slots=True)
class DetectorResult:
    closed: list[tuple[float, ...]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    # Candles closed from their last websocket state (case 2): confirm their final values.
    unconfirmed: list[int] = field(default_factory=list)
    forming: tuple[float, ...] | None = None
    rejected: list[str] = field(default_factory=list)
    duplicates: int = 0


def parse_row(raw: object, *, now_ms: int | None = None) -> tuple[float, ...] | str:
    """A ccxt OHLCV row ``[t, o, h, l, c, v]`` as floats, or the reason it is refused.

    The values are judged by :func:`trading.core.validation.candle_values_problem`; with
    ``now_ms`` (epoch ms) the open time too (:func:`trading.core.validation.candle_problem`:
    before 2000 or in a later minute than ``now_ms``)."""
    if not isinstance(raw, (list, tuple)) or len(raw) < 6:
        return f"malformed candle {raw!r}: expected [time, open, high, low, close, volume]"
    try:
        values = tuple(float(x) for x in raw[:6])
    except (TypeError, ValueError):
        return f"malformed candle {raw!r}: non-numeric field"
    if now_ms is None:
        problem = candle_values_problem(values)
    else:
        problem = candle_problem(values, now_ms=now_ms)
    return values if problem is None else f"refused candle {raw!r}: {problem}"


class CandleCloseDetector:
    """Tracks one symbol's 1m stream and says which candles just closed."""

    def __init__(self, last_closed_open_ms: int | None = None, grace_ms: int = 5_000) -> None:
        self.last_closed_open_ms = last_closed_open_ms
        self.grace_ms = grace_ms
        self._forming: tuple[float, ...] | None = None

    @property
    def forming(self) -> tuple[float, ...] | None:
        return self._forming

    def on_update(self, raw_rows: list[object], now_ms: int) -> DetectorResult:
        """Feed one websocket update; return closed candles (oldest first), a gap, the forming.

        A row opening in a later minute than ``now_ms + grace_ms`` (the grace also absorbs the
        exchange's clock running slightly ahead of ours) is rejected, never remembered."""
        result = DetectorResult()
        rows: dict[int, tuple[float, ...]] = {}
        for raw in raw_rows:
            parsed = parse_row(raw, now_ms=now_ms + self.grace_ms)
            if isinstance(parsed, str):
                result.rejected.append(parsed)
                continue
            rows[int(parsed[0])] = parsed  # later rows of the same time win (newest state)
        if not rows:
            return result
        newest_t = max(rows)
        remembered: int | None = None
        forming_t = None if self._forming is None else int(self._forming[0])
        if forming_t is not None and forming_t not in rows and forming_t < newest_t:
            remembered = forming_t  # case 2: close it with its last seen state
            rows[forming_t] = self._forming  # type: ignore[assignment]
        for t in sorted(rows):
            row = rows[t]
            is_newest = t == newest_t
            closed_by_clock = now_ms >= t + MINUTE_MS + self.grace_ms
            if is_newest and not closed_by_clock:
                result.forming = row
                continue
            if self.last_closed_open_ms is not None and t <= self.last_closed_open_ms:
                result.duplicates += 1
                continue
            expected = (
                t if self.last_closed_open_ms is None else self.last_closed_open_ms + MINUTE_MS
            )
            if t > expected:
                result.gaps.append(Gap(expected, t - MINUTE_MS))
            result.closed.append(row)
            if t == remembered or is_newest:
                # Closed from a last-seen state or by the clock alone: the values may be those
                # of a forming candle, so the caller replaces them by the exchange's final ones.
                result.unconfirmed.append(t)
            self.last_closed_open_ms = t
        if result.forming is not None and self._is_closed(result.forming[0]):
            result.duplicates += 1
            result.forming = None
        elif result.forming is not None:
            self._forming = result.forming
        self._drop_stale_forming()
        return result

    def overdue(self, now_ms: int) -> Gap | None:
        """Case 3: candles whose close time + grace has passed without any update closing them."""
        if self.last_closed_open_ms is None:
            return None
        last_closable = (now_ms - self.grace_ms) // MINUTE_MS * MINUTE_MS - MINUTE_MS
        if last_closable > self.last_closed_open_ms:
            return Gap(self.last_closed_open_ms + MINUTE_MS, last_closable)
        return None

    def accept_healed(self, rows: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
        """Take candles fetched over REST; return those that are new, in order."""
        fresh = []
        for row in sorted(rows, key=lambda r: r[0]):
            t = int(row[0])
            if self._is_closed(t):
                continue
            fresh.append(row)
            self.last_closed_open_ms = t
        self._drop_stale_forming()
        return fresh

    def _is_closed(self, open_ms: float) -> bool:
        return self.last_closed_open_ms is not None and open_ms <= self.last_closed_open_ms

    def _drop_stale_forming(self) -> None:
        if self._forming is not None and self._is_closed(self._forming[0]):
            self._forming = None
