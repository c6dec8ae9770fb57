"""Market rules: stored on the Asset rows, seeded from assets.yaml, refreshed from load_markets."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import ccxt
import pytest

from strategies.config import load_config_dir
from strategies.kernel_config import kernel_config_from
from strategies.management.commands.load_config import load_config_into_db
from trading.core.orders import InstrumentRules
from trading.exchanges.fake import CONTRACT_RULES, FakeBitget, FakeMarket
from trading.markets import (
    AssetRules,
    asset_rules_from_markets,
    asset_rules_refresh,
    asset_rules_refresh_all,
)
from trading.models import Asset

SHIPPED = Path(__file__).resolve().parents[2] / "config"
BTC = "BTC/USDT:USDT"


def test_rules_are_read_from_ccxt_precision_and_limits():
    markets = {
        BTC: {
            "precision": {"price": 0.1, "amount": 0.001},
            "limits": {
                "amount": {"min": 0.001, "max": None},
                "cost": {"min": 5.0, "max": None},
                "leverage": {"min": 1, "max": 125},
            },
        },
        "NOTICK/USDT:USDT": {"precision": {"price": None, "amount": 1}, "limits": {}},
    }
    assert asset_rules_from_markets(markets) == {
        BTC: AssetRules(price_tick=0.1, qty_step=0.001, min_qty=0.001, min_notional_usdt=5.0,
                        max_leverage=125, source="assets.yaml"),
    }  # fmt: skip


@pytest.mark.django_db
def test_load_config_seeds_the_rules_from_assets_yaml():
    load_config_into_db(load_config_dir(SHIPPED))
    btc = Asset.objects.get(symbol=BTC)
    assert (btc.price_tick, btc.qty_step, btc.min_qty, btc.min_notional_usdt) == (
        0.1, 0.001, 0.001, 5.0,
    )  # fmt: skip
    assert (btc.max_leverage, btc.rules_source) == (125, "assets.yaml")


@pytest.mark.django_db(transaction=True)
def test_a_refresh_from_the_exchange_overwrites_the_stored_rules_and_the_kernel_uses_them():
    """The fake Bitget says BTC's minimum is 0.01 BTC and max leverage 50× (assets.yaml: 0.001,
    125×); the REAL ccxt.pro bitget reads them through load_markets."""
    config = load_config_dir(SHIPPED)
    load_config_into_db(config)
    rules = {**CONTRACT_RULES, "BTC": replace(CONTRACT_RULES["BTC"], min_trade_num="0.01",
                                              max_lever=50)}  # fmt: skip
    market = _with_rules(rules)

    async def refresh() -> list:
        fake = FakeBitget(market)
        base_url = await fake.start()
        try:
            return await asset_rules_refresh_all(config.exchanges, base_url=base_url)
        finally:
            await fake.stop()

    (report,) = asyncio.run(refresh())
    assert report.changes[BTC] == ["min_qty 0.001 -> 0.01", "max_leverage 125 -> 50"]
    btc = Asset.objects.get(symbol=BTC)
    assert (btc.min_qty, btc.max_leverage) == (0.01, 50)
    assert btc.rules_source.startswith("exchange load_markets ")
    assert kernel_config_from(config).market_rules[BTC] == InstrumentRules(0.1, 0.001, 0.01, 5, 50)


def _with_rules(rules: dict) -> FakeMarket:
    from trading.core.candles import read_candles_csv
    from trading.exchanges.fake.market import SAMPLE_DIR

    candles = {
        base: read_candles_csv(next(SAMPLE_DIR.glob(f"*_{base}-USDT_1m_*.csv*")))
        for base in ("BTC", "ETH", "SOL")
    }
    return FakeMarket(candles, rules=rules)


class Unreachable:
    id = "bitget"

    async def load_markets(self) -> dict:
        raise ccxt.NetworkError("bitget GET https://api.bitget.com/... timed out")


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_exchange_leaves_the_yaml_rules_in_force_and_says_why():
    load_config_into_db(load_config_dir(SHIPPED))
    report = asyncio.run(asset_rules_refresh(exchange=Unreachable()))
    assert "load_markets failed (NetworkError" in report.lines()[0]
    assert Asset.objects.get(symbol=BTC).rules_source == "assets.yaml"


@pytest.mark.django_db(transaction=True)
def test_the_refresh_stamps_its_utc_time():
    load_config_into_db(load_config_dir(SHIPPED))

    class Listing:
        id = "bitget"

        def load_markets(self) -> dict:
            return {BTC: {"precision": {"price": 0.5, "amount": 0.001},
                          "limits": {"amount": {"min": 0.001}, "cost": {"min": 5},
                                     "leverage": {"max": 125}}}}  # fmt: skip

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    report = asyncio.run(asset_rules_refresh(exchange=Listing(), now=now))
    assert report.changes[BTC] == ["price_tick 0.1 -> 0.5"]
    assert report.not_listed == ["ETH/USDT:USDT", "SOL/USDT:USDT"]
    stamp = "exchange load_markets 2026-01-02 03:04:05 UTC"
    assert Asset.objects.get(symbol=BTC).rules_source == stamp
    assert Asset.objects.get(symbol="ETH/USDT:USDT").rules_source == "assets.yaml"


@pytest.mark.django_db
def test_load_config_after_a_refresh_reports_and_restores_the_yaml_rules():
    load_config_into_db(load_config_dir(SHIPPED))
    Asset.objects.filter(symbol=BTC).update(min_qty=0.01, rules_source="exchange load_markets t")
    reports = load_config_into_db(load_config_dir(SHIPPED))
    (btc,) = [r for r in reports if r.label == f"asset {BTC} @ bitget"]
    assert "min_qty 0.01 -> 0.001" in btc.changes
    assert Asset.objects.get(symbol=BTC).rules_source == "assets.yaml"


@pytest.mark.django_db(transaction=True)
def test_the_refresh_stores_the_listing_time_from_ccxt_created_and_keeps_it_when_absent():
    """Bitget's ccxt market carries ``created`` = ``launchTime`` (epoch ms), often empty: an
    empty one (the fake Bitget's) leaves the stored listing time alone."""
    load_config_into_db(load_config_dir(SHIPPED))
    listed = 1_577_836_800_000  # 2020-01-01 00:00 UTC

    class Listing:
        id = "bitget"

        def __init__(self, created: int | None) -> None:
            self.created = created

        def load_markets(self) -> dict:
            return {BTC: {"precision": {"price": 0.1, "amount": 0.001},
                          "limits": {"amount": {"min": 0.001}, "cost": {"min": 5},
                                     "leverage": {"max": 125}},
                          "created": self.created}}  # fmt: skip

    report = asyncio.run(asset_rules_refresh(exchange=Listing(listed)))
    assert report.changes[BTC] == [f"listed_at_ms None -> {listed}"]
    assert Asset.objects.get(symbol=BTC).listed_at_ms == listed
    asyncio.run(asset_rules_refresh(exchange=Listing(None)))
    assert Asset.objects.get(symbol=BTC).listed_at_ms == listed
