"""The live Bitget exchange through ccxt.pro (public data needs no keys).

Keys, when present, come from the environment via settings and are handed to ccxt only; they
are never logged. Trading endpoints stay unused unless ``LIVE_TRADING_ENABLED`` is true, and
the demo (sandbox) mode is the default.
"""

from __future__ import annotations

from typing import Any

import ccxt.pro as ccxtpro


class ExchangeUnreachable(RuntimeError):
    """The exchange could not be reached (no network, DNS, firewall...)."""


def create_exchange(
    exchange_id: str = "bitget",
    *,
    api_key: str = "",
    secret: str = "",
    password: str = "",
    sandbox: bool = True,
    options: dict[str, Any] | None = None,
    timeout_ms: int = 10_000,
) -> Any:
    """A ccxt.pro exchange configured for USDT-M perpetuals (``defaultType='swap'``)."""
    try:
        klass = getattr(ccxtpro, exchange_id)
    except AttributeError:
        raise ValueError(f"ccxt.pro has no exchange {exchange_id!r}") from None
    config: dict[str, Any] = {
        "enableRateLimit": False,  # our shared limiter paces every call
        "timeout": timeout_ms,
        "options": {"defaultType": "swap", **(options or {})},
    }
    if api_key:
        config.update({"apiKey": api_key, "secret": secret, "password": password})
    exchange = klass(config)
    if sandbox and api_key:
        # Demo trading only matters for private endpoints; public data is the same.
        exchange.set_sandbox_mode(True)
    return exchange


async def probe(exchange: Any, symbols: list[str]) -> None:
    """Load markets and check every symbol exists; raise ExchangeUnreachable with one line."""
    import ccxt

    try:
        await exchange.load_markets()
    except (ccxt.NetworkError, OSError) as exc:
        raise ExchangeUnreachable(
            f"cannot reach {exchange.id} ({type(exc).__name__}): {str(exc).splitlines()[0][:160]}"
        ) from exc
    missing = [s for s in symbols if s not in exchange.markets]
    if missing:
        raise ValueError(f"{exchange.id} does not list {', '.join(missing)}")
