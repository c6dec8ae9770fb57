"""Fixtures of the live executor's tests: the real ccxt.pro bitget (demo mode, as
exchanges.yaml says) trading against the offline fake's private API, and an executor on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from trading.core.execution import LiveCaps
from trading.core.fills import LimitFillModel
from trading.exchanges.clients import ExchangeSettings, trading_exchange
from trading.exchanges.fake import FakeAccount, FakeBitget, FakeMarket
from trading.execution.executor import Executor
from trading.execution.settings import LiveSettings

CONFIG = Path(__file__).resolve().parents[3] / "config" / "exchanges.yaml"
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
KEYS = {"api_key": "fake-key", "secret": "fake-secret", "password": "fake-pass"}


@pytest.fixture
def bitget_settings() -> ExchangeSettings:
    entry = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["exchanges"]["bitget"]
    return ExchangeSettings.from_entry(entry, "bitget")


@pytest.fixture(scope="session")
def market() -> FakeMarket:
    return FakeMarket.from_files()


@pytest.fixture
async def fake(market: FakeMarket) -> AsyncIterator[FakeBitget]:
    """2 market minutes per wall second; a resting limit fills in full once traded through."""
    certain = LimitFillModel(
        base_fill_probability=1.0, touch_probability_factor=1.0, min_fill_fraction=1.0
    )
    account = FakeAccount(market, balance=10_000.0, fill_model=certain)
    server = FakeBitget(market, speed=120, account=account)
    await server.start()
    yield server
    await server.stop()


def keyed_exchange(settings: ExchangeSettings, fake: FakeBitget, *, timeout_ms: int = 3000) -> Any:
    instance = trading_exchange(settings, base_url=fake.base_url, **KEYS)
    fake.attach(instance)
    instance.timeout = timeout_ms
    instance.timeout_on_exit = 0
    return instance


def live_settings(**overrides: Any) -> LiveSettings:
    values: dict[str, Any] = {
        "strategy_caps": LiveCaps(5_000.0, 10, 2),
        "account_caps": LiveCaps(10_000.0, 10, 3),
        "stop_confirm_s": 1.0,
        "exit_attempts": 2,
        "reconcile_interval_s": 60.0,
        "poll_interval_s": 0.5,
        "unknown_positions": "close",
        "adopt_stop_pct": 2.0,
    }
    values.update(overrides)
    return LiveSettings(**values)


class Alerts(list[tuple[str, str]]):
    def __call__(self, level: str, message: str, payload: dict[str, Any]) -> None:
        self.append((level, message))

    def of(self, level: str) -> list[str]:
        return [m for lv, m in self if lv == level]


@pytest.fixture
def alerts() -> Alerts:
    return Alerts()


@pytest.fixture
async def make_executor(
    bitget_settings: ExchangeSettings, fake: FakeBitget, alerts: Alerts
) -> AsyncIterator[Callable[..., Awaitable[Executor]]]:
    """``await make_executor(start=True, timeout_ms=3000, **LiveSettings overrides)``; every
    executor made is closed with its ccxt instance at the end of the test."""
    made: list[Executor] = []

    async def make(*, start: bool = True, timeout_ms: int = 3000, **overrides: Any) -> Executor:
        exchange = keyed_exchange(bitget_settings, fake, timeout_ms=timeout_ms)
        ex = Executor(
            exchange, settings=live_settings(**overrides), symbols=[BTC, ETH], alert=alerts
        )
        made.append(ex)
        if start:
            await ex.start()
        return ex

    yield make
    for ex in made:
        await ex.close()
        await ex.exchange.close()


def price_now(fake: FakeBitget, symbol: str = BTC) -> float:
    market_id = symbol.split(":")[0].replace("/", "")
    forming = fake.market.forming(market_id, fake.now_ms())
    assert forming is not None
    return float(forming[4])


def low_ahead(fake: FakeBitget, minutes: int, symbol: str = BTC) -> float:
    """The lowest low of the next ``minutes`` recorded candles (a buy limit above it fills)."""
    market_id = symbol.split(":")[0].replace("/", "")
    now = fake.now_ms()
    rows = fake.market.rows(market_id, now, now + minutes * 60_000, now + minutes * 60_000, minutes)
    return min(r[3] for r in rows)


def intent(
    fake: FakeBitget,
    *,
    cid: str,
    symbol: str = BTC,
    side: str = "long",
    limit: float | None = None,
    qty: float = 0.01,
    leverage: int = 5,
    stop_pct: float = 1.5,
    target_pct: float = 3.0,
    expires_in_ms: int = 30 * 60_000,
) -> dict[str, Any]:
    """An ``OrderIntent.to_dict()`` as the kernel emits it (prices in USDT)."""
    price = limit if limit is not None else price_now(fake, symbol)
    sign = 1 if side == "long" else -1
    now = fake.now_ms()
    return {
        "type": "order_intent",
        "strategy": "vwap_rsi",
        "symbol": symbol,
        "side": side,
        "order_type": "limit" if limit is not None else "market",
        "limit_price": limit,
        "reference_price": price,
        "qty": qty,
        "leverage": leverage,
        "margin_mode": "isolated",
        "stop_loss": price * (1 - sign * stop_pct / 100),
        "take_profit": price * (1 + sign * target_pct / 100),
        "max_hold_ms": None,
        "expires_after_candles": 30,
        "expires_at_ms": now + expires_in_ms,
        "time_ms": now,
        "client_order_id": cid,
        "purpose": "entry",
        "reduce_only": False,
        "shadow": False,
        "high_volatility": False,
        "regime": "ranging",
    }


async def until(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout_s: float = 10.0
) -> None:
    """Wait until ``check()`` is true (polled every 50 ms), else fail with a clear message."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {check}")
        await asyncio.sleep(0.05)
