"""Benchmark: the live executor's own time, through the fake Bitget with injected latency.

    .venv/bin/python bench/live.py                      # 50 ms per private request
    .venv/bin/python bench/live.py --latency-ms 50 --entries 90 --positions 100

On a scratch SQLite database (temp dir), the real ccxt.pro bitget in demo mode against the
in-process fake (``trading.exchanges.fake``), whose private REST answers each request
``--latency-ms`` late (the exchange's time, not ours):

1. **intent → request**: ``--entries`` market entries (BTC, ETH, SOL in turn, each closed
   before the next on its symbol), from ``Executor.submit_entry`` being handed the intent to
   the fake receiving its ``place-order`` (caps, rounding, the order row written BEFORE the
   request, ccxt's request building and signing, the local socket), each sent once the
   previous trade's background work (stop confirmation, settlement) is done.
2. **reconciliation**: ``--positions`` symbols (the fake serves the real BTC candles under
   that many synthetic contracts), one protected position each (stop and target: 2 plan
   orders) plus one resting entry each = 3 × positions orders; then ``reconcile_now`` (the
   exchange's positions, open orders and plan orders — paged, 100 per page — against the
   database, diffed), repeated ``--repeat`` times.

3. **the whole live path** (:func:`pipeline`): the radar built as ``manage.py radar
   --exchange fake`` builds it, every strategy set live, at ``--pipeline-speed``× market time:
   each entry's closed candle received by the runtime → its place-order at the fake, and the
   runtime's candle → committed for every candle of the run.

Targets (issue 13): closed candle → order request p99 ≤ 20 ms of our own time; a
100-position / 300-order reconciliation ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


def setup(tmp: str) -> None:
    os.environ["SCALPRADAR_DATA_DIR"] = tmp
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalpradar.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import logging

    import django

    django.setup()
    from django.core.management import call_command

    logging.disable(logging.WARNING)
    call_command("migrate", verbosity=0)


def settings_for_bench() -> Any:
    from trading.core.execution import LiveCaps
    from trading.execution.settings import LiveSettings

    roomy = LiveCaps(1e9, 10, 1000)
    return LiveSettings(strategy_caps=roomy, account_caps=roomy, stop_confirm_s=2.0)


def keyed(fake: Any) -> Any:
    import yaml

    from trading.exchanges.clients import ExchangeSettings, trading_exchange

    config = (ROOT / "config" / "exchanges.yaml").read_text(encoding="utf-8")
    entry = yaml.safe_load(config)["exchanges"]["bitget"]
    settings = ExchangeSettings.from_entry(entry, "bitget")
    keys = fake.private.credentials  # the fake's own demo key
    exchange = trading_exchange(
        settings,
        api_key=keys.api_key,
        secret=keys.secret,
        password=keys.passphrase,
        base_url=fake.base_url,
    )
    fake.attach(exchange)
    return exchange


def intent(fake: Any, symbol: str, cid: str, qty: float) -> dict[str, Any]:
    market_id = symbol.split(":")[0].replace("/", "")
    price = float(fake.market.forming(market_id, fake.now_ms())[4])
    return {
        "strategy": "bench",
        "symbol": symbol,
        "side": "long",
        "order_type": "market",
        "limit_price": None,
        "reference_price": price,
        "qty": qty,
        "leverage": 5,
        "margin_mode": "isolated",
        "stop_loss": price * 0.98,
        "take_profit": price * 1.04,
        "expires_at_ms": fake.now_ms() + 600_000,
        "time_ms": fake.now_ms(),
        "client_order_id": cid,
    }


def arrivals(fake: Any) -> dict[str, float]:
    """Stamp the wall time each place-order reaches the fake, by client id."""
    seen: dict[str, float] = {}
    original = fake.private.rest

    async def rest(request: Any, body: str) -> Any:
        if request.path.endswith("/order/place-order"):
            import json

            seen[json.loads(body).get("clientOid", "")] = time.perf_counter()
        return await original(request, body)

    fake.private.rest = rest
    return seen


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def entry_latency(entries: int, latency_s: float) -> list[float]:
    from trading.exchanges.fake import FakeAccount, FakeBitget, FakeMarket
    from trading.execution.executor import Executor

    market = FakeMarket.from_files()
    fake = FakeBitget(market, speed=1.0, account=FakeAccount(market, balance=1e7))
    await fake.start()
    seen = arrivals(fake)
    ex = Executor(
        keyed(fake), settings=settings_for_bench(), symbols=[BTC, ETH, SOL], alert=lambda *a: None
    )
    await ex.start()
    fake.private.latency_s = latency_s
    qty = {BTC: 0.01, ETH: 0.1, SOL: 1.0}
    spent: list[float] = []
    try:
        for i in range(entries):
            symbol = (BTC, ETH, SOL)[i % 3]
            cid = f"sr-en-bench{i}"
            await ex.idle()  # the previous trade's stop check and settlement are done
            started = time.perf_counter()
            await ex.submit_entry(intent(fake, symbol, cid, qty[symbol]))
            spent.append((seen[cid] - started) * 1000)
            await ex.submit_close(
                {
                    "strategy": "bench",
                    "symbol": symbol,
                    "side": "long",
                    "reason": "time_stop",
                    "client_order_id": f"sr-xts-b{i}",
                }
            )
    finally:
        await ex.close()
        await ex.exchange.close()
        await fake.stop()
    return spent


async def reconciliation(
    positions: int, latency_s: float, repeat: int
) -> tuple[list[float], int, int, bool]:
    import numpy as np

    from trading.core.execution import OrderRole, OrderStatus
    from trading.exchanges.fake import ContractRules, FakeAccount, FakeBitget, FakeMarket
    from trading.exchanges.fake.market import CONTRACT_RULES
    from trading.execution import store
    from trading.execution.executor import Executor
    from trading.execution.reconciler import reconcile_now

    btc = FakeMarket.from_files(bases=("BTC",)).candles["BTCUSDT"]
    bases = [f"X{i:03d}" for i in range(positions)]
    b = CONTRACT_RULES["BTC"]
    rules = {
        base: ContractRules(
            base,
            b.price_place,
            b.price_end_step,
            b.volume_place,
            b.size_multiplier,
            b.min_trade_num,
            b.min_trade_usdt,
            b.max_lever,
        )
        for base in bases
    }
    market = FakeMarket({base: np.array(btc) for base in bases}, None, rules)
    fake = FakeBitget(market, speed=1.0, account=FakeAccount(market, balance=1e9))
    await fake.start()
    symbols = [f"{base}/USDT:USDT" for base in bases]
    ex = Executor(
        keyed(fake), settings=settings_for_bench(), symbols=symbols, alert=lambda *a: None
    )
    try:
        await ex.start()
        for i, symbol in enumerate(symbols):  # one protected position per symbol
            await ex.submit_entry(intent(fake, symbol, f"sr-en-r{i}", 0.01))
        while len(fake.account.plan_orders) < 2 * positions:
            await asyncio.sleep(0.1)
        for i, symbol in enumerate(symbols):  # and one resting entry each, known to the db
            price = round(
                float(fake.market.forming(symbol[:4] + "USDT", fake.now_ms())[4]) * 0.8, 1
            )
            answer = await ex.exchange.create_order(
                symbol,
                "limit",
                "buy",
                0.01,
                price,
                {"postOnly": True, "clientOrderId": f"sr-en-rest{i}"},
            )
            order, _ = await ex.db(
                store.order_record,
                client_id=f"sr-en-rest{i}",
                strategy="bench",
                symbol=symbol,
                role=OrderRole.ENTRY,
                side="buy",
                order_type="limit",
                qty=0.01,
                price=price,
                post_only=True,
            )
            await ex.db(store.order_attempt, client_id=order.client_id, submitted_ms=0)
            await ex.db(
                store.order_transition,
                client_id=order.client_id,
                status=OrderStatus.OPEN,
                exchange_order_id=str(answer["id"]),
            )
        await reconcile_now(ex)  # records the preset stops and targets once
        fake.private.latency_s = latency_s
        spent: list[float] = []
        clean = True
        for _ in range(repeat):
            before = len(fake.requests)
            started = time.perf_counter()
            result = await reconcile_now(ex)
            spent.append((time.perf_counter() - started) * 1000)
            clean = clean and result.clean
            if not result.clean:
                print("reconciliation differs:", result.summary())
            calls = len(fake.requests) - before
        orders = len(fake.account.open_orders) + len(fake.account.plan_orders)
        return spent, calls, orders, clean
    finally:
        await ex.close()
        await ex.exchange.close()
        await fake.stop()


async def pipeline(
    seconds: float, speed: float, latency_s: float
) -> tuple[list[float], int, list[tuple[int, float]]]:
    """Closed candle received by the radar -> its intent's place-order at the fake, through
    the whole live path (``radar.launch.build`` with the fake: feed, runtime, kernels, commit,
    router, executor), every strategy set live (funding_arbitrage's threshold lowered so that
    it trades the bundled week), for ``seconds`` of wall time at ``speed``x market time."""
    import io

    from asgiref.sync import sync_to_async
    from django.core.management import call_command

    from radar import launch
    from strategies.models import StrategyConfig
    from trading.models import Order

    def arena() -> None:
        call_command("load_config", stdout=io.StringIO())
        funding = StrategyConfig.objects.get(name="funding_arbitrage")
        funding.params = {**funding.params, "extreme_rate": 0.00004}
        funding.save()
        StrategyConfig.objects.update(live=True)

    await sync_to_async(arena)()
    launch.embedded = lambda: True  # the pollers of one process (funding, open interest)
    out = io.StringIO()
    exchange, feed, runtime = await launch.build(
        replay_paths=None,
        speed=None,
        fallback_to_replay=False,
        out=out,
        selector_every=0,
        fake_speed=speed,
    )
    print(next(line for line in out.getvalue().splitlines() if line.startswith("Live trading")))
    fake = exchange.scalpradar_fake
    fake.private.latency_s = latency_s
    seen = arrivals(fake)
    received: dict[tuple[str, int], float] = {}
    on_closed = runtime.on_closed_candle

    async def stamped(symbol: str, row: tuple[float, ...]) -> None:
        received.setdefault((symbol, int(row[0])), time.perf_counter())
        await on_closed(symbol, row)

    runtime.on_closed_candle = stamped
    committed_after: list[tuple[int, float]] = []  # (candle open ms, ms to commit)
    writer_committed = runtime.writer.committed

    def committed(batch: Any) -> None:
        now = time.perf_counter()
        committed_after.extend(
            (int(r[0]), (now - received[(s, int(r[0]))]) * 1000)
            for s, r in batch
            if (s, int(r[0])) in received
        )
        if writer_committed is not None:
            writer_committed(batch)

    runtime.writer.committed = committed
    running = asyncio.ensure_future(launch.run_feed(exchange, feed, runtime))
    await asyncio.sleep(seconds)
    feed.stop()
    await asyncio.wait_for(running, 60)
    orders = await sync_to_async(
        lambda: list(Order.objects.filter(role="entry").values_list("client_id", "intent"))
    )()
    spent = []
    for cid, intent in orders:
        key = (intent["symbol"], int(intent["time_ms"]) - 60_000)
        if cid in seen and key in received:
            spent.append((seen[cid] - received[key]) * 1000)
    return spent, len(orders), committed_after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--entries", type=int, default=90)
    parser.add_argument("--positions", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pipeline-seconds", type=float, default=90.0)
    parser.add_argument("--pipeline-speed", type=float, default=1200.0, help="market-time x")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scalpradar-live-") as tmp:
        setup(tmp)
        from django.core.management import call_command

        latency_s = args.latency_ms / 1000
        spent = asyncio.run(entry_latency(args.entries, latency_s))
        # Each part on a fresh database: a second fake numbers its orders from the same id.
        call_command("flush", interactive=False, verbosity=0)
        recon, calls, orders, clean = asyncio.run(
            reconciliation(args.positions, latency_s, args.repeat)
        )
        call_command("flush", interactive=False, verbosity=0)
        direct, intents, commits = asyncio.run(
            pipeline(args.pipeline_seconds, args.pipeline_speed, latency_s)
        )
    p99 = pct(spent, 99)
    commit_ms = [ms for _, ms in commits]
    print(f"fake Bitget, {args.latency_ms:g} ms per private request, SQLite")
    print(
        f"1. intent -> place-order at the exchange ({len(spent)} market entries): p50 "
        f"{statistics.median(spent):.2f} ms, p99 {p99:.2f} ms, max {max(spent):.2f} ms"
    )
    per_min = args.pipeline_speed * 3 / 60
    print(
        f"3. whole live path, every strategy live, {per_min:g} candles/s for "
        f"{args.pipeline_seconds:g} s: {intents} entry intents sent; closed candle received -> "
        f"place-order at the exchange: {', '.join(f'{v:.1f}' for v in sorted(direct))} ms"
    )
    if commit_ms:
        print(
            f"   the same run's candle received -> committed ({len(commit_ms)} candles): p50 "
            f"{statistics.median(commit_ms):.1f} ms, p99 {pct(commit_ms, 99):.1f} ms, max "
            f"{max(commit_ms):.1f} ms"
        )
    shown = len(direct) >= 20 and pct(direct, 99) <= 20
    print(
        "   target closed candle -> order request p99 <= 20 ms: "
        + ("ok" if shown else f"NOT SHOWN ({len(direct)} samples; see the commit tail)")
    )
    ok_recon = max(recon) <= 1000 and clean
    print(
        f"2. reconciliation, {args.positions} positions + {orders} orders, {calls} REST calls: "
        f"p50 {statistics.median(recon):.0f} ms, max {max(recon):.0f} ms "
        f"({'clean' if clean else 'NOT clean'})   {'ok' if ok_recon else 'FAIL'} (target <= 1 s)"
    )
    return 0 if shown and ok_recon else 1


if __name__ == "__main__":
    sys.exit(main())
