"""The exchange's REST history read through ccxt: every request paced by the shared limiter
(category ``market_data``), failures retried with backoff, every row judged before it is kept.

A failed request (a ``ccxt.NetworkError``: no answer, a timeout, HTTP 429 / 5xx; or an answer
ccxt cannot read, ``BadResponse`` / ``NullResponse``) is retried ``retries`` times, waiting
``backoff_s``, then × ``multiplier`` each time (at most ``max_backoff_s``); after the last one it
raises :class:`ExchangeFailure`. An exchange that REFUSES the request (another
``ccxt.ExchangeError``: a bad symbol or parameter) is not retried. An answer that comes back
incomplete — rows refused by :mod:`trading.core.validation`, or minutes missing — is asked once
more after a backoff; when the second answer is no better, the refused rows are reported with
their reasons and the minutes still absent are gaps of the exchange's own history.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import ccxt

from trading.core.candles import MINUTE_MS
from trading.core.csvdata import CandleRow, FundingRow, OpenInterestSample
from trading.core.validation import (
    funding_problem,
    open_interest_problem,
    price_jump_problem,
    time_problem,
    utc_text,
)
from trading.feed.detector import parse_row
from trading.history.plan import CLOSE_GRACE_MS, Page, PageLimits, Span

RETRYABLE = (ccxt.NetworkError, ccxt.BadResponse, ccxt.NullResponse)
FUNDING_PAGE_SIZE = 100  # Bitget's history-fund-rate pageSize maximum (ref/bitget.md §2)
OPEN_INTEREST_PAGE = 200  # samples per fetch_open_interest_history request
OPEN_INTEREST_TIMEFRAME = "5m"
MAX_FUNDING_PAGES = 2_000  # 200,000 settlements: decades at 8 h; a bound for a looping answer
LOOKS_AT_INCOMPLETE = 2  # an incomplete answer is asked for once more


class Limiter(Protocol):
    async def acquire(self, category: str) -> None: ...


class ExchangeFailure(Exception):
    """A request failed for good. ``offline``: the exchange could not be reached (a
    ``ccxt.NetworkError`` after every retry), as opposed to an exchange that refused or
    answered what cannot be read."""

    def __init__(self, message: str, *, offline: bool) -> None:
        super().__init__(message)
        self.offline = offline


def describe(exc: BaseException) -> str:
    """``ExchangeNotAvailable: bitget GET ... (ClientConnectorError: Cannot connect to host
    ...)``: the error and what caused it, on one line, each part cut at 200 characters."""
    parts: list[str] = []
    cause: BaseException | None = exc
    while cause is not None and len(parts) < 2:
        text = " ".join(str(cause).split())[:200]
        parts.append(f"{type(cause).__name__}: {text}" if text else type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return parts[0] + (f" ({parts[1]})" if len(parts) > 1 else "")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of one failed request and the waits between them (seconds)."""

    retries: int = 3
    backoff_s: float = 1.0
    multiplier: float = 2.0
    max_backoff_s: float = 60.0

    def waits(self) -> list[float]:
        waits, wait = [], self.backoff_s
        for _ in range(self.retries):
            waits.append(min(wait, self.max_backoff_s))
            wait *= self.multiplier
        return waits


@dataclass(slots=True)
class Refusal:
    """A row the exchange answered and the command did not keep: when (None = no usable
    time) and why."""

    time_ms: int | None
    reason: str

    def __str__(self) -> str:
        when = utc_text(self.time_ms) if self.time_ms is not None else "no time"
        return f"{when}: {self.reason}"


@dataclass(slots=True)
class CandleAnswer:
    """What the exchange answered for one page: the rows kept, the rows refused and the page's
    minutes for which it gave no usable candle."""

    page: Page
    rows: list[CandleRow] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.refused and not self.missing


def check_candles(
    raw_rows: Iterable[Any], page: Page, *, now_ms: int, listed_ms: int | None
) -> CandleAnswer:
    """Judge ccxt's rows ``[t, o, h, l, c, v]`` for ``page``: a row must be numbers, pass
    :func:`trading.core.validation.candle_values_problem` and the time rules, and not be a
    100× spike against its neighbours (up to two kept rows before it, two rows after it). Rows
    outside the page, or still forming at ``now_ms``, are not this page's and are left out; two
    different candles for one minute are both refused. The answer keeps only the minutes the
    page wants (the others are stored already; they still serve as neighbours)."""
    answer = CandleAnswer(page)
    by_minute: dict[int, tuple[float, ...]] = {}
    conflicts: set[int] = set()
    closed_before = now_ms - CLOSE_GRACE_MS
    for raw in raw_rows:
        first = raw[0] if isinstance(raw, list | tuple) and raw else None
        time_ms = int(first) if isinstance(first, int | float) and math.isfinite(first) else None
        if time_ms is not None and not page.start_ms <= time_ms < page.end_ms:
            continue  # another page's minute
        parsed = parse_row(raw)
        if isinstance(parsed, str):
            answer.refused.append(Refusal(time_ms, parsed))
            continue
        t = int(parsed[0])
        if t + MINUTE_MS > closed_before:
            continue  # still forming by our clock
        problem = time_problem(t, now_ms=now_ms, listed_ms=listed_ms)
        if problem is not None:
            answer.refused.append(Refusal(t, problem))
        elif t in by_minute and by_minute[t] != parsed:
            conflicts.add(t)
        else:
            by_minute[t] = parsed
    for t in sorted(conflicts):
        del by_minute[t]
        answer.refused.append(Refusal(t, "two different candles for this minute"))
    rows = [by_minute[t] for t in sorted(by_minute)]
    before: list[float] = []
    for i, row in enumerate(rows):
        after = [r[4] for r in rows[i + 1 : i + 3]]
        problem = price_jump_problem(row[2], row[3], [*before[-2:], *after])
        if problem is not None:
            answer.refused.append(Refusal(int(row[0]), problem))
            continue
        before.append(row[4])
        answer.rows.append((int(row[0]), row[1], row[2], row[3], row[4], row[5]))
    answered = {r[0] for r in answer.rows} | {r.time_ms for r in answer.refused}
    answer.missing = [
        t
        for span in page.spans
        for t in range(span.start_ms, span.end_ms, MINUTE_MS)
        if t not in answered
    ]
    if page.wanted:
        answer.rows = [r for r in answer.rows if page.wants(r[0])]
        answer.refused = [r for r in answer.refused if r.time_ms is None or page.wants(r.time_ms)]
    return answer


class HistoryFetcher:
    """Paged reads of one ccxt exchange. ``note`` receives one line per retry and refusal;
    ``requests`` and ``retried`` count HTTP requests made and requests asked again."""

    def __init__(
        self,
        exchange: Any,
        *,
        limiter: Limiter,
        policy: RetryPolicy,
        note: Callable[[str], None],
        listed_ms: Mapping[str, int | None] | None = None,
    ) -> None:
        self.exchange = exchange
        self.limiter = limiter
        self.policy = policy
        self.note = note
        self.listed_ms = dict(listed_ms or {})
        self.requests = 0
        self.retried = 0

    def now_ms(self) -> int:
        """The exchange client's clock (epoch ms): ccxt picks its endpoints by it."""
        return int(self.exchange.milliseconds())

    def has(self, capability: str) -> bool:
        return bool((getattr(self.exchange, "has", None) or {}).get(capability))

    async def call[T](
        self, what: str, make: Callable[[], Awaitable[T]], *, retry: bool = True
    ) -> T:
        """``await make()`` through the limiter, retried per the policy (module docstring);
        ``retry=False``: one attempt."""
        waits = self.policy.waits() if retry else []
        for attempt in range(len(waits) + 1):
            await self.limiter.acquire("market_data")
            self.requests += 1
            try:
                return await make()
            except RETRYABLE as exc:
                offline = isinstance(exc, ccxt.NetworkError)
                if attempt == len(waits):
                    tried = f" (given up after {attempt + 1} attempts)" if waits else ""
                    raise ExchangeFailure(
                        f"{what}: {describe(exc)}{tried}", offline=offline
                    ) from exc
                self.retried += 1
                self.note(
                    f"{what}: {describe(exc)}; retry {attempt + 1}/{len(waits)} "
                    f"in {waits[attempt]:g} s"
                )
                await asyncio.sleep(waits[attempt])
            except ccxt.ExchangeError as exc:
                raise ExchangeFailure(f"{what}: {describe(exc)}", offline=False) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    async def again(self, what: str, problem: str) -> None:
        """Wait before asking an incomplete answer once more."""
        self.retried += 1
        wait = self.policy.waits()[0] if self.policy.retries else 0.0
        self.note(f"{what}: {problem}; asked again in {wait:g} s")
        await asyncio.sleep(wait)

    async def load_markets(self) -> dict[str, Any]:
        """The exchange's markets, asked once: a machine without network learns it at once."""
        return await self.call("load markets", self.exchange.load_markets, retry=False)

    # -- candles ----------------------------------------------------------------------------

    async def candles(self, page: Page, *, limits: PageLimits, mark: bool = False) -> CandleAnswer:
        """One page of 1m candles (``mark``: mark-price candles), asked by its last minute
        (``until``) so that both of Bitget's endpoints return exactly the page's minutes."""
        params: dict[str, Any] = {"until": page.end_ms - 1}
        if page.history:
            params["useHistoryEndpoint"] = True
        if mark:
            params["price"] = "mark"
        limit = limits.history if page.history else limits.recent
        limit = min(limit, page.rows)
        kind = "mark candles" if mark else "candles"
        what = f"{page.symbol} {kind} {utc_text(page.start_ms)}"
        best = CandleAnswer(page)
        for look in range(LOOKS_AT_INCOMPLETE):
            raw = await self.call(
                what,
                lambda: self.exchange.fetch_ohlcv(page.symbol, "1m", None, limit, dict(params)),
            )
            answer = check_candles(
                raw or [], page, now_ms=self.now_ms(), listed_ms=self.listed_ms.get(page.symbol)
            )
            if look == 0 or len(answer.rows) > len(best.rows):
                best = answer
            if answer.complete or look == LOOKS_AT_INCOMPLETE - 1:
                break
            await self.again(what, _incomplete(answer))
        for refusal in best.refused:
            self.note(f"{page.symbol}: refused {kind[:-1]} {refusal}")
        return best

    # -- funding and open interest ----------------------------------------------------------

    async def funding(self, symbol: str, span: Span) -> tuple[list[FundingRow], list[Refusal]]:
        """The funding settlements ``(funding_time_ms, rate)`` of ``span``, oldest first, read
        page by page from the newest (Bitget's ``history-fund-rate`` pages by ``pageNo``)."""
        rows: dict[int, float] = {}
        refused: list[Refusal] = []
        now_ms = self.now_ms()
        listed = self.listed_ms.get(symbol)
        for page_no in range(1, MAX_FUNDING_PAGES + 1):
            answer = await self.call(
                f"{symbol} funding page {page_no}",
                partial(
                    self.exchange.fetch_funding_rate_history,
                    symbol,
                    None,
                    FUNDING_PAGE_SIZE,
                    {"pageNo": page_no},
                ),
            )
            times = []
            for entry in answer or []:
                t, rate = _number(entry.get("timestamp")), _number(entry.get("fundingRate"))
                if t is None or rate is None:
                    refused.append(Refusal(None, f"funding entry without time or rate: {entry}"))
                    continue
                times.append(int(t))
                if not span.start_ms <= t < span.end_ms:
                    continue
                problem = funding_problem((t, rate), now_ms=now_ms, listed_ms=listed)
                if problem is not None:
                    refused.append(Refusal(int(t), problem))
                else:
                    rows[int(t)] = rate
            if len(answer or []) < FUNDING_PAGE_SIZE or (times and min(times) < span.start_ms):
                break
        for refusal in refused:
            self.note(f"{symbol}: refused funding {refusal}")
        return sorted(rows.items()), refused

    async def open_interest(
        self, symbol: str, span: Span
    ) -> tuple[list[OpenInterestSample], list[Refusal]]:
        """Open-interest samples ``(time_ms, amount base units, value USDT | None)`` of ``span``
        from ``fetch_open_interest_history`` (5m samples), oldest first."""
        market = (getattr(self.exchange, "markets", None) or {}).get(symbol) or {}
        contract_size = float(market.get("contractSize") or 1.0)
        rows: list[OpenInterestSample] = []
        refused: list[Refusal] = []
        now_ms = self.now_ms()
        cursor = span.start_ms
        while cursor < span.end_ms:
            answer = await self.call(
                f"{symbol} open interest {utc_text(cursor)}",
                partial(
                    self.exchange.fetch_open_interest_history,
                    symbol,
                    OPEN_INTEREST_TIMEFRAME,
                    cursor,
                    OPEN_INTEREST_PAGE,
                    {"until": span.end_ms - 1},
                ),
            )
            fresh = sorted(
                (int(t), entry)
                for entry in answer or []
                if (t := _number(entry.get("timestamp"))) is not None and cursor <= t < span.end_ms
            )
            if not fresh:
                break
            for t, entry in fresh:
                amount = _number(entry.get("openInterestAmount"))
                value = _number(entry.get("openInterestValue"))
                row = (t, None if amount is None else amount * contract_size, value)
                problem = open_interest_problem(row, now_ms=now_ms, listed_ms=None)
                if problem is not None:
                    refused.append(Refusal(t, problem))
                else:
                    rows.append((t, float(row[1] or 0.0), value))
            cursor = fresh[-1][0] + 1
        return rows, refused


def _incomplete(answer: CandleAnswer) -> str:
    parts = []
    if answer.refused:
        parts.append(f"{len(answer.refused)} row(s) refused")
    if answer.missing:
        parts.append(f"{len(answer.missing)} of {answer.page.minutes} minute(s) missing")
    return ", ".join(parts)


def _number(value: Any) -> float | None:
    try:
        number = None if value is None else float(value)
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


async def bounded[T](
    calls: Iterable[Callable[[], Awaitable[T]]], limit: int
) -> list[T | BaseException]:
    """Run ``calls`` (each makes its awaitable when its turn comes) at most ``limit`` at a
    time; each one's result or exception, in order."""
    gate = asyncio.Semaphore(max(1, limit))

    async def one(make: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await make()

    return await asyncio.gather(*(one(make) for make in calls), return_exceptions=True)
