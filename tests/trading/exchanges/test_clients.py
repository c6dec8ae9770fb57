"""Two instances: public data keyless on mainnet; keys and demo mode only for trading."""

from __future__ import annotations

import dataclasses

import pytest

from trading.core.ratelimit import RateLimiter
from trading.exchanges.clients import (
    ExchangeSettings,
    MissingCredentials,
    feed_options,
    limiter_rates,
    market_data_exchange,
    trading_exchange,
)
from trading.exchanges.fake import FakeBitget
from trading.feed.live import create_exchange

KEYS = {"api_key": "k-123", "secret": "s-456", "password": "p-789"}


async def test_the_market_data_instance_has_no_keys_and_no_demo_header_even_in_sandbox(
    bitget_settings: ExchangeSettings, fake: FakeBitget
):
    assert bitget_settings.sandbox  # the shipped exchanges.yaml runs demo trading
    exchange = market_data_exchange(bitget_settings, base_url=fake.base_url)
    fake.attach(exchange)
    exchange.timeout_on_exit = 0
    try:
        assert not exchange.apiKey and not exchange.secret and not exchange.password
        await exchange.load_markets()
        await exchange.watch_ohlcv("BTC/USDT:USDT", "1m")
    finally:
        await exchange.close()
    assert fake.requests
    assert all("PAPTRADING" not in {h.upper() for h in r.headers} for r in fake.requests)
    assert {s[0] for s in fake.subscriptions} == {"/v2/ws/public"}  # mainnet ws, not wspap
    assert not fake.requests_to("/api/v3/account/settings")  # uta decided: no probe


@pytest.mark.parametrize("sandbox", [True, False])
async def test_the_trading_instance_sends_paptrading_exactly_in_sandbox(
    bitget_settings: ExchangeSettings, fake: FakeBitget, sandbox: bool
):
    exchange = trading_exchange(
        dataclasses.replace(bitget_settings, sandbox=sandbox), base_url=fake.base_url, **KEYS
    )
    fake.attach(exchange)
    exchange.timeout_on_exit = 0
    try:
        assert exchange.apiKey == KEYS["api_key"]
        await exchange.load_markets()
    finally:
        await exchange.close()
    # ccxt exempts the simulated-coin product types (SUSDT-FUTURES...) from the header.
    contracts = [
        r
        for r in fake.requests_to("/mix/market/contracts")
        if r.query["productType"] == "USDT-FUTURES"
    ]
    assert contracts
    assert all((r.headers.get("PAPTRADING") == "1") is sandbox for r in contracts)


@pytest.mark.parametrize("missing", ["api_key", "secret", "password"])
def test_the_trading_instance_is_refused_without_every_credential(
    bitget_settings: ExchangeSettings, missing: str
):
    with pytest.raises(MissingCredentials) as error:
        trading_exchange(bitget_settings, **{**KEYS, missing: ""})
    assert "BITGET_API" in str(error.value)
    assert all(value not in str(error.value) for value in KEYS.values())


def test_create_exchange_never_gives_public_data_keys_or_demo_mode():
    exchange = create_exchange("bitget", sandbox=True, **KEYS)
    assert not exchange.apiKey
    assert exchange.options["sandboxMode"] is False


async def test_timeout_and_keepalive_keys_land_on_the_instance(bitget_settings: ExchangeSettings):
    changed = dataclasses.replace(
        bitget_settings, timeout_ms=4_321, keepalive_ms=12_000, max_ping_pong_misses=5
    )
    for s in (bitget_settings, changed):
        exchange = market_data_exchange(s)
        exchange.timeout_on_exit = 0
        try:
            client = exchange.client(exchange.urls["api"]["ws"]["public"])
            assert exchange.timeout == s.timeout_ms
            assert (client.keepAlive, client.maxPingPongMisses) == (
                s.keepalive_ms,
                s.max_ping_pong_misses,
            )
            assert exchange.options["defaultType"] == "swap"
            assert exchange.options["fetchMarkets"] == {"types": ["swap"]}
            assert exchange.options["uta"] is False
            assert exchange.enableRateLimit is False
        finally:
            await exchange.close()


def test_feed_options_map_the_websocket_and_rest_keys(bitget_settings: ExchangeSettings):
    changed = dataclasses.replace(
        bitget_settings,
        initial_backoff_s=2,
        max_backoff_s=30,
        backoff_multiplier=3,
        stale_after_s=7,
        order_book_depth=5,
        max_retries=1,
    )
    assert feed_options(changed) == {
        "backoff_initial_s": 2,
        "backoff_max_s": 30,
        "backoff_multiplier": 3,
        "stale_after_s": 7,
        "book_depth": 5,
        "rest_max_retries": 1,
    }


@pytest.mark.parametrize(("rate", "third_call_wait_s"), [(2.0, 0.5), (20.0, 0.0)])
def test_the_market_data_rate_key_sets_how_long_the_limiter_waits(
    bitget_settings: ExchangeSettings, rate: float, third_call_wait_s: float
):
    """A full bucket holds ``rate`` calls: at 2/s the 3rd call at t=0 waits 1/2 s; at 20/s none."""
    limiter = RateLimiter(
        limiter_rates(dataclasses.replace(bitget_settings, market_data_per_s=rate)),
        clock=lambda: 0.0,
    )
    waits = [limiter.reserve("market_data") for _ in range(3)]
    assert waits[2] == pytest.approx(third_call_wait_s)
    assert set(limiter.categories) == {"market_data", "trade", "account", "position"}


def test_the_process_limiter_takes_the_configured_rates(bitget_settings, settings):
    """pytest-django's ``settings``: no Redis, so the in-memory limiter with the yaml's rates."""
    from trading.ratelimit import configured_rate_limiter, get_rate_limiter

    settings.REDIS_URL = ""
    get_rate_limiter.cache_clear()
    slow = dataclasses.replace(bitget_settings, market_data_per_s=2.0)
    limiter = configured_rate_limiter(limiter_rates(slow))
    try:
        waits = [limiter.reserve("market_data") for _ in range(3)]
        assert waits[:2] == [0.0, 0.0] and waits[2] > 0.4
        assert configured_rate_limiter(limiter_rates(slow)) is limiter  # one per process
    finally:
        get_rate_limiter.cache_clear()
