"""``candles_upsert_many``: several symbols' candles at once (the radar's group commit), with
the counts and the natural-key behaviour of ``candles_upsert``."""

from __future__ import annotations

import pytest

from trading.models import Candle
from trading.services import UpsertResult, candles_upsert_many

T0 = 1_750_118_400_000
MINUTE_MS = 60_000


def row(i: int, close: float = 100.0) -> tuple[int, float, float, float, float, float]:
    return (T0 + i * MINUTE_MS, 100.0, 101.0, 99.0, close, 5.0)


def stored() -> list[tuple[str, int, float]]:
    return list(
        Candle.objects.order_by("symbol", "open_time_ms").values_list(
            "symbol", "open_time_ms", "close"
        )
    )


@pytest.mark.django_db(transaction=True)
def test_several_symbols_are_stored_and_a_second_pass_writes_only_what_changed():
    """BTC 3 candles + ETH 2: 5 inserted. Again with ETH's last close 101 and a new SOL row:
    1 inserted (SOL), 1 updated (ETH), 4 unchanged."""
    first = {"BTC/USDT:USDT": [row(0), row(1), row(2)], "ETH/USDT:USDT": [row(0), row(1)]}
    assert candles_upsert_many(rows=first, exchange="bitget", timeframe="1m") == UpsertResult(
        5, 0, 0
    )
    second = {**first, "ETH/USDT:USDT": [row(0), row(1, 101.0)], "SOL/USDT:USDT": [row(0)]}
    assert candles_upsert_many(rows=second, exchange="bitget", timeframe="1m") == UpsertResult(
        1, 1, 4
    )
    assert ("ETH/USDT:USDT", T0 + MINUTE_MS, 101.0) in stored()
    assert len(stored()) == 6


@pytest.mark.django_db(transaction=True)
def test_a_repeated_open_time_keeps_its_last_row_and_many_rows_go_symbol_by_symbol():
    """60 + 1 rows (more than one statement takes): same result as symbol by symbol; the
    repeated BTC minute 0 keeps its last close (102)."""
    rows = {
        "BTC/USDT:USDT": [row(0), *(row(i) for i in range(1, 60)), row(0, 102.0)],
        "ETH/USDT:USDT": [row(0)],
        "SOL/USDT:USDT": [],
    }
    result = candles_upsert_many(rows=rows, exchange="bitget", timeframe="1m")
    assert result == UpsertResult(61, 0, 0)
    assert stored()[0] == ("BTC/USDT:USDT", T0, 102.0)
