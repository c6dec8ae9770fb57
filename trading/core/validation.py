"""The ONE set of rules that decides whether a market-data row is believable.

Every way market data comes in (CSV files through ``import_candles`` / ``import_funding`` /
``import_open_interest``, the websocket feed, REST gap healing, the funding and open-interest
pollers, and the live runtime) asks these functions; each answers ``None`` for a good row, or
the reason a trader reads for a bad one. Pure functions, no framework.

Units: times are UTC epoch milliseconds; prices in quote currency (USDT); volume and open
interest in base units; funding rates per period as a fraction (0.0001 = 0.01 %).

The rules:

* a time is before 2000-01-01 (:data:`MIN_TIMESTAMP_MS`): almost always SECONDS written where
  milliseconds were expected;
* a time is **in the future** when it falls in a later UTC minute than the caller's clock
  (``time_ms // 60_000 > now_ms // 60_000``); for a candle that means it opens after the current
  minute began. The clock is always passed in (``now_ms``), so tests inject it;
* a time is **before the listing** when it is earlier than the exchange's listing time of the
  contract (``listed_ms``, ccxt's market ``created``; unknown = not checked);
* candle values are **absurd** when a value is not finite, a price is ``<= 0`` or above
  :data:`MAX_PRICE`, ``high < max(open, close)``, ``low > min(open, close)``, the volume is
  negative or above :data:`MAX_VOLUME`, or the open time is off the timeframe's grid;
* a candle is a **spike** when its high or low is :data:`MAX_JUMP_RATIO` (100×) away from more
  than half of its neighbours' closes (:func:`price_jump_problem`). A file reader passes up to two
  accepted candles before the row and two after it, so a level that really changed (every later
  row agrees) is kept; the live feed passes the previous close;
* a funding rate is absurd when not finite or ``|rate| >`` :data:`MAX_ABS_FUNDING_RATE`;
* an open interest is absurd when not finite, negative or above :data:`MAX_VOLUME`, and its
  USDT value (optional) when not finite or negative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from trading.core.candles import MINUTE_MS, timeframe_ms

# Earliest believable time: 2000-01-01 UTC. A smaller value is almost always a time in SECONDS
# written where milliseconds were expected (1750118400 s would otherwise be 1970).
MIN_TIMESTAMP_MS: Final = 946_684_800_000
# Highest believable price (quote currency): a thousand times Bitcoin's record in USDT, and more
# than any pair quoted in a weak fiat. 1e300 is a corrupted field, not a price.
MAX_PRICE: Final = 1e12
# Highest believable volume or open interest (base units): well above a day of the most
# traded meme coin.
MAX_VOLUME: Final = 1e18
# A candle whose high or low is this many times away from its neighbours' closes is a spike.
MAX_JUMP_RATIO: Final = 100.0
# Exchanges cap funding at a few percent per period; 10 % per period is a broken row.
MAX_ABS_FUNDING_RATE: Final = 0.1

CandleValues = Sequence[float]
"""``(open_time_ms, open, high, low, close, volume)``."""
CandleCheck = Callable[[CandleValues], str | None]


def utc_text(time_ms: float) -> str:
    """``2025-06-17 00:00 UTC`` for a time in epoch ms (``"out of range"`` when it has none)."""
    try:
        return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return "out of range"


def is_in_future(time_ms: float, *, now_ms: int) -> bool:
    """True when ``time_ms`` falls in a later UTC minute than ``now_ms`` (both epoch ms)."""
    return time_ms // MINUTE_MS > now_ms // MINUTE_MS


def time_problem(
    time_ms: float, *, now_ms: int, listed_ms: int | None = None, what: str = "timestamp_ms"
) -> str | None:
    """Why ``time_ms`` (epoch ms) cannot be a market-data time, or None: before 2000-01-01,
    in a later minute than ``now_ms``, or before the listing ``listed_ms`` (None = unknown)."""
    if not math.isfinite(time_ms):
        return f"{what} {time_ms} is not a finite number"
    if time_ms < MIN_TIMESTAMP_MS:
        return f"{what} {int(time_ms)} is before 2000-01-01 (seconds instead of milliseconds?)"
    if is_in_future(time_ms, now_ms=now_ms):
        return (
            f"{what} {int(time_ms)} ({utc_text(time_ms)}) is in the future (now {utc_text(now_ms)})"
        )
    if listed_ms is not None and time_ms < listed_ms:
        return (
            f"{what} {int(time_ms)} ({utc_text(time_ms)}) is before the exchange listed the "
            f"symbol ({utc_text(listed_ms)})"
        )
    return None


def future_candle_problem(open_time_ms: float, *, now_ms: int) -> str | None:
    """Why a candle opening at ``open_time_ms`` would move a symbol's clock into the future, or
    None: it opens in a later UTC minute than ``now_ms`` (both epoch ms).

    The live runtime asks this before it advances a symbol's last-candle time: one candle
    stamped in year 3000 would otherwise make every later real candle look old."""
    if is_in_future(open_time_ms, now_ms=now_ms):
        return (
            f"candle open time {int(open_time_ms)} ({utc_text(open_time_ms)}) is in the future "
            f"(now {utc_text(now_ms)})"
        )
    return None


def candle_values_problem(row: CandleValues, *, timeframe: str = "1m") -> str | None:
    """Why the VALUES of a candle ``(open_time_ms, open, high, low, close, volume)`` are absurd
    (every problem, ``"; "``-joined), or None. Times other than the grid are not judged here."""
    open_time_ms, open_, high, low, close, volume = row[:6]
    values = (("open", open_), ("high", high), ("low", low), ("close", close))
    problems = [
        f"{name} {value} is not a finite number"
        for name, value in values
        if not math.isfinite(value)
    ]
    if not math.isfinite(volume):
        problems.append(f"volume {volume} is not a finite number")
    if problems:
        return "; ".join(problems)
    problems = [f"{name} {value} is not positive" for name, value in values if value <= 0]
    problems += [
        f"{name} {value:g} is above {MAX_PRICE:g} (not a price)"
        for name, value in values
        if value > MAX_PRICE
    ]
    if high < low:
        problems.append(f"high {high} < low {low}")
    else:
        top_name, top = ("open", open_) if open_ >= close else ("close", close)
        bottom_name, bottom = ("open", open_) if open_ <= close else ("close", close)
        if high < top:
            problems.append(f"high {high} < {top_name} {top}")
        if low > bottom:
            problems.append(f"low {low} > {bottom_name} {bottom}")
    if volume < 0:
        problems.append(f"volume {volume} is negative")
    elif volume > MAX_VOLUME:
        problems.append(f"volume {volume:g} is above {MAX_VOLUME:g} (not a volume)")
    step_ms = timeframe_ms(timeframe)
    if math.isfinite(open_time_ms) and open_time_ms % step_ms:
        problems.append(
            f"timestamp_ms {open_time_ms} is not aligned to the {timeframe} grid "
            f"(multiples of {step_ms} ms)"
        )
    return "; ".join(problems) if problems else None


def price_jump_problem(high: float, low: float, neighbour_closes: Sequence[float]) -> str | None:
    """Why a candle is a spike, or None: its ``high`` is above ``MAX_JUMP_RATIO`` × or its
    ``low`` below 1 / ``MAX_JUMP_RATIO`` × the close of MORE THAN HALF of ``neighbour_closes``
    (quote currency). No neighbour, or a tie, keeps the candle: one bad neighbour cannot
    condemn a good row, and a level that really moved is followed by rows that agree with it."""
    if not neighbour_closes:
        return None
    far = [c for c in neighbour_closes if high > MAX_JUMP_RATIO * c or low * MAX_JUMP_RATIO < c]
    if 2 * len(far) <= len(neighbour_closes):
        return None
    reference = sorted(neighbour_closes)[len(neighbour_closes) // 2]
    return (
        f"price {high if high > MAX_JUMP_RATIO * reference else low:g} is more than "
        f"{MAX_JUMP_RATIO:g}× away from its neighbours (close {reference:g})"
    )


def candle_problem(
    row: CandleValues,
    *,
    now_ms: int,
    timeframe: str = "1m",
    listed_ms: int | None = None,
    previous_close: float | None = None,
) -> str | None:
    """Why a candle ``(open_time_ms, open, high, low, close, volume)`` must be refused, or None.

    Every rule of the module docstring: the open time (before 2000, in a later minute than
    ``now_ms``, before the listing ``listed_ms``), the values, and — when ``previous_close``
    (the last accepted close, quote currency) is given — the 100× jump from it."""
    problem = time_problem(row[0], now_ms=now_ms, listed_ms=listed_ms)
    if problem is None:
        problem = candle_values_problem(row, timeframe=timeframe)
    if problem is None and previous_close is not None:
        problem = price_jump_problem(row[2], row[3], (previous_close,))
    return problem


def candle_checker(
    *, now_ms: int, timeframe: str = "1m", listed_ms: int | None = None
) -> CandleCheck:
    """:func:`candle_problem` without the jump rule, specialised for a stream of rows: the good
    row (nearly all of them) passes one chained comparison; any other gets the full reasons."""
    step_ms = timeframe_ms(timeframe)
    first_ms = max(MIN_TIMESTAMP_MS, listed_ms or 0)
    last_ms = now_ms // MINUTE_MS * MINUTE_MS  # the current minute's open: later is the future

    def check(row: CandleValues) -> str | None:
        open_time_ms, open_, high, low, close, volume = row
        # Every comparison is False for NaN, and ``high < MAX_PRICE`` bounds the other prices.
        if (
            first_ms <= open_time_ms <= last_ms
            and 0 < low <= open_ <= high < MAX_PRICE
            and low <= close <= high
            and 0 <= volume <= MAX_VOLUME
            and open_time_ms % step_ms == 0
        ):
            return None
        return candle_problem(row, now_ms=now_ms, timeframe=timeframe, listed_ms=listed_ms)

    return check


def funding_problem(
    row: Sequence[float], *, now_ms: int, listed_ms: int | None = None
) -> str | None:
    """Why a funding settlement ``(funding_time_ms, rate)`` must be refused, or None: its time
    (before 2000, in a later minute than ``now_ms``, before the listing) or a rate that is not
    finite or beyond ±``MAX_ABS_FUNDING_RATE`` (fraction per period)."""
    time_ms, rate = row[0], row[1]
    problem = time_problem(time_ms, now_ms=now_ms, listed_ms=listed_ms)
    if problem is not None:
        return problem
    if not math.isfinite(rate):
        return f"rate {rate} is not a finite number"
    if abs(rate) > MAX_ABS_FUNDING_RATE:
        return (
            f"rate {rate:g} is beyond ±{MAX_ABS_FUNDING_RATE:g} per period "
            f"(±{MAX_ABS_FUNDING_RATE * 100:g} %): not a funding rate"
        )
    return None


def open_interest_problem(
    row: Sequence[float | None], *, now_ms: int, listed_ms: int | None = None
) -> str | None:
    """Why an open-interest sample ``(time_ms, open_interest, open_interest_usdt | None)`` must
    be refused, or None: its time (as :func:`funding_problem`), an amount (base units) that is
    not finite, negative or above ``MAX_VOLUME``, or a USDT value that is not finite or
    negative (an absent value is fine)."""
    time_ms, amount, value_usdt = row[0], row[1], row[2]
    if time_ms is None or amount is None:
        return "time or open interest missing"
    problem = time_problem(time_ms, now_ms=now_ms, listed_ms=listed_ms)
    if problem is not None:
        return problem
    if not math.isfinite(amount):
        return f"open interest {amount} is not a finite number"
    if amount < 0:
        return f"open interest {amount} is negative"
    if amount > MAX_VOLUME:
        return f"open interest {amount:g} is above {MAX_VOLUME:g} (not an amount)"
    if value_usdt is not None and not (math.isfinite(value_usdt) and value_usdt >= 0):
        return f"open interest value {value_usdt} USDT is not a finite, non-negative number"
    return None
