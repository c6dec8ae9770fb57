"""The REST pollers refuse a bad answer from the exchange with a logged warning and store
nothing of it (issue 12). The read halves are exercised on a ccxt-shaped stub: no database."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from trading.polling import funding_settlements_fetch, open_interest_fetch

BTC = "BTC/USDT:USDT"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC
HOUR_MS = 3_600_000
YEAR_3000 = 32_503_680_000_000


class FreeLimiter:
    async def acquire(self, category: str) -> None:
        return None


class Answers:
    """Answers funding history and open interest as given; its clock reads T0 + 9 h."""

    has: dict[str, bool] = {"fetchFundingRateHistory": True}  # noqa: RUF012

    def __init__(self, *, history: list[dict] | None = None, oi: dict | None = None,
                 created: int | None = None) -> None:  # fmt: skip
        self.history = history or []
        self.oi = oi or {}
        self.markets = {BTC: {"contractSize": 1.0, "created": created}}

    def milliseconds(self) -> int:
        return T0 + 9 * HOUR_MS

    async def fetch_funding_rate_history(self, symbol: str, limit: int | None = None) -> Any:
        return self.history

    async def fetch_open_interest(self, symbol: str) -> Any:
        return self.oi


def funding(exchange: Answers) -> list[tuple[int, float]]:
    return asyncio.run(funding_settlements_fetch(exchange, BTC, limiter=FreeLimiter()))


def test_an_absurd_funding_rate_is_refused_with_a_warning(caplog: pytest.LogCaptureFixture):
    exchange = Answers(history=[
        {"timestamp": T0, "fundingRate": 0.0001},
        {"timestamp": T0 + 8 * HOUR_MS, "fundingRate": 1e300},
    ])  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="trading.polling"):
        assert funding(exchange) == [(T0, 0.0001)]
    assert "not a funding rate" in caplog.text


def test_a_settlement_before_the_listing_is_refused(caplog: pytest.LogCaptureFixture):
    exchange = Answers(
        history=[{"timestamp": T0, "fundingRate": 0.0001},
                 {"timestamp": T0 + 8 * HOUR_MS, "fundingRate": 0.0002}],
        created=T0 + HOUR_MS,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="trading.polling"):
        assert funding(exchange) == [(T0 + 8 * HOUR_MS, 0.0002)]
    assert "before the exchange listed the symbol" in caplog.text


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"timestamp": YEAR_3000, "openInterestAmount": 5.0}, "is in the future"),
        ({"timestamp": T0, "openInterestAmount": float("nan")}, "not a finite number"),
        ({"timestamp": T0, "openInterestAmount": 5.0, "openInterestValue": -1}, "non-negative"),
        ({"timestamp": T0, "openInterestAmount": "junk"}, "without a usable amount"),
    ],
)
def test_a_bad_open_interest_sample_is_refused_with_a_warning(
    answer: dict, reason: str, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="trading.polling"):
        sample = asyncio.run(open_interest_fetch(Answers(oi=answer), BTC, limiter=FreeLimiter()))
    assert sample is None
    assert reason in caplog.text


def test_a_good_open_interest_sample_is_kept():
    answer = {"timestamp": T0, "openInterestAmount": 81234.5, "openInterestValue": 8.5e9}
    sample = asyncio.run(open_interest_fetch(Answers(oi=answer), BTC, limiter=FreeLimiter()))
    assert sample == (T0, 81234.5, 8.5e9)
