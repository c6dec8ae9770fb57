"""The fake's funding settlements (trading.exchanges.fake.funding) on the bundled real rates:
the worked example of its docstring, the wallet, and the bill endpoint ccxt reads."""

from __future__ import annotations

import pytest

from trading.exchanges.fake import FakeAccount, FakeMarket
from trading.exchanges.fake.account import Position
from trading.exchanges.fake.funding import bills_answer, settle_funding


@pytest.fixture(scope="module")
def market() -> FakeMarket:
    return FakeMarket.from_files()


def _hold(account: FakeAccount, symbol: str, side: str, qty: float, at_ms: int) -> Position:
    position = Position("p1", symbol, side, qty, 100.0, 10.0, 5, at_ms, at_ms)
    account.positions[symbol] = position
    return position


def test_a_long_pays_a_positive_rate_a_short_receives_it(market: FakeMarket) -> None:
    times, rates = market.funding["BTCUSDT"][:, 0], market.funding["BTCUSDT"][:, 1]
    k = next(i for i, r in enumerate(rates) if r > 0)
    t, rate = int(times[k]), float(rates[k])
    mark = float(market.forming("BTCUSDT", t)[4])
    for side, sign in (("long", -1), ("short", 1)):
        account = FakeAccount(market, balance=1_000.0)
        _hold(account, "BTCUSDT", side, 0.5, t - 3_600_000)
        [bill] = settle_funding(account, t - 60_000, t)
        # amount = −sign × qty × mark × rate (docstring): 0.5 BTC × mark × rate, paid by a long.
        assert bill.amount == pytest.approx(sign * 0.5 * mark * rate, rel=1e-12)
        assert account.balance == pytest.approx(1_000.0 + bill.amount, rel=1e-12)
        assert bill.c_time == t and bill.symbol == "BTCUSDT"
        # The next step does not settle the same time again.
        assert settle_funding(account, t, t + 60_000) == []


def test_no_position_no_bill_and_every_settlement_of_a_long_window(market: FakeMarket) -> None:
    times = market.funding["ETHUSDT"][:, 0]
    start, end = int(times[0]) - 1, int(times[3])
    empty = FakeAccount(market)
    assert settle_funding(empty, start, end) == [] and empty.balance == 10_000.0
    account = FakeAccount(market)
    _hold(account, "ETHUSDT", "short", 2.0, start)
    bills = settle_funding(account, start, end)
    assert [b.c_time for b in bills] == [int(x) for x in times[:4]]


def test_the_bill_answer_filters_by_symbol_window_and_type(market: FakeMarket) -> None:
    times = market.funding["BTCUSDT"][:, 0]
    account = FakeAccount(market)
    _hold(account, "BTCUSDT", "long", 0.1, int(times[0]) - 1)
    _hold(account, "ETHUSDT", "long", 1.0, int(times[0]) - 1)
    settle_funding(account, int(times[0]) - 1, int(times[2]))
    assert len(account.bills) == 6
    rows = bills_answer(account, {"symbol": "BTCUSDT", "businessType": "contract_settle_fee"})
    assert [r["cTime"] for r in rows["bills"]] == [str(int(t)) for t in times[2::-1][:3]]
    window = bills_answer(account, {"startTime": str(int(times[1])), "endTime": str(int(times[1]))})
    assert sorted(r["symbol"] for r in window["bills"]) == ["BTCUSDT", "ETHUSDT"]
    assert bills_answer(account, {"businessType": "trans_from_exchange"})["bills"] == []
