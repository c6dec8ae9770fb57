"""Live trading beside the paper arena: the kernel's order events of live strategies, handed to
the executor after their batch commits.

The paper twin decides (its kernel runs exactly as in paper trading and keeps its own ledger);
:class:`LiveRouter` forwards what a live strategy's REAL ledger emitted — never a shadow
ledger's — to the :class:`~trading.execution.executor.Executor`, in order:

* :class:`OrderIntent` → :meth:`~Executor.submit_entry`;
* :class:`CloseIntent` → :meth:`~Executor.submit_close`;
* :class:`OrderCancelled` of an entry → :meth:`~Executor.cancel_entry`;
* :class:`KillSwitchTripped` → :meth:`~Executor.flatten` (the strategy's); the account's
  switch (tripped in :mod:`radar.account`, read with the controls) flattens every one, once
  per trip.

Read with the flatten requests, at the same place: a trader's Close of one live position (the
Live page, ``strategies.closes.live_position_close_request``) → :meth:`~Executor.
close_on_request` (its resting entry cancelled, reduce-only market close; its stop stays on the
exchange until the position is flat), then the request stamped ``done_at`` with an info alert,
or an error alert with the reason when the exchange still holds the position (its stop
checked, and placed again when missing).

Stops and targets hit inside a candle are not forwarded: the live position's own stop and
target rest on the exchange. Which strategies are live is re-read with the controls
(``StrategyConfig.live``, set by the recorded "go live" control).

:func:`start_live` builds the executor when live trading may run: ``--exchange fake`` (the
fake Bitget's private API, in-process or already serving at ``EXCHANGE_BASE_URL``, with its
demo keys), or the gate of
:mod:`trading.execution.settings` (``LIVE_TRADING_ENABLED``, keys, mainnet opt-in).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.db.models import Q
from django.utils import timezone

from strategies.closes import close_request_done, describe_live
from strategies.core.kernel.events import (
    CloseIntent,
    KillSwitchTripped,
    OrderCancelled,
    OrderIntent,
)
from strategies.models import ControlAction, StrategyConfig
from trading.core.numbers import fmt_money, fmt_price
from trading.exchanges.clients import ExchangeSettings, trading_exchange
from trading.execution import streams
from trading.execution.executor import Executor
from trading.execution.protection import RequestedClose
from trading.execution.settings import LiveSettings, LiveTradingRefused, live_gate
from trading.instruments import steps_for
from trading.models import LivePosition, TradingSession

log = logging.getLogger(__name__)
FORWARDED = (OrderIntent, CloseIntent, OrderCancelled, KillSwitchTripped)


@dataclass(slots=True)
class LiveRouter:
    """Collects a batch's live order events (writer thread), hands them over once committed
    (event loop), and feeds them to the executor one by one (module docstring)."""

    executor: Executor
    live: set[str] = field(default_factory=set)
    _pending: list[tuple[str, Any]] = field(default_factory=list)
    _flattens: list[tuple[str, Any]] = field(default_factory=list)
    _flattens_seen: set[int] = field(default_factory=set)
    _account_tripped: bool = False
    _queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)

    def refresh(self) -> None:
        """Re-read which strategies are live, and the flatten and live Close requests not yet
        carried out (sync, with the controls)."""
        self.live = set(
            StrategyConfig.objects.filter(live=True, enabled=True).values_list("name", flat=True)
        )
        waiting = Q(action=ControlAction.Action.FLATTEN) | Q(
            action=ControlAction.Action.CLOSE_POSITION, live_position__isnull=False
        )
        requests = (
            ControlAction.objects.filter(waiting, done_at__isnull=True)
            .exclude(pk__in=self._flattens_seen)
            .select_related("live_position", "user")
        )
        for action in requests.order_by("created_at", "pk"):
            self._flattens_seen.add(action.pk)
            self._flattens.append((action.strategy_name, action))
        # The account kill switch trips in radar.account (no kernel event): flatten every live
        # strategy once per trip.
        account = (
            TradingSession.objects.filter(strategy_name="", kill_switch_tripped=True)
            .exclude(status=TradingSession.Status.ENDED)
            .first()
        )
        if account is not None and not self._account_tripped:
            reason = account.kill_switch_reason or "account kill switch"
            self._flattens.append(("", KillSwitchTripped("account", reason)))
        self._account_tripped = account is not None

    def begin(self) -> None:
        """A batch starts (or is retried after an outage): what an uncommitted try collected
        is dropped — the retry emits the same intents again, with the same client ids."""
        self._pending.clear()

    def collect(self, name: str, events: Sequence[Any]) -> None:
        if name not in self.live:
            return
        for event in events:
            if isinstance(event, FORWARDED) and not getattr(event, "shadow", False):
                self._pending.append((name, event))

    def committed(self) -> None:
        for item in [*self._flattens, *self._pending]:
            self._queue.put_nowait(item)
        self._pending.clear()
        self._flattens.clear()

    async def run(self) -> None:
        while True:
            name, event = await self._queue.get()
            try:
                await self.dispatch(name, event)
            except Exception:
                log.exception("live %s: could not carry out %s", name, event.type)

    async def dispatch(self, name: str, event: Any) -> None:
        ex = self.executor
        if isinstance(event, OrderIntent):
            await ex.submit_entry(event.to_dict())
        elif isinstance(event, CloseIntent):
            await ex.submit_close(event.to_dict())
        elif isinstance(event, OrderCancelled):
            if event.client_order_id:
                await ex.cancel_entry(event.client_order_id, event.reason)
        elif isinstance(event, KillSwitchTripped):
            await ex.flatten(None if event.scope == "account" else name, event.reason)
        elif isinstance(event, ControlAction) and event.live_position_id is not None:
            await self.close_requested(event)
        elif isinstance(event, ControlAction):
            report = await ex.flatten(name or None, f"requested: {event.reason}")
            if report.complete:
                await ex.db(
                    ControlAction.objects.filter(pk=event.pk).update, done_at=timezone.now()
                )

    async def close_requested(self, action: ControlAction) -> None:
        """Carry out a trader's Close of one live position (module docstring); a position of
        another exchange's radar is left to it."""
        ex = self.executor
        position = action.live_position
        assert position is not None  # noqa: S101  (read with live_position set)
        if position.exchange != ex.exchange_name:
            return
        try:
            done = await ex.close_on_request(position.pk, client_id=f"sr-mc-{action.pk}")
        except Exception as exc:
            log.exception("live close request %s", action.pk)
            why = f"{type(exc).__name__}: {exc}"
            await ex.db(close_failed, action=action, why=why, market_ms=ex.market_ms())
            return
        await ex.db(close_finished, action=action, done=done, market_ms=ex.market_ms())


def _stamp(action: ControlAction, level: str, message: str, market_ms: int) -> None:
    close_request_done(action, level, message, market_ms, live_position_id=action.live_position_id)


def close_finished(*, action: ControlAction, done: RequestedClose, market_ms: int) -> None:
    """Stamp a live Close request done, with the alert that says what the exchange did."""
    position: LivePosition = done.position
    what = describe_live(action.live_position or position)
    if done.already and done.closed:
        reason = position.exit_reason or "closed on the exchange"
        _stamp(
            action,
            "info",
            f"close of {what}: already closed ({reason}) before the request was carried out",
            position.closed_ms or market_ms,
        )
    elif done.closed:
        exit_price = (
            fmt_price(position.exit_price, steps_for(position.symbol).tick)
            if position.exit_price is not None
            else "not known yet"
        )
        net = fmt_money(position.net_pnl, "USDT", signed=True)
        _stamp(
            action,
            "info",
            f"{what} closed at market by {action.user or '—'} ({position.exit_reason}): exit "
            f"{exit_price}, net {net}",
            position.closed_ms or market_ms,
        )
    elif done.already:  # flat on the exchange, but its close not booked
        _stamp(
            action,
            "warning",
            f"close of {what}: already flat on the exchange, not booked yet — the "
            "reconciliation books it from its fills",
            market_ms,
        )
    else:
        stop = (
            "its stop is held on the exchange"
            if done.stop_held
            else "NO STOP could be placed: see the error alerts, CLOSE IT BY HAND"
        )
        _stamp(action, "error", f"close of {what} NOT carried out: {done.why}; {stop}", market_ms)


def close_failed(*, action: ControlAction, why: str, market_ms: int) -> None:
    """Stamp a live Close request that an error stopped (the trader may request it again)."""
    what = describe_live(action.live_position) if action.live_position else "a live position"
    _stamp(
        action,
        "error",
        f"close of {what} stopped by an error ({why}); its stop is only cancelled once the "
        "position is flat — check the Live page and request it again",
        market_ms,
    )


@dataclass(slots=True)
class LiveSession:
    """A started executor with its router and loops."""

    executor: Executor
    router: LiveRouter
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def start_loops(self) -> None:
        self.tasks = [
            asyncio.create_task(streams.run(self.executor), name="live-streams"),
            asyncio.create_task(self.router.run(), name="live-router"),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.executor.close()
        await self.executor.exchange.close()


async def start_live(
    entry: ExchangeSettings,
    symbols: Sequence[str],
    *,
    out: TextIO,
    fake: Any = None,
) -> LiveSession | None:
    """The live session, or ``None`` (with one line saying why) when live trading is off."""
    from strategies.config import get_config

    settings = LiveSettings.from_config(get_config().risk.live)
    if fake is not None:  # in-process, or another process's (radar.launch.StandaloneFake)
        keys = fake.credentials
        credentials = (keys.api_key, keys.secret, keys.passphrase)
        base_url: str | None = fake.base_url
        where = f"the fake Bitget at {fake.base_url} (demo keys of its own)"
    else:
        gate = live_gate(entry)
        if not gate.allowed:
            out.write(f"Live trading: off — {gate.reason}\n")
            return None
        credentials, base_url = gate.credentials, None
        where = f"{entry.name} {'DEMO (paptrading)' if gate.demo else 'MAINNET — REAL MONEY'}"
    key, secret, password = credentials
    exchange = trading_exchange(
        entry, api_key=key, secret=secret, password=password, base_url=base_url
    )
    if fake is not None:
        fake.attach(exchange)
    executor = Executor(
        exchange, settings=settings, symbols=list(symbols), exchange_name=entry.name
    )
    try:
        ready = await executor.start()
    except LiveTradingRefused as exc:
        await executor.close()
        await exchange.close()
        out.write(f"Live trading: refused — {exc}\n")
        return None
    router = LiveRouter(executor)
    await executor.db(router.refresh)
    router.committed()  # flatten requests made while the radar was down run first
    state = "ready" if ready else "NOT ready: the start-up reconciliation differs (see Alerts)"
    out.write(
        f"Live trading: {where}; {state}; live strategies: "
        f"{', '.join(sorted(router.live)) or 'none yet (Live page: go live)'}\n"
    )
    session = LiveSession(executor, router)
    session.start_loops()
    return session
