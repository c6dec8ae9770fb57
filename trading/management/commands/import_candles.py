"""``import_candles PATH [PATH ...]``: load OHLCV CSV files (plain or gzip) into Candle.

Exchange, symbol and timeframe come from the flags or, when a flag is absent, from the file
name (``binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz`` -> ``binance``, ``BTC/USDT:USDT``,
``1m``). ``--exchange bitget`` replays another venue's history as the radar's exchange.
Bad rows are reported with their line number and skipped; the good rows are imported. The
rules are :mod:`trading.core.validation`'s: a candle in the future (judged against the clock
when the command starts), before the exchange listed the symbol (``Asset.listed_at_ms``, when
known), with absurd values or 100× away from its neighbours is a bad row (see docs/data.md).
The command fails (non-zero exit) when a file cannot be read, has the wrong header, or is
damaged (a gzip file cut short or corrupted): the good rows before the damage are stored all
the same, and the line where the damage starts is reported.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import batched
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from trading.core.candles import TIMEFRAME_MS
from trading.core.csvdata import (
    CandleCsvReader,
    CsvDataError,
    CsvReader,
    DataFileName,
    open_data_file,
    parse_data_file_name,
    wall_clock_ms,
)
from trading.models import Asset
from trading.services import UpsertResult, candles_upsert

# Bad rows printed per file; all of them are counted in the summary line.
MAX_BAD_ROWS_SHOWN = 100


@dataclass(frozen=True, slots=True)
class ImportTarget:
    """One file and the series its rows go to."""

    path: Path
    exchange: str
    symbol: str
    timeframe: str | None
    kind: str = "candles"
    listed_ms: int | None = None  # the exchange's listing time of the symbol (epoch ms)
    now_ms: int = 0  # the clock rows are judged against (epoch ms)

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.timeframe}" if self.timeframe else f"{self.symbol} {self.kind}"


def prefetched[T](batches: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield ``batches`` while a thread reads the next ones: parsing overlaps the database
    writes (the database works outside the GIL). An error of the reader is raised here, in
    order, after the batches read before it."""
    done = object()
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                slots.put(batch)
        except BaseException as error:  # handed over to the consumer, re-raised there
            slots.put(_Failure(error))
            return
        slots.put(done)

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


class MarketDataImportCommand(BaseCommand):
    """Shared flow of the import commands: resolve every file's target first (so a naming
    mistake stops the run before anything is written), then stream each file in batches."""

    kind = "candles"
    uses_timeframe = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=".csv or .csv.gz")
        parser.add_argument("--exchange", help="ccxt exchange id (default: from the file name)")
        parser.add_argument(
            "--symbol", help="ccxt unified symbol, e.g. BTC/USDT:USDT (default: from the name)"
        )
        if self.uses_timeframe:
            parser.add_argument(
                "--timeframe",
                choices=list(TIMEFRAME_MS),
                help="candle timeframe (default: from the file name)",
            )
        parser.add_argument("--batch-size", type=int, default=20_000, help="rows per upsert")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        symbol = options["symbol"]
        if symbol is not None and "/" not in symbol:
            raise CommandError(
                f"--symbol {symbol!r} is not a ccxt unified symbol: write it like BTC/USDT:USDT "
                "(perpetual) or BTC/USDT (spot)"
            )
        now_ms = wall_clock_ms()
        targets = [
            self.resolve_target(
                path,
                exchange=options["exchange"],
                symbol=symbol,
                timeframe=options.get("timeframe"),
                now_ms=now_ms,
            )
            for path in options["paths"]
        ]
        failed = [
            target
            for target in targets
            if not self.import_file(
                target, batch_size=options["batch_size"], quiet=options["quiet"]
            )
        ]
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(targets)} file(s) could not be imported whole: "
                + ", ".join(str(target.path) for target in failed)
            )

    def resolve_target(
        self,
        path: Path,
        *,
        exchange: str | None,
        symbol: str | None,
        timeframe: str | None,
        now_ms: int,
    ) -> ImportTarget:
        parsed: DataFileName | None = parse_data_file_name(path.name)
        exchange = exchange or (parsed.exchange if parsed else None)
        symbol = symbol or (parsed.symbol if parsed else None)
        if self.uses_timeframe:
            timeframe = timeframe or (parsed.timeframe if parsed else None)
        missing = [
            flag
            for flag, value in (
                ("--exchange", exchange),
                ("--symbol", symbol),
                *((("--timeframe", timeframe),) if self.uses_timeframe else ()),
            )
            if not value
        ]
        if missing:
            if parsed is None:
                why = (
                    "its name does not follow <venue>_<BASE>-<QUOTE>_<kind>_<first>-<last>.csv[.gz]"
                    " (e.g. binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz)"
                )
            else:
                why = (
                    f"its name gives venue {parsed.venue!r} and kind {parsed.kind!r}, which do "
                    "not say it"
                )
            names = ", ".join(flag.removeprefix("--") for flag in missing)
            names = " and ".join(names.rsplit(", ", 1))
            flags = " ".join(f"{flag} ..." for flag in missing)
            raise CommandError(f"{path}: cannot tell the {names} of this file: {why}; pass {flags}")
        listed_ms = (
            Asset.objects.filter(exchange=exchange, symbol=symbol)
            .values_list("listed_at_ms", flat=True)
            .first()
        )
        return ImportTarget(
            path=path,
            exchange=str(exchange),
            symbol=str(symbol),
            timeframe=timeframe,
            kind=self.kind,
            listed_ms=listed_ms,
            now_ms=now_ms,
        )

    def import_file(self, target: ImportTarget, *, batch_size: int, quiet: bool) -> bool:
        """Import one file; False when it could not be read or is damaged (already reported;
        the good rows of a damaged file are stored)."""
        if not quiet:
            self.stdout.write(f"{target.path.name} -> {target.exchange} {target.label}")
        result = UpsertResult()
        try:
            with open_data_file(target.path) as stream:
                reader = self.open_reader(stream, target)
                with tqdm(
                    unit=" rows",
                    desc=target.label,
                    file=sys.stderr,
                    disable=quiet or not sys.stderr.isatty(),
                    leave=False,
                ) as progress:
                    for batch in prefetched(batched(reader, batch_size)):
                        result += self.upsert(target, batch)
                        progress.update(len(batch))
        except CsvDataError as error:
            self.stderr.write(self.style.ERROR(str(error)))
            if result.written:
                self.stderr.write(
                    f"{target.label}: {result.inserted} inserted and {result.updated} updated "
                    "before the error (kept; a re-import after the fix is safe)"
                )
            return False
        for bad_row in reader.bad_rows[:MAX_BAD_ROWS_SHOWN]:
            self.stderr.write(self.style.WARNING(str(bad_row)))
        hidden = len(reader.bad_rows) - MAX_BAD_ROWS_SHOWN
        if hidden > 0:
            self.stderr.write(self.style.WARNING(f"... and {hidden} more bad rows"))
        self.stdout.write(self.summary(target, reader.rows_read, result, len(reader.bad_rows)))
        if reader.damage is not None:
            self.stderr.write(
                self.style.ERROR(f"{target.path}: damaged file, {reader.damage}")
                + f"\n{target.label}: the {result.inserted + result.updated + result.unchanged} "
                "good rows before the damage are stored (a re-import of a repaired file is safe)"
            )
            return False
        return True

    @staticmethod
    def summary(target: ImportTarget, rows_read: int, result: UpsertResult, bad: int) -> str:
        """``BTC/USDT:USDT 1m: 10080 rows read, 10080 inserted, 0 updated, 0 unchanged, ...``"""
        line = (
            f"{target.label}: {rows_read} rows read, {result.inserted} inserted, "
            f"{result.updated} updated, {result.unchanged} unchanged, {bad} bad rows"
        )
        return f"{line} (see above)" if bad else line

    def open_reader(self, stream: TextIO, target: ImportTarget) -> CsvReader[Any]:
        return CandleCsvReader(
            stream,
            timeframe=str(target.timeframe),
            source=str(target.path),
            now_ms=target.now_ms,
            listed_ms=target.listed_ms,
        )

    def upsert(self, target: ImportTarget, rows: tuple[Any, ...]) -> UpsertResult:
        return candles_upsert(
            rows=rows,
            exchange=target.exchange,
            symbol=target.symbol,
            timeframe=str(target.timeframe),
        )


class Command(MarketDataImportCommand):
    help = (
        "Import OHLCV candles from CSV or CSV.gz files with header "
        "timestamp_ms,open,high,low,close,volume (upsert: a re-import changes nothing)."
    )
