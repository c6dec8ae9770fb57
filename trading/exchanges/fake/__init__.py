"""An offline Bitget at ccxt's network boundary (see :mod:`.server`, :mod:`.market`,
:mod:`.account` and :mod:`.private`)."""

from __future__ import annotations

from trading.exchanges.fake.account import (
    BitgetError,
    FakeAccount,
    Fill,
    Order,
    PlanOrder,
    Position,
)
from trading.exchanges.fake.market import CONTRACT_RULES, ContractRules, FakeClock, FakeMarket
from trading.exchanges.fake.private import Credentials, market_id_of
from trading.exchanges.fake.server import FakeBitget, RecordedRequest

__all__ = [
    "CONTRACT_RULES",
    "BitgetError",
    "ContractRules",
    "Credentials",
    "FakeAccount",
    "FakeBitget",
    "FakeClock",
    "FakeMarket",
    "Fill",
    "Order",
    "PlanOrder",
    "Position",
    "RecordedRequest",
    "market_id_of",
]
