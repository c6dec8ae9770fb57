"""``manage.py fetch_history --symbol S [--symbol ...] (--days N | --since DATE [--until DATE])``:
download the exchange's history into the database (docs/history.md).

1m candles, funding settlements, the mark price at each settlement and open interest, where the
exchange offers them, through ccxt REST and the shared rate limiter. Resumable: what is
stored is not asked again (a hole inside the range is found and filled; a second run of the
same range asks nothing). Dates are UTC (``2025-06-01``, ``2025-06-01T12:30``) or epoch ms;
``--until`` is exclusive and defaults to now. ``--exchange`` names an ``exchanges.yaml`` entry
(default: the first); ``--exchange-url`` (default ``EXCHANGE_BASE_URL``) sends every request to
another server speaking its API (the offline fake: ``python -m trading.exchanges.fake``).

Exit codes: 0 done (refused rows and the exchange's own gaps are reported, not failures);
1 a symbol or kind the exchange refused; 2 the exchange cannot be reached (one line, at once
when it cannot be reached at all; after the retries when it is lost midway, with the summary
of what was stored); 130 interrupted (Ctrl-C), with the summary.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.config import ConfigError, ExchangesFile, read_config_file
from trading.exchanges.clients import ExchangeSettings, limiter_rates, market_data_exchange
from trading.history import store
from trading.history.download import KINDS, HistoryDownload
from trading.history.fetch import ExchangeFailure, HistoryFetcher, RetryPolicy
from trading.history.plan import RangeError, parse_when, requested_span
from trading.ratelimit import configured_rate_limiter

OFFLINE_EXIT = 2
INTERRUPTED_EXIT = 130


def data_source(base_url: str | None) -> str:
    """``rest`` (the exchange's own REST API) or ``rest@host:port`` (another server)."""
    return f"rest@{urlsplit(base_url).netloc}" if base_url else "rest"


def close(loop: asyncio.AbstractEventLoop, exchange: Any) -> None:
    """Cancel what is still in flight (a Ctrl-C leaves requests pending), close the exchange's
    HTTP session, then the loop."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending))
    loop.run_until_complete(exchange.close())
    loop.close()


class Command(BaseCommand):
    help = (
        "Download 1m candles, funding, mark prices at settlements and open interest of "
        "--symbol for --days N or --since DATE [--until DATE] (resumable)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--symbol",
            action="append",
            required=True,
            help="ccxt unified symbol, e.g. BTC/USDT:USDT (repeat for several)",
        )
        when = parser.add_mutually_exclusive_group(required=True)
        when.add_argument("--days", type=float, help="the last N days up to now")
        when.add_argument("--since", help="first day/time, UTC (2025-06-01[T12:30]) or epoch ms")
        parser.add_argument("--until", help="end (exclusive), same forms; default: now")
        parser.add_argument("--exchange", help="exchanges.yaml entry (default: the first)")
        parser.add_argument(
            "--exchange-url", help="another server speaking the exchange's API (a fake)"
        )
        parser.add_argument(
            "--skip", action="append", choices=KINDS, default=[], help="a kind not to fetch"
        )
        parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
        parser.add_argument("--retries", type=int, help="per request (default: rest.max_retries)")
        parser.add_argument(
            "--backoff-s", type=float, help="first wait before a retry (default: the entry's)"
        )
        parser.add_argument("--quiet", action="store_true", help="no progress lines")

    def handle(self, *args: Any, **opts: Any) -> None:
        entry = self._entry(opts["exchange"])
        symbols = list(dict.fromkeys(opts["symbol"]))
        for symbol in symbols:
            if "/" not in symbol:
                raise CommandError(
                    f"--symbol {symbol!r} is not a ccxt unified symbol: write it like "
                    "BTC/USDT:USDT (perpetual)"
                )
        try:
            since_ms = parse_when(opts["since"]) if opts["since"] else None
            until_ms = parse_when(opts["until"]) if opts["until"] else None
        except RangeError as exc:
            raise CommandError(str(exc)) from None
        if opts["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        base_url = opts["exchange_url"] or settings.EXCHANGE_BASE_URL or None
        policy = RetryPolicy(
            retries=max(0, entry.max_retries if opts["retries"] is None else opts["retries"]),
            backoff_s=entry.initial_backoff_s if opts["backoff_s"] is None else opts["backoff_s"],
            multiplier=entry.backoff_multiplier,
            max_backoff_s=entry.max_backoff_s,
        )
        exchange = market_data_exchange(entry, base_url=base_url)
        where = base_url or "its own hosts"
        fetcher = HistoryFetcher(
            exchange,
            limiter=configured_rate_limiter(limiter_rates(entry)),
            policy=policy,
            note=lambda line: self.stderr.write(line),
        )
        loop = asyncio.new_event_loop()
        try:
            try:
                markets = loop.run_until_complete(fetcher.load_markets())
            except ExchangeFailure as exc:
                code = OFFLINE_EXIT if exc.offline else 1
                raise CommandError(
                    f"cannot reach {entry.name} at {where}: {exc}", returncode=code
                ) from None
            unknown = [s for s in symbols if s not in markets]
            if unknown:
                raise CommandError(f"{entry.name} lists no market {', '.join(unknown)}")
            try:
                span = requested_span(
                    now_ms=fetcher.now_ms(), days=opts["days"], since_ms=since_ms, until_ms=until_ms
                )
            except RangeError as exc:
                raise CommandError(str(exc)) from None
            for symbol in symbols:
                created = (markets[symbol] or {}).get("created")
                listed = store.listed_ms(entry.name, symbol)
                fetcher.listed_ms[symbol] = listed or (int(created) if created else None)
            self._download(fetcher, loop, entry.name, symbols, span, base_url, opts)
        finally:
            close(loop, exchange)

    def _download(
        self,
        fetcher: HistoryFetcher,
        loop: asyncio.AbstractEventLoop,
        exchange_name: str,
        symbols: list[str],
        span: Any,
        base_url: str | None,
        opts: dict[str, Any],
    ) -> None:
        download = HistoryDownload(
            fetcher,
            exchange_name=exchange_name,
            symbols=symbols,
            span=span,
            source=data_source(base_url),
            run=loop.run_until_complete,
            stream=self.stderr,
            kinds=[k for k in KINDS if k not in opts["skip"]],
            concurrency=opts["concurrency"],
            show_progress=not opts["quiet"],
        )
        self.stdout.write(download.report.header())
        try:
            report = download.download()
        except KeyboardInterrupt:
            self.stdout.write("\n".join(download.report.lines()[1:]))
            raise CommandError("interrupted", returncode=INTERRUPTED_EXIT) from None
        self.stdout.write("\n".join(report.lines()[1:]))
        if report.lost:
            raise CommandError(f"lost {exchange_name}: {report.lost}", returncode=OFFLINE_EXIT)
        if report.failed:
            raise CommandError("the exchange refused some requests (see above)")

    def _entry(self, name: str | None) -> ExchangeSettings:
        try:
            exchanges = read_config_file(settings.CONFIG_DIR, "exchanges.yaml", ExchangesFile)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        entries = exchanges.exchanges
        name = name or next(iter(entries))
        if name not in entries:
            raise CommandError(
                f"--exchange {name!r} is not in exchanges.yaml (known: {', '.join(entries)})"
            )
        return ExchangeSettings.from_entry(entries[name], name)
