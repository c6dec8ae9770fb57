"""The real ccxt.pro bitget against the offline fake, with the settings of exchanges.yaml."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trading.exchanges.clients import ExchangeSettings, market_data_exchange
from trading.exchanges.fake import FakeBitget

CONFIG = Path(__file__).resolve().parents[3] / "config" / "exchanges.yaml"


@pytest.fixture
def bitget_settings() -> ExchangeSettings:
    entry = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["exchanges"]["bitget"]
    return ExchangeSettings.from_entry(entry, "bitget")


@pytest.fixture
async def fake() -> AsyncIterator[FakeBitget]:
    """10 market minutes per wall second, 4 pushes per market minute (one per 25 ms)."""
    server = FakeBitget(speed=600)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def exchange(bitget_settings: ExchangeSettings, fake: FakeBitget) -> AsyncIterator[Any]:
    instance = market_data_exchange(bitget_settings, base_url=fake.base_url)
    fake.attach(instance)
    instance.timeout_on_exit = 0
    yield instance
    await instance.close()
