"""Template filters for market numbers."""

from __future__ import annotations

import math

from django import template

register = template.Library()


@register.filter
def price(value: object) -> str:
    """A price as the exchange quotes it, without padding zeros: ``104000.1``, ``2500``,
    ``0.00012346``. Prices arrive rounded to their tick, so 4 decimals (8 below 1 USDT) lose
    nothing on the markets watched while the float noise of ``104000.10000000001`` goes away.
    Anything that is not a finite number is shown as is."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return str(value)
    decimals = 4 if abs(number) >= 1 else 8
    text = f"{number:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text
