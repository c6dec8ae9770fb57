"""Fixtures for the dashboard: a user, and an arena with realistic rows (real candles)."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from asgiref.sync import SyncToAsync
from django.contrib.auth.models import User
from django.db import connection, connections

from strategies.models import Signal, StrategyConfig
from trading.core.candles import read_candles_csv
from trading.models import Asset, FundingRate, Position, TradingSession
from trading.services import candles_upsert

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC, first candle of the bundled sample


@pytest.fixture
def user(db) -> User:
    return User.objects.create_user("trader", password="s3cret-pass-123")


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_superuser("boss", password="s3cret-pass-123")


@pytest.fixture
def client_in(client, user):
    client.force_login(user)
    return client


def load_candles(symbol: str, file: str, limit: int = 3000) -> np.ndarray:
    """Store the first ``limit`` real 1m candles of a sample file; return them as an array."""
    array = read_candles_csv(SAMPLE / file)[:limit]
    candles_upsert(
        rows=[(int(r[0]), *map(float, r[1:])) for r in array],
        exchange="bitget",
        symbol=symbol,
        timeframe="1m",
    )
    return array


@pytest.fixture
def arena(db) -> dict:
    """Two assets with 3000 real 1m candles each, two strategies with sessions, positions
    (open and closed), signals accepted and refused, and a funding rate."""
    for symbol, base, tick, step in ((BTC, "BTC", 0.1, 0.001), (ETH, "ETH", 0.01, 0.01)):
        Asset.objects.create(
            symbol=symbol,
            base=base,
            price_tick=tick,
            qty_step=step,
            min_qty=step,
            correlation_group="crypto_major",
        )
    btc = load_candles(BTC, "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")
    load_candles(ETH, "binance-usdm_ETH-USDT_1m_20250617-20250623.csv.gz")
    FundingRate.objects.create(exchange="bitget", symbol=BTC, funding_time_ms=T0, rate=0.0001)
    vwap = StrategyConfig.objects.create(name="vwap_rsi", kind="vwap_rsi")
    mom = StrategyConfig.objects.create(name="momentum_breakout", kind="momentum_breakout")
    s1 = TradingSession.objects.create(
        strategy_name="vwap_rsi",
        realised_gross_pnl=120.0,
        realised_net_pnl=80.0,
        fees_usdt=40.0,
        equity_usdt=10_080.0,  # as the radar checkpoints it: capital + net (+ unrealised)
        trades_count=3,
        wins_count=2,
    )
    s2 = TradingSession.objects.create(
        strategy_name="momentum_breakout",
        status="killed",
        realised_gross_pnl=-400.0,
        realised_net_pnl=-520.0,
        fees_usdt=120.0,
        equity_usdt=9_480.0,
        trades_count=2,
        wins_count=0,
        kill_switch_tripped=True,
        kill_switch_reason="session loss 5.2 % ≥ 5 %",
    )
    TradingSession.objects.create(strategy_name="", realised_net_pnl=-440.0)
    closed = []
    for i, (session, name, side, entry, exit_, gross, fee) in enumerate(
        [
            (s1, "vwap_rsi", "long", 104_000.0, 104_600.0, 60.0, 12.5),
            (s1, "vwap_rsi", "short", 105_000.0, 104_500.0, 50.0, 12.6),
            (s1, "vwap_rsi", "long", 104_500.0, 104_400.0, 10.0, 14.9),
            (s2, "momentum_breakout", "long", 106_000.0, 104_000.0, -200.0, 60.0),
            (s2, "momentum_breakout", "short", 103_000.0, 105_000.0, -200.0, 60.0),
        ]
    ):
        entry_ms = T0 + i * 3_600_000
        closed.append(
            Position.objects.create(
                session=session,
                strategy_name=name,
                symbol=BTC,
                side=side,
                status="closed",
                ledger_id=f"c{i}",
                qty=0.1,
                leverage=10,
                entry_price=entry,
                entry_time_ms=entry_ms,
                entry_fee=fee / 2,
                entry_liquidity="taker",
                stop_loss=entry * 0.99,
                take_profit=entry * 1.01,
                liquidation_price=entry * 0.9,
                exit_price=exit_,
                exit_time_ms=entry_ms + 1_800_000,
                exit_fee=fee / 2,
                exit_liquidity="taker",
                exit_reason="take_profit" if gross > 0 else "stop_loss",
                funding_usdt=0.5,
                gross_pnl=gross,
                net_pnl=gross - fee - 0.5,
            )
        )
    open_pos = Position.objects.create(
        session=s1,
        strategy_name="vwap_rsi",
        symbol=BTC,
        side="long",
        ledger_id="o1",
        qty=0.05,
        leverage=20,
        entry_price=float(btc[-10, 4]),
        entry_time_ms=int(btc[-10, 0]),
        entry_fee=1.5,
        entry_liquidity="maker",
        stop_loss=float(btc[-10, 4]) * 0.995,
        take_profit=float(btc[-10, 4]) * 1.01,
        liquidation_price=float(btc[-10, 4]) * 0.955,
    )
    for i, (cfg, status, score) in enumerate(
        [(vwap, "accepted", 0.82), (mom, "refused", 0.55), (vwap, "refused", 0.31)]
    ):
        Signal.objects.create(
            strategy=cfg,
            symbol=BTC if i < 2 else ETH,
            timeframe="5m",
            candle_open_time_ms=T0 + i * 300_000,
            side="long",
            entry_type="limit",
            entry_price=104_000,
            stop_loss=103_500,
            take_profit=105_000,
            score=score,
            reasons=["rsi 22 < 25", "below vwap"],
            status=status,
            refusal_reason="" if status == "accepted" else "kill switch tripped",
        )
    return {"sessions": (s1, s2), "closed": closed, "open": open_pos, "configs": (vwap, mom)}


def _close_connections() -> None:
    """Close this thread's and the shared async worker's database connections."""
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=30)
    connections.close_all()


@pytest.fixture(scope="module")
def sqlite_file_database(django_db_setup, django_db_blocker) -> Iterator[str | None]:
    """SQLite: move a module's tests onto a database FILE, as the radar runs (WAL, busy timeout).

    Django's SQLite test database lives in memory with a shared cache, where locks are per
    TABLE and a writer meeting a reader fails at once ("database table is locked") instead of
    waiting its busy timeout — a lock the real file database in WAL mode never takes. Tests
    where the radar writes while Daphne serves pages from other threads need the real thing.
    The file starts as a copy of the migrated in-memory database (kept alive meanwhile) and the
    in-memory one is back for the following modules. Other engines: nothing to do (None).
    """
    settings_dict = connection.settings_dict
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield None
        return
    memory_name = settings_dict["NAME"]
    with tempfile.TemporaryDirectory(prefix="scalpradar-test-db-") as folder:
        path = str(Path(folder) / "test.sqlite3")
        with django_db_blocker.unblock():
            keeper = sqlite3.connect(memory_name, uri=True, check_same_thread=False)
            target = sqlite3.connect(path)
            keeper.backup(target)
            target.close()
            settings_dict["NAME"] = path
            _close_connections()  # now really closed (not in memory): reconnect to the file
        try:
            yield path
        finally:
            with django_db_blocker.unblock():
                _close_connections()
                settings_dict["NAME"] = memory_name
                connection.ensure_connection()  # holds the in-memory database from now on
                keeper.close()
