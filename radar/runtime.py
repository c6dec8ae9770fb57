"""The live runtime: closed candle -> every enabled strategy -> risk -> paper ledger -> events.

The feed (``trading.feed``) calls :class:`RadarRuntime` as its handler. ``on_closed_candle``
queues the candle for the WRITER, which takes every candle waiting (at most ``max_batch``) and
processes them, in arrival order, in ONE database transaction (group commit): a live candle
arriving on an idle writer commits alone at once; candles arriving faster than one commit per
candle (a catch-up, a max-speed replay) share a commit. The queue holds at most ``max_batch``
candles, then the feed waits (memory and latency bound). For each CLOSED 1m candle of a batch
the runtime, in that transaction:

1. upserts the candle (natural key: a redelivered candle changes nothing);
2. at the start of the batch, at most every ``controls_every_s``, re-reads the controls made
   elsewhere — each session's status, kill switch and capital weight (the dashboard's pause /
   resume / kill-switch reset, ``strategies.services``) and each strategy's ``updated_at``
   (parameters edited in the admin) — and applies them to the kernels
   (:meth:`RadarRuntime.sync_controls`);
3. hands the candle to each strategy's :class:`strategies.core.kernel.StrategyKernel` — the
   very object the backtester drives, so paper trading and backtests cannot disagree — unless
   that kernel already processed this candle (its state records the last candle per symbol:
   idempotent after a crash or a redelivery);
4. stores what the kernel did (signals accepted/refused with the reason, positions opened and
   closed, funding, kill-switch trips) and, at a CHECKPOINT, the kernel's state (ledger, kill
   switch, pending orders) in the strategy's ``TradingSession`` row — only the fields the
   runtime owns, so a control written concurrently by the dashboard is never overwritten;
5. runs the arena's selector once per round of ``selector_every`` minutes of MARKET time and
   applies its decisions (a round is keyed by market time, so a restart neither skips nor
   repeats one).

Events go to the dashboard only after that transaction commits, the batch's snapshots
coalesced (``common.events.EventBatch``: one ``market.candle`` per symbol carrying every
candle, the newest ``arena.update`` per strategy; signals, positions, funding and alerts all
sent). A SIGKILL at any point leaves either all of a batch's effects or none of them; a candle
queued but not committed is healed from the exchange on restart like one never received.

Checkpoints: a kernel's state is saved at the commit of the batch holding a candle that made
it emit an event (signal, position, funding, kill switch, skip), that changed its controls
(dashboard, selector, admin), that was its first on a symbol, and otherwise at most every
``checkpoint_every_s`` of wall time (default: ``controls_every_s``) — not with every candle,
which cost most of a candle's time. Between two checkpoints a kernel therefore emitted nothing
and its controls did not change. (Saved at the batch's commit, the state is that after the
batch's last candle, every candle of the batch stored in the same transaction.)

On restart (:func:`build_arena`) each kernel is rebuilt from its last checkpoint AND preloaded
with the stored 1m candles it needs (:func:`preload_stored_history`); then
:meth:`RadarRuntime.catch_up` replays the candles stored since its checkpoint (they were stored
in the transactions that processed them) before any new one. The kernel is deterministic, so
the replay rebuilds exactly the state it had, and emits nothing (had it emitted, that candle
would have been a checkpoint); signals and positions are keyed naturally anyway. A restarted
radar takes exactly the decisions an uninterrupted one takes; the feed heals from the last
processed candle.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from asgiref.sync import sync_to_async
from django.db import connection, reset_queries, transaction
from django.utils import timezone

from common.events import EventBatch, LatestPerKey, market_group, publish_on_commit
from radar.health import RadarStatus
from strategies.core.arena import SelectorRules, StrategyResults, rank, select
from strategies.core.base import OrderBook, Strategy
from strategies.core.catalog import build_strategy
from strategies.core.kernel import (
    FundingApplied,
    KernelConfig,
    KillSwitchTripped,
    Mode,
    PositionClosed,
    PositionOpened,
    SignalEvent,
    StrategyKernel,
    StrategySkippedEvent,
)
from strategies.models import SelectorDecision, Signal, StrategyConfig
from trading.alerts import alert_create
from trading.core.candles import timeframe_ms
from trading.core.csvdata import CandleRow
from trading.core.risk import RiskGate, start_session
from trading.models import Candle, Position, TradingMode, TradingSession
from trading.services import candles_upsert_many

log = logging.getLogger(__name__)
trade_log = logging.getLogger("scalpradar.trades")

MINUTE_MS = 60_000
TRIM_EVERY_CANDLES = 1_440  # per symbol: each kernel's candle history is trimmed once a day
_FAR_FUTURE_MS = 2**62
CONFIRMATION_KIND = "order_flow"

# Session columns the runtime writes after every candle; status, kill switch and capital
# weight belong to the controls and are written only when the runtime itself changes them.
_LEDGER_FIELDS = [
    "realised_gross_pnl",
    "realised_net_pnl",
    "fees_usdt",
    "funding_usdt",
    "slippage_usdt",
    "trades_count",
    "wins_count",
    "peak_equity_usdt",
    "equity_usdt",
    "ledger_state",
]
_KILL_FIELDS = ["status", "kill_switch_tripped", "kill_switch_reason", "kill_switch_tripped_at"]
_CONTROL_FIELDS = [*_KILL_FIELDS, "capital_weight"]


@dataclass(slots=True)
class ArenaEntry:
    """One strategy of the arena: its config, kernel, session, and what rebuilds the kernel."""

    config: StrategyConfig
    kernel: StrategyKernel
    session: TradingSession
    symbols: tuple[str, ...]
    kernel_config: KernelConfig  # base settings, capital = the session's
    confirmers: tuple[StrategyConfig, ...] = ()
    signal_count: int = 0
    applied_weight: float = 1.0  # capital weight the kernel's risk gate currently uses
    checkpoint_due: bool = False  # its controls changed: save its state with the next candle
    save_fields: set[str] | None = None  # checkpoint due at the commit, with these columns


@dataclass(slots=True)
class RuntimeSummary:
    candles: int = 0
    per_strategy: dict[str, dict[str, Any]] = field(default_factory=dict)


def session_for(config: StrategyConfig, mode: str = TradingMode.PAPER) -> TradingSession:
    """The running session of a strategy, created on first use (survives restarts)."""
    session = (
        TradingSession.objects.filter(strategy_name=config.name, mode=mode)
        .exclude(status=TradingSession.Status.ENDED)
        .first()
    )
    if session is None:
        session = TradingSession.objects.create(
            strategy_name=config.name,
            mode=mode,
            initial_capital_usdt=config.virtual_capital_usdt,
            peak_equity_usdt=config.virtual_capital_usdt,
        )
    return session


def build_arena(
    configs: Iterable[StrategyConfig],
    symbols: Sequence[str],
    kernel_config: KernelConfig,
    *,
    exchange: str,
) -> list[ArenaEntry]:
    """One kernel per enabled strategy, restored from its session (state, history, controls).

    Confirmation strategies (``order_flow``) trade nothing: they become every kernel's
    confirmers, built with their base parameters (a kernel's confirmers are shared by all its
    symbols, so their per-symbol overrides do not apply).
    """
    configs = list(configs)
    confirmers = tuple(c for c in configs if c.kind == CONFIRMATION_KIND)
    arena = []
    for config in configs:
        if config.kind == CONFIRMATION_KIND:
            continue
        session = session_for(config)
        own_config = replace(kernel_config, capital_usdt=session.initial_capital_usdt)
        kernel = _new_kernel(
            config, confirmers, symbols, own_config, state=session.ledger_state or None
        )
        arena.append(
            ArenaEntry(
                config=config,
                kernel=kernel,
                session=session,
                symbols=tuple(symbols),
                kernel_config=own_config,
                confirmers=confirmers,
                signal_count=Signal.objects.filter(strategy=config).count(),
            )
        )
    preload_stored_history([e.kernel for e in arena], exchange)
    for entry in arena:
        apply_controls(entry, now_ms=_last_close_ms(entry.kernel) or 0)
    return arena


def _new_kernel(
    config: StrategyConfig,
    confirmers: Sequence[StrategyConfig],
    symbols: Sequence[str],
    kernel_config: KernelConfig,
    *,
    state: dict[str, Any] | None,
) -> StrategyKernel:
    """A strategy's kernel with its per-symbol parameters, restored from ``state`` if any.

    No candle history yet (:func:`preload_stored_history`). A symbol the state knows but the
    feed no longer carries keeps its place, so its ledger and open positions are restored
    intact (no candle reaches it until it is fed again).
    """
    known = list((state or {}).get("symbols", {}))
    strategies = {
        symbol: build_strategy(
            config.kind, config.params, (config.symbol_overrides or {}).get(symbol)
        )
        for symbol in dict.fromkeys([*symbols, *known])
    }
    filters: list[Strategy] = [build_strategy(c.kind, c.params) for c in confirmers]
    return StrategyKernel(config.name, strategies, kernel_config, filters, state=state)


def history_span_ms(kernel: StrategyKernel, symbol: str) -> int:
    """How much closed 1m history (ms) a restored kernel needs to see what it saw uninterrupted.

    A snapshot shows, per timeframe ``tf``, the last ``max_candles`` periods by TIME
    (``strategies.core.snapshot.window_start_ms``): at the next decision ``now`` its window
    starts after ``now - (max_candles + 1) × tf``. ``(max_candles + 2)`` periods of the longest
    timeframe before the last processed candle therefore hold every candle any later snapshot
    can show. Example: 500 candles (the default), longest timeframe 1h -> 502 h, about 21 days
    or 30,120 rows per symbol (~1.4 MB of float64) — the bound on what a restart loads.
    """
    longest = max(timeframe_ms(tf) for tf in kernel.timeframes(symbol))
    # The kernel's own rule for the window length (config.max_candles, raised to the warm-up).
    return (kernel._max_candles(symbol) + 2) * longest


def stored_candles(exchange: str, symbol: str, after_ms: int, until_ms: int) -> np.ndarray:
    """Stored 1m candles ``[open_ms, o, h, l, c, v]`` with ``after_ms < open_ms <= until_ms``."""
    return (
        Candle.objects.filter(
            exchange=exchange,
            symbol=symbol,
            timeframe="1m",
            open_time_ms__gt=after_ms,
            open_time_ms__lte=until_ms,
        )
        .order_by("open_time_ms")
        .as_array()
    )


def trim_history(kernel: StrategyKernel, symbol: str) -> int:
    """Drop the candles of ``symbol`` that no later snapshot of ``kernel`` can show; returns how
    many 1m rows were dropped.

    A live kernel appends every candle to its history, which would grow without end. The
    window kept is the one a restart reloads (:func:`history_span_ms` before the last processed
    candle), and the kernel is re-preloaded with it exactly as a restart preloads it
    (:func:`preload_stored_history`, proved by the restart parity tests) — from its own
    candles, not the database. Memory bound per kernel and symbol: the span (1h longest,
    500 candles: ~30,000 rows, 1.4 MB) plus what arrives until the next trim.
    """
    state = kernel._symbols.get(symbol)
    if state is None or state.builder is None or state.last_row is None:
        return 0
    minutes = state.builder.history().candles["1m"]
    last = int(state.last_row[0])
    times = minutes[:, 0]
    lo = int(np.searchsorted(times, last - history_span_ms(kernel, symbol), side="right"))
    hi = int(np.searchsorted(times, last, side="right"))
    if lo == 0:
        return 0
    kernel.preload(symbol, np.array(minutes[lo:hi]))
    return lo


def preload_stored_history(kernels: Sequence[StrategyKernel], exchange: str) -> None:
    """Preload each restored kernel with the stored candles up to its last processed one.

    ``StrategyKernel.state()`` holds no candle history; without this a restart would re-warm
    every indicator from scratch and decide differently from an uninterrupted run. Each symbol
    is read ONCE (the widest span any kernel needs) and each kernel gets its own slice ending
    at its last processed candle, so the next candle it receives is the next one it appends.
    A kernel that never processed a symbol starts cold, as it did the first time.
    """
    needs: dict[str, list[tuple[StrategyKernel, int, int]]] = {}
    for kernel in kernels:
        for symbol in kernel.symbols():
            last = last_candle_ms(kernel, symbol)
            if last is not None:
                start = last - history_span_ms(kernel, symbol)
                needs.setdefault(symbol, []).append((kernel, start, last))
    for symbol, wanted in needs.items():
        history = stored_candles(
            exchange, symbol, min(s for _, s, _ in wanted), max(e for _, _, e in wanted)
        )
        times = history[:, 0]
        for kernel, start, last in wanted:
            lo = int(np.searchsorted(times, start, side="right"))
            hi = int(np.searchsorted(times, last, side="right"))
            kernel.preload(symbol, history[lo:hi])


def apply_controls(entry: ArenaEntry, *, now_ms: int) -> bool:
    """Make the kernel follow its session's controls (status, kill switch, capital weight).

    * a kill switch reset in the dashboard (session no longer tripped while the kernel's switch
      is) starts a fresh kill-switch session at the kernel's current equity — the same reset
      ``trading.core.risk.start_session`` documents — so the loss limit counts from now;
    * the kernel's mode follows the status: active trades the real ledger, paused / shadow /
      killed trade the shadow ledger;
    * the selector's capital weight scales the risk per trade (re-applied after a restart).

    Returns whether anything changed; the entry is then due for a checkpoint.
    """
    session, kernel = entry.session, entry.kernel
    changed = False
    if kernel.kill_switch.tripped and not session.kill_switch_tripped:
        kernel.kill_switch = start_session(kernel.name, kernel.equity(), now_ms)
        log.info("kill switch reset", extra={"strategy": kernel.name})
        changed = True
    wanted = Mode.KILLED if session.kill_switch_tripped else _kernel_mode(session.status)
    if kernel.mode is not wanted:
        kernel.set_mode(wanted)
        changed = True
    if session.capital_weight != entry.applied_weight:
        apply_capital_weight(kernel, session.capital_weight)
        entry.applied_weight = session.capital_weight
        changed = True
    entry.checkpoint_due |= changed
    return changed


def _kernel_mode(status: str) -> Mode:
    return {
        TradingSession.Status.PAUSED: Mode.PAUSED,
        TradingSession.Status.SHADOW: Mode.PAUSED,
        TradingSession.Status.KILLED: Mode.KILLED,
    }.get(TradingSession.Status(status), Mode.ACTIVE)


def _last_close_ms(kernel: StrategyKernel) -> int | None:
    """Close time of the latest candle ``kernel`` processed on any symbol."""
    opens = [last_candle_ms(kernel, s) for s in kernel.symbols()]
    known = [t for t in opens if t is not None]
    return max(known) + MINUTE_MS if known else None


class RadarRuntime:
    """The feed's handler. Sync database work runs in a worker thread, in one transaction."""

    def __init__(
        self,
        arena: list[ArenaEntry],
        *,
        exchange: str,
        selector_rules: SelectorRules | None = None,
        selector_every: int = 60,
        controls_every_s: float = 1.0,
        checkpoint_every_s: float | None = None,
        price_every_ms: int = 1_000,
        price_interval_s: float = 0.25,
        max_batch: int = 8,
        status: RadarStatus | None = None,
    ) -> None:
        """``selector_every``: minutes of market time per selector round (0 = no selector);
        ``controls_every_s``: wall-clock seconds between two reads of the controls (live, a
        candle per minute and symbol: every candle; a fast replay: about once a second);
        ``checkpoint_every_s``: wall-clock seconds between two state saves of a quiet kernel
        (default ``controls_every_s``; module doc); ``price_every_ms`` / ``price_interval_s``:
        at most one ``market.price`` per symbol per that much market time / wall time (the
        newest tick waits for the end of the wall interval, never dropped: a max-speed
        replay would otherwise send one per market minute); ``max_batch``: most candles
        committed together, and most queued for the writer (group commit, module doc);
        ``status``: the health registry told of every candle and feed message
        (``radar.health``)."""
        self.arena = arena
        self.exchange = exchange
        self.selector_rules = selector_rules or SelectorRules()
        self.selector_every = selector_every
        self.summary = RuntimeSummary()
        self._last_price_sent: dict[str, int] = {}
        self.price_every_ms = price_every_ms
        self.last_prices: dict[str, float] = {}
        self.controls_every_s = controls_every_s
        self._controls_read_at = -math.inf
        self.checkpoint_every_s = (
            controls_every_s if checkpoint_every_s is None else checkpoint_every_s
        )
        self._checkpoint_at = -math.inf
        self.status = status
        self._outbox: EventBatch | None = None
        self._prices = LatestPerKey(price_interval_s)
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[str, tuple[float, ...]]] | None = None
        self._writer: asyncio.Future[None] | None = None
        self._writer_failure: Exception | None = None
        self._funding: dict[str, np.ndarray] = {}
        self._order_books: dict[str, OrderBook] = {}
        closes = [t for t in (_last_close_ms(e.kernel) for e in arena) if t is not None]
        self._selector_round = self._round_of(max(closes)) if closes else -1
        self.trim_every = TRIM_EVERY_CANDLES
        self._untrimmed: dict[str, int] = {}  # candles per symbol since the last trim

    # -- feed handler ------------------------------------------------------------------------
    async def on_closed_candle(self, symbol: str, row: tuple[float, ...]) -> None:
        """Queue the candle for the writer (module doc: group commit) and return.

        Waits only while ``max_batch`` candles already wait (back-pressure on the feed). A
        candle queued but not committed when the process dies is healed from the exchange on
        restart, like one never received. Raises the writer's failure, if it failed."""
        self._raise_writer_failure()
        queue = self._writer_queue()
        await queue.put((symbol, row))
        self._raise_writer_failure()

    async def flush(self) -> None:
        """Wait until every queued candle is committed and its events published."""
        if self._queue is not None:
            self._raise_writer_failure()
            waiting = asyncio.ensure_future(self._queue.join())
            assert self._writer is not None  # noqa: S101  (started with the queue)
            await asyncio.wait({waiting, self._writer}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            self._raise_writer_failure()
        await self._prices.flush()

    async def feeding[T](self, feed_run: Awaitable[T]) -> T:
        """Run the feed (``feed.run()``) with the writer; the feed's result once every candle it
        handed over is committed and published. A writer failure stops the feed and is raised;
        if the feed fails or is cancelled, the candles still queued are dropped (the next start
        heals them from the exchange)."""
        feed_task = asyncio.ensure_future(feed_run)
        self._writer_queue()
        writer = self._writer
        assert writer is not None  # noqa: S101
        try:
            either: set[asyncio.Future[Any]] = {feed_task, writer}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not feed_task.done():  # the writer failed
                feed_task.cancel()
                await asyncio.gather(feed_task, return_exceptions=True)
                self._raise_writer_failure()
            result = await feed_task
            await self.flush()
            return result
        finally:
            feed_task.cancel()
            await self.stop_writer()

    async def stop_writer(self) -> None:
        """Stop the writer task, dropping what is still queued (:meth:`flush` first to keep it)."""
        writer, self._writer, self._queue = self._writer, None, None
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _writer_queue(self) -> asyncio.Queue[tuple[str, tuple[float, ...]]]:
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self.max_batch)
            self._writer = asyncio.ensure_future(self._write(self._queue))
        return self._queue

    def _raise_writer_failure(self) -> None:
        if self._writer_failure is not None:
            raise self._writer_failure

    async def _write(self, queue: asyncio.Queue[tuple[str, tuple[float, ...]]]) -> None:
        """The writer: takes every candle waiting (up to ``max_batch``), commits them in one
        transaction in the worker thread, then publishes their events from this loop."""
        process = sync_to_async(self._commit_batch, thread_sensitive=True)
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                events = await process(batch)
                await events.apublish()
                if self.status is not None:
                    for symbol, row in batch:
                        self.status.candle_processed(symbol, int(row[0]))
            except Exception as exc:  # kept, and raised to the feed (on_closed_candle, flush)
                self._writer_failure = exc
                while not queue.empty():  # wake a feed waiting to queue: it raises the failure
                    queue.get_nowait()
                    queue.task_done()
                return
            finally:
                for _ in batch:
                    queue.task_done()

    async def on_price(self, symbol: str, price: float, time_ms: int, kind: str) -> None:
        self.last_prices[symbol] = price
        if self.status is not None:
            self.status.heard_from_feed()
        last = self._last_price_sent.get(symbol, 0)
        if time_ms - last >= self.price_every_ms:
            self._last_price_sent[symbol] = time_ms
            await self._prices.publish(
                symbol,
                market_group(symbol),
                "market.price",
                {"symbol": symbol, "price": price, "time_ms": time_ms, "kind": kind},
            )

    async def on_order_book(self, symbol: str, book: dict[str, Any]) -> None:
        bids = np.asarray(book.get("bids") or [], dtype=np.float64).reshape(-1, 2)
        asks = np.asarray(book.get("asks") or [], dtype=np.float64).reshape(-1, 2)
        self._order_books[symbol] = OrderBook(
            time_ms=int(book.get("timestamp") or 0), bids=bids, asks=asks
        )
        for entry in self.arena:
            self._give_inputs(entry.kernel, symbol)

    async def on_trades(self, symbol: str, trades: list[dict[str, Any]]) -> None:
        return None

    async def on_alert(self, level: str, message: str) -> None:
        log.warning("feed alert: %s", message, extra={"alert_level": level})
        await sync_to_async(_store_feed_alert, thread_sensitive=True)(level, message)

    def set_funding(self, symbol: str, funding: np.ndarray) -> None:
        """Funding settlements ``[time_ms, rate]`` of ``symbol`` for every kernel."""
        self._funding[symbol] = funding
        for entry in self.arena:
            self._give_inputs(entry.kernel, symbol)

    def _give_inputs(self, kernel: StrategyKernel, symbol: str) -> None:
        # set_inputs replaces every input at once ("None keeps nothing"): always pass them all.
        kernel.set_inputs(
            symbol, funding=self._funding.get(symbol), order_book=self._order_books.get(symbol)
        )

    # -- closed candles ----------------------------------------------------------------------
    def process_candle(self, symbol: str, row: tuple[float, ...]) -> None:
        """One closed 1m candle ``[open_ms, o, h, l, c, v]`` in its own transaction, its events
        published once committed (sync callers; the feed goes through the writer)."""
        for group, event_type, payload in self.process_candles([(symbol, row)]):
            publish_on_commit(group, event_type, payload)  # now, unless in a caller's atomic
        if self.status is not None:
            self.status.candle_processed(symbol, int(row[0]))

    def _commit_batch(self, candles: Sequence[tuple[str, tuple[float, ...]]]) -> EventBatch:
        # A long-running loop is not a request: under DEBUG, empty the query log as Django
        # does at each request (it would keep the last 9,000 queries, state JSON included).
        reset_queries()
        return self.process_candles(candles)

    def process_candles(self, candles: Sequence[tuple[str, tuple[float, ...]]]) -> EventBatch:
        """Closed 1m candles, in arrival order, in ONE transaction (module doc); returns their
        events, to publish now that the transaction committed. Candle by candle the work and
        its result are those of one transaction per candle; only the commits are shared."""
        self._outbox = EventBatch()
        try:
            self._process_candles(candles)
            return self._outbox
        finally:
            self._outbox = None

    def _publish(
        self, group: str, event_type: str, payload: dict[str, Any], *, coalesce: Any = None
    ) -> None:
        if self._outbox is not None:
            self._outbox.add(group, event_type, payload, coalesce=coalesce)
        else:
            publish_on_commit(group, event_type, payload)

    def _process_candles(self, candles: Sequence[tuple[str, tuple[float, ...]]]) -> None:
        rows = [np.asarray(row, dtype=np.float64) for _, row in candles]
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # The candles and all their effects commit together, so a database crash can only
                # lose the newest candles WHOLE, which the feed heals from the exchange on
                # restart: the commit need not wait for the disk flush (~1-3 ms per commit).
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            # Upsert: a candle healed over REST with its final values replaces a stored copy.
            by_symbol: dict[str, list[CandleRow]] = {}
            for (symbol, _), candle in zip(candles, rows, strict=True):
                t, o, h, lo, c, v = candle.tolist()
                by_symbol.setdefault(symbol, []).append((int(t), o, h, lo, c, v))
            candles_upsert_many(rows=by_symbol, exchange=self.exchange, timeframe="1m")
            if time.monotonic() - self._controls_read_at >= self.controls_every_s:
                self.sync_controls(now_ms=int(rows[0][0]))
            for (symbol, _), candle in zip(candles, rows, strict=True):
                self._process_one(symbol, candle)
            self._save_due_sessions()

    def _process_one(self, symbol: str, candle: np.ndarray) -> None:
        open_ms = int(candle[0])
        now_ms = open_ms + MINUTE_MS
        checkpoint = time.monotonic() - self._checkpoint_at >= self.checkpoint_every_s
        if checkpoint:
            self._checkpoint_at = time.monotonic()
        self._run_kernels(symbol, candle, checkpoint=checkpoint)
        self.summary.candles += 1
        self._untrimmed[symbol] = self._untrimmed.get(symbol, 0) + 1
        if self.trim_every and self._untrimmed[symbol] >= self.trim_every:
            self._untrimmed[symbol] = 0
            for entry in self.arena:
                trim_history(entry.kernel, symbol)
        if self.selector_every and self._round_of(now_ms) > self._selector_round:
            self._selector_round = self._round_of(now_ms)
            self.sync_controls(now_ms=now_ms)  # the selector decides on current statuses
            self._run_selector(now_ms)
        values = candle.tolist()
        key = ("market.candle", symbol)
        earlier = self._outbox.pending(key) if self._outbox is not None else None
        self._publish(
            market_group(symbol),
            "market.candle",
            {
                "symbol": symbol,
                "candle": values,  # the newest; "candles": every one of this commit, in order
                "candles": [*(earlier["candles"] if earlier else []), values],
                "time_ms": now_ms,
            },
            coalesce=key,
        )

    def _run_kernels(self, symbol: str, candle: np.ndarray, *, checkpoint: bool) -> None:
        """Every kernel that has not processed ``candle`` yet takes it; store what it did."""
        open_ms = int(candle[0])
        for entry in self.arena:
            done_ms = last_candle_ms(entry.kernel, symbol)
            if done_ms is not None and done_ms >= open_ms:
                continue  # already processed before a restart: never counted twice
            events = entry.kernel.on_candle(symbol, candle, open_ms + MINUTE_MS)
            # The first candle of a symbol is a checkpoint: a restart then knows the kernel
            # is past it and replays the rest (catch_up) instead of starting that symbol cold.
            self._store(entry, symbol, events, checkpoint=checkpoint or done_ms is None)

    def catch_up(self) -> int:
        """Replay, in one transaction, the stored candles kernels processed after their last
        checkpoint (module doc); returns how many candles were replayed.

        Candles of all symbols go in market-time order (within a minute, in the feed's symbol
        order); each kernel takes only those after its own last candle, then every kernel that
        moved is checkpointed. A symbol a kernel never processed stays cold, as before.
        """
        behind: dict[str, int] = {}
        for entry in self.arena:
            for symbol in entry.symbols:
                last = last_candle_ms(entry.kernel, symbol)
                if last is not None:
                    behind[symbol] = min(behind.get(symbol, last), last)
        order = {s: i for i, s in enumerate(self.arena[0].symbols)} if self.arena else {}
        rows = [
            (int(candle[0]), order[symbol], symbol, candle)
            for symbol, after in behind.items()
            for candle in stored_candles(self.exchange, symbol, after, _FAR_FUTURE_MS)
        ]
        if not rows:
            return 0
        rows.sort(key=lambda r: (r[0], r[1]))
        with transaction.atomic():
            for _, _, symbol, candle in rows:
                self._run_kernels(symbol, candle, checkpoint=False)
            for entry in self.arena:
                self._save_session(entry)
        closes = [t for t in (_last_close_ms(e.kernel) for e in self.arena) if t is not None]
        self._selector_round = max(self._selector_round, self._round_of(max(closes)))
        log.info("caught up on %d stored candle(s) since the last checkpoint", len(rows))
        return len(rows)

    def checkpoint_all(self) -> None:
        """Save every kernel's state now (the feed stopped: the stored record is current)."""
        with transaction.atomic():
            for entry in self.arena:
                self._save_session(entry)

    def _round_of(self, now_ms: int) -> int:
        return now_ms // (max(self.selector_every, 1) * MINUTE_MS)

    def sync_controls(self, *, now_ms: int) -> None:
        """Apply what the dashboard and the admin changed since the last read (two queries).

        Sessions: status, kill switch and capital weight are re-read (``select_for_update``:
        on PostgreSQL a concurrent pause waits for this candle's commit instead of racing it)
        and applied with :func:`apply_controls`. Strategies: a newer ``updated_at`` rebuilds
        that strategy's kernel with the new parameters (:meth:`reload_config`). Enabling,
        disabling or adding a strategy and its virtual capital take effect at the next start.
        """
        self._controls_read_at = time.monotonic()
        # What the runtime itself changed (a kill-switch trip) is written first: the read must
        # not take the stored row's older status for a dashboard control.
        self._save_due_sessions()
        by_session = {e.session.pk: e for e in self.arena}
        rows = (
            TradingSession.objects.select_for_update()
            .filter(pk__in=by_session)
            .values_list("pk", *_CONTROL_FIELDS)
        )
        for pk, *values in rows:
            entry = by_session[pk]
            for name, value in zip(_CONTROL_FIELDS, values, strict=True):
                setattr(entry.session, name, value)
            apply_controls(entry, now_ms=now_ms)  # compares with the kernel itself: idempotent
        known = {e.config.pk: e.config.updated_at for e in self.arena}
        known.update({c.pk: c.updated_at for e in self.arena for c in e.confirmers})
        stamps = StrategyConfig.objects.filter(pk__in=known).values_list("pk", "updated_at")
        changed = [pk for pk, updated_at in stamps if updated_at != known[pk]]
        if changed:
            for config in StrategyConfig.objects.filter(pk__in=changed):
                self.reload_config(config)

    def reload_config(self, config: StrategyConfig) -> None:
        """Apply parameters edited in the admin to the running kernels, without a restart.

        The kernel of that strategy (of every strategy, for a confirmation filter) is rebuilt
        the way a restart rebuilds it — from its current state, with the stored candle history
        and the current inputs — so a changed timeframe or warm-up gets the right windows.
        Ledger, open positions, pending orders, kill switch and mode carry over unchanged.
        """
        for entry in self.arena:
            if entry.config.pk == config.pk:
                entry.config = config
            elif any(c.pk == config.pk for c in entry.confirmers):
                entry.confirmers = tuple(
                    config if c.pk == config.pk else c for c in entry.confirmers
                )
            else:
                continue
            entry.kernel = _new_kernel(
                entry.config,
                entry.confirmers,
                entry.symbols,
                entry.kernel_config,
                state=entry.kernel.state(),
            )
            preload_stored_history([entry.kernel], self.exchange)
            for symbol in entry.symbols:
                self._give_inputs(entry.kernel, symbol)
            entry.applied_weight = 1.0
            apply_controls(entry, now_ms=_last_close_ms(entry.kernel) or 0)
            entry.checkpoint_due = True
            log.info("parameters reloaded", extra={"strategy": entry.config.name})

    def _store(
        self, entry: ArenaEntry, symbol: str, events: list[Any], *, checkpoint: bool
    ) -> None:
        session = entry.session
        fields: list[str] = []
        for event in events:
            if isinstance(event, SignalEvent):
                self._store_signal(entry, event)
            elif isinstance(event, PositionOpened):
                self._store_open(entry, event)
            elif isinstance(event, PositionClosed):
                self._store_close(entry, event)
            elif isinstance(event, FundingApplied):
                self._publish("positions", "position.funding", event.to_dict())
            elif isinstance(event, KillSwitchTripped):
                session.status = TradingSession.Status.KILLED
                session.kill_switch_tripped = True
                session.kill_switch_reason = event.reason
                session.kill_switch_tripped_at = timezone.now()
                fields = _KILL_FIELDS
                alert_create(
                    level="error",
                    message=f"{entry.config.name}: {event.reason}",
                    source=entry.config.name,
                    payload={"scope": event.scope, "time_ms": event.time_ms},
                )
            elif isinstance(event, StrategySkippedEvent):
                alert_create(
                    level="warning",
                    message=f"{entry.config.name} on {symbol} skipped: {event.reason}",
                    source=entry.config.name,
                    payload={"symbol": symbol},
                )
        # The peak is tracked on every candle (the selector's drawdown reads it in memory);
        # a catch-up replay after a restart recomputes the candles since the checkpoint.
        equity = entry.kernel.equity()
        session.peak_equity_usdt = max(session.peak_equity_usdt, equity)
        if events or checkpoint or entry.checkpoint_due:
            self._save_later(entry, fields)
        if events:
            self._refresh_totals(entry)
            self._publish(
                "arena",
                "arena.update",
                self.arena_payload_for(entry, equity),
                coalesce=("arena.update", entry.config.name),
            )

    def _save_later(self, entry: ArenaEntry, extra_fields: Sequence[str] = ()) -> None:
        """Checkpoint ``entry`` at the end of this transaction (:meth:`_save_due_sessions`):
        its state then is the state after every candle of the transaction, all stored."""
        entry.save_fields = (entry.save_fields or set()) | set(extra_fields)

    def _save_due_sessions(self) -> None:
        for entry in self.arena:
            if entry.save_fields is not None:
                self._save_session(entry)

    def _refresh_totals(self, entry: ArenaEntry) -> None:
        """The kernel's ledger totals and equity into the session object (not saved)."""
        session, ledger = entry.session, entry.kernel.ledger
        session.realised_gross_pnl = ledger.realised_gross_pnl
        session.realised_net_pnl = ledger.realised_net_pnl
        session.fees_usdt = ledger.fees_paid
        session.funding_usdt = ledger.funding_paid
        session.slippage_usdt = ledger.slippage_cost
        session.equity_usdt = entry.kernel.equity()
        session.peak_equity_usdt = max(session.peak_equity_usdt, session.equity_usdt)

    def _save_session(self, entry: ArenaEntry, extra_fields: Sequence[str] = ()) -> None:
        """Checkpoint: the kernel's ledger totals and state into its session row, with the
        control fields the runtime changed since the last one (kill switch, selector)."""
        self._refresh_totals(entry)
        entry.session.ledger_state = entry.kernel.state(include_closed=False)
        # Stored as Position rows and summed in the state: the kernel need not keep them, so a
        # long-running radar's memory does not grow with its trades either.
        entry.kernel.ledger.closed.clear()
        entry.kernel.shadow_ledger.closed.clear()
        changed = sorted({*extra_fields, *(entry.save_fields or ())})
        entry.session.save(update_fields=[*_LEDGER_FIELDS, *changed])
        entry.checkpoint_due = False
        entry.save_fields = None

    def _store_signal(self, entry: ArenaEntry, event: SignalEvent) -> None:
        sig = event.signal
        entry.signal_count += 1
        Signal.objects.get_or_create(
            strategy=entry.config,
            symbol=event.symbol,
            timeframe=event.timeframe,
            candle_open_time_ms=event.candle_open_ms,
            defaults={
                "exchange": self.exchange,
                "side": sig.side.value,
                "entry_type": sig.entry_type.value,
                "entry_price": sig.entry_price,
                "stop_loss": sig.stop_loss,
                "take_profit": sig.take_profit,
                "score": sig.score,
                "reasons": list(sig.reasons),
                "status": Signal.Status.ACCEPTED if event.accepted else Signal.Status.REFUSED,
                "refusal_reason": "" if event.accepted else event.reason,
                "shadow": event.shadow,
            },
        )
        self._publish("signals", "signal.new", {"strategy": entry.config.name, **event.to_dict()})

    def _store_open(self, entry: ArenaEntry, event: PositionOpened) -> None:
        p = event.position
        Position.objects.get_or_create(
            session=entry.session,
            ledger_id=str(p.position_id) + (":shadow" if event.shadow else ""),
            defaults={
                "strategy_name": entry.config.name,
                "exchange": self.exchange,
                "symbol": p.symbol,
                "side": p.side.value,
                "shadow": event.shadow,
                "qty": p.qty,
                "leverage": p.leverage,
                "margin_mode": p.margin_mode.value,
                "entry_price": p.entry_price,
                "entry_time_ms": p.entry_time_ms,
                "entry_fee": p.entry_fee,
                "entry_liquidity": p.entry_liquidity.value,
                "stop_loss": p.stop_loss,
                "take_profit": p.take_profit,
                "liquidation_price": p.liquidation_price,
                "slippage_usdt": p.slippage_cost,
            },
        )
        self._publish(
            "positions", "position.opened", {"strategy": entry.config.name, **event.to_dict()}
        )

    def _store_close(self, entry: ArenaEntry, event: PositionClosed) -> None:
        t = event.trade
        ledger_id = str(t.position_id) + (":shadow" if event.shadow else "")
        Position.objects.filter(session=entry.session, ledger_id=ledger_id).update(
            status=Position.Status.CLOSED,
            exit_price=t.exit_price,
            exit_time_ms=t.exit_time_ms,
            exit_fee=t.exit_fee,
            exit_liquidity=t.exit_liquidity.value,
            exit_reason=t.exit_reason.value,
            funding_usdt=t.funding,
            slippage_usdt=t.slippage_cost,
            gross_pnl=t.gross_pnl,
            net_pnl=t.net_pnl,
        )
        if not event.shadow:
            entry.session.trades_count += 1
            entry.session.wins_count += int(t.net_pnl > 0)
        trade_log.info(
            "trade closed",
            extra={"strategy": entry.config.name, "shadow": event.shadow, "trade": t.to_dict()},
        )
        self._publish(
            "positions", "position.closed", {"strategy": entry.config.name, **event.to_dict()}
        )

    # -- arena -------------------------------------------------------------------------------
    def results(self) -> list[StrategyResults]:
        out = []
        for entry in self.arena:
            # From the stored trades, not the kernel: a compact checkpoint does not carry the
            # closed trades, and the same order (exit time, then opening order) either way.
            closed: list[float] = []
            shadow: list[float] = []
            for net, is_shadow in (
                Position.objects.filter(session=entry.session, status=Position.Status.CLOSED)
                .order_by("exit_time_ms", "id")
                .values_list("net_pnl", "shadow")
            ):
                (shadow if is_shadow else closed).append(net)
            session = entry.session
            peak = max(session.peak_equity_usdt, session.initial_capital_usdt)
            equity = entry.kernel.equity()
            out.append(
                StrategyResults(
                    name=entry.config.name,
                    initial_capital_usdt=session.initial_capital_usdt,
                    equity_usdt=equity,
                    net_pnls=tuple(closed),
                    max_drawdown_pct=max(0.0, (peak - equity) / peak * 100.0),
                    status=session.status,
                    capital_weight=session.capital_weight,
                    shadow_net_pnls=tuple(shadow),
                )
            )
        return out

    def _run_selector(self, now_ms: int) -> None:
        by_name = {e.config.name: e for e in self.arena}
        for decision in select(self.results(), self.selector_rules):
            entry = by_name[decision.name]
            _, created = SelectorDecision.objects.get_or_create(
                strategy_name=decision.name,
                action=decision.action,
                candle_time_ms=now_ms,
                defaults={
                    "reason": decision.reason,
                    "new_weight": decision.new_weight,
                    "metrics": {k: _json_num(v) for k, v in decision.metrics.items()},
                },
            )
            if not created:
                continue
            session = entry.session
            if decision.action == "boost" and decision.new_weight is not None:
                session.capital_weight = decision.new_weight
            elif decision.action == "pause":
                session.status = TradingSession.Status.PAUSED
            elif decision.action == "resume":
                session.status = TradingSession.Status.ACTIVE
            apply_controls(entry, now_ms=now_ms)
            # With its state, in this transaction: the controls stored are those in force
            # for every candle after this checkpoint (what a restart's catch-up relies on).
            self._save_later(entry, ["status", "capital_weight"])
            log.info("selector: %s", decision.reason, extra={"strategy": decision.name})

    def arena_payload_for(self, entry: ArenaEntry, equity: float) -> dict[str, Any]:
        s = entry.session
        fees_share = s.fees_usdt / s.realised_gross_pnl * 100 if s.realised_gross_pnl > 0 else None
        return {
            "strategy": entry.config.name,
            "status": s.status,
            "equity_usdt": equity,
            "net_return_pct": (equity - s.initial_capital_usdt) / s.initial_capital_usdt * 100,
            "realised_gross_pnl": s.realised_gross_pnl,
            "realised_net_pnl": s.realised_net_pnl,
            "fees_usdt": s.fees_usdt,
            "fees_share_of_gross_pct": fees_share,
            "trades": s.trades_count,
            "wins": s.wins_count,
            "capital_weight": s.capital_weight,
            "kill_switch_tripped": s.kill_switch_tripped,
        }

    def ranking(self, min_trades: int = 10) -> list[Any]:
        return rank(self.results(), min_trades)


def _store_feed_alert(level: str, message: str) -> None:
    with transaction.atomic():
        alert_create(level=level, message=message, source="feed")


def last_candle_ms(kernel: StrategyKernel, symbol: str) -> int | None:
    """Open time of the last 1m candle ``kernel`` processed for ``symbol`` (restored state)."""
    state = kernel._symbols.get(symbol)
    if state is None or state.last_row is None:
        return None
    return int(state.last_row[0])


def apply_capital_weight(kernel: StrategyKernel, weight: float) -> None:
    """The selector's capital weight scales the risk taken per trade (sizing follows)."""
    base = kernel.config.risk_limits
    limits = replace(base, max_risk_per_trade_pct=base.max_risk_per_trade_pct * weight)
    kernel.gate = RiskGate(limits, kernel.config.fee_schedule, kernel.config.slippage)


def _json_num(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value
