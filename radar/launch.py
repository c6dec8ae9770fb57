"""Assembles the radar: config -> exchange (live or replay) -> feed -> runtime -> web server.

Kept apart from the management command so tests can drive it. One process, one event loop:
Daphne (Twisted on asyncio) serves the dashboard and the websockets while the feed and the
runtime run as tasks on the same loop — the in-memory channel layer works because publisher
and consumers share that loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from radar.health import radar_status
from radar.runtime import RadarRuntime, build_arena, last_candle_ms
from strategies.config import get_config
from strategies.core import recursions
from strategies.kernel_config import kernel_config_from
from strategies.models import StrategyConfig
from trading.core.candles import read_candles_csv
from trading.core.csvdata import (
    CsvDataError,
    FundingCsvReader,
    open_data_file,
    parse_data_file_name,
)
from trading.feed.feed import MarketFeed
from trading.feed.live import ExchangeUnreachable, create_exchange, probe
from trading.feed.simulated import SimulatedExchange
from trading.ratelimit import get_rate_limiter

log = logging.getLogger(__name__)


class RadarError(Exception):
    """A start-up problem worth one clear line (no traceback)."""


def sample_candle_files() -> list[Path]:
    files = sorted(Path(settings.SAMPLE_DATA_DIR).glob("*_1m_*.csv*"))
    if not files:
        raise RadarError(f"no bundled sample candles in {settings.SAMPLE_DATA_DIR}")
    return files


def _symbol_of(path: Path) -> str:
    parsed = parse_data_file_name(path.name)
    if parsed is None or parsed.symbol is None:
        raise RadarError(
            f"{path.name}: cannot tell the symbol from the name "
            "(expected e.g. binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz)"
        )
    return parsed.symbol


def load_replay(
    paths: Sequence[Path], symbols: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Candles and funding per configured symbol from replay files (funding found by name)."""
    candles: dict[str, np.ndarray] = {}
    funding: dict[str, np.ndarray] = {}
    for path in paths:
        if not path.exists():
            raise RadarError(f"replay file not found: {path}")
        symbol = _symbol_of(path)
        if symbol not in symbols:
            log.info("replay: %s is not an enabled asset, skipped", symbol)
            continue
        candles[symbol] = read_candles_csv(path)
        funding_files = sorted(path.parent.glob(f"*_{symbol.split('/')[0]}-*_funding_*.csv*"))
        if funding_files:
            funding[symbol] = _read_funding(funding_files[0])
    if not candles:
        raise RadarError(f"no replay candles for the enabled assets {', '.join(symbols)}")
    return candles, funding


def _read_funding(path: Path) -> np.ndarray:
    """``[time_ms, rate]`` rows of a funding CSV, read by the validating import reader."""
    try:
        with open_data_file(path) as stream:
            reader = FundingCsvReader(stream, source=path.name)
            rows = list(reader)
    except CsvDataError as exc:
        raise RadarError(str(exc)) from None
    for bad in reader.bad_rows:
        log.warning("%s: skipped line %d: %s", path.name, bad.line, bad.reason)
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


async def build(
    *,
    replay_paths: Sequence[Path] | None,
    speed: float | None,
    fallback_to_replay: bool,
    out: TextIO,
    selector_every: int = 60,
    warmup_hours: float = 24.0,
) -> tuple[Any, MarketFeed, RadarRuntime]:
    """Exchange (live, or a replay), feed and runtime, with every strategy restored.

    ``selector_every``: minutes of market time per selector round (0 = no selector: the
    parity test compares the arena with plain backtests, which have none).
    ``warmup_hours``: a paced replay runs its first hours at full speed, so that the
    strategies' indicators are warm when the watchable part starts.
    """
    config = get_config()
    symbols = config.enabled_symbols
    exchange_name = next(iter(config.exchanges.exchanges))
    exchange: Any = None
    funding: dict[str, np.ndarray] = {}
    if replay_paths is None:
        live = create_exchange(
            exchange_name,
            api_key=settings.BITGET_API_KEY,
            secret=settings.BITGET_API_SECRET,
            password=settings.BITGET_API_PASSWORD,
            sandbox=settings.EXCHANGE_SANDBOX,
        )
        try:
            await probe(live, symbols)
            exchange = live
            out.write(f"Live feed: {exchange_name} public data for {', '.join(symbols)}\n")
        except ExchangeUnreachable as exc:
            await live.close()
            if not fallback_to_replay:
                raise RadarError(f"{exc}. Use --replay to run on recorded data instead.") from None
            out.write(
                f"{exc} — replaying the bundled real sample instead "
                "(manage.py radar --replay [PATH ...] --speed X|max to choose).\n"
            )
            replay_paths = sample_candle_files()
    if exchange is None:
        if replay_paths is None:
            raise RadarError("no exchange and no replay files")
        candles, funding = load_replay(replay_paths, symbols)
        symbols = [s for s in symbols if s in candles]
        first_ms = min(int(series[0, 0]) for series in candles.values())
        exchange = SimulatedExchange(
            candles,
            speed=speed,
            funding=funding,
            fast_until_ms=first_ms + int(warmup_hours * 3_600_000),
        )
        pace = "max" if speed is None else f"{speed:g}× after a {warmup_hours:g} h warm-up at max"
        out.write(f"Replay: {', '.join(symbols)} from {len(replay_paths)} file(s), speed {pace}\n")
    kernel_config = kernel_config_from(config)  # capital comes from each strategy's session
    configs = await sync_to_async(list)(StrategyConfig.objects.filter(enabled=True))
    arena = await sync_to_async(build_arena)(
        configs, symbols, kernel_config, exchange=exchange_name
    )
    runtime = RadarRuntime(
        arena, exchange=exchange_name, selector_every=selector_every, status=radar_status
    )
    for symbol, series in funding.items():
        runtime.set_funding(symbol, series)
    # Compile the indicator loops before the first candle rather than while deciding on it.
    await sync_to_async(recursions.warm_up)()
    # Kernels restored from a checkpoint replay the candles stored since, before new ones.
    await sync_to_async(runtime.catch_up)()
    last_closed = {}
    for symbol in symbols:
        done = [last_candle_ms(e.kernel, symbol) for e in arena]
        known = [d for d in done if d is not None]
        if known and len(known) == len(done):
            last_closed[symbol] = min(known)
    if last_closed and isinstance(exchange, SimulatedExchange):
        exchange.start_ms = max(exchange.start_ms, min(last_closed.values()) + 60_000)
        out.write("Resuming after the last processed candle.\n")
    feed = MarketFeed(exchange, symbols, runtime, get_rate_limiter(), last_closed_ms=last_closed)
    return exchange, feed, runtime


def print_summary(runtime: RadarRuntime, out: TextIO) -> None:
    out.write(f"\nReplay finished: {runtime.summary.candles} candles processed\n")
    out.write(f"{'strategy':<20}{'signals':>9}{'trades':>8}{'gross':>12}{'fees':>10}{'net':>12}\n")
    for entry in runtime.arena:
        s = entry.session
        out.write(
            f"{entry.config.name:<20}{entry.signal_count:>9}{s.trades_count:>8}"
            f"{s.realised_gross_pnl:>12.2f}{s.fees_usdt:>10.2f}{s.realised_net_pnl:>12.2f}\n"
        )


async def run_feed(exchange: Any, feed: MarketFeed, runtime: RadarRuntime) -> None:
    """Run the feed to its end, told to ``/health/``; then checkpoint every kernel."""
    source = "replay" if isinstance(exchange, SimulatedExchange) else "live"
    radar_status.feed_started(source=source, stats=feed.stats)
    finished = False
    try:
        await runtime.feeding(feed.run())
        finished = True
    finally:
        radar_status.feed_stopped(finished=finished)
        await exchange.close()
    await sync_to_async(runtime.checkpoint_all, thread_sensitive=True)()


async def run_headless(**kwargs: Any) -> RadarRuntime:
    out: TextIO = kwargs["out"]
    exchange, feed, runtime = await build(**kwargs)
    try:
        await run_feed(exchange, feed, runtime)
    finally:
        # The database work ran in asgiref's worker thread, which outlives this loop.
        await sync_to_async(connections.close_all, thread_sensitive=True)()
    print_summary(runtime, out)
    return runtime
