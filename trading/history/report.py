"""What a history download did, per symbol and kind, and the summary lines a trader reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from trading.history.fetch import Refusal
from trading.history.plan import Span, spans_of
from trading.services import UpsertResult

SHOWN = 10  # refusals and exchange gaps listed per symbol; all of them are counted


@dataclass(slots=True)
class KindReport:
    """Funding, mark prices or open interest of one symbol. ``note`` says why nothing was
    asked (already stored, not offered), ``failure`` why it stopped."""

    stored: UpsertResult = field(default_factory=UpsertResult)
    refused: list[Refusal] = field(default_factory=list)
    note: str = ""
    failure: str = ""

    def line(self, label: str) -> str:
        if self.failure:
            return f"  {label}: FAILED, {self.failure}"
        if self.note:
            return f"  {label}: {self.note}"
        s = self.stored
        line = f"  {label}: {s.written} stored ({s.inserted} new, {s.updated} updated)"
        if s.unchanged:
            line += f", {s.unchanged} already there"
        if self.refused:
            line += f", {len(self.refused)} refused"
        return line


@dataclass(slots=True)
class SymbolReport:
    """One symbol's 1m candles (counts in minutes) and its other kinds."""

    symbol: str
    minutes: int = 0  # in the range
    already: int = 0  # stored before this run
    before_listing: int = 0  # before the exchange listed the symbol: not asked
    asked: int = 0
    stored: UpsertResult = field(default_factory=UpsertResult)
    refused: list[Refusal] = field(default_factory=list)
    exchange_gaps: list[int] = field(default_factory=list)  # minute opens the exchange lacks
    failure: str = ""
    funding: KindReport | None = None
    mark: KindReport | None = None
    open_interest: KindReport | None = None

    def lines(self, with_candles: bool = True) -> list[str]:
        if not with_candles:
            return [f"{self.symbol}:", *self._kind_lines()]
        head = (
            f"{self.symbol} 1m: {self.minutes} minutes in the range, {self.already} already stored"
        )
        if self.before_listing:
            head += f", {self.before_listing} before the listing (not asked)"
        if not self.asked:
            head += "; nothing to fetch"
        else:
            s = self.stored
            head += (
                f"; {self.asked} asked: {s.inserted} stored"
                + (f", {s.updated} updated" if s.updated else "")
                + (f", {s.unchanged} stored meanwhile by another writer" if s.unchanged else "")
                + f", {len(self.refused)} refused, "
                f"{len(self.exchange_gaps)} the exchange has no candle for"
            )
        out = [head]
        if self.failure:
            out.append(f"  candles: STOPPED, {self.failure}; run again to fetch the rest")
        out += [f"  refused {r}" for r in self.refused[:SHOWN]]
        if len(self.refused) > SHOWN:
            out.append(f"  ... and {len(self.refused) - SHOWN} more refused")
        gaps = spans_of(self.exchange_gaps)
        out += [f"  no candle on the exchange: {gap}" for gap in gaps[:SHOWN]]
        if len(gaps) > SHOWN:
            out.append(f"  ... and {len(gaps) - SHOWN} more stretches without candles")
        return out + self._kind_lines()

    def _kind_lines(self) -> list[str]:
        out = []
        for label, kind in (
            ("funding", self.funding),
            ("mark price at settlements", self.mark),
            ("open interest", self.open_interest),
        ):
            if kind is not None:
                out.append(kind.line(label))
                out += [f"    refused {r}" for r in kind.refused[:SHOWN]]
        return out


@dataclass(slots=True)
class HistoryReport:
    """The whole download: the range, the symbols, the requests and the time it took."""

    exchange: str
    span: Span
    source: str
    symbols: dict[str, SymbolReport] = field(default_factory=dict)
    requests: int = 0
    retried: int = 0
    seconds: float = 0.0
    lost: str = ""  # why the download stopped: the exchange could not be reached
    interrupted: bool = False
    with_candles: bool = True  # False: candles were skipped, the totals speak of requests only

    @property
    def candles_stored(self) -> int:
        return sum(r.stored.inserted + r.stored.updated for r in self.symbols.values())

    @property
    def candles_asked(self) -> int:
        return sum(r.asked for r in self.symbols.values())

    @property
    def failed(self) -> bool:
        return any(
            r.failure or any(k is not None and k.failure for k in (r.funding, r.mark))
            for r in self.symbols.values()
        )

    def header(self) -> str:
        return f"fetch_history {self.exchange} {self.span}, source {self.source!r}"

    def lines(self) -> list[str]:
        out = [self.header()]
        for report in self.symbols.values():
            out += report.lines(self.with_candles)
        rate = self.candles_stored / self.seconds if self.seconds > 0 else 0.0
        if not self.with_candles:
            out.append(f"done: {self.requests} requests in {self.seconds:.1f} s")
        elif not self.candles_asked and not self.lost:
            out.append(
                f"nothing new to fetch: every minute of the range is already stored "
                f"({self.requests} request(s) in {self.seconds:.1f} s)"
            )
        else:
            out.append(
                f"total: {self.candles_stored} candles stored in {self.seconds:.1f} s "
                f"({rate:,.0f} candles/s), {self.requests} requests, {self.retried} asked again"
            )
        if self.interrupted:
            out.append("interrupted: what was fetched is stored; run the same command again")
        if self.lost:
            out.append(f"stopped: {self.lost}; what was fetched is stored, run again to resume")
        return out
