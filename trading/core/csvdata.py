"""Market-data CSV files: names, streaming reads and row-by-row validation.

Two kinds of file are read, both with a header line and one row per line:

* candles: ``timestamp_ms,open,high,low,close,volume`` (``timestamp_ms`` = candle OPEN time, UTC
  epoch milliseconds; prices in quote currency, volume in base units);
* funding: ``timestamp_ms,rate`` (settlement time, UTC epoch ms; ``rate`` per period as a
  fraction, 0.0001 = 0.01 %).

A file is refused as a whole only when it cannot be read or its header is wrong
(:class:`CsvDataError`). A bad ROW never stops the read: it is recorded as a :class:`BadRow`
with its line number (the header is line 1) and the reader moves on, so every good row of a
partly damaged file is still delivered. Rows must be strictly increasing in time; the ordering
check compares each row with the last GOOD row, so one bad row does not condemn its neighbours.

File names follow ``<venue>_<BASE>-<QUOTE>_<kind>_<first-day>-<last-day>.csv[.gz]``
(e.g. ``binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz``): the venue gives the exchange and
the market type, from which :func:`parse_data_file_name` builds the ccxt unified symbol.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from trading.core.candles import TIMEFRAME_MS
from trading.core.types import TradingCoreError

CANDLE_FIELDS: Final = ("timestamp_ms", "open", "high", "low", "close", "volume")
FUNDING_FIELDS: Final = ("timestamp_ms", "rate")

# Earliest accepted timestamp: 2000-01-01 UTC. A smaller value is almost always a time in
# SECONDS written where milliseconds were expected (1750118400 s would otherwise be 1970).
MIN_TIMESTAMP_MS: Final = 946_684_800_000

CandleRow = tuple[int, float, float, float, float, float]
"""``(open_time_ms, open, high, low, close, volume)``."""
FundingRow = tuple[int, float]
"""``(funding_time_ms, rate)``."""

# Venue suffix -> how the ccxt unified symbol is spelled for that market type.
_LINEAR_SWAP = "linear"
_INVERSE_SWAP = "inverse"
_SPOT = "spot"
_MARKET_TYPES: Final = {
    "usdm": _LINEAR_SWAP,
    "perp": _LINEAR_SWAP,
    "swap": _LINEAR_SWAP,
    "futures": _LINEAR_SWAP,
    "coinm": _INVERSE_SWAP,
    "spot": _SPOT,
}
_FILE_NAME_RE: Final = re.compile(
    r"^(?P<venue>[a-z0-9]+(?:-[a-z0-9]+)*)"
    r"_(?P<base>[A-Z0-9]+)-(?P<quote>[A-Z0-9]+)"
    r"_(?P<kind>[a-z0-9-]+)"
    r"(?:_(?P<dates>[^.]*))?"  # usually <first-day>-<last-day>; not interpreted
    r"\.csv(?:\.gz)?$"
)
_GZIP_MAGIC: Final = b"\x1f\x8b"


class CsvDataError(TradingCoreError):
    """A data file that cannot be imported at all: unreadable, not a CSV, or a wrong header."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """A rejected row: its line number in the file (header = line 1) and why it was rejected."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class DataFileName:
    """What a data file's name says about its contents.

    ``symbol`` is the ccxt unified symbol (``BTC/USDT:USDT`` for a USDT-margined perpetual,
    ``BTC/USDT`` for spot), or None when the venue does not say which market type it is.
    ``timeframe`` is set when ``kind`` is a candle timeframe (``1m``, ``5m``, ...).
    """

    venue: str
    exchange: str
    symbol: str | None
    kind: str

    @property
    def timeframe(self) -> str | None:
        return self.kind if self.kind in TIMEFRAME_MS else None


def unified_symbol(base: str, quote: str, market_type: str) -> str:
    """ccxt unified symbol: spot ``BASE/QUOTE``, linear swap ``BASE/QUOTE:QUOTE``, inverse
    swap ``BASE/QUOTE:BASE`` (settled in the base coin)."""
    if market_type == _SPOT:
        return f"{base}/{quote}"
    if market_type == _LINEAR_SWAP:
        return f"{base}/{quote}:{quote}"
    if market_type == _INVERSE_SWAP:
        return f"{base}/{quote}:{base}"
    raise ValueError(f"unknown market type {market_type!r}")


def parse_data_file_name(name: str) -> DataFileName | None:
    """Read exchange, symbol and kind from a file name; None when the name has another shape.

    ``binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz`` -> exchange ``binance``, symbol
    ``BTC/USDT:USDT``, kind ``1m``; ``binance-spot_ETH-USDT_1h_...`` -> ``ETH/USDT``. A venue
    without a known market suffix (``bitget_BTC-USDT_1m.csv``) gives exchange ``bitget`` and
    symbol None: the name does not say whether it is spot or a perpetual.
    """
    match = _FILE_NAME_RE.match(Path(name).name)
    if match is None:
        return None
    venue = match["venue"]
    exchange, _, suffix = venue.partition("-")
    market_type = _MARKET_TYPES.get(suffix) if suffix else None
    if suffix and market_type is None:
        # e.g. "foo-bar": the whole venue is the exchange's name, the market type is unknown.
        exchange = venue
    symbol = unified_symbol(match["base"], match["quote"], market_type) if market_type else None
    return DataFileName(venue=venue, exchange=exchange, symbol=symbol, kind=match["kind"])


def open_data_file(path: str | Path) -> TextIO:
    """Open a CSV file for text reading, gunzipping it when its first bytes are gzip's magic
    number (whatever its suffix). Raises :class:`CsvDataError` when it cannot be opened."""
    file_path = Path(path)
    try:
        raw = file_path.open("rb")
    except OSError as error:
        raise CsvDataError(f"{file_path}: cannot open ({error.strerror or error})") from error
    try:
        compressed = raw.peek(2)[:2] == _GZIP_MAGIC
        binary = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        return io.TextIOWrapper(binary, encoding="utf-8", newline="")
    except OSError as error:
        raw.close()
        raise CsvDataError(f"{file_path}: cannot read ({error})") from error


class _BadValue(Exception):
    """Internal: a row failed one check; the message becomes the BadRow's reason."""


def _parse_time_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            raise _BadValue(f"timestamp_ms {text!r} is not a number") from None
        if not as_float.is_integer():
            raise _BadValue(
                f"timestamp_ms {text!r} is not a whole number of milliseconds"
            ) from None
        value = int(as_float)
    if value < MIN_TIMESTAMP_MS:
        raise _BadValue(
            f"timestamp_ms {value} is before 2000-01-01 (seconds instead of milliseconds?)"
        )
    return value


def _parse_number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _BadValue(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _BadValue(f"{name} {text!r} is not a finite number")
    return value


class CsvReader[RowT: tuple[int | float, ...]]:
    """Iterates the good rows of one CSV stream; bad rows are collected in ``bad_rows``.

    ``rows_read`` counts data rows seen (good and bad; blank lines are skipped and not counted).
    Each subclass parses a row with a fast path for the common, valid row and falls back to
    ``_diagnose``, which re-checks the row value by value to name what is wrong.
    """

    fields: tuple[str, ...] = ()

    def __init__(self, stream: TextIO, *, source: str = "") -> None:
        self.source = source or getattr(stream, "name", "") or "<stream>"
        self.rows_read = 0
        self.bad_rows: list[BadRow] = []
        self._reader = csv.reader(stream)
        try:
            header = next(self._reader, None)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
            raise CsvDataError(f"{self.source}: unreadable ({error})") from error
        if header is None:
            raise CsvDataError(f"{self.source}: empty file, expected the header {self.header!r}")
        if tuple(field.strip() for field in header) != self.fields:
            raise CsvDataError(
                f"{self.source}: header is {','.join(header)!r}, expected {self.header!r}"
            )

    @property
    def header(self) -> str:
        return ",".join(self.fields)

    def __iter__(self) -> Iterator[RowT]:
        reader = self._reader
        parse = self._parse
        bad_rows = self.bad_rows
        last_time_ms: float = -1
        last_line = 0
        rows_read = 0
        try:
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                rows_read += 1
                try:
                    row = parse(fields)
                    if row[0] <= last_time_ms:
                        _raise_out_of_order(row[0], last_time_ms, last_line)
                except _BadValue as bad:
                    bad_rows.append(BadRow(reader.line_num, str(bad)))
                    continue
                last_time_ms = row[0]
                last_line = reader.line_num
                self.rows_read = rows_read
                yield row
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
            raise CsvDataError(
                f"{self.source}: unreadable after line {reader.line_num} ({error})"
            ) from error
        finally:
            self.rows_read = rows_read

    def _parse(self, fields: list[str]) -> RowT:
        raise NotImplementedError

    def _check_count(self, fields: list[str]) -> None:
        expected = len(self.fields)
        if len(fields) < expected:
            missing = ", ".join(self.fields[len(fields) :])
            raise _BadValue(f"missing {missing} ({len(fields)} of {expected} values)")
        if len(fields) > expected:
            raise _BadValue(f"{len(fields)} values, expected {expected} ({self.header})")
        for name, text in zip(self.fields, fields, strict=True):
            if not text.strip():
                raise _BadValue(f"missing {name}")


def _raise_out_of_order(time_ms: float, last_time_ms: float, last_line: int) -> None:
    if time_ms == last_time_ms:
        raise _BadValue(f"timestamp_ms {time_ms} duplicates line {last_line}")
    raise _BadValue(
        f"timestamp_ms {time_ms} is before line {last_line} ({last_time_ms}): "
        "rows must be in increasing time order"
    )


class CandleCsvReader(CsvReader[CandleRow]):
    """Good candle rows of a ``timestamp_ms,open,high,low,close,volume`` stream.

    A row is bad when a value is missing or not a finite number, a price is not positive,
    ``high < low``, ``high < max(open, close)``, ``low > min(open, close)``, the volume is
    negative, the open time is not a multiple of the timeframe (ms since the UTC epoch), or it
    is not after the previous good row's open time.
    """

    fields = CANDLE_FIELDS

    def __init__(self, stream: TextIO, *, timeframe: str, source: str = "") -> None:
        if timeframe not in TIMEFRAME_MS:
            raise ValueError(
                f"unknown timeframe {timeframe!r} (expected one of {', '.join(TIMEFRAME_MS)})"
            )
        self.timeframe = timeframe
        self._step_ms = TIMEFRAME_MS[timeframe]
        super().__init__(stream, source=source)

    def _parse(self, fields: list[str]) -> CandleRow:
        try:
            time_text, open_text, high_text, low_text, close_text, volume_text = fields
            open_time_ms = int(time_text)
            open_, high, low, close = (
                float(open_text),
                float(high_text),
                float(low_text),
                float(close_text),
            )
            volume = float(volume_text)
        except ValueError:
            return self._diagnose(fields)
        # Every comparison is False for NaN, and ``high < inf`` bounds the other prices.
        if (
            0 < low <= open_ <= high < math.inf
            and low <= close <= high
            and 0 <= volume < math.inf
            and open_time_ms >= MIN_TIMESTAMP_MS
            and open_time_ms % self._step_ms == 0
        ):
            return (open_time_ms, open_, high, low, close, volume)
        return self._diagnose(fields)

    def _diagnose(self, fields: list[str]) -> CandleRow:
        """Check one row value by value; raise ``_BadValue`` naming every problem found."""
        self._check_count(fields)
        open_time_ms = _parse_time_ms(fields[0])
        open_, high, low, close, volume = (
            _parse_number(name, text)
            for name, text in zip(CANDLE_FIELDS[1:], fields[1:], strict=True)
        )
        problems = [
            f"{name} {value} is not positive"
            for name, value in (("open", open_), ("high", high), ("low", low), ("close", close))
            if value <= 0
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
        if open_time_ms % self._step_ms:
            problems.append(
                f"timestamp_ms {open_time_ms} is not aligned to the {self.timeframe} grid "
                f"(multiples of {self._step_ms} ms)"
            )
        if problems:
            raise _BadValue("; ".join(problems))
        return (open_time_ms, open_, high, low, close, volume)


class FundingCsvReader(CsvReader[FundingRow]):
    """Good funding rows of a ``timestamp_ms,rate`` stream: a finite rate (any sign) and a
    settlement time after the previous good row's."""

    fields = FUNDING_FIELDS

    def _parse(self, fields: list[str]) -> FundingRow:
        self._check_count(fields)
        return (_parse_time_ms(fields[0]), _parse_number("rate", fields[1]))
