"""Assembles the radar: config -> exchange (live or replay) -> feed -> runtime -> web server.

Kept apart from the management command so tests can drive it. One process, one event loop:
Daphne (Twisted on asyncio) serves the dashboard and the websockets while the feed and the
runtime run as tasks on the same loop — the in-memory channel layer works because publisher
and consumers share that loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from radar.arena import needs_input
from radar.health import ReplayFacts, radar_status
from radar.live import start_live
from radar.pollers import embedded, poll_intervals_s, start_pollers
from radar.runtime import RadarRuntime, build_arena, last_candle_ms
from radar.watchdog import WatchdogThresholds, start_watchdog
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
from trading.exchanges.clients import (
    ExchangeSettings,
    feed_options,
    limiter_rates,
    market_data_exchange,
)
from trading.exchanges.fake import Credentials, FakeBitget, FakeClock
from trading.exchanges.fake.server import attach_clock
from trading.feed.feed import MarketFeed
from trading.feed.live import ExchangeUnreachable, probe
from trading.feed.simulated import SimulatedExchange
from trading.markets import asset_rules_refresh
from trading.polling import funding_store
from trading.ratelimit import configured_rate_limiter

log = logging.getLogger(__name__)

FUNDING_PERIOD_MS = 8 * 3_600_000  # a funding file covers candles within one period of its rows


class RadarError(Exception):
    """A start-up problem worth one clear line (no traceback)."""


@dataclass(slots=True)
class StandaloneFake:
    """A fake Bitget serving in another process (``python -m trading.exchanges.fake``, or a
    test's), as this radar sees it: its URL, the one demo key it accepts (the fake's fixed
    default, :class:`~trading.exchanges.fake.Credentials`) and a mirror of its market clock.

    The clock is read once, from the fake's ``GET /fake/clock`` at :meth:`connect` (market time
    advanced by half the round trip, and the speed): a fake whose speed changes later is
    followed from this radar's next start."""

    base_url: str
    clock: FakeClock
    credentials: Credentials = field(default_factory=Credentials)

    @classmethod
    async def connect(cls, base_url: str) -> StandaloneFake:
        sent_s = time.monotonic()
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.get(f"{base_url}/fake/clock") as response,
            ):
                data = (await response.json(content_type=None))["data"]
                now_ms, speed = int(data["nowMs"]), float(data["speed"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            raise RadarError(
                f"EXCHANGE_BASE_URL={base_url}: no fake Bitget answers there ({exc}); start one "
                "with python -m trading.exchanges.fake, or unset it for an in-process fake"
            ) from None
        clock = FakeClock(now_ms, speed)
        clock.start()
        clock.advance(int((time.monotonic() - sent_s) / 2 * 1000.0 * speed))
        return cls(base_url, clock)

    def attach(self, exchange: Any) -> None:
        attach_clock(exchange, self.clock.now_ms)


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
    """Candles and funding per configured symbol from replay files.

    A funding file is found by name next to the candles (same symbol, kind ``funding``) and
    attached only when its settlements cover the replayed candles (first settlement at most one
    funding period after the first candle, last at most one period before the last candle): a
    file of another period would be silently wrong funding, so it is skipped with a warning."""
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
        covering = _covering_funding(path.parent, symbol, candles[symbol])
        if covering is not None:
            funding[symbol] = covering
    if not candles:
        raise RadarError(f"no replay candles for the enabled assets {', '.join(symbols)}")
    return candles, funding


def _covering_funding(folder: Path, symbol: str, candles: np.ndarray) -> np.ndarray | None:
    if not len(candles):
        return None
    first, last = float(candles[0, 0]), float(candles[-1, 0])
    for path in sorted(folder.glob(f"*_{symbol.split('/')[0]}-*_funding_*.csv*")):
        parsed = parse_data_file_name(path.name)
        if parsed is None or parsed.symbol != symbol:
            continue
        rows = _read_funding(path)
        if not len(rows):
            continue
        if rows[0, 0] <= first + FUNDING_PERIOD_MS and rows[-1, 0] >= last - FUNDING_PERIOD_MS:
            return rows
        log.warning(
            "replay: %s does not cover the replayed %s candles (another period): not attached",
            path.name,
            symbol,
        )
    return None


def store_replay_funding(funding: dict[str, np.ndarray], exchange_name: str) -> None:
    """Store the replay's funding settlements (idempotent upsert) so the pages show them."""
    funding_store(
        rows={
            symbol: [(int(t), float(rate)) for t, rate in series.tolist()]
            for symbol, series in funding.items()
        },
        exchange_name=exchange_name,
    )


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
    fake_speed: float | None = None,
    fake: FakeBitget | None = None,
) -> tuple[Any, MarketFeed, RadarRuntime]:
    """Exchange (live, or a replay), feed and runtime, with every strategy restored.

    ``selector_every``: minutes of market time per selector round (0 = no selector: the
    parity test compares the arena with plain backtests, which have none).
    ``warmup_hours``: a paced replay runs its first hours at full speed, so that the
    strategies' indicators are warm when the watchable part starts.
    ``fake_speed``: run LIVE against an in-process fake Bitget (``trading.exchanges.fake``:
    the real ccxt.pro code on a local server) whose market clock runs that many times faster
    than the wall clock; the embedded pollers keep its pace. With ``EXCHANGE_BASE_URL`` set,
    the fake already serving there instead (:class:`StandaloneFake`: its own clock, not
    ``fake_speed``; it outlives this radar, as an exchange outlives a killed bot). ``fake``:
    an in-process fake already running (tests).
    """
    config = get_config()
    symbols = config.enabled_symbols
    exchange_name = next(iter(config.exchanges.exchanges))
    exchange: Any = None
    funding: dict[str, np.ndarray] = {}
    entry = ExchangeSettings.from_entry(config.exchanges.exchanges[exchange_name], exchange_name)
    if replay_paths is None:
        # Market data always comes from a keyless mainnet instance (trading.exchanges.clients);
        # keys and demo mode belong to the trading instance only (the executor's).
        base_url: str | None = settings.EXCHANGE_BASE_URL or None
        owned = False  # run_feed stops a fake it started, never one that outlives it
        venue: FakeBitget | StandaloneFake | None = fake
        if fake is not None:
            base_url = fake.base_url
            fake_speed = fake.clock.speed
        elif fake_speed is not None and base_url is not None:
            venue = await StandaloneFake.connect(base_url)
            fake_speed = venue.clock.speed
        elif fake_speed is not None:
            venue = fake = FakeBitget(speed=fake_speed)
            base_url, owned = await fake.start(), True
        if isinstance(venue, StandaloneFake):
            out.write(
                f"Fake exchange: the fake Bitget already serving at {base_url} "
                f"(EXCHANGE_BASE_URL), its market clock at {fake_speed:g}×\n"
            )
        elif venue is not None:
            out.write(
                f"Fake exchange: a local Bitget at {base_url} serving the bundled real candles "
                f"and funding at {fake_speed:g}× (open interest synthesised by the fake)\n"
            )
        live = market_data_exchange(entry, base_url=base_url)
        if venue is not None:
            venue.attach(live)
            live.scalpradar_fake = venue  # run_feed paces the pollers on its clock
            live.scalpradar_fake_owned = owned
        try:
            await probe(live, symbols)
            exchange = live
            out.write(f"Live feed: {exchange_name} public data for {', '.join(symbols)}\n")
            if not isinstance(live, SimulatedExchange):
                # Market rules from the exchange itself (tick, lot, minimums, max leverage),
                # stored on the Asset rows the kernels read; assets.yaml's stay if it fails.
                refresh = await asset_rules_refresh(exchange=live, exchange_name=exchange_name)
                out.writelines(f"{line}\n" for line in refresh.lines())
        except ExchangeUnreachable as exc:
            await live.close()
            if fake is not None and owned:
                await fake.stop()
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
        await sync_to_async(store_replay_funding)(funding, exchange_name)
        first_ms = min(int(series[0, 0]) for series in candles.values())
        exchange = SimulatedExchange(
            candles,
            speed=speed,
            funding=funding,
            fast_until_ms=first_ms + int(warmup_hours * 3_600_000),
        )
        pace = "max" if speed is None else f"{speed:g}× after a {warmup_hours:g} h warm-up at max"
        out.write(f"Replay: {', '.join(symbols)} from {len(replay_paths)} file(s), speed {pace}\n")
    # Capital comes from each strategy's session; the market rules are read from the database.
    kernel_config = await sync_to_async(kernel_config_from)(config)
    configs = await sync_to_async(list)(StrategyConfig.objects.filter(enabled=True))
    arena = await sync_to_async(build_arena)(
        configs, symbols, kernel_config, exchange=exchange_name
    )
    runtime = await sync_to_async(RadarRuntime)(  # reads the accounts' sessions
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
    if not isinstance(exchange, SimulatedExchange):
        # Real orders for the strategies set live, on the fake's private API or when the gate
        # of trading.execution.settings is open (radar.live); one line says which.
        live_session = await start_live(
            entry, symbols, out=out, fake=getattr(exchange, "scalpradar_fake", None)
        )
        if live_session is not None:
            runtime.recorder.live = live_session.router
            exchange.scalpradar_live = live_session  # run_feed stops it
    if last_closed and isinstance(exchange, SimulatedExchange):
        exchange.start_ms = max(exchange.start_ms, min(last_closed.values()) + 60_000)
        out.write("Resuming after the last processed candle.\n")
    feed = MarketFeed(
        exchange,
        symbols,
        runtime,
        configured_rate_limiter(limiter_rates(entry)),
        last_closed_ms=last_closed,
        # Order flow reads the L2 book and the trades: watched only when someone needs them.
        watch_books=needs_input(arena, "order_book"),
        watch_trades=needs_input(arena, "trades"),
        **(feed_options(entry) if not isinstance(exchange, SimulatedExchange) else {}),
    )
    return exchange, feed, runtime


def print_summary(runtime: RadarRuntime, out: TextIO) -> None:
    """Per strategy: signals, trades, gross, fees, net; then why a strategy did not decide
    on a symbol (a missing input: never a silent zero) and the account kill switches."""
    out.write(f"\nReplay finished: {runtime.summary.candles} candles processed\n")
    out.write(f"{'strategy':<20}{'signals':>9}{'trades':>8}{'gross':>12}{'fees':>10}{'net':>12}\n")
    skipped: list[str] = []
    for entry in runtime.arena:
        s = entry.session
        out.write(
            f"{entry.config.name:<20}{entry.signal_count:>9}{s.trades_count:>8}"
            f"{s.realised_gross_pnl:>12.2f}{s.fees_usdt:>10.2f}{s.realised_net_pnl:>12.2f}\n"
        )
        for symbol in entry.symbols:
            reason = entry.kernel.skipped_reason(symbol)
            if reason:
                skipped.append(f"  {entry.config.name} on {symbol}: {reason}\n")
    if skipped:
        out.write("Skipped (no decision):\n")
        out.writelines(skipped)
    for guard in runtime.accounts.values():
        if guard.kill_switch.tripped:
            out.write(f"Account kill switch ({guard.mode}): {guard.kill_switch.reason}\n")


async def run_feed(
    exchange: Any,
    feed: MarketFeed,
    runtime: RadarRuntime,
    *,
    watchdog: WatchdogThresholds | None = None,
) -> None:
    """Run the feed to its end, told to ``/health/``; then checkpoint every kernel.
    ``watchdog``: its thresholds, to run :mod:`radar.watchdog` beside the feed (None: none)."""
    source = "replay" if isinstance(exchange, SimulatedExchange) else "live"
    # The embedded mode has no Celery beat: it runs the REST pollers itself (live only: a
    # replay stored its funding up front).
    fake: FakeBitget | StandaloneFake | None = getattr(exchange, "scalpradar_fake", None)
    replay = (
        ReplayFacts(
            first_ms=exchange.start_ms,
            last_ms=exchange.end_ms,
            speed=exchange.speed,
            fast_until_ms=exchange.fast_until_ms,
            market_ms=exchange.milliseconds,
        )
        if isinstance(exchange, SimulatedExchange)
        else None
    )
    radar_status.feed_started(
        source=source,
        stats=feed.stats,
        market_ms=fake.clock.now_ms if fake else None,
        replay=replay,
    )
    await sync_to_async(_store_start_alert, thread_sensitive=True)(
        start_alert_text(source, feed.symbols, runtime, replay)
    )
    # On the fake exchange market time runs ``speed``× faster: the pollers keep its pace.
    scale = 1.0 / fake.clock.speed if fake is not None else 1.0
    pollers = (
        start_pollers(
            exchange,
            runtime.exchange,
            feed.symbols,
            feed.limiter,
            intervals_s={kind: every * scale for kind, every in poll_intervals_s().items()},
            status=radar_status,
        )
        if source == "live" and embedded()
        else []
    )
    watch = start_watchdog(
        watchdog,
        status=radar_status,
        runtime=runtime,
        symbols=feed.symbols,
        live=source == "live",
        exchange=exchange,
        limiter=feed.limiter,
        market_ms=fake.clock.now_ms if fake is not None else None,
    )
    finished = False
    failure: str | None = None
    try:
        await runtime.feeding(feed.run())
        finished = True
    except Exception as exc:  # told to /health/ and stored (when the database takes it)
        failure = f"{type(exc).__name__}: {exc}"
        log.error("the radar feed stopped: %s", failure)
        await sync_to_async(_store_stop_alert, thread_sensitive=True)(failure)
        raise
    finally:
        tasks = [*pollers, *([watch] if watch is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        radar_status.feed_stopped(finished=finished, failure=failure)
        live_session = getattr(exchange, "scalpradar_live", None)
        if live_session is not None:
            await live_session.stop()
        await exchange.close()
        if isinstance(fake, FakeBitget) and getattr(exchange, "scalpradar_fake_owned", False):
            await fake.stop()
    await sync_to_async(runtime.checkpoint_all, thread_sensitive=True)()


def start_alert_text(
    source: str, symbols: Sequence[str], runtime: RadarRuntime, replay: ReplayFacts | None
) -> str:
    """The Alerts page's line for a (re)start: what the radar runs on and from where each
    strategy resumes — a restart is visible on the page, not only in a log or on Telegram."""
    from common.presenters import fmt_time_ms

    if replay is not None:
        what = (
            f"replay of {fmt_time_ms(replay.first_ms)[:10]} → {fmt_time_ms(replay.last_ms)[:10]}"
            + (f" at {replay.speed:g}×" if replay.speed else " as fast as it goes")
        )
    else:
        what = "live feed"
    resumed = [e for e in runtime.arena if e.session.ledger_state]
    return (
        f"radar started: {what} for {', '.join(symbols)}; "
        f"{len(runtime.arena)} strateg{'y' if len(runtime.arena) == 1 else 'ies'}, "
        + (
            f"{len(resumed)} resumed from their last checkpoint"
            if resumed
            else "all starting fresh (no checkpoint stored)"
        )
    )


def _store_start_alert(message: str) -> None:
    from trading.alerts import alert_create

    try:
        alert_create(level="info", message=message, source="radar", payload={"started": True})
    except Exception as exc:  # a database outage must not stop the feed from starting
        log.error("could not store the start alert: %s", exc)


def _store_stop_alert(failure: str) -> None:
    from trading.alerts import alert_create

    try:
        alert_create(
            level="error",
            message=f"the radar feed stopped: {failure}. /health/ reports degraded; "
            "restart the radar once the cause is fixed",
            source="radar",
            payload={"stopped": True},
        )
    except Exception as exc:  # the database itself may be the cause: the log keeps it
        log.error("could not store the stop alert: %s", exc)


async def run_headless(
    *,
    watchdog: WatchdogThresholds | None = None,
    on_built: Callable[[Any, MarketFeed, RadarRuntime], Awaitable[None]] | None = None,
    **kwargs: Any,
) -> RadarRuntime:
    """Build and run the feed to its end, then print the summary. ``on_built``: awaited once
    the radar is built, before its feed starts (the wiring's start notice)."""
    out: TextIO = kwargs["out"]
    exchange, feed, runtime = await build(**kwargs)
    try:
        if on_built is not None:
            await on_built(exchange, feed, runtime)
        await run_feed(exchange, feed, runtime, watchdog=watchdog)
    finally:
        # The database work ran in asgiref's worker thread, which outlives this loop.
        await sync_to_async(connections.close_all, thread_sensitive=True)()
    print_summary(runtime, out)
    return runtime
