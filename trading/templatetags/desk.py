"""Template filters for every figure on the desk (``{% load desk %}``): thin wrappers of
:mod:`trading.core.numbers`, with the instrument's tick and lot looked up by symbol.

=====================================  ==============================================
``{{ p.entry_price|price:p.symbol }}``  ``104,131.4`` (BTC tick 0.1)
``{{ p.qty|qty:p.symbol }}``            ``0.012`` (BTC lot 0.001)
``{{ t.net|money }}``                   ``−12.40`` (unit in the column header)
``{{ t.net|money_signed }}``            ``+12.40``
``{{ total|usdt }}``                    ``1,234.50 USDT``
``{{ r.net_return_pct|pct }}``          ``+1.25 %`` (value already in %)
``{{ r.win_rate_pct|share }}``          ``55.0 %`` (unsigned, one decimal)
``{{ r.trades|count }}``                ``3``
``{{ r.profit_factor|ratio }}``         ``1.85``
``{{ seconds|duration }}``              ``1h 05m``
``{{ x|updown }}``                      ``up`` / ``down`` / ``""`` (colour class by sign)
=====================================  ==============================================
"""

from __future__ import annotations

from django import template

from trading.core import numbers
from trading.instruments import steps_for

register = template.Library()


@register.filter
def price(value: object, symbol: object = "") -> str:
    return numbers.fmt_price(value, steps_for(symbol).tick)


@register.filter
def qty(value: object, symbol: object = "") -> str:
    return numbers.fmt_qty(value, steps_for(symbol).lot)


@register.filter
def tick(symbol: object) -> str:
    """The tick of ``symbol`` as a plain number string ("" when unknown), for data attributes
    read by the page scripts (positions.js formats live marks on it)."""
    value = steps_for(symbol).tick
    return repr(value) if value else ""


@register.filter
def money(value: object, places: object = 2) -> str:
    """``{{ fee|money:4 }}`` for a fill's fee of a few cents."""
    return numbers.fmt_money(value, places=int(places))  # type: ignore[call-overload]


@register.filter
def money_signed(value: object) -> str:
    return numbers.fmt_money(value, signed=True)


@register.filter
def usdt(value: object) -> str:
    return numbers.fmt_money(value, "USDT")


@register.filter
def pct(value: object, places: object = 2) -> str:
    return numbers.fmt_pct(value, places=int(places))  # type: ignore[call-overload]


@register.filter
def share(value: object, places: object = 1) -> str:
    return numbers.fmt_pct(value, signed=False, places=int(places))  # type: ignore[call-overload]


@register.filter
def count(value: object) -> str:
    return numbers.fmt_count(value)


@register.filter
def ratio(value: object, places: object = 2) -> str:
    return numbers.fmt_ratio(value, int(places))  # type: ignore[call-overload]


@register.filter
def duration(seconds: object) -> str:
    return numbers.fmt_duration(seconds)


@register.filter
def updown(value: object) -> str:
    """``up`` for a positive number, ``down`` for a negative one, ``""`` otherwise."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return "up" if number > 0 else "down" if number < 0 else ""
