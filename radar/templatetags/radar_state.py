"""``{% replay_state as replay %}``: what the in-process radar replays, for the pages' banner.

A replay's candles are old by design: the pages say "Replay of 2025-06-17 → 06-23 at 60×,
market time 14:32" instead of calling them stale (``templates/trading/_stale.html``). The facts
come from :data:`radar.health.radar_status` (set by ``radar.launch.run_feed``); ``None`` when no
replay runs in this process (a live feed, the Celery feed worker, or no radar at all).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template

from radar.health import radar_status

register = template.Library()

MINUTE_MS = 60_000


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@register.simple_tag
def replay_state() -> dict[str, Any] | None:
    """The replay's range, pace and market time as display strings, or None."""
    facts = radar_status.replay
    if facts is None or radar_status.source != "replay":
        return None
    # The days the candles cover: the last candle's open (23:59 of its day), not its close.
    first, last = _utc(facts.first_ms), _utc(facts.last_ms)
    same_year = first.year == last.year
    period = (
        f"{first:%Y-%m-%d} → {last:%m-%d}" if same_year else f"{first:%Y-%m-%d} → {last:%Y-%m-%d}"
    )
    market_ms = facts.market_ms()
    warming = facts.fast_until_ms is not None and market_ms < facts.fast_until_ms
    if facts.speed is None or warming:
        pace = "full speed" + (f" (warm-up), then {facts.speed:g}×" if facts.speed else "")
    else:
        pace = f"{facts.speed:g}×"
    market = _utc(min(market_ms, facts.last_ms + MINUTE_MS))
    return {
        "period": period,
        "pace": pace,
        "market_time": f"{market:%H:%M}",
        "market_date": f"{market:%Y-%m-%d}",
        "running": radar_status.running,
        "finished": radar_status.finished,
    }
