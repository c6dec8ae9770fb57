"""Benchmark: server-side render time of every dashboard page, and live fan-out to 50 sockets.

    .venv/bin/python bench/web.py [--trades 10000] [--repeat 5]

Runs on a scratch SQLite database in a temp directory (never the project's): 3 assets with the
bundled 7 days of real 1m candles and 5-minute open interest (liquidation zones on the Radar), 6
strategies with sessions, ``--trades`` closed trades, 30 open positions, 3,000 signals and 5,000
alerts. Each page is rendered through Django's test client (login, views, selectors,
templates) ``--repeat`` times; the median ms is printed against the 100 ms target.
Then 50 websocket clients connect to the real ASGI app and each must receive every one of 20
published updates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(tmp: str) -> None:
    os.environ["SCALPRADAR_DATA_DIR"] = tmp
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(n_trades: int) -> None:
    from strategies.models import Signal, StrategyConfig
    from trading.core.candles import read_candles_csv
    from trading.models import Asset, Position, TradingSession
    from trading.services import candles_upsert

    rng = random.Random(7)
    sample = ROOT / "data" / "sample"
    symbols = []
    for base, step in (("BTC", 0.001), ("ETH", 0.01), ("SOL", 0.1)):
        symbol = f"{base}/USDT:USDT"
        symbols.append(symbol)
        Asset.objects.create(symbol=symbol, base=base, price_tick=0.01, qty_step=step, min_qty=step)
        array = read_candles_csv(next(sample.glob(f"*_{base}-USDT_1m_*.csv.gz")))
        candles_upsert(
            rows=[(int(r[0]), *map(float, r[1:])) for r in array],
            exchange="bitget",
            symbol=symbol,
            timeframe="1m",
        )
    t0 = int(array[0, 0])
    names = [
        "vwap_rsi",
        "momentum_breakout",
        "funding_arbitrage",
        "liquidation_zones",
        "order_flow",
        "swing_1h",
    ]
    configs = [StrategyConfig.objects.create(name=n, kind=n.split("_1h")[0]) for n in names]
    sessions = [TradingSession.objects.create(strategy_name=n) for n in names]
    positions = []
    for i in range(n_trades):
        s = rng.randrange(len(names))
        entry = 100_000 * (1 + rng.uniform(-0.02, 0.02))
        gross = rng.gauss(5, 40)
        fees = 12 + rng.random()
        entry_ms = t0 + i * 60_000
        positions.append(
            Position(
                session=sessions[s],
                strategy_name=names[s],
                symbol=rng.choice(symbols),
                side=rng.choice(["long", "short"]),
                status="closed",
                ledger_id=f"t{i}",
                qty=0.1,
                leverage=10,
                entry_price=entry,
                entry_time_ms=entry_ms,
                entry_fee=fees / 2,
                entry_liquidity="taker",
                stop_loss=entry * 0.99,
                take_profit=entry * 1.01,
                liquidation_price=entry * 0.9,
                exit_price=entry * 1.001,
                exit_time_ms=entry_ms + 600_000,
                exit_fee=fees / 2,
                exit_liquidity="taker",
                exit_reason="take_profit",
                gross_pnl=gross,
                net_pnl=gross - fees,
                funding_usdt=0.0,
            )
        )
    for i in range(30):
        positions.append(
            Position(
                session=sessions[i % 6],
                strategy_name=names[i % 6],
                symbol=symbols[i % 3],
                side="long",
                ledger_id=f"o{i}",
                qty=0.1,
                leverage=10,
                entry_price=100_000,
                entry_time_ms=t0,
                entry_fee=6,
                entry_liquidity="taker",
                stop_loss=99_000,
                take_profit=101_000,
                liquidation_price=90_500,
            )
        )
    Position.objects.bulk_create(positions, batch_size=2000)
    Signal.objects.bulk_create(
        [
            Signal(
                strategy=configs[i % 6],
                symbol=symbols[i % 3],
                timeframe="5m",
                candle_open_time_ms=t0 + i * 300_000,
                side="long",
                entry_type="limit",
                entry_price=1,
                stop_loss=0.9,
                take_profit=1.1,
                score=rng.random(),
                reasons=["bench"],
                status="accepted" if i % 3 else "refused",
            )
            for i in range(3000)
        ],
        batch_size=2000,
    )
    for s in sessions:
        s.trades_count = n_trades // 6
        s.save()
    # Open interest every 5 minutes over the 7 days (+1 % build-ups now and then: live zones),
    # and an alert history.
    from trading.models import Alert, OpenInterest

    t_end = int(array[-1, 0]) + 60_000
    oi_rows = []
    for symbol in symbols:
        oi = 1_000_000.0
        for t in range(t0, t_end, 300_000):
            oi *= 1.01 if rng.random() < 0.02 else 1.0 + rng.uniform(-0.001, 0.001)
            oi_rows.append(
                OpenInterest(exchange="bitget", symbol=symbol, time_ms=t, open_interest=oi)
            )
    OpenInterest.objects.bulk_create(oi_rows, batch_size=2000)
    Alert.objects.bulk_create(
        [
            Alert(level=("info", "warning", "error")[i % 3], source="bench", message=f"alert {i}")
            for i in range(5000)
        ],
        batch_size=2000,
    )


def bench_pages(repeat: int) -> list[tuple[str, float]]:
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    user = User.objects.create_user("bench")  # force_login: no password needed
    client = Client()
    client.force_login(user)
    urls = [
        ("radar", reverse("radar")),
        ("arena", reverse("arena")),
        ("positions", reverse("positions")),
        ("trades", reverse("trades")),
        ("trades filtered", reverse("trades") + "?strategy=vwap_rsi&result=win&page=3"),
        ("signals", reverse("signals")),
        ("session", reverse("session")),
        ("chart 5m", reverse("chart") + "?tf=5m"),
        ("chart 1h", reverse("chart") + "?tf=1h"),
        ("risk", reverse("risk")),
        ("alerts", reverse("alerts")),
        ("alerts page 50", reverse("alerts") + "?page=50"),
        ("backtests", reverse("backtests")),
    ]
    out = []
    for name, url in urls:
        times = []
        for _ in range(repeat + 1):
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        out.append((name, statistics.median(times[1:])))  # first call warms caches
    start = time.perf_counter()
    response = client.get(reverse("trades_csv"))
    body = b"".join(response.streaming_content)
    out.append((f"trades.csv ({body.count(b'\n') - 1} rows)", (time.perf_counter() - start) * 1000))
    return out


async def bench_sockets(clients: int, updates: int) -> tuple[int, int, float]:
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    from common.events import apublish
    from scalpradar.asgi import application

    def cookie() -> bytes:
        client = Client()
        client.force_login(User.objects.get(username="bench"))
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}".encode()

    headers = [(b"origin", b"http://localhost"), (b"cookie", await sync_to_async(cookie)())]
    comms = [
        WebsocketCommunicator(
            application, "/ws/live/?groups=market.BTC-USDT,arena", headers=headers
        )
        for _ in range(clients)
    ]
    assert all(ok for ok, _ in await asyncio.gather(*(c.connect() for c in comms)))
    received = 0
    start = time.perf_counter()
    for i in range(updates):
        await apublish(
            "market.BTC-USDT",
            "market.price",
            {"symbol": "BTC/USDT:USDT", "price": 100_000 + i, "time_ms": 1_750_000_000_000 + i},
        )
        got = await asyncio.gather(*(c.receive_from(timeout=5) for c in comms))
        received += sum(1 for m in got if f"{100_000 + i}" in m)
    elapsed = (time.perf_counter() - start) * 1000
    await asyncio.gather(*(c.disconnect() for c in comms))
    return received, clients * updates, elapsed / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scalpradar-bench-") as tmp:
        setup(tmp)
        start = time.perf_counter()
        seed(args.trades)
        print(
            f"seeded {args.trades} trades + 30 open + 3000 signals + 30,240 candles + OI + alerts "
            f"in {time.perf_counter() - start:.1f} s (scratch SQLite in {tmp})"
        )
        print(f"{'page':<28}{'ms (median)':>12}  target < 100 ms")
        slow = 0
        for name, ms in bench_pages(args.repeat):
            flag = "ok" if ms < 100 else "SLOW"
            slow += ms >= 100 and not name.startswith("trades.csv")
            print(f"{name:<28}{ms:>12.1f}  {flag}")
        got, expected, per_update = asyncio.run(bench_sockets(args.clients, args.updates))
        print(
            f"websocket: {args.clients} clients x {args.updates} updates: received "
            f"{got}/{expected}, {per_update:.1f} ms per update to all clients"
        )
        if got != expected or slow:
            sys.exit(1)


if __name__ == "__main__":
    main()
