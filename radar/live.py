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

from django.utils import timezone

from strategies.core.kernel.events import (
    CloseIntent,
    KillSwitchTripped,
    OrderCancelled,
    OrderIntent,
)
from strategies.models import ControlAction, StrategyConfig
from trading.exchanges.clients import ExchangeSettings, trading_exchange
from trading.execution import streams
from trading.execution.executor import Executor
from trading.execution.settings import LiveSettings, LiveTradingRefused, live_gate
from trading.models import TradingSession

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
        """Re-read which strategies are live and the flatten requests not yet carried out
        (sync, with the controls)."""
        self.live = set(
            StrategyConfig.objects.filter(live=True, enabled=True).values_list("name", flat=True)
        )
        requests = ControlAction.objects.filter(
            action=ControlAction.Action.FLATTEN, done_at__isnull=True
        ).exclude(pk__in=self._flattens_seen)
        for action in requests.order_by("created_at"):
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
        elif isinstance(event, ControlAction):
            report = await ex.flatten(name or None, f"requested: {event.reason}")
            if report.complete:
                await ex.db(
                    ControlAction.objects.filter(pk=event.pk).update, done_at=timezone.now()
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
