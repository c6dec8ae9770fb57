"""The REST pollers: funding settlements and open interest read through ccxt (and the shared
rate limiter), then stored through ``trading.services``. Celery beat runs them in production
(``trading.tasks``); the embedded radar runs the read and store halves on its own loop
(``radar.pollers``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from django.db import transaction

from trading.core.csvdata import FundingRow
from trading.core.validation import funding_problem, open_interest_problem
from trading.models import Asset
from trading.ratelimit import get_rate_limiter
from trading.services import OpenInterestRow, UpsertResult, funding_upsert, open_interest_upsert

log = logging.getLogger(__name__)

# --- REST pollers: funding settlements and open interest ----------------------------------------
#
# Each poll reads through the shared rate limiter (category ``market_data``), one symbol at a
# time, then upserts on the natural key, so a repeated poll (beat tick, retry, duplicate
# delivery) writes nothing new. A symbol the exchange cannot answer for (not listed, no data)
# is logged and skipped; a network error aborts the poll so that the task retries it whole.
# A row the exchange answers that breaks a rule of ``trading.core.validation`` (a time in the
# future or before the listing, a rate or an amount that is not believable) is refused with a
# logged warning and never stored.

FUNDING_HISTORY_LIMIT = 10  # settlements read per poll: 3+ days at 8 h, heals a long outage


class MarketDataLimiter(Protocol):
    async def acquire(self, category: str) -> None: ...


def exchange_symbols(exchange_name: str) -> list[str]:
    """The enabled assets of ``exchange_name`` as stored (seeded from ``assets.yaml``, edited in
    the admin): the live values, read at every poll."""
    return list(
        Asset.objects.filter(exchange=exchange_name, enabled=True)
        .order_by("symbol")
        .values_list("symbol", flat=True)
    )


def exchange_open(exchange_name: str) -> Any:
    """A ccxt.pro exchange for the public REST reads of ``exchange_name``.

    The exchange's name is its ccxt id, as in :func:`radar.launch.build` (``exchanges.yaml``
    keys are ccxt ids; its settings live above ``trading`` in the stack). Funding and open
    interest are public data: no API key is handed over."""
    from trading.feed.live import create_exchange  # ccxt.pro is slow to import: only when used

    return create_exchange(exchange_name, sandbox=False)


def _listed_ms(exchange: Any, symbol: str) -> int | None:
    """ccxt's market ``created`` (listing time, epoch ms) of ``symbol``, None when unknown."""
    markets = getattr(exchange, "markets", None)
    market = markets.get(symbol) if isinstance(markets, dict) else None
    created = market.get("created") if isinstance(market, dict) else None
    return int(created) if created else None


def _number(value: Any) -> float | None:
    """A float from an exchange field, None when absent or not a number."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _supports(exchange: Any, capability: str, method: str) -> bool:
    """ccxt declares its capabilities in ``has``; a fake without ``has`` has the method or not."""
    has = getattr(exchange, "has", None)
    if isinstance(has, dict):
        return bool(has.get(capability))
    return callable(getattr(exchange, method, None))


async def funding_settlements_fetch(
    exchange: Any, symbol: str, *, limiter: MarketDataLimiter, limit: int = FUNDING_HISTORY_LIMIT
) -> list[FundingRow]:
    """The last settled funding rates of ``symbol``: ``(funding_time_ms, rate)``, oldest first.

    A :class:`FundingRate` row is a settlement, so only settled rates are returned. ccxt's
    ``fetch_funding_rate`` answers with the CURRENT period: ``fundingRate`` is the rate predicted
    for the next settlement (it moves until then) and ``fundingTimestamp`` that next settlement
    time (Bitget: ``nextUpdate``). Storing it would key a still-moving prediction at a future
    time. The settled rates come from ``fetch_funding_rate_history`` (``timestamp`` = settlement
    time, ``fundingRate`` = the rate applied then), used whenever the exchange has it. Without
    it, ``fetch_funding_rate`` is used and its rate is stored only when its ``fundingTimestamp``
    is not in the future (a source that reports the last settlement, like the replay)."""
    now_ms = int(exchange.milliseconds())
    await limiter.acquire("market_data")
    if _supports(exchange, "fetchFundingRateHistory", "fetch_funding_rate_history"):
        history = await exchange.fetch_funding_rate_history(symbol, limit=limit)
        entries = [(h.get("timestamp"), h.get("fundingRate")) for h in history]
    else:
        current = await exchange.fetch_funding_rate(symbol)
        entries = [(current.get("fundingTimestamp"), current.get("fundingRate"))]
    listed_ms = _listed_ms(exchange, symbol)
    rows = []
    for t, rate in entries:
        time_ms, value = _number(t), _number(rate)
        if time_ms is None or value is None:
            log.warning("%s: funding answer without a time or a rate: %r", symbol, (t, rate))
            continue
        if time_ms > now_ms:
            continue  # a predicted rate, not a settlement
        row = (int(time_ms), value)
        problem = funding_problem(row, now_ms=now_ms, listed_ms=listed_ms)
        if problem is not None:
            log.warning("%s: funding row %r refused: %s", symbol, row, problem)
            continue
        rows.append(row)
    return sorted(rows)


async def open_interest_fetch(
    exchange: Any, symbol: str, *, limiter: MarketDataLimiter
) -> OpenInterestRow | None:
    """One open-interest sample ``(time_ms, open_interest, open_interest_usdt)`` of ``symbol``.

    ccxt's ``openInterestAmount`` is counted in contracts; times the market's ``contractSize``
    (1 base coin on Bitget USDT-M, whose API already answers in base coin) it is in base units.
    ``time_ms`` is the exchange's time of the sample (Bitget: ``ts``), or the local exchange
    clock when it gives none. ``None`` (with a logged warning) when the answer carries no
    usable amount or breaks a rule of :func:`trading.core.validation.open_interest_problem`."""
    await limiter.acquire("market_data")
    answer = await exchange.fetch_open_interest(symbol)
    now_ms = int(exchange.milliseconds())
    amount = _number(answer.get("openInterestAmount"))
    if amount is None:
        log.warning(
            "%s: open interest answer without a usable amount: %r",
            symbol,
            answer.get("openInterestAmount"),
        )
        return None
    market = (getattr(exchange, "markets", None) or {}).get(symbol) or {}
    contract_size = float(market.get("contractSize") or 1.0)
    time_ms = _number(answer.get("timestamp"))
    row = (
        now_ms if time_ms is None else time_ms,
        amount * contract_size,
        _number(answer.get("openInterestValue")),
    )
    problem = open_interest_problem(row, now_ms=now_ms, listed_ms=_listed_ms(exchange, symbol))
    if problem is not None:
        log.warning("%s: open interest sample %r refused: %s", symbol, row, problem)
        return None
    return (int(row[0]), row[1], row[2])


_PollRead = Callable[[Any, str], Awaitable[Any]]


async def _read_each_symbol(
    exchange_name: str,
    exchange: Any | None,
    symbols: Sequence[str],
    read: _PollRead,
    limiter: MarketDataLimiter,
) -> dict[str, Any]:
    """``read(exchange, symbol)`` for every symbol; an exchange opened here is closed here.

    An exchange error for one symbol (not listed, no data: ``ccxt.ExchangeError`` and its
    subclasses) is logged and that symbol skipped; a ``ccxt.NetworkError`` aborts the poll."""
    import ccxt

    if not symbols:
        log.warning("%s: no enabled asset to poll (load_config seeds them)", exchange_name)
        return {}
    own = exchange is None
    if own:
        exchange = exchange_open(exchange_name)
    try:
        if getattr(exchange, "markets", None) is None:
            await limiter.acquire("market_data")
            await exchange.load_markets()
        answers: dict[str, Any] = {}
        for symbol in symbols:
            try:
                answers[symbol] = await read(exchange, symbol)
            except ccxt.ExchangeError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("%s %s: skipped (%s)", exchange_name, symbol, reason)
        return answers
    finally:
        if own:
            await exchange.close()


async def funding_read(
    *,
    exchange_name: str,
    exchange: Any | None = None,
    symbols: Sequence[str],
    limiter: MarketDataLimiter,
) -> dict[str, list[FundingRow]]:
    """The last funding settlements of ``symbols`` (no write): the read half of
    :func:`funding_poll`, for a caller already on an event loop (the embedded radar)."""

    async def read(ex: Any, symbol: str) -> list[FundingRow]:
        return await funding_settlements_fetch(ex, symbol, limiter=limiter)

    return await _read_each_symbol(exchange_name, exchange, symbols, read, limiter)


async def open_interest_read(
    *,
    exchange_name: str,
    exchange: Any | None = None,
    symbols: Sequence[str],
    limiter: MarketDataLimiter,
) -> dict[str, OpenInterestRow]:
    """One open-interest sample per symbol (no write): the read half of
    :func:`open_interest_poll`."""

    async def read(ex: Any, symbol: str) -> OpenInterestRow | None:
        return await open_interest_fetch(ex, symbol, limiter=limiter)

    samples = await _read_each_symbol(exchange_name, exchange, symbols, read, limiter)
    return {symbol: sample for symbol, sample in samples.items() if sample is not None}


def funding_store(
    *, rows: Mapping[str, Sequence[FundingRow]], exchange_name: str
) -> dict[str, UpsertResult]:
    """Upsert funding settlements per symbol (the write half of :func:`funding_poll`)."""
    with transaction.atomic():
        return {
            symbol: funding_upsert(rows=symbol_rows, exchange=exchange_name, symbol=symbol)
            for symbol, symbol_rows in rows.items()
        }


def open_interest_store(
    *, rows: Mapping[str, Sequence[OpenInterestRow]], exchange_name: str
) -> dict[str, UpsertResult]:
    """Upsert open-interest samples per symbol (the write half of :func:`open_interest_poll`)."""
    with transaction.atomic():
        return {
            symbol: open_interest_upsert(rows=symbol_rows, exchange=exchange_name, symbol=symbol)
            for symbol, symbol_rows in rows.items()
        }


def funding_poll(
    *,
    exchange_name: str,
    exchange: Any | None = None,
    symbols: Sequence[str] | None = None,
    limiter: MarketDataLimiter | None = None,
) -> dict[str, UpsertResult]:
    """Read the last funding settlements of every enabled symbol and upsert them.

    ``exchange`` (a ccxt-shaped object; opened from ``exchanges.yaml`` and closed afterwards when
    omitted), ``symbols`` (default: the exchange's enabled assets) and ``limiter`` (default: the
    process's shared limiter) are injectable. Runs its own event loop: call it from sync code."""
    wanted = list(symbols) if symbols is not None else exchange_symbols(exchange_name)
    rows = asyncio.run(
        funding_read(
            exchange_name=exchange_name,
            exchange=exchange,
            symbols=wanted,
            limiter=limiter or get_rate_limiter(),
        )
    )
    return funding_store(rows=rows, exchange_name=exchange_name)


def open_interest_poll(
    *,
    exchange_name: str,
    exchange: Any | None = None,
    symbols: Sequence[str] | None = None,
    limiter: MarketDataLimiter | None = None,
) -> dict[str, UpsertResult]:
    """Read the open interest of every enabled symbol and upsert one sample each.

    Same injectable arguments as :func:`funding_poll`."""
    wanted = list(symbols) if symbols is not None else exchange_symbols(exchange_name)
    samples = asyncio.run(
        open_interest_read(
            exchange_name=exchange_name,
            exchange=exchange,
            symbols=wanted,
            limiter=limiter or get_rate_limiter(),
        )
    )
    return open_interest_store(
        rows={symbol: [sample] for symbol, sample in samples.items()},
        exchange_name=exchange_name,
    )
