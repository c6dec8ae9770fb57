"""``manage.py export_candles --symbol S [--exchange E] [--timeframe 1m] [--since DATE]
[--until DATE] [--out FILE.csv.gz]``: stored candles -> the CSV.gz file ``import_candles`` reads.

The file is ``timestamp_ms,open,high,low,close,volume`` (open time in UTC epoch ms; every value
written in its shortest exact form, so an import on another machine stores the same floats),
gzip-compressed when the name ends in ``.gz``. Without ``--out`` (or with a directory) it is
named as the bundled data is, ``<exchange>-<market>_<BASE>-<QUOTE>_<tf>_<first>-<last>.csv.gz``
(``bitget-usdm_BTC-USDT_1m_20250601-20250630.csv.gz``), from which ``import_candles`` reads the
exchange, symbol and timeframe by itself. The file appears whole or not at all (written beside
it, then renamed). ``--exchange`` defaults to the one exchange storing that symbol.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max, Min

from trading.core.candles import CSV_HEADER, TIMEFRAME_MS
from trading.core.validation import utc_text
from trading.history.plan import RangeError, parse_when
from trading.models import Candle

CHUNK_ROWS = 20_000


def market_part(symbol: str) -> tuple[str, str, str]:
    """``(market, BASE, QUOTE)`` of a ccxt unified symbol, with the venue suffixes of the data
    file names: ``BTC/USDT:USDT`` -> ``usdm`` (linear perpetual), ``BTC/USD:BTC`` -> ``coinm``,
    ``BTC/USDT`` -> ``spot``."""
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    if not settle:
        return "spot", base, quote
    return ("coinm" if settle == base else "usdm"), base, quote


def default_name(exchange: str, symbol: str, timeframe: str, first_ms: int, last_ms: int) -> str:
    market, base, quote = market_part(symbol)
    first, last = (utc_text(t)[:10].replace("-", "") for t in (first_ms, last_ms))
    return f"{exchange}-{market}_{base}-{quote}_{timeframe}_{first}-{last}.csv.gz"


def number(value: float) -> str:
    """A float in its shortest exact text (``repr``): ``float(number(x)) == x``."""
    return repr(float(value))


class Command(BaseCommand):
    help = "Write stored candles to the CSV(.gz) format import_candles reads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--symbol", required=True, help="ccxt unified symbol, BTC/USDT:USDT")
        parser.add_argument("--exchange", help="default: the one exchange storing the symbol")
        parser.add_argument("--timeframe", default="1m", choices=list(TIMEFRAME_MS))
        parser.add_argument("--since", help="first open time, UTC date/time or epoch ms")
        parser.add_argument("--until", help="end (exclusive), same forms")
        parser.add_argument("--out", type=Path, help="file (.csv or .csv.gz) or directory")

    def handle(self, *args: Any, **opts: Any) -> None:
        symbol, timeframe = opts["symbol"], opts["timeframe"]
        series = Candle.objects.filter(symbol=symbol, timeframe=timeframe)
        exchange = opts["exchange"] or self._only_exchange(series, symbol, timeframe)
        series = series.filter(exchange=exchange)
        try:
            if opts["since"]:
                series = series.filter(open_time_ms__gte=parse_when(opts["since"]))
            if opts["until"]:
                series = series.filter(open_time_ms__lt=parse_when(opts["until"]))
        except RangeError as exc:
            raise CommandError(str(exc)) from None
        rows = series.order_by("open_time_ms").values_list(
            "open_time_ms", "open", "high", "low", "close", "volume"
        )
        bounds = series.aggregate(first=Min("open_time_ms"), last=Max("open_time_ms"))
        first, last = bounds["first"], bounds["last"]
        if first is None or last is None:
            raise CommandError(f"no {timeframe} candles of {symbol} on {exchange} in that range")
        out: Path = opts["out"] or Path.cwd()
        if out.is_dir():
            out = out / default_name(exchange, symbol, timeframe, first, last)
        partial = out.with_name(out.name + ".part")
        count = 0
        try:
            with partial.open("wb") as raw:
                packed = out.name.endswith(".gz")
                binary: Any = gzip.GzipFile("", "wb", fileobj=raw, mtime=0) if packed else raw
                with io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
                    text.write(CSV_HEADER + "\n")
                    for t, o, h, low, c, v in rows.iterator(chunk_size=CHUNK_ROWS):
                        text.write(f"{t},{number(o)},{number(h)},{number(low)},{number(c)},")
                        text.write(f"{number(v)}\n")
                        count += 1
            partial.replace(out)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"{out}: cannot write ({exc.strerror or exc})") from None
        self.stdout.write(
            f"{exchange} {symbol} {timeframe}: {count} candles, {utc_text(first)} → "
            f"{utc_text(last)} (open times), written to {out}"
        )

    @staticmethod
    def _only_exchange(series: Any, symbol: str, timeframe: str) -> str:
        exchanges = list(series.order_by("exchange").values_list("exchange", flat=True).distinct())
        if len(exchanges) == 1:
            return exchanges[0]
        if not exchanges:
            raise CommandError(f"no {timeframe} candles of {symbol} are stored")
        raise CommandError(
            f"{symbol} {timeframe} is stored for {', '.join(exchanges)}: pass --exchange"
        )
