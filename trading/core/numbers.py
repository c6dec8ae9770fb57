"""Numbers as traders read them: the one formatting helper of pages, live partials and CSV.

Every figure the dashboard shows goes through one of these functions (templates through the
``desk`` filter library, ``trading/templatetags/desk.py``; the trades CSV directly; the Positions
page's live re-marking mirrors :func:`fmt_price` / :func:`fmt_money` in ``static/js/positions.js``).

* prices on the instrument's tick: BTC (tick 0.1) ``104,131.4``, never ``104131.4083``;
* quantities on the instrument's lot (qty step): ``0.012`` BTC with step 0.001;
* money in USDT with 2 decimals and its unit where the column header does not give it;
* percentages with their sign: ``+1.25 %``, ``−0.40 %`` (a true minus sign, U+2212);
* counts as integers: ``3``, never ``3.00``;
* durations as ``1h 05m``.

``grouping=True`` (pages) separates thousands with a comma, as Bitget and TradingView do;
``grouping=False`` (CSV) writes plain machine-readable numbers with an ASCII ``-``.
Anything that is not a finite number renders as ``—`` (pages) or ``""`` (CSV): never a silent 0.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

from trading.core.orders import step_decimals

MINUS = "\u2212"  # typographic minus: same width as "+" in tabular figures
DASH = "\u2014"  # unknown / not applicable
DEFAULT_PRICE_DECIMALS = 4  # no tick known: 4 decimals (8 below 1 USDT), trailing zeros cut


def _finite(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def step_places(step: float | None) -> int | None:
    """Decimal places of a tick or lot as written: 0.1 → 1, 0.001 → 3, 1 → 0; ``None`` when
    no positive step is known."""
    number = _finite(step)
    if number is None or number <= 0:
        return None
    return step_decimals(number)


def _fixed(number: float, places: int, grouping: bool, signed: bool = False) -> str:
    """``number`` with ``places`` decimals (half-even on the decimal value, so 0.125 → 0.12 the
    way the float prints); "-0.00" becomes "0.00"."""
    quantum = Decimal(1).scaleb(-places)
    exact = Decimal(repr(number)).quantize(quantum, rounding=ROUND_HALF_EVEN)
    if exact == 0:
        exact = abs(exact)
    text = f"{abs(exact):,.{places}f}" if grouping else f"{abs(exact):.{places}f}"
    if exact < 0:
        return (MINUS if grouping else "-") + text
    return ("+" + text) if signed and exact > 0 else text


def fmt_price(value: object, tick: float | None = None, *, grouping: bool = True) -> str:
    """A price on the instrument's tick: rounded to the nearest tick, with the tick's decimals.

    >>> fmt_price(104131.4083, 0.1)
    '104,131.4'
    >>> fmt_price(2500, 0.01)
    '2,500.00'
    >>> fmt_price(104131.4083)          # tick unknown: 4 decimals, trailing zeros cut
    '104,131.4083'
    """
    number = _finite(value)
    if number is None:
        return DASH if grouping else ""
    places = step_places(tick)
    if places is None:
        places = DEFAULT_PRICE_DECIMALS if abs(number) >= 1 else 8
        text = _fixed(number, places, grouping)
        return text.rstrip("0").rstrip(".") if "." in text else text
    step = float(tick)  # type: ignore[arg-type]
    return _fixed(round(number / step) * step, places, grouping)


def fmt_qty(value: object, step: float | None = None, *, grouping: bool = True) -> str:
    """A quantity on the instrument's lot (qty step): ``fmt_qty(0.0123, 0.001)`` → ``0.012``.
    Without a known step: up to 6 decimals, trailing zeros cut."""
    number = _finite(value)
    if number is None:
        return DASH if grouping else ""
    places = step_places(step)
    if places is None:
        text = _fixed(number, 6, grouping)
        return text.rstrip("0").rstrip(".") if "." in text else text
    return _fixed(number, places, grouping)


def fmt_money(
    value: object, unit: str = "", *, signed: bool = False, grouping: bool = True, places: int = 2
) -> str:
    """Money (USDT): 2 decimals, thousands grouped, optional sign and unit.

    >>> fmt_money(-1234.5, "USDT")
    '−1,234.50 USDT'
    >>> fmt_money(12.3, signed=True)
    '+12.30'
    """
    number = _finite(value)
    if number is None:
        return DASH if grouping else ""
    text = _fixed(number, places, grouping, signed)
    return f"{text} {unit}" if unit else text


def fmt_pct(value: object, *, signed: bool = True, places: int = 2, grouping: bool = True) -> str:
    """A percentage (the value is already in %): ``fmt_pct(1.2345)`` → ``+1.23 %``;
    ``signed=False`` for shares that cannot be negative (win rate ``55.0 %``)."""
    number = _finite(value)
    if number is None:
        return DASH if grouping else ""
    text = _fixed(number, places, grouping, signed)
    return f"{text} %" if grouping else text


def fmt_count(value: object) -> str:
    """A count: ``3``, never ``3.00``; ``1,204`` trades."""
    number = _finite(value)
    if number is None:
        return DASH
    return f"{round(number):,}".replace("-", MINUS)


def fmt_ratio(value: object, places: int = 2) -> str:
    """A plain ratio (profit factor, Sharpe, leverage multiple): ``1.85``, ``−0.42``."""
    number = _finite(value)
    if number is None:
        return DASH
    return _fixed(number, places, True)


def fmt_duration(seconds: object) -> str:
    """A duration: ``45s``, ``12m 05s``, ``3h 07m``, ``2d 04h``; ``—`` when unknown."""
    number = _finite(seconds)
    if number is None or number < 0:
        return DASH
    total = int(number)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
