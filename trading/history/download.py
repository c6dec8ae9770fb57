"""One history download: find what is missing, ask for it page by page, store it as it comes.

The order: 1m candles of every symbol (their pages interleaved, at most ``concurrency``
requests in flight, each batch of pages stored before the next one is asked, so an
interruption loses at most one batch), then the funding settlements, then the mark price at
each settlement, then open interest. Each kind asks only what is not stored yet: the candle
minutes absent from the database (a hole inside the range included), the funding of a range
whose settlements are not all stored, the mark price of settlements that have none.

The database is written from the calling thread between two batches (``run`` drives the event
loop for one batch at a time), so the ORM never runs inside the loop.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from functools import partial
from itertools import batched
from typing import Any, TextIO

from trading.core.candles import MINUTE_MS
from trading.history import store
from trading.history.fetch import CandleAnswer, ExchangeFailure, HistoryFetcher, Refusal, bounded
from trading.history.plan import (
    Page,
    PageLimits,
    Span,
    candle_pages,
    funding_covered,
    interleaved,
)
from trading.history.progress import Progress
from trading.history.report import HistoryReport, KindReport, SymbolReport
from trading.services import UpsertResult

KINDS = ("candles", "funding", "mark", "open-interest")
BITGET_RECENT_ROWS = 1_000  # candles per request on Bitget's recent endpoint (ref/bitget.md §9)
BITGET_HISTORY_ROWS = 200  # ... and on history-candles / history-mark-candles
DEFAULT_ROWS = 500  # another exchange whose ccxt states no page size
DEFAULT_FUNDING_INTERVAL_MS = 8 * 3_600_000


def page_limits(exchange: Any) -> PageLimits:
    """Rows per candle request: Bitget's two endpoints (the recent one reaching back ccxt's
    ``maxRecentDaysPerTimeframe['1m']`` days), or ccxt's stated page size of another one."""
    options = (getattr(exchange, "options", None) or {}).get("fetchOHLCV") or {}
    if getattr(exchange, "id", "") == "bitget":
        days = (options.get("maxRecentDaysPerTimeframe") or {}).get("1m")
        return PageLimits(BITGET_RECENT_ROWS, BITGET_HISTORY_ROWS, int(days) if days else None)
    features = getattr(exchange, "features", None) or {}
    stated = ((features.get("swap") or {}).get("linear") or {}).get("fetchOHLCV") or {}
    rows = int(stated.get("limit") or DEFAULT_ROWS)
    return PageLimits(rows, rows)


def funding_interval_ms(exchange: Any, symbol: str) -> int:
    """Time between settlements: the market's ``fundInterval`` hours (Bitget), else 8 h."""
    market = (getattr(exchange, "markets", None) or {}).get(symbol) or {}
    hours = (market.get("info") or {}).get("fundInterval")
    try:
        return int(float(hours) * 3_600_000) if hours else DEFAULT_FUNDING_INTERVAL_MS
    except (TypeError, ValueError):
        return DEFAULT_FUNDING_INTERVAL_MS


class HistoryDownload:
    """Fetch ``kinds`` of ``symbols`` over ``span`` into the database (module docstring).

    ``run`` drives one coroutine to completion (``loop.run_until_complete`` of the loop the
    fetcher's exchange lives on); progress goes to ``stream``; ``report`` is kept up to date
    as the download goes, so an interrupted one can still be summed up."""

    def __init__(
        self,
        fetcher: HistoryFetcher,
        *,
        exchange_name: str,
        symbols: Sequence[str],
        span: Span,
        source: str,
        run: Callable[[Awaitable[Any]], Any],
        stream: TextIO,
        kinds: Collection[str] = KINDS,
        concurrency: int = 4,
        show_progress: bool = True,
    ) -> None:
        self.fetcher = fetcher
        self.exchange = exchange_name
        self.symbols = list(symbols)
        self.span = span
        self.source = source
        self.run = run
        self.stream = stream
        self.kinds = set(kinds)
        self.concurrency = max(1, concurrency)
        self.show_progress = show_progress
        self.report = HistoryReport(exchange_name, span, source)
        self.report.with_candles = "candles" in self.kinds
        for symbol in self.symbols:
            self.report.symbols[symbol] = SymbolReport(symbol, minutes=span.minutes)

    @property
    def batch_pages(self) -> int:
        return 4 * self.concurrency

    def progress(self, label: str, total: int, unit: str) -> Progress:
        return Progress(
            self.stream, label=label, total=total, unit=unit, enabled=self.show_progress
        )

    def download(self) -> HistoryReport:
        """Every kind asked for, in order; an exchange lost midway stops the download (the
        report says so in ``lost``), a KeyboardInterrupt is re-raised with the report kept."""
        started = time.monotonic()
        steps = (
            ("candles", self.candles),
            ("funding", self.funding),
            ("mark", self.mark_prices),
            ("open-interest", self.open_interest),
        )
        try:
            for kind, step in steps:
                if kind in self.kinds:
                    step()
        except ExchangeFailure as exc:
            if not exc.offline:
                raise
            self.report.lost = str(exc)
        except KeyboardInterrupt:
            self.report.interrupted = True
            raise
        finally:
            self.report.seconds = time.monotonic() - started
            self.report.requests = self.fetcher.requests
            self.report.retried = self.fetcher.retried
        return self.report

    # -- candles ----------------------------------------------------------------------------

    def candles(self) -> None:
        limits = page_limits(self.fetcher.exchange)
        now_ms = self.fetcher.now_ms()
        per_symbol = []
        for symbol in self.symbols:
            report = self.report.symbols[symbol]
            wanted = self.span
            listed = self.fetcher.listed_ms.get(symbol)
            if listed is not None and listed > wanted.start_ms:
                first = min(-(-listed // MINUTE_MS) * MINUTE_MS, wanted.end_ms)
                report.before_listing = (first - wanted.start_ms) // MINUTE_MS
                wanted = Span(first, wanted.end_ms)
            missing = store.missing_candle_spans(exchange=self.exchange, symbol=symbol, span=wanted)
            report.asked = sum(s.minutes for s in missing)
            report.already = wanted.minutes - report.asked
            per_symbol.append(candle_pages(symbol, missing, limits=limits, now_ms=now_ms))
        pages = interleaved(per_symbol)
        progress = self.progress("candles", sum(p.minutes for p in pages), "minutes")
        self.fetcher.note = progress.note
        try:
            for answers in self._answers(pages, limits, mark=False):
                rows: dict[str, list[Any]] = defaultdict(list)
                for answer in answers:
                    report = self.report.symbols[answer.page.symbol]
                    rows[answer.page.symbol] += answer.rows
                    report.refused += answer.refused
                    report.exchange_gaps += answer.missing
                for symbol, symbol_rows in rows.items():
                    self.report.symbols[symbol].stored += store.candles_store(
                        rows=symbol_rows, exchange=self.exchange, symbol=symbol, source=self.source
                    )
                progress.update(sum(a.page.minutes for a in answers))
        finally:
            progress.close()

    def _answers(
        self, pages: Sequence[Page], limits: PageLimits, *, mark: bool
    ) -> Iterator[list[CandleAnswer]]:
        """The answers to ``pages``, one batch at a time. A symbol whose request the exchange
        refuses is dropped (its report says why); an exchange lost midway raises after the
        batch's answers are handed over."""
        failed: set[str] = set()
        for batch in batched(pages, self.batch_pages):
            wanted = [p for p in batch if p.symbol not in failed]
            results = self.run(
                bounded(
                    (partial(self.fetcher.candles, p, limits=limits, mark=mark) for p in wanted),
                    self.concurrency,
                )
            )
            lost: ExchangeFailure | None = None
            answers = []
            for page, result in zip(wanted, results, strict=True):
                if isinstance(result, ExchangeFailure):
                    if result.offline:
                        lost = lost or result
                    elif page.symbol not in failed:
                        failed.add(page.symbol)
                        report = self.report.symbols[page.symbol]
                        if mark:
                            report.mark = report.mark or KindReport()
                            report.mark.failure = str(result)
                        else:
                            report.failure = str(result)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    answers.append(result)
            yield answers
            if lost is not None:
                raise lost

    # -- funding, mark prices, open interest ------------------------------------------------

    def funding(self) -> None:
        name = self.fetcher.exchange.id
        if not self.fetcher.has("fetchFundingRateHistory"):
            for report in self.report.symbols.values():
                report.funding = KindReport(note=f"{name} offers no funding history")
            return
        wanted = []
        for symbol in self.symbols:
            interval = funding_interval_ms(self.fetcher.exchange, symbol)
            times = store.funding_times(exchange=self.exchange, symbol=symbol, span=self.span)
            if funding_covered(times, self.span, interval):
                self.report.symbols[symbol].funding = KindReport(
                    note=f"{len(times)} settlements already stored "
                    f"(one every {interval / 3_600_000:g} h of the range): not asked"
                )
            else:
                wanted.append(symbol)
        progress = self.progress("funding", len(wanted), "symbols")
        self.fetcher.note = progress.note
        try:
            for symbol in wanted:
                self.report.symbols[symbol].funding = self._kind(
                    self.fetcher.funding(symbol, self.span),
                    partial(
                        store.funding_store,
                        exchange=self.exchange,
                        symbol=symbol,
                        source=self.source,
                    ),
                )
                progress.update(1)
        finally:
            progress.close()

    def mark_prices(self) -> None:
        name = self.fetcher.exchange.id
        note = ""
        if not self.fetcher.has("fetchMarkOHLCV"):
            note = f"{name} offers no mark-price candles"
        if note:
            for report in self.report.symbols.values():
                report.mark = KindReport(note=note)
            return
        limits = page_limits(self.fetcher.exchange)
        now_ms = self.fetcher.now_ms()
        pages = []
        marks: dict[str, KindReport] = {}
        for symbol in self.symbols:
            times = store.settlements_without_mark(
                exchange=self.exchange, symbol=symbol, span=self.span
            )
            marks[symbol] = KindReport(
                note="" if times else "no stored settlement of the range lacks it"
            )
            self.report.symbols[symbol].mark = marks[symbol]
            pages += [Page(symbol, t, t + MINUTE_MS, limits.uses_history(t, now_ms)) for t in times]
        progress = self.progress("mark prices", len(pages), "settlements")
        self.fetcher.note = progress.note
        try:
            for answers in self._answers(pages, limits, mark=True):
                prices: dict[str, dict[int, float]] = defaultdict(dict)
                for answer in answers:
                    symbol = answer.page.symbol
                    if answer.rows:
                        prices[symbol][answer.page.start_ms] = answer.rows[0][1]
                    else:
                        why = answer.refused[0].reason if answer.refused else "no candle"
                        marks[symbol].refused.append(Refusal(answer.page.start_ms, why))
                for symbol, symbol_prices in prices.items():
                    changed = store.mark_prices_store(
                        prices=symbol_prices, exchange=self.exchange, symbol=symbol
                    )
                    marks[symbol].stored += UpsertResult(inserted=changed)
                progress.update(len(answers))
        finally:
            progress.close()

    def open_interest(self) -> None:
        name = self.fetcher.exchange.id
        if not self.fetcher.has("fetchOpenInterestHistory"):
            for report in self.report.symbols.values():
                report.open_interest = KindReport(
                    note=f"{name} offers no history through ccxt (fetchOpenInterestHistory "
                    "is false): the open-interest poller records it from now on"
                )
            return
        for symbol in self.symbols:
            last = store.last_open_interest_ms(
                exchange=self.exchange, symbol=symbol, span=self.span
            )
            wanted = self.span if last is None else Span(last + 1, self.span.end_ms)
            self.report.symbols[symbol].open_interest = self._kind(
                self.fetcher.open_interest(symbol, wanted),
                partial(
                    store.open_interest_store,
                    exchange=self.exchange,
                    symbol=symbol,
                    source=self.source,
                ),
            )

    def _kind(
        self,
        fetch: Awaitable[tuple[list[Any], list[Refusal]]],
        save: Callable[..., UpsertResult],
    ) -> KindReport:
        """Fetch then store one kind of one symbol; an exchange that refuses is reported, one
        that cannot be reached stops the download."""
        try:
            rows, refused = self.run(fetch)
        except ExchangeFailure as exc:
            if exc.offline:
                raise
            return KindReport(failure=str(exc))
        return KindReport(stored=save(rows=rows), refused=refused)
