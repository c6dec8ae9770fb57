"""The two ccxt.pro instances per exchange, built from one ``exchanges.yaml`` entry.

* :func:`market_data_exchange` — public market data (candles, books, trades, funding, open
  interest). No keys, and ALWAYS the real (mainnet) endpoints, even when the entry says
  ``sandbox: true``: in ccxt's Bitget demo mode every public REST call carries
  ``PAPTRADING: 1`` and the public websocket moves to ``wspap.bitget.com``, whose prices are not
  known to equal mainnet's (ref/execution.md A1). Signals are computed on the real market.
* :func:`trading_exchange` — orders and private streams. Keyed; in demo mode (``PAPTRADING``
  header, ``wspap`` websocket) exactly when the entry says ``sandbox: true``.

Both pace nothing themselves (``enableRateLimit=False``): every call goes through the shared
limiter of :mod:`trading.ratelimit`, whose rates come from :func:`limiter_rates`. The feed's
reconnect / staleness / depth / retry behaviour comes from :func:`feed_options`. Keys are handed
to ccxt only; nothing here logs or formats them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro as ccxtpro


class MissingCredentials(ValueError):
    """A trading instance was asked for without its API key, secret or passphrase."""


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """Every key of one ``exchanges.yaml`` entry (units in the names: ``_ms``, ``_s``, ``_per_s``).

    The ``*_env`` fields are environment-variable NAMES; the key values never live here.
    """

    name: str
    ccxt_id: str
    market_type: str
    sandbox: bool
    market_data_per_s: float
    trade_per_s: float
    account_per_s: float
    position_per_s: float
    timeout_ms: int
    max_retries: int
    keepalive_ms: int
    max_ping_pong_misses: int
    stale_after_s: float
    order_book_depth: int
    initial_backoff_s: float
    max_backoff_s: float
    backoff_multiplier: float
    api_key_env: str
    api_secret_env: str
    api_password_env: str

    @classmethod
    def from_entry(cls, entry: Any, name: str | None = None) -> ExchangeSettings:
        """Read a validated ``ExchangeEntry`` (or the same shape as nested dicts) by key name.

        ``name`` is the entry's key in ``exchanges.yaml`` (defaults to its ``ccxt_id``).
        """
        rates = _get(entry, "rate_limits_per_s")
        rest = _get(entry, "rest")
        ws = _get(entry, "websocket")
        reconnect = _get(ws, "reconnect")
        creds = _get(entry, "credentials")
        ccxt_id = str(_get(entry, "ccxt_id"))
        return cls(
            name=name or ccxt_id,
            ccxt_id=ccxt_id,
            market_type=str(_get(entry, "market_type")),
            sandbox=bool(_get(entry, "sandbox")),
            market_data_per_s=float(_get(rates, "market_data")),
            trade_per_s=float(_get(rates, "trade")),
            account_per_s=float(_get(rates, "account")),
            position_per_s=float(_get(rates, "position")),
            timeout_ms=int(_get(rest, "timeout_ms")),
            max_retries=int(_get(rest, "max_retries")),
            keepalive_ms=int(_get(ws, "keepalive_ms")),
            max_ping_pong_misses=int(_get(ws, "max_ping_pong_misses")),
            stale_after_s=float(_get(ws, "stale_after_s")),
            order_book_depth=int(_get(ws, "order_book_depth")),
            initial_backoff_s=float(_get(reconnect, "initial_backoff_s")),
            max_backoff_s=float(_get(reconnect, "max_backoff_s")),
            backoff_multiplier=float(_get(reconnect, "backoff_multiplier")),
            api_key_env=str(_get(creds, "api_key_env")),
            api_secret_env=str(_get(creds, "api_secret_env")),
            api_password_env=str(_get(creds, "api_password_env")),
        )


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj[key]
    return getattr(obj, key)


def _ccxt_class(ccxt_id: str) -> Any:
    try:
        return getattr(ccxtpro, ccxt_id)
    except AttributeError:
        raise ValueError(f"ccxt.pro has no exchange {ccxt_id!r}") from None


def _config(settings: ExchangeSettings) -> dict[str, Any]:
    return {
        "enableRateLimit": False,  # the shared limiter (trading.ratelimit) paces every call
        "timeout": settings.timeout_ms,
        "streaming": {
            "keepAlive": settings.keepalive_ms,
            "maxPingPongMisses": settings.max_ping_pong_misses,
        },
        "options": {
            "defaultType": settings.market_type,
            # Only the perpetual contracts: no spot / margin-currency calls at load_markets.
            "fetchMarkets": {"types": [settings.market_type]},
            # Classic (v2) account paths, decided here: no probe of /api/v3/account/settings.
            "uta": False,
        },
    }


def market_data_exchange(settings: ExchangeSettings, *, base_url: str | None = None) -> Any:
    """A keyless ccxt.pro instance on the mainnet public endpoints, whatever ``sandbox`` says.

    ``base_url`` (``http://host:port``) sends every REST and websocket URL of the instance to a
    local server instead (the offline fake, :class:`trading.exchanges.fake.FakeBitget`).
    """
    exchange = _ccxt_class(settings.ccxt_id)(_config(settings))
    exchange.options["sandboxMode"] = False
    if base_url is not None:
        redirect_urls(exchange, base_url)
    return exchange


def trading_exchange(
    settings: ExchangeSettings,
    *,
    api_key: str,
    secret: str,
    password: str,
    base_url: str | None = None,
) -> Any:
    """A keyed ccxt.pro instance for orders and private streams; demo mode iff ``sandbox``.

    Raises :class:`MissingCredentials` (naming the environment variables, never their values)
    when a key, secret or passphrase is empty.
    """
    missing = [
        env
        for env, value in (
            (settings.api_key_env, api_key),
            (settings.api_secret_env, secret),
            (settings.api_password_env, password),
        )
        if not value
    ]
    if missing:
        raise MissingCredentials(
            f"{settings.name}: trading needs API credentials; set {', '.join(missing)} "
            "in the environment"
        )
    config = _config(settings)
    config.update({"apiKey": api_key, "secret": secret, "password": password})
    exchange = _ccxt_class(settings.ccxt_id)(config)
    exchange.set_sandbox_mode(settings.sandbox)
    if base_url is not None:
        redirect_urls(exchange, base_url)
    return exchange


def redirect_urls(exchange: Any, base_url: str) -> None:
    """Point every REST and websocket URL of a ccxt instance at ``base_url``.

    REST hosts become ``base_url``; a websocket URL keeps its path under ``ws://`` of the same
    host, with the demo host (``wspap.``) prefixed ``/wspap`` so a server can tell them apart.
    """
    parts = urlsplit(base_url)
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    http_root = f"{parts.scheme}://{parts.netloc}"
    ws_root = f"{ws_scheme}://{parts.netloc}"

    def rewrite(url: str) -> str:
        old = urlsplit(url)
        if old.scheme in ("ws", "wss"):
            prefix = "/wspap" if old.netloc.startswith("wspap.") else ""
            return f"{ws_root}{prefix}{old.path}"
        return http_root + old.path

    def walk(node: dict[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value)
            elif isinstance(value, str) and "://" in value:
                node[key] = rewrite(value)

    walk(exchange.urls["api"])


def feed_options(settings: ExchangeSettings) -> dict[str, Any]:
    """``MarketFeed`` keyword arguments from the entry's websocket and REST keys."""
    return {
        "backoff_initial_s": settings.initial_backoff_s,
        "backoff_max_s": settings.max_backoff_s,
        "backoff_multiplier": settings.backoff_multiplier,
        "stale_after_s": settings.stale_after_s,
        "book_depth": settings.order_book_depth,
        "rest_max_retries": settings.max_retries,
    }


def limiter_rates(settings: ExchangeSettings) -> dict[str, float]:
    """Requests per second per limiter category of :class:`trading.core.ratelimit.RateLimiter`."""
    return {
        "market_data": settings.market_data_per_s,
        "trade": settings.trade_per_s,
        "account": settings.account_per_s,
        "position": settings.position_per_s,
    }
