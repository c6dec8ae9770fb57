"""``import_open_interest PATH [PATH ...]``: load open-interest CSV files (plain or gzip) into
OpenInterest.

The header must be ``timestamp_ms,open_interest,open_interest_usdt`` (sample time in UTC epoch
ms, the amount in base units, its USDT value, which may be left empty). Exchange and symbol
come from the flags or from the file name
(``binance-usdm_BTC-USDT_open-interest_20250617-20250623.csv.gz`` -> ``binance``,
``BTC/USDT:USDT``). Bad rows (a sample in the future or before the listing, an amount not
finite, negative or absurd: :func:`trading.core.validation.open_interest_problem`) are reported
with their line number and skipped, and a damaged file keeps its good rows, as in
``import_candles``.
"""

from __future__ import annotations

from typing import Any, TextIO

from trading.core.csvdata import OpenInterestCsvReader
from trading.management.commands.import_candles import ImportTarget, MarketDataImportCommand
from trading.services import UpsertResult, open_interest_upsert


class Command(MarketDataImportCommand):
    help = (
        "Import open interest from CSV or CSV.gz files with header "
        "timestamp_ms,open_interest,open_interest_usdt (upsert: a re-import changes nothing)."
    )
    kind = "open interest"
    uses_timeframe = False

    def open_reader(self, stream: TextIO, target: ImportTarget) -> OpenInterestCsvReader:
        return OpenInterestCsvReader(
            stream, source=str(target.path), now_ms=target.now_ms, listed_ms=target.listed_ms
        )

    def upsert(self, target: ImportTarget, rows: tuple[Any, ...]) -> UpsertResult:
        return open_interest_upsert(rows=rows, exchange=target.exchange, symbol=target.symbol)
