"""The live runtime: closed candle -> every enabled strategy -> risk -> paper ledger -> events.

The feed (``trading.feed``) calls :class:`RadarRuntime` as its handler. For each CLOSED 1m
candle the runtime, in ONE database transaction:

1. upserts the candle (natural key: a redelivered candle changes nothing);
2. hands it to each strategy's :class:`strategies.core.kernel.StrategyKernel` — the very object
   the backtester drives, so paper trading and backtests cannot disagree — unless that kernel
   already processed this candle (its state records the last candle per symbol: idempotent
   after a crash or a redelivery);
3. stores what the kernel did (signals accepted/refused with the reason, positions opened and
   closed, funding, kill-switch trips) and the kernel's state (ledger, kill switch, pending
   orders) in the strategy's ``TradingSession`` row;
4. runs the arena's selector every ``selector_every`` candles and applies its decisions.

Events go to the dashboard only after that transaction commits. A SIGKILL at any point leaves
either all of a candle's effects or none of them; on restart the kernels are rebuilt from their
stored state and the feed heals from the last stored candle.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from scalpradar.events import apublish, market_group, publish_on_commit
from strategies.core.arena import SelectorRules, StrategyResults, rank, select
from strategies.core.base import build_strategy
from strategies.core.kernel import (
    FundingApplied,
    KernelConfig,
    KillSwitchTripped,
    PositionClosed,
    PositionOpened,
    SignalEvent,
    StrategyKernel,
    StrategySkippedEvent,
)
from strategies.models import SelectorDecision, Signal, StrategyConfig
from trading.models import Position, TradingMode, TradingSession
from trading.services import candles_upsert

log = logging.getLogger(__name__)
trade_log = logging.getLogger("scalpradar.trades")

MINUTE_MS = 60_000


@dataclass(slots=True)
class ArenaEntry:
    config: StrategyConfig
    kernel: StrategyKernel
    session: TradingSession
    signal_count: int = 0


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
    configs: Iterable[StrategyConfig], symbols: list[str], kernel_config: KernelConfig
) -> list[ArenaEntry]:
    """One kernel per enabled strategy, restored from its session's stored state."""
    configs = list(configs)
    confirmers = {
        symbol: [
            build_strategy(c.kind, c.params, (c.symbol_overrides or {}).get(symbol))
            for c in configs
            if c.kind == "order_flow"
        ]
        for symbol in symbols
    }
    arena = []
    for config in configs:
        if config.kind == "order_flow":
            continue  # a confirmation filter: it adjusts the others' scores, trades nothing
        session = session_for(config)
        strategies = {
            symbol: build_strategy(
                config.kind, config.params, (config.symbol_overrides or {}).get(symbol)
            )
            for symbol in symbols
        }
        kernel = StrategyKernel(
            config.name,
            strategies,
            _with_capital(kernel_config, session.initial_capital_usdt),
            confirmers=[c for cs in confirmers.values() for c in cs][:1],
            state=session.ledger_state or None,
        )
        kernel.set_mode(_kernel_mode(session.status))
        arena.append(ArenaEntry(config=config, kernel=kernel, session=session))
    return arena


def _with_capital(config: KernelConfig, capital_usdt: float) -> KernelConfig:
    from dataclasses import replace

    return replace(config, capital_usdt=capital_usdt)


def _kernel_mode(status: str) -> str:
    return {"paused": "paused", "killed": "killed", "shadow": "paused"}.get(status, "active")


class RadarRuntime:
    """The feed's handler. Sync database work runs in a worker thread, in one transaction."""

    def __init__(
        self,
        arena: list[ArenaEntry],
        *,
        exchange: str,
        selector_rules: SelectorRules | None = None,
        selector_every: int = 60,
        price_every_ms: int = 1_000,
    ) -> None:
        self.arena = arena
        self.exchange = exchange
        self.selector_rules = selector_rules or SelectorRules()
        self.selector_every = selector_every
        self.summary = RuntimeSummary()
        self._last_price_sent: dict[str, int] = {}
        self.price_every_ms = price_every_ms
        self.last_prices: dict[str, float] = {}

    # -- feed handler ------------------------------------------------------------------------
    async def on_closed_candle(self, symbol: str, row: tuple[float, ...]) -> None:
        await sync_to_async(self.process_candle, thread_sensitive=True)(symbol, row)

    async def on_price(self, symbol: str, price: float, time_ms: int, kind: str) -> None:
        self.last_prices[symbol] = price
        last = self._last_price_sent.get(symbol, 0)
        if time_ms - last >= self.price_every_ms:
            self._last_price_sent[symbol] = time_ms
            await apublish(
                market_group(symbol),
                "market.price",
                {"symbol": symbol, "price": price, "time_ms": time_ms, "kind": kind},
            )

    async def on_order_book(self, symbol: str, book: dict[str, Any]) -> None:
        bids = np.asarray(book.get("bids") or [], dtype=np.float64).reshape(-1, 2)
        asks = np.asarray(book.get("asks") or [], dtype=np.float64).reshape(-1, 2)
        for entry in self.arena:
            entry.kernel.set_inputs(
                symbol, order_book=_order_book(int(book.get("timestamp") or 0), bids, asks)
            )

    async def on_trades(self, symbol: str, trades: list[dict[str, Any]]) -> None:
        return None

    async def on_alert(self, level: str, message: str) -> None:
        log.warning("feed alert: %s", message, extra={"alert_level": level})
        await apublish("alerts", "alert.new", {"level": level, "message": message})

    def set_funding(self, symbol: str, funding: np.ndarray) -> None:
        for entry in self.arena:
            entry.kernel.set_inputs(symbol, funding=funding)

    # -- one closed candle -------------------------------------------------------------------
    def process_candle(self, symbol: str, row: tuple[float, ...]) -> None:
        candle = np.asarray(row, dtype=np.float64)
        open_ms = int(candle[0])
        now_ms = open_ms + MINUTE_MS
        with transaction.atomic():
            # Upsert: a candle healed over REST with its final values replaces a stored copy.
            candles_upsert(
                rows=[(open_ms, *(float(x) for x in candle[1:]))],
                exchange=self.exchange,
                symbol=symbol,
                timeframe="1m",
            )
            for entry in self.arena:
                done_ms = last_candle_ms(entry.kernel, symbol)
                if done_ms is not None and done_ms >= open_ms:
                    continue  # already processed before a restart: never counted twice
                events = entry.kernel.on_candle(symbol, candle, now_ms)
                self._store(entry, symbol, events, now_ms)
            self.summary.candles += 1
            if self.selector_every and self.summary.candles % self.selector_every == 0:
                self._run_selector(now_ms)
            publish_on_commit(
                market_group(symbol),
                "market.candle",
                {"symbol": symbol, "candle": [float(x) for x in candle], "time_ms": now_ms},
            )

    def _store(self, entry: ArenaEntry, symbol: str, events: list[Any], now_ms: int) -> None:
        session = entry.session
        for event in events:
            if isinstance(event, SignalEvent):
                self._store_signal(entry, event)
            elif isinstance(event, PositionOpened):
                self._store_open(entry, event)
            elif isinstance(event, PositionClosed):
                self._store_close(entry, event)
            elif isinstance(event, FundingApplied):
                publish_on_commit("positions", "position.funding", event.to_dict())
            elif isinstance(event, KillSwitchTripped):
                session.status = TradingSession.Status.KILLED
                session.kill_switch_tripped = True
                session.kill_switch_reason = event.reason
                session.kill_switch_tripped_at = timezone.now()
                publish_on_commit(
                    "alerts",
                    "alert.new",
                    {"level": "error", "message": f"{entry.config.name}: {event.reason}"},
                )
            elif isinstance(event, StrategySkippedEvent):
                publish_on_commit(
                    "alerts",
                    "alert.new",
                    {
                        "level": "warning",
                        "message": f"{entry.config.name} on {symbol} skipped: {event.reason}",
                    },
                )
        ledger = entry.kernel.ledger
        session.realised_gross_pnl = ledger.realised_gross_pnl
        session.realised_net_pnl = ledger.realised_net_pnl
        session.fees_usdt = ledger.fees_paid
        session.funding_usdt = ledger.funding_paid
        session.slippage_usdt = ledger.slippage_cost
        equity = entry.kernel.equity()
        session.peak_equity_usdt = max(session.peak_equity_usdt, equity)
        session.ledger_state = entry.kernel.state()
        session.save()
        if events:
            publish_on_commit("arena", "arena.update", self.arena_payload_for(entry, equity))

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
        publish_on_commit(
            "signals", "signal.new", {"strategy": entry.config.name, **event.to_dict()}
        )

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
        publish_on_commit(
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
        publish_on_commit(
            "positions", "position.closed", {"strategy": entry.config.name, **event.to_dict()}
        )

    # -- arena -------------------------------------------------------------------------------
    def results(self) -> list[StrategyResults]:
        out = []
        for entry in self.arena:
            closed = entry.kernel.ledger.closed
            shadow = entry.kernel.shadow_ledger.closed
            session = entry.session
            peak = max(session.peak_equity_usdt, session.initial_capital_usdt)
            equity = entry.kernel.equity()
            out.append(
                StrategyResults(
                    name=entry.config.name,
                    initial_capital_usdt=session.initial_capital_usdt,
                    equity_usdt=equity,
                    net_pnls=tuple(t.net_pnl for t in closed),
                    max_drawdown_pct=max(0.0, (peak - equity) / peak * 100.0),
                    status=session.status,
                    capital_weight=session.capital_weight,
                    shadow_net_pnls=tuple(t.net_pnl for t in shadow),
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
                apply_capital_weight(entry.kernel, decision.new_weight)
            elif decision.action == "pause":
                session.status = TradingSession.Status.PAUSED
                entry.kernel.set_mode("paused")
            elif decision.action == "resume":
                session.status = TradingSession.Status.ACTIVE
                entry.kernel.set_mode("active")
            session.save()
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

    def reload_config(self, config: StrategyConfig) -> None:
        """Apply parameters edited in the admin to the running kernel, without a restart."""
        for entry in self.arena:
            if entry.config.pk == config.pk:
                entry.config = config
                for symbol, state in entry.kernel._symbols.items():
                    state.strategy = build_strategy(
                        config.kind, config.params, (config.symbol_overrides or {}).get(symbol)
                    )


def last_candle_ms(kernel: StrategyKernel, symbol: str) -> int | None:
    """Open time of the last 1m candle ``kernel`` processed for ``symbol`` (restored state)."""
    state = kernel._symbols.get(symbol)
    if state is None or state.last_row is None:
        return None
    return int(state.last_row[0])


def apply_capital_weight(kernel: StrategyKernel, weight: float) -> None:
    """The selector's capital weight scales the risk taken per trade (sizing follows)."""
    from dataclasses import replace

    from trading.core.risk import RiskGate

    base = kernel.config.risk_limits
    limits = replace(base, max_risk_per_trade_pct=base.max_risk_per_trade_pct * weight)
    kernel.gate = RiskGate(limits, kernel.config.fee_schedule, kernel.config.slippage)


def _json_num(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _order_book(time_ms: int, bids: np.ndarray, asks: np.ndarray) -> Any:
    from strategies.core.base import OrderBook

    return OrderBook(time_ms=time_ms, bids=bids, asks=asks)
