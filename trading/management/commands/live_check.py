"""``manage.py live_check``: prove the keys and the account before any strategy goes live.

On a machine with network and Bitget DEMO keys (``BITGET_API_KEY`` / ``_SECRET`` /
``_PASSWORD``, names from exchanges.yaml): loads the markets, reads the key's permissions
(refuses a key that can withdraw) and the USDT balance, sets one-way mode, isolated margin and
the capped leverage on ``--symbol``, places ONE post-only buy of the minimum size far below the
market (``--distance-pct``, default 20 %: it cannot fill), reads it back by client id, cancels
it, and prints each step with its time. Demo unless exchanges.yaml says ``sandbox: false`` AND
``LIVE_TRADING_MAINNET=true``. Without network: one line, exit code 2.

``--exchange-url`` points every REST / websocket URL elsewhere (the offline fake:
``python -m trading.exchanges.fake``, whose demo key is ``fake-key`` / ``fake-secret`` /
``fake-pass``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from typing import Any

import ccxt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.config import ConfigError, ExchangesFile, RiskFile, read_config_file
from trading.core.orders import Rounding
from trading.exchanges.clients import ExchangeSettings, trading_exchange
from trading.execution.executor import WITHDRAW_AUTHORITY
from trading.execution.settings import MAINNET_ENV, env_true
from trading.execution.venue import market_rules


class Offline(Exception):
    """The exchange cannot be reached: one line, exit 2."""


class Command(BaseCommand):
    help = "Check the API key and account on the exchange with one tiny order (demo first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--symbol", default="BTC/USDT:USDT")
        parser.add_argument("--distance-pct", type=float, default=20.0)
        parser.add_argument("--leverage", type=int, default=None, help="default: live caps")
        parser.add_argument("--exchange-url", default=None, help="e.g. the offline fake")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            exchanges = read_config_file(settings.CONFIG_DIR, "exchanges.yaml", ExchangesFile)
            risk = read_config_file(settings.CONFIG_DIR, "risk.yaml", RiskFile)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        name = next(iter(exchanges.exchanges))
        entry = ExchangeSettings.from_entry(exchanges.exchanges[name], name)
        if not entry.sandbox and not env_true(os.environ.get(MAINNET_ENV)):
            raise CommandError(
                f"{name} is set to mainnet (sandbox: false): set {MAINNET_ENV}=true to check "
                "a real-money key, or use a demo key with sandbox: true"
            )
        keys = [
            os.environ.get(n, "")
            for n in (entry.api_key_env, entry.api_secret_env, entry.api_password_env)
        ]
        if opts["exchange_url"] and not any(keys):
            keys = ["fake-key", "fake-secret", "fake-pass"]  # the offline fake's demo key
        live = risk.live
        leverage = opts["leverage"] or min(
            live.strategy_caps.max_leverage, live.account_caps.max_leverage
        )
        try:
            exchange = trading_exchange(
                entry,
                api_key=keys[0],
                secret=keys[1],
                password=keys[2],
                base_url=opts["exchange_url"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        mode = "DEMO (paptrading)" if entry.sandbox else "MAINNET"
        self.stdout.write(f"live_check on {name} {mode}, {opts['symbol']}")
        try:
            asyncio.run(self._check(exchange, opts["symbol"], opts["distance_pct"], leverage))
        except Offline as exc:
            self.stderr.write(f"live_check: {exc}")
            sys.exit(2)

    def _step(self, what: str, started: float, detail: str = "") -> None:
        ms = (time.perf_counter() - started) * 1000
        self.stdout.write(f"  ok  {what:<34}{ms:>8.0f} ms  {detail}")

    async def _check(self, exchange: Any, symbol: str, distance_pct: float, leverage: int) -> None:
        try:
            await self._steps(exchange, symbol, distance_pct, leverage)
        except (ccxt.NetworkError, OSError) as exc:
            raise Offline(
                f"cannot reach {exchange.id} ({type(exc).__name__}): "
                f"{str(exc).splitlines()[0][:160]}"
            ) from None
        except ccxt.BaseError as exc:
            raise CommandError(f"{exchange.id} answered: {exc}") from None
        finally:
            await exchange.close()

    async def _steps(self, exchange: Any, symbol: str, distance_pct: float, leverage: int) -> None:
        t = time.perf_counter()
        markets = await exchange.load_markets()
        if symbol not in markets:
            raise CommandError(f"{exchange.id} lists no market {symbol}")
        rules = market_rules(markets[symbol])
        self._step("load markets", t, f"tick {rules.price_tick:g}, lot {rules.qty_step:g}")
        t = time.perf_counter()
        info = await exchange.privateSpotGetV2SpotAccountInfo()
        authorities = [str(a) for a in (info.get("data") or {}).get("authorities", [])]
        if WITHDRAW_AUTHORITY in authorities:
            raise CommandError("the key has the withdraw permission: create one without it")
        self._step("key permissions", t, ", ".join(authorities) or "(none listed)")
        t = time.perf_counter()
        balance = await exchange.fetch_balance()
        usdt = balance.get("USDT") or {}
        self._step("balance", t, f"{usdt.get('free')} USDT free of {usdt.get('total')}")
        for what, call, args in (
            ("one-way position mode", exchange.set_position_mode, (False, symbol)),
            ("isolated margin", exchange.set_margin_mode, ("isolated", symbol)),
            (
                f"leverage {leverage}x",
                exchange.set_leverage,
                (leverage, symbol, {"holdSide": "long", "marginMode": "isolated"}),
            ),
        ):
            t = time.perf_counter()
            try:
                await call(*args)
                self._step(what, t)
            except ccxt.ExchangeError as exc:  # "already set" and the like: reported, kept
                self._step(what, t, f"(kept: {str(exc)[:80]})")
        t = time.perf_counter()
        ticker = await exchange.fetch_ticker(symbol)
        bid = float(ticker.get("bid") or ticker["last"])
        price = rules.round_price(bid * (1 - distance_pct / 100), Rounding.DOWN)
        qty = rules.round_qty(max(rules.min_qty, rules.min_notional_usdt * 1.05 / price))
        problem = rules.check_minimums(qty, price)
        if problem:
            raise CommandError(problem)
        cid = f"sr-check-{secrets.token_hex(8)}"
        await exchange.create_order(
            symbol,
            "limit",
            "buy",
            qty,
            price,
            {"postOnly": True, "marginMode": "isolated", "clientOrderId": cid},
        )
        self._step("post-only buy placed", t, f"{qty:g} at {price:g} ({cid})")
        t = time.perf_counter()
        order = await exchange.fetch_order(None, symbol, {"clientOrderId": cid})
        self._step("read back by client id", t, f"status {order.get('status')}")
        t = time.perf_counter()
        await exchange.cancel_order(None, symbol, {"clientOrderId": cid})
        order = await exchange.fetch_order(None, symbol, {"clientOrderId": cid})
        self._step("cancelled", t, f"status {order.get('status')}")
        self.stdout.write("live_check: everything answered as expected")
