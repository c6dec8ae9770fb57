"""An offline Bitget at ccxt's network boundary (see :mod:`.server` and :mod:`.market`)."""

from __future__ import annotations

from trading.exchanges.fake.market import CONTRACT_RULES, ContractRules, FakeClock, FakeMarket
from trading.exchanges.fake.server import FakeBitget, RecordedRequest

__all__ = [
    "CONTRACT_RULES",
    "ContractRules",
    "FakeBitget",
    "FakeClock",
    "FakeMarket",
    "RecordedRequest",
]
