"""The live runtime: closed candle -> every enabled strategy -> risk -> paper ledger -> events.

Module map: ``runtime`` (this: the feed's handler and the candle pipeline), ``writer`` (group
commit), ``arena`` (assembly, preload, history trim), ``inputs`` (funding, open interest, book,
trades), ``recorder`` (stores through services), ``controls``, ``close``, ``account``,
``selector``, ``faults`` (transient database faults, errored strategies, candles from the future),
``pollers`` (embedded REST pollers), ``launch`` (assembles the radar).

The feed (``trading.feed``) calls :class:`RadarRuntime` as its handler.
``on_closed_candle`` queues the candle for the WRITER (:mod:`radar.writer`), which takes every
candle waiting (at most ``max_batch``) and processes them, in arrival order, in ONE database
transaction (group commit): a live candle arriving on an idle writer commits alone at once;
candles arriving faster than one commit per candle (a catch-up, a max-speed replay) share a
commit. The queue holds at most ``max_batch``
candles, then the feed waits (memory and latency bound). For each CLOSED 1m candle of a batch
the runtime, in that transaction:

1. upserts the candle (natural key: a redelivered candle changes nothing);
2. at the start of the batch, at most every ``controls_every_s``, re-reads the controls made
   elsewhere — each session's status, kill switch and capital weight (the dashboard's pause /
   resume / kill-switch reset, ``strategies.services``) and each strategy's ``updated_at``
   (parameters edited in the admin) — and applies them to the kernels (:mod:`radar.controls`);
   and reads the funding and open-interest rows stored since the last read into the kernels'
   inputs (:mod:`radar.inputs`);
3. evaluates the ACCOUNT of each mode over every strategy of the mode (:mod:`radar.account`:
   equity, margin, exposures, the account kill switch) and hands it to each kernel;
4. hands the candle to each strategy's :class:`strategies.core.kernel.StrategyKernel` — the
   very object the backtester drives, so paper trading and backtests cannot disagree — unless
   that kernel already processed this candle (its state records the last candle per symbol:
   idempotent after a crash or a redelivery);
5. stores what the kernel did through the services (:mod:`radar.recorder`: signals
   accepted/refused with the reason, positions opened and closed, funding, kill-switch trips,
   skips) and, at a CHECKPOINT, the kernel's state (ledger, kill switch, pending orders) in the
   strategy's ``TradingSession`` row — only the fields the runtime owns, so a control written
   concurrently by the dashboard is never overwritten;
6. runs the arena's selector once per round of ``selector_every`` minutes of MARKET time and
   applies its decisions (:mod:`radar.selector`).

**A strategy's failure is its own.** An exception raised by one kernel (a bug, a parameter the
risk gate refuses) marks that strategy ERRORED — status and reason stored on its session, an
alert, its Arena row and ``/health/`` say so — and the others keep trading on the same candle.
An errored kernel takes no more candles and is not checkpointed (its state may be half-moved):
a restart rebuilds it from its last good checkpoint but keeps it errored, so a crash is not
repeated forever; a Resume from the dashboard rebuilds it and catches it up on the stored
candles. Its open paper positions stay as they are, frozen, until then.

**Faults of the database or the channel layer** are survived (:mod:`radar.writer`): a batch
whose transaction failed left the kernels ahead of the stored record, so before its retry the
runtime rebuilds every kernel from the stored record exactly as a restart does (checkpoint,
preload, catch-up) and processes the same candles again: nothing lost, nothing doubled.

**A candle from the future** (opening after the wall clock's current time: a clock or
exchange fault) is refused with an alert and never stored: it would move the symbol's clock
ahead and make the kernels skip every real candle after it. The stored record is read up to
the current time only, for the same reason.

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

import logging
import math
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, connection, reset_queries, transaction

from common.events import EventBatch, LatestPerKey, market_group, publish_on_commit
from radar import close, controls, selector
from radar.account import AccountGuard, account_guards
from radar.arena import (
    ArenaEntry,
    apply_capital_weight,
    build_arena,
    history_span_ms,
    last_candle_ms,
    last_close_ms,
    new_kernel,
    preload_stored_history,
    session_for,
    stored_candles,
    trim_history,
)
from radar.controls import apply_controls
from radar.faults import (
    close_connection,
    is_transient_fault,
    now_ms,
    refuse_future_candles,
    store_alerts,
    strategy_errored,
)
from radar.health import RadarStatus
from radar.input_status import record_input_status
from radar.inputs import MarketInputs
from radar.recorder import Recorder
from radar.writer import DEFAULT_BACKOFF, Backoff, GroupCommitWriter
from strategies.core.arena import SelectorRules, StrategyResults
from strategies.core.kernel import StrategyKernel
from strategies.models import StrategyConfig
from trading.alerts import alert_create
from trading.core.csvdata import CandleRow
from trading.core.validation import utc_text
from trading.models import TradingSession
from trading.services import candles_upsert_many

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
TRIM_EVERY_CANDLES = 1_440  # per symbol: each kernel's candle history is trimmed once a day


__all__ = [
    "ArenaEntry",
    "RadarRuntime",
    "apply_capital_weight",
    "apply_controls",
    "build_arena",
    "history_span_ms",
    "last_candle_ms",
    "preload_stored_history",
    "session_for",
    "trim_history",
]


@dataclass(slots=True)
class RuntimeSummary:
    candles: int = 0
    per_strategy: dict[str, dict[str, Any]] = field(default_factory=dict)


def _account_limit_pct() -> float:
    from strategies.config import get_config

    return get_config().risk.kill_switch.account_max_session_loss_pct


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
        account_max_session_loss_pct: float | None = None,
        max_outage_s: float = 900.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock_ms: Any = None,
    ) -> None:
        """``selector_every``: minutes of market time per selector round (0 = no selector);
        ``controls_every_s``: wall-clock seconds between two reads of the controls and of the
        stored funding / open interest (live, a candle per minute and symbol: every candle; a
        fast replay: about once a second); ``checkpoint_every_s``: wall-clock seconds between
        two state saves of a quiet kernel (default ``controls_every_s``; module doc);
        ``price_every_ms`` / ``price_interval_s``: at most one ``market.price`` per symbol per
        that much market time / wall time (the newest tick waits for the end of the wall
        interval, never dropped); ``max_batch``: most candles committed together, and most
        queued for the writer (group commit); ``status``: the health registry told of every
        candle and feed message (``radar.health``); ``account_max_session_loss_pct``: the
        account kill switch's limit (default: risk.yaml's); ``max_outage_s`` / ``backoff``:
        how long and how a database outage is retried before the writer gives up
        (:mod:`radar.writer`); ``clock_ms``: the wall clock (tests), default :func:`now_ms`."""
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
        self.inputs = MarketInputs(exchange)
        self.recorder = Recorder(exchange, self._publish)
        self.clock_ms = clock_ms or now_ms
        self._needs_rebuild = False
        self.rebuilds = 0  # times the kernels were rebuilt from the stored record (outages)
        self._unsent_alerts: list[tuple[str, str, str]] = []
        self.writer = GroupCommitWriter(
            self._commit_batch,
            max_batch=max_batch,
            committed=self._committed,
            is_transient=is_transient_fault,
            recover=close_connection,  # on the writer's thread: its broken connection
            on_outage=self._on_outage,
            backoff=backoff,
            max_outage_s=max_outage_s,
        )
        closes = [t for t in (last_close_ms(e.kernel) for e in arena) if t is not None]
        self._selector_round = self._round_of(max(closes)) if closes else -1
        self.trim_every = TRIM_EVERY_CANDLES
        self._untrimmed: dict[str, int] = {}  # candles per symbol since the last trim
        limit = (
            _account_limit_pct()
            if account_max_session_loss_pct is None
            else account_max_session_loss_pct
        )
        self.accounts: dict[str, AccountGuard] = account_guards(
            arena, max_session_loss_pct=limit, now_ms=max(closes) if closes else 0
        )
        for guard in self.accounts.values():
            guard.apply_controls(now_ms=max(closes) if closes else 0)

    @property
    def max_batch(self) -> int:
        return self.writer.max_batch

    @max_batch.setter
    def max_batch(self, value: int) -> None:
        self.writer.max_batch = value

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.arena[0].symbols if self.arena else ()

    # -- feed handler ------------------------------------------------------------------------
    async def on_closed_candle(self, symbol: str, row: tuple[float, ...]) -> None:
        """Queue the candle for the writer (module doc: group commit) and return.

        Waits only while ``max_batch`` candles already wait (back-pressure on the feed). A
        candle queued but not committed when the process dies is healed from the exchange on
        restart, like one never received. Raises the writer's failure, if it failed."""
        await self.writer.submit(symbol, row)

    async def flush(self) -> None:
        """Wait until every queued candle is committed and its events published."""
        await self.writer.flush()
        await self._prices.flush()

    async def feeding[T](self, feed_run: Awaitable[T]) -> T:
        """Run the feed (``feed.run()``) with the writer (:meth:`GroupCommitWriter.feeding`)."""
        return await self.writer.feeding(feed_run, self.flush)

    async def stop_writer(self) -> None:
        """Stop the writer task, dropping what is still queued (:meth:`flush` first to keep it)."""
        await self.writer.stop()

    def _committed(self, batch: Sequence[tuple[str, tuple[float, ...]]]) -> None:
        if self.recorder.live is not None:
            self.recorder.live.committed()  # radar.live: live intents, once committed
        if self.status is not None:
            for symbol, row in batch:
                self.status.candle_processed(symbol, int(row[0]))

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
        self.inputs.set_order_book(symbol, book)
        self._give_all(symbol)

    async def on_trades(self, symbol: str, trades: list[dict[str, Any]]) -> None:
        """Keep the trades in the symbol's rolling window (order flow) for every kernel."""
        if self.inputs.add_trades(symbol, trades):
            self._give_all(symbol)

    async def on_alert(self, level: str, message: str) -> None:
        log.warning("feed alert: %s", message, extra={"alert_level": level})
        await sync_to_async(_store_feed_alert, thread_sensitive=True)(level, message)

    def set_funding(self, symbol: str, funding: np.ndarray) -> None:
        """Funding settlements ``[time_ms, rate]`` of ``symbol`` for every kernel."""
        self.inputs.set_funding(symbol, funding)
        self._give_all(symbol)

    def set_open_interest(self, symbol: str, open_interest: np.ndarray) -> None:
        """Open interest ``[time_ms, oi]`` of ``symbol`` for every kernel."""
        self.inputs.set_open_interest(symbol, open_interest)
        self._give_all(symbol)

    def read_stored_inputs(self) -> set[str]:
        """Funding and open interest stored since the last read, into every kernel."""
        changed = self.inputs.read_new(self.symbols)
        for symbol in changed:
            self._give_all(symbol)
        return changed

    def _give_all(self, symbol: str) -> None:
        for entry in self.arena:
            self.inputs.give(entry.kernel, symbol)

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
        if self.recorder.live is not None:
            self.recorder.live.begin()  # a retried batch re-emits its intents: keep one copy
        return self.process_candles(candles)

    async def _on_outage(self, what: str, started: bool, message: str) -> None:
        """The writer's outage hook: ``/health/`` at once, a stored alert as soon as the
        database takes it (the start of a database outage is stored once it ends)."""
        if self.status is not None:
            self.status.outage_changed(message if started else None)
        text = f"{what} outage: {message}" if started else message
        self._unsent_alerts.append(("error" if started else "info", text, what))
        if what == "database" and started:
            return
        pending, self._unsent_alerts = self._unsent_alerts, []
        try:
            await self.writer.run_on_writer_thread(partial(store_alerts, pending, outage=True))
        except Exception as exc:
            self._unsent_alerts[:0] = pending
            log.warning("outage alert not stored yet: %s", exc)

    def process_candles(self, candles: Sequence[tuple[str, tuple[float, ...]]]) -> EventBatch:
        """Closed 1m candles, in arrival order, in ONE transaction (module doc); returns their
        events, to publish now that the transaction committed. Candle by candle the work and
        its result are those of one transaction per candle; only the commits are shared."""
        if self._needs_rebuild:
            self.rebuild_from_store()
        self._outbox = EventBatch()
        counters = (
            self.summary.candles,
            self._selector_round,
            dict(self._untrimmed),
            self._controls_read_at,
            self._checkpoint_at,
        )
        try:
            self._process_candles(candles)
            return self._outbox
        except BaseException:
            # Rolled back: the kernels moved past the stored record. Rebuilt before any retry.
            self._needs_rebuild = True
            (
                self.summary.candles,
                self._selector_round,
                self._untrimmed,
                self._controls_read_at,
                self._checkpoint_at,
            ) = counters
            raise
        finally:
            self._outbox = None

    def rebuild_from_store(self) -> None:
        """Every kernel rebuilt from the stored record, as a restart rebuilds it (checkpoint,
        stored history, inputs, controls, then the stored candles since the checkpoint)."""
        symbols = self.symbols
        pks: list[int] = []
        for entry in self.arena:
            pks.extend(c.pk for c in (entry.config, *entry.confirmers) if c.pk not in pks)
        stored = StrategyConfig.objects.in_bulk(pks)
        configs = [stored[pk] for pk in pks if pk in stored]
        base = self.arena[0].kernel_config
        limit = (
            next(iter(self.accounts.values())).max_session_loss_pct
            if self.accounts
            else _account_limit_pct()
        )
        self.arena = build_arena(configs, symbols, base, exchange=self.exchange)
        for symbol in symbols:
            self._give_all(symbol)
        closes = [t for t in (last_close_ms(e.kernel) for e in self.arena) if t is not None]
        self.accounts = account_guards(
            self.arena, max_session_loss_pct=limit, now_ms=max(closes) if closes else 0
        )
        for guard in self.accounts.values():
            guard.apply_controls(now_ms=max(closes) if closes else 0)
        self.catch_up()
        self._needs_rebuild = False
        self.rebuilds += 1
        log.warning("kernels rebuilt from the stored record after a failed commit")

    def _publish(
        self, group: str, event_type: str, payload: dict[str, Any], *, coalesce: Any = None
    ) -> None:
        if self._outbox is not None:
            self._outbox.add(group, event_type, payload, coalesce=coalesce)
        else:
            publish_on_commit(group, event_type, payload)

    def _process_candles(self, candles: Sequence[tuple[str, tuple[float, ...]]]) -> None:
        candles = refuse_future_candles(candles, now_ms=self.clock_ms())
        if not candles:
            return
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
            controls_due = time.monotonic() - self._controls_read_at >= self.controls_every_s
            if controls_due:
                self.sync_controls(now_ms=int(rows[0][0]))
                self.read_stored_inputs()
            for (symbol, _), candle in zip(candles, rows, strict=True):
                self._process_one(symbol, candle)
            if controls_due:  # the trader's Close buttons: with the controls, after the candles
                close.carry_out_closes(self)
            self.recorder.save_due(self.arena)

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
            selector.run_selector(
                [e for e in self.arena if not e.errored],
                self.selector_rules,
                now_ms=now_ms,
                save_later=self.recorder.save_later,
            )
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

    def _run_kernels(
        self,
        symbol: str,
        candle: np.ndarray,
        *,
        checkpoint: bool,
        entries: Sequence[ArenaEntry] | None = None,
    ) -> None:
        """Every kernel that has not processed ``candle`` yet takes it, with its mode's account
        state (evaluated once per candle, before any decides); store what it did."""
        open_ms = int(candle[0])
        now_ms = open_ms + MINUTE_MS
        for guard in self.accounts.values():
            account = guard.state(now_ms=now_ms)
            for entry in guard.entries:
                entry.kernel.set_account(account)
        for entry in entries if entries is not None else self.arena:
            if entry.errored:
                continue  # stopped by its own failure: takes no candle until resumed
            done_ms = last_candle_ms(entry.kernel, symbol)
            if done_ms is not None and done_ms >= open_ms:
                continue  # already processed before a restart: never counted twice
            try:
                events = entry.kernel.on_candle(symbol, candle, now_ms)
            except Exception as exc:  # that strategy's alone (module doc)
                self._strategy_failed(entry, exc, symbol, open_ms)
                continue
            # The first candle of a symbol is a checkpoint: a restart then knows the kernel
            # is past it and replays the rest (catch_up) instead of starting that symbol cold.
            due = checkpoint or done_ms is None
            if not events:
                self.recorder.store(entry, symbol, events, checkpoint=due)
                continue
            try:
                with transaction.atomic():  # a savepoint: a refused write undoes only its own
                    self.recorder.store(entry, symbol, events, checkpoint=due)
            except (OperationalError, InterfaceError):
                raise  # the database itself: the whole batch is retried (module doc)
            except Exception as exc:
                self._strategy_failed(entry, exc, symbol, open_ms)
        record_input_status(self.arena, symbol, now_ms)  # why one cannot decide, when it changes

    def _strategy_failed(
        self, entry: ArenaEntry, exc: Exception, symbol: str, open_ms: int
    ) -> None:
        """Mark ``entry`` errored: stored status and reason, an alert, its Arena row updated."""
        if entry.errored:
            return
        name = entry.config.name
        when = utc_text(open_ms)
        where = f"on {symbol}, candle {when}" if symbol else f"at {when}"
        reason = f"{type(exc).__name__}: {exc} ({where})"
        entry.errored = reason
        entry.save_fields = None  # its half-moved state is never checkpointed
        strategy_errored(
            session=entry.session,
            name=name,
            reason=reason,
            message=f"{name} stopped with an error: {reason}. The other strategies keep "
            "trading; its open paper positions are frozen. Fix the cause, then Resume it.",
            payload={"symbol": symbol, "time_ms": open_ms},
            exc=exc,
        )
        entry.published = True

    def catch_up(
        self, entries: Sequence[ArenaEntry] | None = None, until_ms: int | None = None
    ) -> int:
        """Replay, in one transaction, the stored candles kernels processed after their last
        checkpoint (module doc); returns how many candles were replayed. ``entries``: only
        those (default every one); ``until_ms``: candles opening at most then (default: the
        wall clock's now — never a stored candle from the future).

        Candles of all symbols go in market-time order (within a minute, in the feed's symbol
        order); each kernel takes only those after its own last candle, then every kernel that
        moved is checkpointed. A symbol a kernel never processed stays cold, as before.
        """
        self.read_stored_inputs()
        entries = self.arena if entries is None else entries
        until = self.clock_ms() if until_ms is None else until_ms
        behind: dict[str, int] = {}
        for entry in entries:
            if entry.errored:
                continue
            for symbol in entry.symbols:
                last = last_candle_ms(entry.kernel, symbol)
                if last is not None:
                    behind[symbol] = min(behind.get(symbol, last), last)
        order = {s: i for i, s in enumerate(self.symbols)}
        rows = [
            (int(candle[0]), order[symbol], symbol, candle)
            for symbol, after in behind.items()
            for candle in stored_candles(self.exchange, symbol, after, until)
        ]
        if not rows:
            return 0
        rows.sort(key=lambda r: (r[0], r[1]))
        with transaction.atomic():
            for _, _, symbol, candle in rows:
                self._run_kernels(symbol, candle, checkpoint=False, entries=entries)
            for entry in entries:
                if not entry.errored:
                    self.recorder.save_session(entry)
        closes = [t for t in (last_close_ms(e.kernel) for e in self.arena) if t is not None]
        self._selector_round = max(self._selector_round, self._round_of(max(closes)))
        log.info("caught up on %d stored candle(s) since the last checkpoint", len(rows))
        return len(rows)

    def checkpoint_all(self) -> None:
        """Save every kernel's state now (the feed stopped: the stored record is current)."""
        with transaction.atomic():
            for entry in self.arena:
                if not entry.errored:
                    self.recorder.save_session(entry)

    def _round_of(self, now_ms: int) -> int:
        return selector.round_of(now_ms, self.selector_every)

    def sync_controls(self, *, now_ms: int) -> None:
        """Apply what the dashboard and the admin changed since the last read (two queries;
        :func:`radar.controls.sync_controls`), the accounts' kill-switch resets included."""
        self._controls_read_at = time.monotonic()
        # What the runtime itself changed (a kill-switch trip) is written first: the read must
        # not take the stored row's older status for a dashboard control.
        self.recorder.save_due(self.arena)
        if self.recorder.live is not None:
            self.recorder.live.refresh()
        controls.sync_controls(
            self.arena,
            [g.session for g in self.accounts.values()],
            now_ms=now_ms,
            reload=self.reload_config,
            failed=lambda entry, exc: self._strategy_failed(entry, exc, "", now_ms),
        )
        for guard in self.accounts.values():
            guard.apply_controls(now_ms=now_ms)
        for entry in self.arena:
            if entry.errored and entry.session.status != TradingSession.Status.ERRORED:
                self._revive(entry)

    def _revive(self, entry: ArenaEntry) -> None:
        """An errored strategy resumed from the dashboard: rebuilt from its last good
        checkpoint, caught up on the stored candles the rest of the arena processed."""
        entry.errored = ""
        entry.kernel = new_kernel(
            entry.config,
            entry.confirmers,
            entry.symbols,
            entry.kernel_config,
            state=entry.session.ledger_state or None,
        )
        preload_stored_history([entry.kernel], self.exchange)
        for symbol in entry.symbols:
            self.inputs.give(entry.kernel, symbol)
        entry.applied_weight = 1.0
        controls.apply_controls(entry, now_ms=last_close_ms(entry.kernel) or 0)
        done = [
            last_candle_ms(e.kernel, s) for e in self.arena if e is not entry for s in e.symbols
        ]
        known = [t for t in done if t is not None]
        self.catch_up([entry], until_ms=max(known) if known else None)
        self.recorder.save_later(entry)
        log.info("errored strategy resumed", extra={"strategy": entry.config.name})

    def reload_config(self, config: StrategyConfig) -> None:
        """Parameters edited in the admin, applied without a restart (:mod:`radar.controls`).
        Refused (a stored value its schema refuses), every strategy using that configuration
        stops errored; the next edit is tried again."""
        try:
            controls.reload_config(
                self.arena, config, exchange=self.exchange, give_inputs=self.inputs.give
            )
        except Exception as exc:
            now = max((t for t in (last_close_ms(e.kernel) for e in self.arena) if t), default=0)
            for entry in self.arena:
                users = [c for c in (entry.config, *entry.confirmers) if c.pk == config.pk]
                for used in users:
                    used.updated_at = config.updated_at  # not retried until edited again
                if users:
                    self._strategy_failed(entry, exc, "", now)
        for guard in self.accounts.values():  # the guards follow the rebuilt kernels
            guard.entries = [e for e in self.arena if e.session.mode == guard.mode]

    # -- arena -------------------------------------------------------------------------------
    def results(self) -> list[StrategyResults]:
        return selector.results(self.arena)

    def ranking(self, min_trades: int = 10) -> list[Any]:
        return selector.ranking(self.arena, min_trades)

    def kernels(self) -> list[StrategyKernel]:
        return [e.kernel for e in self.arena]


def _store_feed_alert(level: str, message: str) -> None:
    with transaction.atomic():
        alert_create(level=level, message=message, source="feed")
