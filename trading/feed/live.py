"""The live exchange for the feed: a keyless ccxt.pro instance on the real public endpoints.

Market data always comes from mainnet without keys (see :mod:`trading.exchanges.clients`); keys
and demo mode belong to the separate trading instance built by
:func:`trading.exchanges.clients.trading_exchange`.
"""

from __future__ import annotations

import logging
from typing import Any

import ccxt.pro as ccxtpro

log = logging.getLogger(__name__)


class ExchangeUnreachable(RuntimeError):
    """The exchange could not be reached (no network, DNS, firewall...)."""


def create_exchange(
    exchange_id: str = "bitget",
    *,
    api_key: str = "",
    secret: str = "",
    password: str = "",
    sandbox: bool = False,
    options: dict[str, Any] | None = None,
    timeout_ms: int = 10_000,
    base_url: str | None = None,
) -> Any:
    """A keyless ccxt.pro instance for public USDT-M perpetual data (``defaultType='swap'``).

    ``api_key``, ``secret``, ``password`` and ``sandbox`` are accepted from callers written
    before the split and NOT applied: the market-data instance never carries keys and never runs
    in demo mode (a demo instance's public streams come from ``wspap``, not the real market).
    Use :func:`trading.exchanges.clients.trading_exchange` for orders. ``base_url`` points the
    instance at a local server (the offline fake).
    """
    from trading.exchanges.clients import redirect_urls

    if api_key or secret or password or sandbox:
        log.info(
            "%s market data: keys/demo mode are not used for public data (mainnet, keyless)",
            exchange_id,
        )
    try:
        klass = getattr(ccxtpro, exchange_id)
    except AttributeError:
        raise ValueError(f"ccxt.pro has no exchange {exchange_id!r}") from None
    config: dict[str, Any] = {
        "enableRateLimit": False,  # our shared limiter paces every call
        "timeout": timeout_ms,
        "options": {
            "defaultType": "swap",
            "fetchMarkets": {"types": ["swap"]},
            "uta": False,
            **(options or {}),
            "sandboxMode": False,
        },
    }
    exchange = klass(config)
    if base_url is not None:
        redirect_urls(exchange, base_url)
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
