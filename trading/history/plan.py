"""What a history download must ask for: time ranges, missing minutes, pages. Pure values.

Times are UTC epoch milliseconds; a :class:`Span` is half-open, ``[start_ms, end_ms)``, and a
1m candle belongs to it when its OPEN time does. Ranges are aligned to the minute: a candle
series is a set of minute opens, and "what is stored" is read back as runs of consecutive
minutes (:func:`missing_spans`), so a hole anywhere in the range is found without listing every
minute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise

from trading.core.candles import MINUTE_MS
from trading.core.validation import utc_text

DAY_MS = 86_400_000
# A minute is asked once it ended this long ago by our clock: a clock a little ahead of the
# exchange's would otherwise take its forming candle for a closed one (the feed's REST grace).
CLOSE_GRACE_MS = 5_000
# A page whose first minute is this close to the recent endpoint's depth goes to the history
# endpoint already: ccxt picks the endpoint from its own clock a moment later (Bitget: the
# recent endpoint serves 1000 rows but only the last ~30 days; history-candles 200 rows, deeper).
ENDPOINT_MARGIN_MS = 3_600_000

_EPOCH_MS_RE = re.compile(r"^\d{12,14}$")


class RangeError(ValueError):
    """A time range the trader typed that cannot be used (message says why)."""


@dataclass(frozen=True, slots=True)
class Span:
    """``[start_ms, end_ms)`` in epoch ms, both on the minute grid."""

    start_ms: int
    end_ms: int

    @property
    def minutes(self) -> int:
        return max(0, (self.end_ms - self.start_ms) // MINUTE_MS)

    def __str__(self) -> str:
        """``2025-06-01 10:00 UTC → 2025-06-01 10:05 UTC (5 min)``"""
        return f"{utc_text(self.start_ms)} → {utc_text(self.end_ms)} ({self.minutes} min)"


@dataclass(frozen=True, slots=True)
class Page:
    """One candle request: the minutes ``[start_ms, end_ms)`` of ``symbol``, from the history
    endpoint (``history``) or the recent one, for the minutes of ``wanted`` (the missing ones
    it covers; empty = all of them). Minutes of the page outside ``wanted`` are stored already:
    asking for them too costs nothing, while one request per scattered hole would."""

    symbol: str
    start_ms: int
    end_ms: int
    history: bool
    wanted: tuple[Span, ...] = ()

    @property
    def spans(self) -> tuple[Span, ...]:
        return self.wanted or (Span(self.start_ms, self.end_ms),)

    @property
    def minutes(self) -> int:
        """Minutes wanted (what the page adds to the progress)."""
        return sum(s.minutes for s in self.spans)

    @property
    def rows(self) -> int:
        """Minutes asked for: the request's row count."""
        return (self.end_ms - self.start_ms) // MINUTE_MS

    def wants(self, open_ms: int) -> bool:
        return any(s.start_ms <= open_ms < s.end_ms for s in self.spans)


def floor_minute(time_ms: int) -> int:
    return time_ms // MINUTE_MS * MINUTE_MS


def parse_when(text: str) -> int:
    """A time the trader typed, as epoch ms: ``2025-06-01``, ``2025-06-01T12:30``,
    ``2025-06-01 12:30:00+00:00`` (no zone = UTC) or epoch milliseconds (``1748736000000``)."""
    value = text.strip()
    if _EPOCH_MS_RE.match(value):
        return int(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RangeError(
            f"{text!r} is not a date: write 2025-06-01, 2025-06-01T12:30 (UTC) or epoch ms"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def requested_span(
    *,
    now_ms: int,
    days: float | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> Span:
    """The range to fetch, on the minute grid, ending no later than the last CLOSED minute
    (the candle opening at ``floor_minute(now_ms - CLOSE_GRACE_MS)`` may still be forming): the
    last ``days`` days, or ``[since, until)`` (``until`` defaults to now)."""
    end = floor_minute(now_ms - CLOSE_GRACE_MS)
    if days is not None:
        if days <= 0:
            raise RangeError(f"--days must be positive, got {days:g}")
        start = end - int(days * DAY_MS)
    else:
        if since_ms is None:
            raise RangeError("give --days N or --since DATE")
        start = floor_minute(since_ms)
        if until_ms is not None:
            end = min(end, floor_minute(until_ms))
    if start >= end:
        raise RangeError(
            f"the range {utc_text(start)} → {utc_text(end)} is empty "
            f"(it must start before it ends, and before now, {utc_text(now_ms)})"
        )
    return Span(floor_minute(start), end)


def missing_spans(
    span: Span, first_ms: int | None, last_ms: int | None, gaps: Iterable[tuple[int, int]]
) -> list[Span]:
    """The minutes of ``span`` not stored, as spans, from what the stored series says about
    itself inside ``span``: its first and last open (None = nothing stored) and every pair of
    consecutive stored opens ``(t, next_t)`` more than a minute apart."""
    if first_ms is None or last_ms is None:
        return [span]
    out = []
    if first_ms > span.start_ms:
        out.append(Span(span.start_ms, first_ms))
    out.extend(Span(t + MINUTE_MS, next_t) for t, next_t in sorted(gaps))
    if last_ms + MINUTE_MS < span.end_ms:
        out.append(Span(last_ms + MINUTE_MS, span.end_ms))
    return [s for s in out if s.minutes > 0]


def spans_of(minutes: Iterable[int]) -> list[Span]:
    """Minute opens (epoch ms) merged into runs of consecutive minutes, oldest first."""
    out: list[Span] = []
    for t in sorted(set(minutes)):
        if out and out[-1].end_ms == t:
            out[-1] = Span(out[-1].start_ms, t + MINUTE_MS)
        else:
            out.append(Span(t, t + MINUTE_MS))
    return out


@dataclass(frozen=True, slots=True)
class PageLimits:
    """How many 1m candles one request returns: ``recent`` rows on the recent endpoint, which
    reaches back ``recent_days`` days (None = one endpoint for everything), ``history`` rows on
    the deeper history endpoint."""

    recent: int
    history: int
    recent_days: int | None = None

    def uses_history(self, start_ms: int, now_ms: int) -> bool:
        if self.recent_days is None:
            return False
        depth_ms = (self.recent_days - 1) * DAY_MS - ENDPOINT_MARGIN_MS
        return start_ms <= now_ms - depth_ms


def candle_pages(
    symbol: str, spans: Sequence[Span], *, limits: PageLimits, now_ms: int
) -> list[Page]:
    """The fewest requests that fetch every minute of ``spans``, oldest first: a page starts at
    the first minute still wanted and takes in every wanted minute its endpoint's row count
    reaches (stored minutes between two holes ride along), ending at the last of them."""
    pending = sorted((s for s in spans if s.minutes > 0), key=lambda s: s.start_ms)
    pages = []
    while pending:
        start = pending[0].start_ms
        history = limits.uses_history(start, now_ms)
        reach = start + (limits.history if history else limits.recent) * MINUTE_MS
        wanted = []
        while pending and pending[0].start_ms < reach:
            span = pending.pop(0)
            if span.end_ms > reach:
                pending.insert(0, Span(reach, span.end_ms))
                span = Span(span.start_ms, reach)
            wanted.append(span)
        end = wanted[-1].end_ms
        whole = len(wanted) == 1
        pages.append(Page(symbol, start, end, history, () if whole else tuple(wanted)))
    return pages


def interleaved(pages_by_symbol: Sequence[Sequence[Page]]) -> list[Page]:
    """One page of each symbol in turn, so that every symbol advances together (an interrupted
    download leaves each one partly done, not the last one untouched)."""
    out: list[Page] = []
    longest = max((len(p) for p in pages_by_symbol), default=0)
    for i in range(longest):
        out.extend(pages[i] for pages in pages_by_symbol if i < len(pages))
    return out


def funding_covered(times: Sequence[int], span: Span, interval_ms: int) -> bool:
    """Whether stored settlement times (sorted, epoch ms, inside ``span``) leave no settlement
    of ``span`` out, for settlements every ``interval_ms``: the one before the first and the
    one after the last fall outside the span, and no two are further apart than the interval."""
    if not times:
        return False
    if times[0] - interval_ms >= span.start_ms or times[-1] + interval_ms < span.end_ms:
        return False
    return all(b - a <= interval_ms for a, b in pairwise(times))
