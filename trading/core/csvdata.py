"""Market-data CSV files: names, streaming reads and row-by-row validation.

Three kinds of file are read, each with a header line and one row per line:

* candles: ``timestamp_ms,open,high,low,close,volume`` (``timestamp_ms`` = candle OPEN time, UTC
  epoch milliseconds; prices in quote currency, volume in base units);
* funding: ``timestamp_ms,rate`` (settlement time, UTC epoch ms; ``rate`` per period as a
  fraction, 0.0001 = 0.01 %);
* open interest: ``timestamp_ms,open_interest,open_interest_usdt`` (sample time, UTC epoch ms;
  amount in base units; its value in USDT, may be empty).

A file is refused as a whole only when it cannot be opened or its header is wrong
(:class:`CsvDataError`). A bad ROW never stops the read: it is recorded as a :class:`BadRow`
with its line number (the header is line 1) and the reader moves on, so every good row of a
partly damaged file is still delivered: junk bytes, a 200 KB field and a row that breaks a rule
of :mod:`trading.core.validation` are bad rows; a gzip file cut short or corrupted ends the
read after its last complete line, with ``damage`` saying where. Rows must be strictly
increasing in time; the ordering check compares each row with the last GOOD row, so one bad
row does not condemn its neighbours.

File names follow ``<venue>_<BASE>-<QUOTE>_<kind>_<first-day>-<last-day>.csv[.gz]``
(e.g. ``binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz``): the venue gives the exchange and
the market type, from which :func:`parse_data_file_name` builds the ccxt unified symbol.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, TextIO

from trading.core.candles import TIMEFRAME_MS
from trading.core.types import TradingCoreError
from trading.core.validation import (
    MAX_JUMP_RATIO,
    candle_checker,
    funding_problem,
    open_interest_problem,
    price_jump_problem,
)

CANDLE_FIELDS: Final = ("timestamp_ms", "open", "high", "low", "close", "volume")
FUNDING_FIELDS: Final = ("timestamp_ms", "rate")
OPEN_INTEREST_FIELDS: Final = ("timestamp_ms", "open_interest", "open_interest_usdt")

CandleRow = tuple[int, float, float, float, float, float]
"""``(open_time_ms, open, high, low, close, volume)``."""
FundingRow = tuple[int, float]
"""``(funding_time_ms, rate)``."""
OpenInterestSample = tuple[int, float, float | None]
"""``(time_ms, open_interest base units, open_interest_usdt or None)``."""

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


class _GzipBytes(io.RawIOBase):
    """The decompressed bytes of a gzip file that stops, instead of failing, where the file is
    damaged (truncated, corrupted deflate data, bad CRC): everything decompressed before the
    damage is delivered up to its last complete line, and ``damage`` says where it stopped.

    ``gzip.GzipFile`` raises at the damage and loses the block it was decompressing; a reader
    that must keep every good row wants the bytes before it. Concatenated members are read in
    turn, as ``gunzip`` does; zero padding after the last member is ignored."""

    _CHUNK = 64 * 1024

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(wbits=31)
        self._pending = memoryview(b"")
        self._carry = b""  # the start of a line whose end is not decompressed yet
        self._ended = False
        self._lines = 0  # complete lines delivered so far
        self.damage: BadRow | None = None

    @property
    def name(self) -> str:
        return str(getattr(self._raw, "name", ""))

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._ended:
            self._pending = memoryview(self._inflate_more())
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _inflate_more(self) -> bytes:
        """The next decompressed bytes, cut after their last newline: the start of a line
        is held back until its end arrives, so a line cut by damage is never delivered."""
        out, why = self._inflate_some()
        out = self._carry + out
        if self._ended and why is None:  # a clean end: the last line needs no newline
            self._carry = b""
            return out
        complete, newline, self._carry = out.rpartition(b"\n")
        kept = complete + newline
        self._lines += kept.count(b"\n")
        if why is not None:
            self._carry = b""
            self.damage = BadRow(
                self._lines + 1, f"{why}: this line and the rest of the file are missing"
            )
        return kept

    def _inflate_some(self) -> tuple[bytes, str | None]:
        """Decompressed bytes of the next compressed chunk, and why the data stops there
        (None while it is sound)."""
        compressed = self._raw.read(self._CHUNK)
        try:
            if not compressed:
                self._ended = True
                if self._inflate.eof:
                    return b"", None
                return self._inflate.flush(), "the gzip data ends early (truncated file)"
            out = self._inflate.decompress(compressed)
            while self._inflate.eof and self._inflate.unused_data:
                rest = self._inflate.unused_data
                if not rest.strip(b"\0"):
                    break
                self._inflate = zlib.decompressobj(wbits=31)
                out += self._inflate.decompress(rest)
            return out, None
        except zlib.error as error:
            self._ended = True
            return b"", f"the gzip data is corrupted ({error})"


class DataFileStream(io.TextIOWrapper):
    """A data file's text; ``damage`` is set when a gzip file stopped early (see
    :class:`_GzipBytes`). Undecodable bytes read as U+FFFD, so junk makes a bad ROW with its
    own line number instead of stopping the read."""

    @property
    def damage(self) -> BadRow | None:
        raw = getattr(self.buffer, "raw", None)
        return raw.damage if isinstance(raw, _GzipBytes) else None


def open_data_file(path: str | Path) -> DataFileStream:
    """Open a CSV file for text reading, gunzipping it when its first bytes are gzip's magic
    number (whatever its suffix). Raises :class:`CsvDataError` when it cannot be opened."""
    file_path = Path(path)
    try:
        raw = file_path.open("rb")
    except OSError as error:
        raise CsvDataError(f"{file_path}: cannot open ({error.strerror or error})") from error
    try:
        compressed = raw.peek(2)[:2] == _GZIP_MAGIC
        binary: BinaryIO = io.BufferedReader(_GzipBytes(raw)) if compressed else raw
        stream = DataFileStream(binary, encoding="utf-8", errors="replace", newline="")
    except OSError as error:
        raw.close()
        raise CsvDataError(f"{file_path}: cannot read ({error})") from error
    return stream


class _BadValue(Exception):
    """Internal: a row failed one check; the message becomes the BadRow's reason."""


def _shown(text: str) -> str:
    """A field as a message quotes it: ``repr``, cut to 40 characters (a 200 KB field is junk,
    not something to print)."""
    return repr(text) if len(text) <= 40 else repr(text[:37]) + f"... ({len(text)} characters)"


def _parse_time_ms(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            raise _BadValue(f"timestamp_ms {_shown(text)} is not a number") from None
        if not as_float.is_integer():
            raise _BadValue(
                f"timestamp_ms {_shown(text)} is not a whole number of milliseconds"
            ) from None
        return int(as_float)


def _parse_number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _BadValue(f"{name} {_shown(text)} is not a number") from None
    if not math.isfinite(value):
        raise _BadValue(f"{name} {_shown(text)} is not a finite number")
    return value


def wall_clock_ms() -> int:
    """The current time in UTC epoch ms: the default ``now_ms`` of the readers."""
    return time.time_ns() // 1_000_000


class CsvReader[RowT: tuple[int | float | None, ...]]:
    """Iterates the good rows of one CSV stream; bad rows are collected in ``bad_rows``.

    ``rows_read`` counts data rows seen (good and bad; blank lines are skipped and not counted).
    A stream that stops early (a truncated or corrupted gzip, a read error) ends the iteration
    normally, after every good row before the damage, and sets ``damage`` (its line and why):
    the caller stores what was read and reports the rest as missing. Each subclass parses a row
    with a fast path for the common, valid row and falls back to a value-by-value diagnosis
    naming what is wrong. Time and value rules: :mod:`trading.core.validation`, judged against
    ``now_ms`` (default: the wall clock when the reader is made) and ``listed_ms`` (the
    exchange's listing time of the symbol, epoch ms; None = unknown).
    """

    fields: tuple[str, ...] = ()

    def __init__(
        self,
        stream: TextIO,
        *,
        source: str = "",
        now_ms: int | None = None,
        listed_ms: int | None = None,
    ) -> None:
        self.source = source or getattr(stream, "name", "") or "<stream>"
        self.now_ms = wall_clock_ms() if now_ms is None else now_ms
        self.listed_ms = listed_ms
        self.rows_read = 0
        self.bad_rows: list[BadRow] = []
        self.damage: BadRow | None = None
        self._stream = stream
        self._reader = csv.reader(stream)
        try:
            header = next(self._reader, None)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error, zlib.error) as error:
            raise CsvDataError(f"{self.source}: unreadable ({error})") from error
        if header is None:
            damage = getattr(stream, "damage", None)
            if damage is not None:
                raise CsvDataError(f"{self.source}: unreadable ({damage.reason})")
            raise CsvDataError(f"{self.source}: empty file, expected the header {self.header!r}")
        if tuple(field.strip() for field in header) != self.fields:
            shown = ",".join(header)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise CsvDataError(f"{self.source}: header is {shown!r}, expected {self.header!r}")

    @property
    def header(self) -> str:
        return ",".join(self.fields)

    def __iter__(self) -> Iterator[RowT]:
        for _, row in self._numbered_rows():
            yield row

    def _numbered_rows(self) -> Iterator[tuple[int, RowT]]:
        """``(line, row)`` of every row that passes the per-row checks, in file order."""
        reader = self._reader
        parse = self._parse
        bad_rows = self.bad_rows
        last_time_ms: float = -1
        last_line = 0
        rows_read = 0
        try:
            while True:
                try:
                    for fields in reader:
                        if not fields or (len(fields) == 1 and not fields[0].strip()):
                            continue
                        rows_read += 1
                        try:
                            row = parse(fields)
                            if row[0] <= last_time_ms:  # type: ignore[operator]
                                _raise_out_of_order(row[0], last_time_ms, last_line)  # type: ignore[arg-type]
                        except _BadValue as bad:
                            bad_rows.append(BadRow(reader.line_num, str(bad)))
                            continue
                        last_time_ms = row[0]  # type: ignore[assignment]
                        last_line = reader.line_num
                        self.rows_read = rows_read
                        yield last_line, row
                    break
                except csv.Error as error:  # e.g. a 200 KB field: this row is junk, go on
                    rows_read += 1
                    bad_rows.append(BadRow(reader.line_num, f"not a CSV row ({error})"))
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as error:
            self.damage = BadRow(
                reader.line_num + 1, f"unreadable from here ({error}): the rest is missing"
            )
        finally:
            self.rows_read = rows_read
        if self.damage is None:
            self.damage = getattr(self._stream, "damage", None)

    def _parse(self, fields: list[str]) -> RowT:
        raise NotImplementedError

    def _check_count(self, fields: list[str], optional: tuple[str, ...] = ()) -> None:
        if any("\ufffd" in text for text in fields):
            raise _BadValue("bytes that are not UTF-8 text (a damaged line)")
        expected = len(self.fields)
        if len(fields) < expected:
            missing = ", ".join(self.fields[len(fields) :])
            raise _BadValue(f"missing {missing} ({len(fields)} of {expected} values)")
        if len(fields) > expected:
            raise _BadValue(f"{len(fields)} values, expected {expected} ({self.header})")
        for name, text in zip(self.fields, fields, strict=True):
            if not text.strip() and name not in optional:
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

    A row is bad when a value is missing or not a number, breaks a rule of
    :func:`trading.core.validation.candle_problem` (open time before 2000, in the future, before
    the listing, off the timeframe's grid; absurd prices or volume), is not after the previous
    good row's open time, or is a spike: its high or low 100× away from more than half of its
    neighbours (up to two accepted rows before it and two rows after it). Spikes are judged two
    rows late, so ``bad_rows`` is sorted by line once the iteration ends.
    """

    fields = CANDLE_FIELDS

    def __init__(
        self,
        stream: TextIO,
        *,
        timeframe: str,
        source: str = "",
        now_ms: int | None = None,
        listed_ms: int | None = None,
    ) -> None:
        if timeframe not in TIMEFRAME_MS:
            raise ValueError(
                f"unknown timeframe {timeframe!r} (expected one of {', '.join(TIMEFRAME_MS)})"
            )
        self.timeframe = timeframe
        super().__init__(stream, source=source, now_ms=now_ms, listed_ms=listed_ms)
        self._check = candle_checker(
            now_ms=self.now_ms, timeframe=timeframe, listed_ms=self.listed_ms
        )

    def __iter__(self) -> Iterator[CandleRow]:
        return self._without_spikes(self._numbered_rows())

    def _without_spikes(self, rows: Iterator[tuple[int, CandleRow]]) -> Iterator[CandleRow]:
        """Hold each row until the two after it are known, then judge it against its
        neighbours' closes (:func:`price_jump_problem`): up to two accepted rows before it
        and the two rows after it."""
        bad_rows = self.bad_rows
        ratio = MAX_JUMP_RATIO
        before: list[float] = []  # closes of the (up to) two last accepted rows, oldest first
        previous = math.inf  # the last accepted close (none yet: the fast path cannot apply)
        held: list[tuple[int, CandleRow]] = []  # rows waiting for their next neighbours

        def accepted(line: int, row: CandleRow, after: list[tuple[int, CandleRow]]) -> bool:
            problem = price_jump_problem(row[2], row[3], [*before, *(r[4] for _, r in after)])
            if problem is not None:
                bad_rows.append(BadRow(line, problem))
                return False
            before[:] = [*before[-1:], row[4]]
            return True

        try:
            for item in rows:
                if len(held) < 2:
                    held.append(item)
                    continue
                (line, row), second = held
                high, low = row[2], row[3]
                following = second[1][4]
                floor = ratio * low
                # Near both the previous and the next close: at most half of the neighbours can be
                # far, so the row is kept without looking further (nearly every row).
                if (
                    previous <= floor
                    and following <= floor
                    and high <= ratio * previous
                    and high <= ratio * following
                ):
                    previous = row[4]
                    before[:] = (before[-1], previous)
                    held[0], held[1] = second, item
                    yield row
                    continue
                held[0], held[1] = second, item
                if accepted(line, row, held):
                    previous = row[4]
                    yield row
            while held:
                line, row = held.pop(0)
                if accepted(line, row, held):
                    yield row
        finally:
            bad_rows.sort(key=lambda bad: bad.line)

    def _parse(self, fields: list[str]) -> CandleRow:
        try:
            time_text, open_text, high_text, low_text, close_text, volume_text = fields
            row = (
                int(time_text),
                float(open_text),
                float(high_text),
                float(low_text),
                float(close_text),
                float(volume_text),
            )
        except ValueError:
            row = self._diagnose(fields)
        problem = self._check(row)
        if problem is not None:
            raise _BadValue(problem)
        return row

    def _diagnose(self, fields: list[str]) -> CandleRow:
        """Parse one row value by value; raise ``_BadValue`` naming what is not a number."""
        self._check_count(fields)
        open_time_ms = _parse_time_ms(fields[0])
        open_, high, low, close, volume = (
            _parse_number(name, text)
            for name, text in zip(CANDLE_FIELDS[1:], fields[1:], strict=True)
        )
        return (open_time_ms, open_, high, low, close, volume)


class FundingCsvReader(CsvReader[FundingRow]):
    """Good funding rows of a ``timestamp_ms,rate`` stream: a settlement time after the previous
    good row's and the rules of :func:`trading.core.validation.funding_problem` (a time before
    2000, in the future or before the listing; a rate not finite or beyond ±10 % per period)."""

    fields = FUNDING_FIELDS

    def _parse(self, fields: list[str]) -> FundingRow:
        self._check_count(fields)
        row = (_parse_time_ms(fields[0]), _parse_number("rate", fields[1]))
        problem = funding_problem(row, now_ms=self.now_ms, listed_ms=self.listed_ms)
        if problem is not None:
            raise _BadValue(problem)
        return row


class OpenInterestCsvReader(CsvReader[OpenInterestSample]):
    """Good open-interest rows of a ``timestamp_ms,open_interest,open_interest_usdt`` stream
    (sample time; amount in base units; its USDT value, which may be left empty): a time after
    the previous good row's and the rules of
    :func:`trading.core.validation.open_interest_problem`."""

    fields = OPEN_INTEREST_FIELDS

    def _parse(self, fields: list[str]) -> OpenInterestSample:
        self._check_count(fields, optional=("open_interest_usdt",))
        value_text = fields[2].strip()
        row = (
            _parse_time_ms(fields[0]),
            _parse_number("open_interest", fields[1]),
            _parse_number("open_interest_usdt", value_text) if value_text else None,
        )
        problem = open_interest_problem(row, now_ms=self.now_ms, listed_ms=self.listed_ms)
        if problem is not None:
            raise _BadValue(problem)
        return row
