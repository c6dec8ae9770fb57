"""When live trading may run, and with what limits.

**The gate** (:func:`live_gate`): real orders go out only when ALL hold —

1. ``LIVE_TRADING_ENABLED=true`` in the environment (off by default);
2. the API key, secret and passphrase named by ``exchanges.yaml`` are in the environment;
3. demo (``sandbox: true``, Bitget's ``PAPTRADING``) is the default; mainnet
   (``sandbox: false``) ALSO needs ``LIVE_TRADING_MAINNET=true`` — a second, explicit variable;
4. (checked by the executor at start) the key cannot withdraw.

A strategy then trades live only after a recorded control in the dashboard.

**The limits** (:class:`LiveSettings`) come from ``risk.yaml``'s ``live`` section.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trading.core.execution import LiveCaps

ENABLED_ENV = "LIVE_TRADING_ENABLED"
MAINNET_ENV = "LIVE_TRADING_MAINNET"
DATA_URL_ENV = "EXCHANGE_BASE_URL"  # the market data from another server (a fake, a proxy)


class LiveTradingRefused(RuntimeError):
    """Live trading was asked for and one of the gate's conditions does not hold."""


def env_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class LiveGate:
    """The gate's verdict: ``allowed`` (and ``demo``), or ``reason`` why not."""

    allowed: bool
    demo: bool
    reason: str = ""
    credentials: tuple[str, str, str] = ("", "", "")

    def __repr__(self) -> str:  # never show the keys
        return f"LiveGate(allowed={self.allowed}, demo={self.demo}, reason={self.reason!r})"


def live_gate(exchange: Any, env: Mapping[str, str] | None = None) -> LiveGate:
    """The gate for an :class:`~trading.exchanges.clients.ExchangeSettings` (module docstring).

    ``env`` defaults to ``os.environ``. The credentials ride in the verdict (never in its repr)
    so the caller does not read the environment twice.
    """
    env = os.environ if env is None else env
    demo = bool(exchange.sandbox)
    if not env_true(env.get(ENABLED_ENV)):
        return LiveGate(False, demo, f"live trading is off: set {ENABLED_ENV}=true to enable it")
    names = (exchange.api_key_env, exchange.api_secret_env, exchange.api_password_env)
    values = tuple(env.get(n, "") for n in names)
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        return LiveGate(False, demo, f"live trading needs {', '.join(missing)} in the environment")
    if env.get(DATA_URL_ENV):
        # The radar would decide on prices served from elsewhere and send real orders to
        # the exchange: never (a standalone fake is traded with --exchange fake instead).
        return LiveGate(
            False,
            demo,
            f"the market data comes from {DATA_URL_ENV}={env[DATA_URL_ENV]}, not from "
            f"{exchange.name}: real orders on prices from elsewhere are refused",
        )
    if not demo and not env_true(env.get(MAINNET_ENV)):
        return LiveGate(
            False,
            demo,
            f"{exchange.name} is set to mainnet (sandbox: false): real money needs "
            f"{MAINNET_ENV}=true as well; demo trading is the default",
        )
    return LiveGate(True, demo, credentials=(values[0], values[1], values[2]))


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """``risk.yaml``'s ``live`` section (units in the names; see the file's comments)."""

    strategy_caps: LiveCaps
    account_caps: LiveCaps
    stop_confirm_s: float = 3.0
    exit_attempts: int = 3
    reconcile_interval_s: float = 60.0
    poll_interval_s: float = 5.0
    unknown_positions: str = "close"
    adopt_stop_pct: float = 2.0

    @classmethod
    def from_config(cls, live: Any) -> LiveSettings:
        """From the validated ``Live`` schema (or the same shape as nested dicts)."""

        def get(obj: Any, key: str) -> Any:
            return obj[key] if isinstance(obj, Mapping) else getattr(obj, key)

        def caps(obj: Any) -> LiveCaps:
            return LiveCaps(
                float(get(obj, "max_notional_usdt")),
                int(get(obj, "max_leverage")),
                int(get(obj, "max_open_positions")),
            )

        return cls(
            strategy_caps=caps(get(live, "strategy_caps")),
            account_caps=caps(get(live, "account_caps")),
            stop_confirm_s=float(get(live, "stop_confirm_s")),
            exit_attempts=int(get(live, "exit_attempts")),
            reconcile_interval_s=float(get(live, "reconcile_interval_s")),
            poll_interval_s=float(get(live, "poll_interval_s")),
            unknown_positions=str(get(live, "unknown_positions")),
            adopt_stop_pct=float(get(live, "adopt_stop_pct")),
        )
