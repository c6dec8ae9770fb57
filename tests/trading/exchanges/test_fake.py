"""The real ccxt.pro bitget, unmodified, against the offline fake: requests, parsing, errors
and websocket frames all go through ccxt's own code."""

from __future__ import annotations

import aiohttp
import ccxt
import numpy as np
import pytest

from trading.core.candles import read_candles_csv
from trading.exchanges.fake import FakeBitget
from trading.exchanges.fake.market import SAMPLE_DIR

BTC = "BTC/USDT:USDT"
MINUTE_MS = 60_000


@pytest.fixture(scope="module")
def btc_candles() -> np.ndarray:
    return read_candles_csv(next(SAMPLE_DIR.glob("binance-usdm_BTC-USDT_1m_*.csv.gz")))


async def test_load_markets_gives_bitget_precision_and_limits(exchange):
    markets = await exchange.load_markets()
    btc, eth, sol = markets[BTC], markets["ETH/USDT:USDT"], markets["SOL/USDT:USDT"]
    assert (btc["id"], btc["type"], btc["linear"], btc["contractSize"]) == (
        "BTCUSDT",
        "swap",
        True,
        1,
    )
    assert btc["precision"] == {"price": 0.1, "amount": 0.001}
    assert (btc["limits"]["amount"]["min"], btc["limits"]["cost"]["min"]) == (0.001, 5)
    assert eth["precision"] == {"price": 0.01, "amount": 0.01}
    assert sol["precision"] == {"price": 0.001, "amount": 0.1}  # the fake's assumption
    assert (btc["maker"], btc["taker"]) == (0.0002, 0.0006)


async def test_fetch_ohlcv_returns_the_real_bundled_candles(exchange, fake, btc_candles):
    now = fake.now_ms()
    since = now // MINUTE_MS * MINUTE_MS - 30 * MINUTE_MS
    rows = await exchange.fetch_ohlcv(BTC, "1m", since=since, limit=20)
    start = int(np.searchsorted(btc_candles[:, 0], since))
    assert np.array_equal(np.array(rows, dtype=float), btc_candles[start : start + 20])
    assert fake.requests_to("/mix/market/candles")[-1].query["granularity"] == "1m"


async def test_an_old_since_goes_to_the_history_endpoint_and_stops_at_200(exchange, fake):
    since = fake.now_ms() - 40 * 24 * 3_600_000  # older than the 30 days the recent one serves
    await exchange.fetch_ohlcv(BTC, "1m", since=since, limit=500)
    assert fake.requests_to("/mix/market/history-candles")[-1].query["limit"] == "200"


async def test_watch_ohlcv_shows_the_forming_candle_then_closes_it_with_real_values(
    exchange, fake, btc_candles
):
    snapshot = await exchange.watch_ohlcv(BTC, "1m")
    assert len(snapshot) > 10  # Bitget's first push: a snapshot of recent candles
    forming_t = int(snapshot[-1][0])
    seen = []
    while True:
        update = await exchange.watch_ohlcv(BTC, "1m")
        if int(update[-1][0]) > forming_t:
            break
        seen.append(update[-1])
    real = btc_candles[np.searchsorted(btc_candles[:, 0], forming_t)]
    assert seen, "no update of the forming candle before the minute rolled"
    for _t, o, h, low, c, v in seen:
        assert o == real[1] and real[3] <= low <= c <= h <= real[2] and v <= real[5]
    assert int(update[-1][0]) == forming_t + MINUTE_MS
    closed = await exchange.fetch_ohlcv(BTC, "1m", since=forming_t, limit=1)
    assert np.array_equal(np.array(closed[0]), real)


async def test_funding_rate_history_and_open_interest_parse(exchange, fake):
    rate = await exchange.fetch_funding_rate(BTC)
    now = fake.now_ms()
    assert rate["interval"] == "8h"
    assert now < rate["fundingTimestamp"] <= now + 8 * 3_600_000
    assert rate["fundingTimestamp"] % (8 * 3_600_000) == 0
    history = await exchange.fetch_funding_rate_history(BTC, limit=3)
    assert [h["timestamp"] for h in history] == sorted(h["timestamp"] for h in history)
    assert history[-1]["fundingRate"] == rate["fundingRate"]  # current = last settled
    oi = await exchange.fetch_open_interest(BTC)
    assert oi["symbol"] == BTC and oi["openInterestAmount"] > 0


async def test_a_429_maps_to_ccxt_rate_limit_errors(exchange, fake):
    await exchange.load_markets()
    fake.fail_next("/mix/market/candles", 429)  # Bitget's body {"code":"429"}
    with pytest.raises(ccxt.DDoSProtection):
        await exchange.fetch_ohlcv(BTC, "1m", limit=5)
    fake.fail_next("/mix/market/candles", 429, body="")  # no body: ccxt's HTTP-status map
    with pytest.raises(ccxt.RateLimitExceeded):
        await exchange.fetch_ohlcv(BTC, "1m", limit=5)
    assert await exchange.fetch_ohlcv(BTC, "1m", limit=5)  # one failure each, then served


async def test_a_bitget_error_body_runs_ccxts_error_mapping(exchange, fake):
    await exchange.load_markets()
    body = {"code": "40019", "msg": "Parameter symbol cannot be empty", "data": None}
    fake.fail_next("/mix/market/open-interest", 400, body)
    with pytest.raises(ccxt.BadRequest):
        await exchange.fetch_open_interest(BTC)


async def test_the_websocket_answers_ping_and_rejects_unknown_channels(fake):
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(fake.base_url + "/v2/ws/public") as ws,
    ):
        await ws.send_str("ping")
        assert (await ws.receive_str(timeout=2)) == "pong"
        arg = {"instType": "USDT-FUTURES", "channel": "candle7m", "instId": "BTCUSDT"}
        await ws.send_json({"op": "subscribe", "args": [arg]})
        reply = await ws.receive_json(timeout=2)
        assert (reply["event"], reply["code"]) == ("error", 30001)


async def test_attach_puts_the_ccxt_instance_on_the_fake_clock(exchange, fake):
    assert abs(exchange.milliseconds() - fake.now_ms()) < 1_000  # 1 s of market = 1.7 ms wall
    assert exchange.milliseconds() < 1_760_000_000_000  # June 2025, not the wall clock


async def test_funding_settles_on_the_fake_clock(fake):
    fake_rate = fake.market.funding_now("BTCUSDT", fake.now_ms())
    fake.advance(8 * 3_600_000)
    later = fake.market.funding_now("BTCUSDT", fake.now_ms())
    assert later[1] == fake_rate[1] + 8 * 3_600_000
    settled = fake.market.funding_settled("BTCUSDT", fake.now_ms())
    assert settled[0][0] == fake_rate[1]  # the next settlement has happened


def test_the_synthesised_open_interest_is_deterministic():
    one, two = FakeBitget(speed=1), FakeBitget(speed=1)
    t = one.now_ms()
    assert one.market.open_interest("BTCUSDT", t) == two.market.open_interest("BTCUSDT", t)
