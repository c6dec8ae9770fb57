"""``import_funding PATH [PATH ...]``: load funding-rate CSV files (plain or gzip) into FundingRate.

The header must be ``timestamp_ms,rate`` (settlement time in UTC epoch ms, rate per period as a
fraction). Exchange and symbol come from the flags or from the file name
(``binance-usdm_BTC-USDT_funding_20250617-20250623.csv.gz`` -> ``binance``, ``BTC/USDT:USDT``).
Bad rows (a settlement in the future or before the listing, a rate not finite or beyond ±10 %
per period: :func:`trading.core.validation.funding_problem`) are reported with their line number
and skipped, and a damaged file keeps its good rows, as in ``import_candles``.
"""

from __future__ import annotations

from typing import Any, TextIO

from trading.core.csvdata import FundingCsvReader
from trading.management.commands.import_candles import ImportTarget, MarketDataImportCommand
from trading.services import UpsertResult, funding_upsert


class Command(MarketDataImportCommand):
    help = (
        "Import funding rates from CSV or CSV.gz files with header timestamp_ms,rate "
        "(upsert: a re-import changes nothing)."
    )
    kind = "funding"
    uses_timeframe = False

    def open_reader(self, stream: TextIO, target: ImportTarget) -> FundingCsvReader:
        return FundingCsvReader(
            stream, source=str(target.path), now_ms=target.now_ms, listed_ms=target.listed_ms
        )

    def upsert(self, target: ImportTarget, rows: tuple[Any, ...]) -> UpsertResult:
        return funding_upsert(rows=rows, exchange=target.exchange, symbol=target.symbol)
